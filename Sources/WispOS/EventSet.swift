// What an event loop sleeps on: an epoll set, with the process's signalfd when the loop owns
// it. Runs on host and device (Linux). The relay loop and the control loop both wait here.
import CPosix

public final class EventSet {
  /// The tag signals arrive under; tags 0 and 2–15 are the owner's, 16 and up its watchers'.
  public static var signalTag: UInt64 { 1 }
  let epfd: Int32
  let sigfd: Int32
  /// Ready tags of one wait (allocated once).
  let tags: UnsafeMutablePointer<UInt64>
  let capacity: Int

  /// `signals`: whether this set owns the signalfd (block the signals before any thread
  /// starts, so that every thread inherits the mask).
  public init(signals: Bool, capacity: Int = 8) throws(Errno) {
    let ep = try retryingNegErrno { wisp_epoll_create() }
    var sf: Int32 = -1
    if signals {
      do {
        sf = try retryingNegErrno { wisp_signalfd() }
        _ = try retryingNegErrno { wisp_epoll_add(ep, sf, EventSet.signalTag) }
      } catch {
        if sf >= 0 { close(sf) }
        close(ep)
        throw error
      }
    }
    epfd = ep
    sigfd = sf
    self.capacity = capacity
    tags = .allocate(capacity: capacity)
  }

  deinit {
    tags.deallocate()
    close(epfd)
    if sigfd >= 0 { close(sigfd) }
  }

  /// Adds `fd`; its readiness is reported under `tag`.
  public func add(_ fd: Int32, tag: UInt64) throws(Errno) {
    _ = try retryingNegErrno { wisp_epoll_add(epfd, fd, tag) }
  }

  /// Adds `fd` (`modify` false) or changes what it waits for (`modify` true): readable, or
  /// writable when `writable`; reported under `tag`.
  public func watch(_ fd: Int32, tag: UInt64, writable: Bool, modify: Bool) throws(Errno) {
    _ = try retryingNegErrno { wisp_epoll_watch(epfd, fd, tag, writable ? 1 : 0, modify ? 1 : 0) }
  }

  /// Removes `fd` (before closing it).
  public func remove(_ fd: Int32) {
    _ = wisp_epoll_del(epfd, fd)
  }

  /// Sleeps up to `timeoutMs` (-1: until an event); then `ready(tag)` for each ready
  /// descriptor but the signalfd, and `signal(number)` for each signal that arrived.
  @inline(__always)
  public func wait(timeoutMs: Int32, ready: (UInt64) -> Void, signal: (Int32) -> Void) {
    let n = wisp_epoll_wait(epfd, tags, Int32(capacity), timeoutMs)
    if n < 0 && -n != EINTR { fatalError("epoll_wait failed") }  // only on a bad epoll fd
    if n <= 0 { return }
    for i in 0..<Int(n) {
      if tags[i] == EventSet.signalTag {
        while true {
          let s = wisp_signalfd_read(sigfd)
          if s == 0 { break }
          signal(s)
        }
      } else {
        ready(tags[i])
      }
    }
  }
}
