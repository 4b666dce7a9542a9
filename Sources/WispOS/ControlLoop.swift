// The control plane's event loop: signals, local sockets, mailboxes, timers. Runs on host
// and device (Linux).
//
// A node's main thread runs this loop and no packets: it owns reload, peer probes,
// status and metrics, the LEDs and the watchdog, and reaches the shards only
// through their mailboxes. It sleeps in epoll until a signal, a watched descriptor or the
// next timer.
import CPosix
import WispCore

public final class ControlLoop {
  public enum Event { case timer(Int), signal(Int32), readable(UInt64) }

  public var timers = TimerQueue()
  public private(set) var running = true
  /// Called for every event (timers fire after the descriptors of the same wake-up).
  public var onEvent: ((Event) -> Void)?
  let events: EventSet

  /// `signals`: whether this loop owns the process's signalfd (block the signals before
  /// any thread starts, so that every thread inherits the mask).
  public init(signals: Bool) throws(Errno) {
    events = try EventSet(signals: signals)
  }

  /// Adds `fd` to the epoll set; readiness arrives as `.readable(tag)` (tag ≥ 16).
  public func watch(_ fd: Int32, tag: UInt64) throws(Errno) {
    precondition(tag >= 16, "tags below 16 are the loop's own")
    try events.add(fd, tag: tag)
  }

  /// Watches `fd` for reading, or for writing when `writable`; `modify`: it is already
  /// watched and changes direction (or tag).
  public func watch(_ fd: Int32, tag: UInt64, writable: Bool, modify: Bool) throws(Errno) {
    precondition(tag >= 16, "tags below 16 are the loop's own")
    try events.watch(fd, tag: tag, writable: writable, modify: modify)
  }

  /// Stops watching `fd` (before closing it).
  public func unwatch(_ fd: Int32) { events.remove(fd) }

  public func stop() { running = false }

  /// Runs until `stop()`.
  public func run() {
    while running {
      events.wait(timeoutMs: timers.timeoutMs(now: wisp_monotonic_ns()),
                  ready: { onEvent?(.readable($0)) }, signal: { onEvent?(.signal($0)) })
      let later = wisp_monotonic_ns()
      while running, let id = timers.popDue(now: later) { onEvent?(.timer(id)) }
    }
  }
}
