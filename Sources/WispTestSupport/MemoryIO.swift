// An in-memory datagram network for tests: a DatagramIO per endpoint, delivering into each
// other's queues in one process. Host only (test support).
//
// Each MemoryIO has a bounded queue and an eventfd that is readable while datagrams wait,
// so a RelayLoop watches it with epoll exactly as it watches a UDP socket. Datagrams to an
// address nobody attached are dropped and counted, as a full queue's are.
import CPosix
import WispCore
import WispOS

public final class MemoryNetwork {
  var ios: [MemoryIO] = []
  let mutex: UnsafeMutableRawPointer
  /// Datagrams delivered, and dropped (no such endpoint, or its queue full).
  public private(set) var delivered: UInt64 = 0
  public private(set) var dropped: UInt64 = 0

  public init() { mutex = wisp_mutex_new()! }
  deinit { wisp_mutex_free(mutex) }

  /// A new endpoint on the network.
  public func endpoint(_ local: Endpoint, capacity: Int = 4096) throws(Errno) -> MemoryIO {
    let io = try MemoryIO(local: local, network: self, capacity: capacity)
    wisp_mutex_lock(mutex)
    ios.append(io)
    wisp_mutex_unlock(mutex)
    return io
  }

  /// A new endpoint with a free port on `ip`, that accepts datagrams from `peer` only (an
  /// exit circuit's connected socket).
  func ephemeral(ip: UInt32, connectedTo peer: Endpoint) throws(Errno) -> MemoryIO {
    wisp_mutex_lock(mutex)
    nextPort = nextPort == 65535 ? 40000 : nextPort + 1
    let port = nextPort
    wisp_mutex_unlock(mutex)
    let io = try endpoint(Endpoint(ip: ip, port: port))
    io.peer = peer
    return io
  }
  var nextPort: UInt16 = 40000

  func remove(_ io: MemoryIO) {
    wisp_mutex_lock(mutex)
    ios.removeAll { $0 === io }
    wisp_mutex_unlock(mutex)
  }

  func deliver(_ bytes: UnsafeRawBufferPointer, from: Endpoint, to: Endpoint) -> Bool {
    wisp_mutex_lock(mutex)
    let target = ios.first { $0.local == to }
    wisp_mutex_unlock(mutex)
    let ok = target?.push(Array(bytes), from: from) ?? false
    wisp_mutex_lock(mutex)
    if ok { delivered &+= 1 } else { dropped &+= 1 }
    wisp_mutex_unlock(mutex)
    return ok
  }
}

public final class MemoryIO: DatagramIO, DatagramSocket {
  public let fd: Int32
  public let coalesces = false
  public let gsoSegments: UInt64 = 0
  public let groSegments: UInt64 = 0
  public let local: Endpoint
  unowned let network: MemoryNetwork
  let capacity: Int
  var queue: [(bytes: [UInt8], from: Endpoint)] = []
  var head = 0
  /// A connected endpoint takes datagrams from this peer only.
  var peer: Endpoint? = nil
  /// Exit circuits' endpoints, by their eventfd.
  var exits: [Int32: MemoryIO] = [:]
  let mutex: UnsafeMutableRawPointer

  init(local: Endpoint, network: MemoryNetwork, capacity: Int) throws(Errno) {
    fd = try retryingNegErrno { wisp_eventfd() }
    mutex = wisp_mutex_new()!
    self.local = local
    self.network = network
    self.capacity = capacity
  }

  deinit {
    _ = CPosix.close(fd)
    wisp_mutex_free(mutex)
  }

  func push(_ bytes: [UInt8], from: Endpoint) -> Bool {
    wisp_mutex_lock(mutex)
    defer { wisp_mutex_unlock(mutex) }
    if queue.count - head >= capacity { return false }
    if let peer, peer != from { return false }
    queue.append((bytes, from))
    wisp_eventfd_signal(fd)
    return true
  }

