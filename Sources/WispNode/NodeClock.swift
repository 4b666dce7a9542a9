// Whether the node's wall clock is synchronised, as the control plane last read it.
//
// The control plane calls `refresh()` once a tick (1 s; never per packet): one read-only
// adjtimex (WispOS `ClockSync`) in `kernel` mode, nothing in `assume` mode. The result is
// published with a relaxed atomic store, so any thread (the credit worker) may ask
// `clockSynced()` without a message or a lock. Status, metrics and the LEDs read `state`.
import CPosix
import WispCore
import WispOS

public final class NodeClock {
  /// `clock_sync` (reloadable: the next `refresh` applies it).
  public var mode: ClockSyncMode
  /// The last kernel reading (nil in `assume` mode or before the first refresh).
  public private(set) var kernel: KernelClockReading? = nil
  /// What status and the LEDs show (control plane).
  public private(set) var state: ClockState
  /// 1 while time checks may use the wall clock; published for other threads.
  private let cell = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
  /// How the kernel is read (tests pass a fixed reading).
  private let read: () -> KernelClockReading
  private var logged = false

  public init(mode: ClockSyncMode, read: @escaping () -> KernelClockReading = { ClockSync.read() }) {
    self.mode = mode
    self.read = read
    state = mode == .assume ? .assumed : .unsynced
    cell.initialize(to: 0)
    refresh()
  }

  deinit { cell.deallocate() }

  /// Reads the kernel (kernel mode) and publishes the result; logs each change.
  /// Control plane only, at most once a tick.
  public func refresh() {
    let before = state
    kernel = mode == .kernel ? read() : nil
    state = ClockState(mode: mode, kernel: kernel)
    wisp_atomic_store_u64(cell, state.trusted ? 1 : 0)
    if state != before || !logged {
      logged = true
      Log.info("clock", "clock=\(state.name) clock_sync=\(mode.name)" + (kernel.map { " " + $0.text } ?? ""))
    }
  }

  /// Whether time checks may use the wall clock now (any thread; the last `refresh`).
  public var synced: Bool { wisp_atomic_load_u64(cell) != 0 }

  /// For the credit side (receipt epochs, payer validity): the node's current reading.
  public var clockSynced: () -> Bool { { [self] in self.synced } }
}
