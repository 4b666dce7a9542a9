// The kernel's word on whether the wall clock is synchronised. Runs on host and device.
//
// adjtimex(2) with modes 0 reads the clock discipline without changing it (no privilege
// needed; one syscall, about a microsecond). A time client clears STA_UNSYNC once it has
// synchronised the clock; the kernel returns TIME_ERROR while the bit is set. The node
// reads it on the control plane at most once a tick (1 s), never per packet
// (WispNode `NodeClock`), and ClockSyncMode.swift says what it decides.
import CPosix
import WispCore

public enum ClockSync {
  /// One reading: adjtimex's state and status bits, or -errno (a sandbox that filters the
  /// call: the packaged unit allows it, Toolchain/package/wisp.service). `wisp_clock_state`.
  public static func read() -> KernelClockReading {
    var status: Int32 = 0
    let rc = wisp_clock_state(&status)
    return KernelClockReading(state: rc, status: rc < 0 ? 0 : status)
  }

  /// Whether the kernel says its clock is synchronised now.
  public static func isSynchronised() -> Bool { read().synchronised }
}
