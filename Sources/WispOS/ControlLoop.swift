// The control plane's event loop: signals, local sockets, mailboxes, timers. Runs on host
// and device (Linux).
//
// A node's main thread runs this loop and no packets: it owns reload, peer probes,
// status and metrics, the LEDs and the credit journal, and reaches the shards only
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
  let epfd: Int32
  let sigfd: Int32

  /// `signals`: whether this loop owns the process's signalfd (block the signals before
  /// any thread starts, so that every thread inherits the mask).
  public init(signals: Bool) throws(Errno) {
    epfd = try retryingNegErrno { wisp_epoll_create() }
    if signals {
      let sf: Int32
      do { sf = try retryingNegErrno { wisp_signalfd() } } catch { close(epfd); throw error }
      sigfd = sf
      _ = try retryingNegErrno { wisp_epoll_add(epfd, sigfd, 1) }
    } else {
      sigfd = -1
    }
  }

  deinit {
    close(epfd)
    if sigfd >= 0 { close(sigfd) }
  }

  /// Adds `fd` to the epoll set; readiness arrives as `.readable(tag)` (tag ≥ 16).
  public func watch(_ fd: Int32, tag: UInt64) throws(Errno) {
    precondition(tag >= 16, "tags below 16 are the loop's own")
    _ = try retryingNegErrno { wisp_epoll_add(epfd, fd, tag) }
  }

  public func stop() { running = false }

  /// Runs until `stop()`.
  public func run() {
    var tags = [UInt64](repeating: 0, count: 8)
    while running {
      let now = wisp_monotonic_ns()
      let n = tags.withUnsafeMutableBufferPointer { wisp_epoll_wait(epfd, $0.baseAddress!, 8, timers.timeoutMs(now: now)) }
      if n < 0 && -n != EINTR { fatalError("epoll_wait failed") }  // only on a bad epoll fd
      if n > 0 {
        for i in 0..<Int(n) {
          if tags[i] == 1 { readSignals() } else { onEvent?(.readable(tags[i])) }
        }
      }
      let later = wisp_monotonic_ns()
      while running, let id = timers.popDue(now: later) { onEvent?(.timer(id)) }
    }
  }

  func readSignals() {
    while true {
      let s = wisp_signalfd_read(sigfd)
      if s == 0 { return }
      onEvent?(.signal(s))
    }
  }
}
