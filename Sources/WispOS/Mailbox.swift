// A bounded mailbox from any thread to one owning thread. Runs on host and device.
//
// The only way state crosses between a node's threads (control plane, shards): a
// fixed ring of messages under a mutex, and an eventfd the owner watches in its epoll
// set. `post` never blocks and never grows the ring: a full mailbox refuses the message
// (the sender counts it). The owner drains with `take` when the eventfd is readable.
// The lock is held only to move one message in or out, never while it is handled.
import CPosix

public final class Mailbox<Message> {
  /// The eventfd the owning thread watches: readable when messages wait.
  public let fd: Int32
  public let capacity: Int
  var slots: [Message?]
  var head = 0
  var count = 0
  var refusedCount: UInt64 = 0
  let mutex: UnsafeMutableRawPointer

  public init(capacity: Int) throws(Errno) {
    precondition(capacity > 0, "a mailbox holds at least one message")
    let e = try retryingNegErrno { wisp_eventfd() }
    guard let m = wisp_mutex_new() else { close(e); throw Errno(ENOMEM) }
    fd = e
    mutex = m
    self.capacity = capacity
    slots = [Message?](repeating: nil, count: capacity)
  }

  deinit {
    close(fd)
    wisp_mutex_free(mutex)
  }

  /// Queues `message` and wakes the owner; false (and counted) when the mailbox is full.
  @discardableResult
  public func post(_ message: Message) -> Bool {
    wisp_mutex_lock(mutex)
    if count == capacity {
      refusedCount &+= 1
      wisp_mutex_unlock(mutex)
      return false
    }
    slots[(head + count) % capacity] = message
    count += 1
    wisp_mutex_unlock(mutex)
    wisp_eventfd_signal(fd)
    return true
  }

  /// The oldest message, or nil when the mailbox is empty. Owner only.
  public func take() -> Message? {
    wisp_mutex_lock(mutex)
    defer { wisp_mutex_unlock(mutex) }
    if count == 0 { return nil }
    let m = slots[head]
    slots[head] = nil
    head = (head + 1) % capacity
    count -= 1
    return m
  }

  /// Clears the wake-up before draining (call once per readable event, then `take` until nil).
  public func acknowledge() { _ = wisp_eventfd_drain(fd) }

  /// (messages waiting, messages refused because the mailbox was full).
  public var occupancy: (waiting: Int, refused: UInt64) {
    wisp_mutex_lock(mutex)
    defer { wisp_mutex_unlock(mutex) }
    return (count, refusedCount)
  }
}
