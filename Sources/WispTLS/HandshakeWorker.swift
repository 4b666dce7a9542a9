// The handshake worker: the thread that runs the session table's DTLS handshakes, so that
// the forwarding thread (shard 0) never runs an `mbedtls_ssl_handshake` step. Runs on host
// and device.
//
// The table keeps every cheap check (record classification, the stateless cookie, the
// admission limits) and hands the worker only admitted work, each a copy:
//   - `serve`: a cookie-verified ClientHello a server handshake starts with;
//   - `dial`: a client handshake with a configured node (first dial, redial or rekey),
//     resuming a saved session if it has one;
//   - `input`: a later datagram of a handshake in progress;
//   - `cancel`: the table no longer wants that handshake (its link went).
// The worker owns each handshake's mbedTLS context, its own DRBG and its own two
// configurations (server and client: tickets, the verified-certificate cache, a twin of
// the table's cookie secret), sends the handshake's flights itself (`sendDirect`, a
// `sendto` on the shard's UDP socket; else back through the shard as `.flight`), and runs
// the retransmission timers and the half-open limit. A handshake that ends goes back to
// the table as `.done`: the established `DTLSSession` (from then on only the forwarding
// thread touches it: `DTLSSession.adopt`), or why it failed.
//
// `HandshakeWorker.Mode.inline` runs the same code on the caller's thread, with the
// caller's clock (unit tests drive the table on a fake clock); `start` moves it to its
// own thread with a bounded inbox: a full inbox refuses work (`worker_busy`), nothing waits.
import CMbedTLS
import CPosix
import WispCore
import WispOS

/// Work for the handshake worker (SessionTable → worker).
public enum HandshakeRequest {
  case serve(token: UInt64, peer: Endpoint, hello: [UInt8])
  case dial(token: UInt64, peer: Endpoint, resume: SavedSession?)
  case input(token: UInt64, datagram: [UInt8])
  case cancel(token: UInt64)
  case stop
}

/// What the worker hands back to the session table (worker → shard 0's mailbox).
public enum HandshakeResult {
  /// A datagram of a handshake flight for the table to send (when the worker cannot).
  case flight(peer: Endpoint, datagram: [UInt8])
  /// Dial `token`'s first ClientHello carries `random` (reported before it is sent): the
  /// table breaks a crossed dial with it.
  case dialed(token: UInt64, peer: Endpoint, random: [UInt8])
  /// Handshake `token` with `peer` ended: `session` established, or `failure`.
  case done(token: UInt64, peer: Endpoint, session: DTLSSession?, failure: TLSError?)
}

public final class HandshakeWorker {
  /// One handshake in progress.
  final class Job {
    let token: UInt64
    let peer: Endpoint
    let session: DTLSSession
    /// A dial whose ClientHello random the table has not been told yet.
    var reportsHello = false
    init(token: UInt64, peer: Endpoint, session: DTLSSession) {
      self.token = token
      self.peer = peer
      self.session = session
    }
  }

  let server: DTLSConfig
  let client: DTLSConfig
  let random: RandomGenerator
  let halfOpenTimeoutNs: UInt64
  /// Handshakes at once (the table never asks for more than its capacity; cancels lost to a
  /// full inbox may leave a few more until they time out).
  let capacity: Int
  var jobs: [UInt64: Job] = [:]
  var now: () -> UInt64
  /// Where results go: the table itself (inline), or shard 0's mailbox (threaded).
  public var post: (HandshakeResult) -> Bool = { _ in false }
  /// Sends a flight datagram itself (nil: posts it back as `.flight`).
  public var sendDirect: ((UnsafeRawBufferPointer, Endpoint) -> Bool)? = nil
  /// The inbox once the worker runs on its own thread (nil: inline).
  public private(set) var inbox: Mailbox<HandshakeRequest>? = nil
  public private(set) var thread: UInt = 0
  var running = false
  /// Figures written by the worker thread, read by anyone (relaxed atomics): handshake
  /// steps run, nanoseconds spent in them, results the table's mailbox refused, work
  /// refused because `capacity` handshakes were running.
  let figures = UnsafeMutablePointer<UInt64>.allocate(capacity: 4)
  /// Requests the inbox holds: a handshake is a few datagrams, so this is tens of handshakes.
  public static let inboxCapacity = 128

  init(server: DTLSConfig, client: DTLSConfig, random: RandomGenerator, halfOpenTimeoutNs: UInt64, capacity: Int,
       now: @escaping () -> UInt64) {
    self.server = server
    self.client = client
    self.random = random
    self.halfOpenTimeoutNs = halfOpenTimeoutNs
    self.capacity = capacity
    self.now = now
    figures.initialize(repeating: 0, count: 4)
  }

  deinit { figures.deallocate() }

  public var steps: UInt64 { wisp_atomic_load_u64(figures) }
  public var busyNs: UInt64 { wisp_atomic_load_u64(figures + 1) }
  public var resultsLost: UInt64 { wisp_atomic_load_u64(figures + 2) }
  public var refusedFull: UInt64 { wisp_atomic_load_u64(figures + 3) }
  func bump(_ i: Int, _ by: UInt64 = 1) { wisp_atomic_store_u64(figures + i, figures[i] &+ by) }  // one writer

  /// Hands `r` to the worker: run at once (inline) or queued; false when the inbox is full.
  @discardableResult
  public func submit(_ r: HandshakeRequest) -> Bool {
    if let inbox { return inbox.post(r) }
    handle(r)
    return true
  }