  // DatagramSocket: what a CircuitClient over this endpoint uses.
  @discardableResult
  public func send(_ p: UnsafeRawPointer, _ length: Int, to e: Endpoint) -> Bool {
    network.deliver(UnsafeRawBufferPointer(start: p, count: length), from: local, to: e)
  }

  public func receive(into p: UnsafeMutableRawPointer, capacity: Int) -> (Int, Endpoint)? {
    guard let d = next() else { return nil }
    let n = min(d.bytes.count, capacity)
    if n > 0 { d.bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: n) } }
    return (n, d.from)
  }

  public func wait(ms: Int32) -> Bool {
    wisp_mutex_lock(mutex)
    let waiting = head < queue.count
    wisp_mutex_unlock(mutex)
    return waiting || wisp_poll_in(fd, ms) > 0
  }

  public func close() {}

  /// Sends one datagram from this endpoint (what a test's client does).
  @discardableResult
  public func send(_ bytes: [UInt8], to: Endpoint) -> Bool {
    bytes.withUnsafeBytes { network.deliver($0, from: local, to: to) }
  }

  /// The next datagram waiting, if any (what a test's client reads).
  public func next() -> (bytes: [UInt8], from: Endpoint)? {
    wisp_mutex_lock(mutex)
    defer { wisp_mutex_unlock(mutex) }
    if head == queue.count { _ = wisp_eventfd_drain(fd); return nil }
    let d = queue[head]
    head += 1
    if head == queue.count { queue.removeAll(keepingCapacity: true); head = 0; _ = wisp_eventfd_drain(fd) }
    return d
  }

  /// Waits up to `ms` for a datagram.
  public func next(waitingMs ms: Int) -> (bytes: [UInt8], from: Endpoint)? {
    let deadline = wisp_monotonic_ns() + UInt64(ms) * 1_000_000
    while true {
      if let d = next() { return d }
      let now = wisp_monotonic_ns()
      if now >= deadline { return nil }
      _ = wisp_poll_in(fd, Int32((deadline - now) / 1_000_000 + 1))
    }
  }

  public func receive(_ slots: UnsafeMutablePointer<RxSlot>, count: Int) -> Int {
    var n = 0
    while n < count, let d = next() {
      let len = min(d.bytes.count, slots[n].capacity)
      if len > 0 { d.bytes.withUnsafeBytes { slots[n].base.copyMemory(from: $0.baseAddress!, byteCount: len) } }
      slots[n].length = len
      slots[n].truncated = d.bytes.count > slots[n].capacity
      slots[n].from = d.from
      slots[n].segment = 0
      n += 1
    }
    return n
  }

  public func send(_ entries: UnsafePointer<TxEntry>, count: Int, drops: inout DropCounters) {
    for i in 0..<count {
      let e = entries[i]
      if !network.deliver(UnsafeRawBufferPointer(start: e.bytes, count: e.length), from: local, to: e.to) {
        drops.count(.sendFailed)
      }
    }
  }

  public func openExit(to: Endpoint) -> Int32 {
    do throws(Errno) {
      let io = try network.ephemeral(ip: local.ip, connectedTo: to)
      exits[io.fd] = io
      return io.fd
    } catch {
      return -error.code
    }
  }

  public func closeExit(_ fd: Int32) {
    guard let io = exits.removeValue(forKey: fd) else { return }
    network.remove(io)
  }

  public func receiveExit(_ fd: Int32, _ slots: UnsafeMutablePointer<RxSlot>, count: Int) -> Int {
    exits[fd]?.receive(slots, count: count) ?? 0
  }

  public func sendExit(_ fd: Int32, _ p: UnsafeRawPointer, _ length: Int) -> Bool {
    guard let io = exits[fd], let peer = io.peer else { return false }
    return network.deliver(UnsafeRawBufferPointer(start: p, count: length), from: io.local, to: peer)
  }

  /// Exit sockets open (tests).
  public var exitCount: Int { exits.count }
}
