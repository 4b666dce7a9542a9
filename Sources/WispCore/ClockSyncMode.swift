// Whether the node may trust its wall clock. Runs on host and device.
//
// A board has no real-time clock: until a time client (the image runs chrony) has
// synchronised the kernel's clock, the wall clock may be 1970, the last shutdown, or
// whatever a network handed out. Receipt epochs, payer validity (and later descriptor
// expiry and the quota day) are checked against that clock, so the node reads whether
// the kernel says it is synchronised (adjtimex, read only; WispOS `ClockSync`) and,
// while it is not, those checks wait instead of failing or passing.
//
// `clock_sync = kernel` (default) trusts the kernel's reading; `clock_sync = assume`
// (labs, containers, tests, the local demo) treats the clock as synchronised whatever
// the kernel says, and status says `assumed` (CONFIG.md).

/// `clock_sync` in wisp.conf, `--clock-sync` on the command line.
public enum ClockSyncMode: Equatable, Sendable {
  /// The kernel's reading decides (adjtimex: STA_UNSYNC clear and not TIME_ERROR).
  case kernel
  /// The clock is taken as synchronised, whatever the kernel says.
  case assume

  public var name: StaticString {
    switch self {
    case .kernel: return "kernel"
    case .assume: return "assume"
    }
  }

  /// The mode named `name` (`kernel`, `assume`), or nil.
  public init?(name: String) {
    if name.is("kernel") { self = .kernel } else if name.is("assume") { self = .assume } else { return nil }
  }
}

/// What the node says about its clock: `wisp status`, its JSON and metrics, the LEDs.
public enum ClockState: Equatable, Sendable {
  /// The kernel says its clock is synchronised.
  case synced
  /// The kernel says it is not (or cannot be asked): time checks wait.
  case unsynced
  /// `clock_sync = assume`: taken as synchronised without asking.
  case assumed

  public init(mode: ClockSyncMode, kernel: KernelClockReading?) {
    switch mode {
    case .assume: self = .assumed
    case .kernel: self = kernel?.synchronised == true ? .synced : .unsynced
    }
  }

  /// Whether time checks may use the wall clock now.
  public var trusted: Bool { self != .unsynced }

  /// `synced`, `unsynced` or `assumed`.
  public var name: StaticString {
    switch self {
    case .synced: return "synced"
    case .unsynced: return "unsynced"
    case .assumed: return "assumed"
    }
  }
}

/// One read-only reading of the kernel's clock discipline: what adjtimex(2) with modes 0
/// returns (the clock state, or -errno) and the status bits it fills in.
public struct KernelClockReading: Equatable, Sendable {
  /// TIME_ERROR: the clock is not synchronised (the kernel returns it while STA_UNSYNC is set).
  public static let timeError: Int32 = 5
  /// STA_UNSYNC: set at boot and by a time client that lost its sources; cleared by one that
  /// has synchronised the clock (chrony with `rtcsync`, systemd-timesyncd, ntpd).
  public static let unsyncBit: Int32 = 0x40

  /// adjtimex's return value: TIME_OK (0) .. TIME_ERROR (5), or -errno when the call failed.
  public let state: Int32
  /// `struct timex`'s status bits (0 when the call failed).
  public let status: Int32

  public init(state: Int32, status: Int32) {
    self.state = state
    self.status = status
  }

  /// Synchronised: the call worked, the state is not TIME_ERROR and STA_UNSYNC is clear.
  public var synchronised: Bool { state >= 0 && state != KernelClockReading.timeError && status & KernelClockReading.unsyncBit == 0 }

  /// For logs: "adjtimex=5 status=0x40", or "adjtimex_errno=1" when the call failed.
  public var text: String {
    if state < 0 { return "adjtimex_errno=\(-Int(state))" }
    var hex = ""
    var v = UInt32(bitPattern: status)
    repeat {
      let d = UInt8(v & 15)
      hex = String(UnicodeScalar(d < 10 ? 48 + d : 87 + d)) + hex
      v >>= 4
    } while v != 0
    return "adjtimex=\(state) status=0x" + hex
  }
}