  /// Moves the worker to a thread of its own (its clock becomes the monotonic clock):
  /// 0, or -errno. Results then go through `post`, which must be safe from that thread.
  public func start() -> Int32 {
    do throws(Errno) { inbox = try Mailbox(capacity: HandshakeWorker.inboxCapacity) } catch { return -error.code }
    now = { wisp_monotonic_ns() }
    running = true
    switch Threads.spawn({ [self] in run() }) {
    case .success(let h): thread = h; return 0
    case .failure(let e): inbox = nil; running = false; return -e.code
    }
  }

  /// Queues work without running it (tests: a worker that never catches up).
  func queueOnly(capacity: Int) throws(Errno) { inbox = try Mailbox(capacity: capacity) }

  /// Ends the thread (if one runs) and waits for it; in-progress handshakes are dropped.
  public func stop() {
    guard let inbox, thread != 0 else { return }
    for _ in 0..<200 where !inbox.post(.stop) { _ = wisp_poll_in(-1, 5) }  // at most 1 s
    Threads.join(thread)
    thread = 0
  }

  func run() {
    while running {
      let t = wisp_monotonic_ns()
      tick(nowNs: t)
      var wait: UInt64 = 1000
      for (_, j) in jobs {
        if let d = j.session.deadlineNs { wait = min(wait, d > t ? (d - t) / 1_000_000 + 1 : 0) }
      }
      // At least 1 ms: a timer mbedTLS does not re-arm cannot make this thread spin.
      if let inbox { _ = wisp_poll_in(inbox.fd, Int32(max(wait, 1))) }
      guard let inbox else { return }
      inbox.acknowledge()
      while running, let r = inbox.take() { handle(r) }
    }
    jobs = [:]
  }

  /// Timers: retransmission (mbedTLS's), and the half-open limit.
  public func tick(nowNs: UInt64) {
    if jobs.isEmpty { return }
    var ended: [UInt64] = []
    for (token, j) in jobs {
      let s = j.session
      if let d = s.deadlineNs, d <= nowNs { timed { s.handleTimeout() } }
      if s.state == .handshaking && nowNs &- s.createdNs > halfOpenTimeoutNs { s.failByTimeout() }
      if s.state != .handshaking { ended.append(token) }
    }
    for t in ended { finish(t) }
  }

  func handle(_ r: HandshakeRequest) {
    switch r {
    case .serve(let token, let peer, let hello):
      guard let j = begin(token, peer, server) else { return }
      hello.withUnsafeBytes { d in timed { j.session.input(d) } }
      settle(j)
    case .dial(let token, let peer, let saved):
      guard let j = begin(token, peer, client) else { return }
      j.reportsHello = true
      if let saved { try? j.session.resume(saved) }
      timed { j.session.step() }  // the first ClientHello
      settle(j)
    case .input(let token, let d):
      guard let j = jobs[token] else { return }  // ended or cancelled meanwhile
      d.withUnsafeBytes { b in timed { j.session.input(b) } }
      settle(j)
    case .cancel(let token):
      jobs[token] = nil
    case .stop:
      running = false
    }
  }

  /// A new handshake's session, or nil (the failure already reported).
  func begin(_ token: UInt64, _ peer: Endpoint, _ config: DTLSConfig) -> Job? {
    if jobs.count >= capacity {
      bump(3)
      report(.done(token: token, peer: peer, session: nil, failure: .mbedtls("handshake worker full", -1)))
      return nil
    }
    let s: DTLSSession
    do {
      s = try makeSession(config, peer, token)
    } catch {
      report(.done(token: token, peer: peer, session: nil, failure: error))
      return nil
    }
    s.phase = .handshakeOnly
    let j = Job(token: token, peer: peer, session: s)
    jobs[token] = j
    return j
  }

  func makeSession(_ config: DTLSConfig, _ peer: Endpoint, _ token: UInt64) throws(TLSError) -> DTLSSession {
    // The sessions never outlive the worker while it drives them (the table re-binds them
    // when it adopts them): an unretained reference, no cycle.
    let me = Unmanaged.passUnretained(self)
    let now = self.now
    return try DTLSSession(config: config, peerIP: peer.ip, peerPort: peer.port, now: { now() },
                           send: { d in me.takeUnretainedValue().emit(d, to: peer, token: token) },
                           deliver: { _ in })  // records are read only after the table adopts it
  }

  func emit(_ d: UnsafeRawBufferPointer, to peer: Endpoint, token: UInt64) -> Bool {
    if let j = jobs[token], j.reportsHello, let r = HelloVerify.random(d) {
      j.reportsHello = false
      report(.dialed(token: token, peer: peer, random: r))
    }
    if let sendDirect { return sendDirect(d, peer) }
    return report(.flight(peer: peer, datagram: Array(d)))
  }

  func settle(_ j: Job) {
    if j.session.state != .handshaking { finish(j.token) }
  }

  /// Hands an ended handshake back to the table (the session leaves this thread).
  func finish(_ token: UInt64) {
    guard let j = jobs.removeValue(forKey: token) else { return }
    let s = j.session
    if s.state == .established {
      report(.done(token: token, peer: j.peer, session: s, failure: nil))
    } else {
      report(.done(token: token, peer: j.peer, session: nil, failure: s.failure ?? .handshakeTimeout))
    }
  }

  @discardableResult
  func report(_ r: HandshakeResult) -> Bool {
    if post(r) { return true }
    bump(2)
    return false
  }

  /// Runs one handshake step, counting it and the time it took (for status and the bench).
  func timed(_ body: () -> Void) {
    let t = wisp_monotonic_ns()
    body()
    bump(0)
    bump(1, wisp_monotonic_ns() &- t)
  }
}
