// A fixed-capacity timer facility driven by the event loop. Runs on host and device.
//
// Timers are identified by small integers the owner chooses (an enum's raw
// value); the loop asks for the next deadline to size its epoll timeout and pops
// due timers after each wake-up. Periodic timers re-arm from their deadline, not
// from the time they fired, so they do not drift.
public struct TimerQueue {
  public struct Entry {
    public var id: Int
    public var deadline: UInt64
    public var period: UInt64
  }

  public let capacity: Int
  public private(set) var entries: [Entry]

  public init(capacity: Int = Defaults.timers) {
    self.capacity = capacity
    entries = []
    entries.reserveCapacity(capacity)
  }

  /// Arms (or re-arms) timer `id` at `deadline` ns, repeating every `period` ns if non-zero.
  /// Returns false when the queue is full.
  @discardableResult
  public mutating func schedule(_ id: Int, at deadline: UInt64, every period: UInt64 = 0) -> Bool {
    for i in 0..<entries.count where entries[i].id == id {
      entries[i].deadline = deadline
      entries[i].period = period
      return true
    }
    if entries.count == capacity { return false }
    entries.append(Entry(id: id, deadline: deadline, period: period))
    return true
  }

  public mutating func cancel(_ id: Int) {
    for i in 0..<entries.count where entries[i].id == id {
      entries.remove(at: i)
      return
    }
  }

  /// The earliest deadline, or nil.
  public var nextDeadline: UInt64? {
    var best: UInt64? = nil
    for e in entries where best == nil || e.deadline < best! { best = e.deadline }
    return best
  }

  /// Milliseconds an epoll wait may sleep from `now` (-1 = forever), rounded up.
  public func timeoutMs(now: UInt64) -> Int32 {
    guard let d = nextDeadline else { return -1 }
    if d <= now { return 0 }
    return Int32(min((d - now).saturatingAdd(999_999) / 1_000_000, 60_000))
  }

  /// The id of one due timer (earliest first), re-armed or removed; nil when none is due.
  public mutating func popDue(now: UInt64) -> Int? {
    var best = -1
    for i in 0..<entries.count where entries[i].deadline <= now {
      if best < 0 || entries[i].deadline < entries[best].deadline { best = i }
    }
    if best < 0 { return nil }
    let e = entries[best]
    if e.period > 0 {
      var next = e.deadline.saturatingAdd(e.period)
      if next <= now { next = now.saturatingAdd(e.period) }  // fell behind: skip missed periods
      entries[best].deadline = next
    } else {
      entries.remove(at: best)
    }
    return e.id
  }
}
