// One listening stream socket of the control plane (the status socket, the metrics
// endpoint), served on the control loop without ever blocking it. Runs on host and device.
//
//  1. accept: every connection is non-blocking and takes one of `maxConnections` slots,
//     with a deadline (`deadlineNs`) from its accept. With every slot taken, the oldest
//     connection still waiting for its request is closed to make room (idle clients
//     cannot keep the owner out), or, when every slot is sending a reply, the new one is
//     closed at once; either way counted `refused`;
//  2. read: whenever epoll says the connection is readable, one non-blocking read; the
//     request is whole when `isComplete` says so, at `maxRequest` bytes, or when the
//     client half-closes;
//  3. reply: `reply(request)` is computed once and written as far as the socket takes it;
//     the rest waits for epoll to report the connection writable;
//  4. close: after the reply, on an error, or at the deadline (counted `expired`) — an
//     idle or slow client holds one slot for at most `deadlineNs` and never the loop.
//
// Connection k is watched under tag `baseTag + k`; the listener under `listenTag`.
import CPosix
import WispCore
import WispOS

public final class RequestServer {
  // MARK: implementation constants (tunable)
  public static let maxConnections = 8            // connections served at once per socket
  public static let deadlineNs: UInt64 = 1_000_000_000  // a connection's whole life: 1 s
  public static let maxRequest = 1024             // bytes read of a request
  static let acceptsPerWake = 16                  // accepts per wake-up (the rest wait in the backlog)

  struct Connection {
    var fd: Int32 = -1
    var deadline: UInt64 = 0
    var request: [UInt8] = []
    var reply: [UInt8] = []
    var sent = 0
    var replying = false
  }

  public let listener: Int32
  public let listenTag: UInt64
  public let baseTag: UInt64
  let isComplete: ([UInt8]) -> Bool
  let reply: ([UInt8]) -> String
  let control: ControlLoop
  var slots = [Connection](repeating: Connection(), count: RequestServer.maxConnections)
  /// Requests answered in full.
  public private(set) var served: UInt64 = 0
  /// Connections closed because every slot was taken (the oldest idle one, or the new one).
  public private(set) var refused: UInt64 = 0
  /// Connections closed at their deadline before the reply was out.
  public private(set) var expired: UInt64 = 0

  /// Serves `listener` (already watched by `control` under `listenTag`).
  public init(listener: Int32, listenTag: UInt64, baseTag: UInt64, control: ControlLoop,
              isComplete: @escaping ([UInt8]) -> Bool, reply: @escaping ([UInt8]) -> String) {
    self.listener = listener
    self.listenTag = listenTag
    self.baseTag = baseTag
    self.control = control
    self.isComplete = isComplete
    self.reply = reply
  }

  /// Connections open now.
  public var open: Int { slots.reduce(0) { $0 + ($1.fd >= 0 ? 1 : 0) } }

  /// Whether `tag` is this server's (the listener or one of its connections).
  public func owns(_ tag: UInt64) -> Bool {
    tag == listenTag || (tag >= baseTag && tag < baseTag + UInt64(RequestServer.maxConnections))
  }

  /// A readiness report for one of this server's tags.
  public func handle(_ tag: UInt64, now: UInt64) {
    if tag == listenTag { acceptWaiting(now: now); return }
    let k = Int(tag - baseTag)
    guard slots[k].fd >= 0 else { return }
    if slots[k].replying { send(k) } else { receive(k) }
  }

  /// The earliest deadline of an open connection, or nil.
  public var nextDeadline: UInt64? {
    var best: UInt64? = nil
    for c in slots where c.fd >= 0 && (best == nil || c.deadline < best!) { best = c.deadline }
    return best
  }

  /// Closes every connection whose deadline has passed.
  public func expire(now: UInt64) {
    for k in 0..<slots.count where slots[k].fd >= 0 && slots[k].deadline <= now {
      expired &+= 1
      finish(k)
    }
  }

  /// Closes every connection (shutdown).
  public func closeAll() {
    for k in 0..<slots.count where slots[k].fd >= 0 { finish(k) }
  }

  func acceptWaiting(now: UInt64) {
    for _ in 0..<RequestServer.acceptsPerWake {
      let fd = wisp_accept(listener)
      if fd < 0 { return }  // EAGAIN: none left (other errors: the next wake-up retries)
      var free = slots.firstIndex(where: { $0.fd < 0 })
      if free == nil, let oldest = oldestWaiting() {
        refused &+= 1
        finish(oldest)
        free = oldest
      }
      guard let k = free else {
        refused &+= 1
        close(fd)
        continue
      }
      do throws(Errno) {
        try control.watch(fd, tag: baseTag + UInt64(k), writable: false, modify: false)
      } catch {
        refused &+= 1
        close(fd)
        continue
      }
      var c = Connection()
      c.fd = fd
      c.deadline = now &+ RequestServer.deadlineNs
      c.request.reserveCapacity(128)
      slots[k] = c
    }
  }

  /// The open connection that has waited longest for its request, or nil.
  func oldestWaiting() -> Int? {
    var best: Int? = nil
    for k in 0..<slots.count where slots[k].fd >= 0 && !slots[k].replying {
      if best == nil || slots[k].deadline < slots[best!].deadline { best = k }
    }
    return best
  }

  func receive(_ k: Int) {
    var buf = [UInt8](repeating: 0, count: RequestServer.maxRequest - slots[k].request.count)
    let n = buf.withUnsafeMutableBytes { wisp_stream_read(slots[k].fd, $0.baseAddress, $0.count) }
    if n == -Int(EAGAIN) { return }
    if n < 0 { finish(k); return }
    slots[k].request.append(contentsOf: buf[0..<Int(n)])
    // Whole: as the protocol says, full, or the client has sent everything (half-close).
    guard n == 0 || slots[k].request.count >= RequestServer.maxRequest || isComplete(slots[k].request) else { return }
    var text = reply(slots[k].request)
    slots[k].reply = text.withUTF8 { Array($0) }
    slots[k].replying = true
    send(k)
    if slots[k].fd >= 0 && slots[k].replying {
      // The socket took part of the reply: wait until it can take more.
      do throws(Errno) {
        try control.watch(slots[k].fd, tag: baseTag + UInt64(k), writable: true, modify: true)
      } catch {
        finish(k)
      }
    }
  }

  func send(_ k: Int) {
    while slots[k].sent < slots[k].reply.count {
      let n = slots[k].reply.withUnsafeBytes { b in
        wisp_stream_write(slots[k].fd, b.baseAddress! + slots[k].sent, b.count - slots[k].sent)
      }
      if n == -Int(EAGAIN) { return }
      if n <= 0 { finish(k); return }
      slots[k].sent += Int(n)
    }
    served &+= 1
    finish(k)
  }

  func finish(_ k: Int) {
    control.unwatch(slots[k].fd)
    close(slots[k].fd)
    slots[k] = Connection()
  }
}
