// The node's DTLS sessions, one per peer address, inside the relay loop. Runs on host and device.
//
// Every datagram on the node's port whose first byte is a DTLS content type comes here
// (RelayLoop → LinkLayer.receive); every frame the node sends is offered to `seal`. In order:
//   1. classify the datagram by its first record: a ClientHello (epoch 0), other handshake
//      traffic, or records of an established session;
//   2. ClientHello without a valid cookie: answered statelessly with a HelloVerifyRequest no
//      larger than the request (HelloVerify.swift), counted as unverified bytes in and out;
//   3. ClientHello with a valid cookie: admission — per-source token bucket, sessions per
//      source address (`perSourceSessions`), node-wide handshake bucket and half-open cap
//      (these three skipped for configured node peers), table capacity (a configured peer
//      may evict the least recently active client); each
//      refusal counted by reason. Only now is the handshake handed to the handshake
//      worker (HandshakeWorker.swift: its own thread in a node), a copy of the ClientHello
//      through a bounded mailbox — a full one refuses it (`worker_busy`) — and only there
//      is a server session (mbedTLS buffers) allocated. From an address that already has
//      a session it starts a *pending* handshake next to it: a rekey or a reconnection;
//   4. handshake records of a handshake on the worker go there (a copy), handshake
//      records of an established session (a retransmitted Finished) and its records to
//      its session; a record that fails there (bad MAC) right after a rekey is tried on the
//      previous session, kept `rekeyGraceNs` for in-flight traffic; records that arrive for
//      a session the worker has finished but not yet handed over are held (a few) until
//      it arrives (`finish`), which also hands over the sessions this node dialled;
//   5. plaintext frames go back to the relay loop (`RelayLoop.handleFrame`) as if they had
//      arrived from the peer's address; frames the loop sends to a peer with an established
//      session are written as one record each (`seal`), never in the clear;
//   6. `poll` (every 50 ms): the established sessions' timers, a backstop for handshakes
//      the worker never answered, connecting
//      to configured node peers (the peer with the lower fingerprint initiates at once, the
//      other after `fallbackConnectNs`; crossed dials: `keepsOwnDial`), rekeying initiated sessions after a byte or time
//      limit (by resumption: one round trip), and removing failed or closed sessions;
//   7. `shutdown`: close_notify to every peer.
// Capacity is fixed (`SessionLimits.capacity`); mbedTLS allocates a session's record buffers
// when the session is admitted, never per packet. The forwarding thread never runs a
// handshake step: the worker does, with its own DRBG and configurations; this thread keeps
// its own DRBG (dial jitter) and its own cookie context (SESSIONS.md, "Threads").
import CMbedTLS
import CPosix
import WispCore
import WispOS

/// Limits of the session table (config keys in CONFIG.md).
public struct SessionLimits {
  /// Sessions at once, established and half-open.
  public var capacity = 64
  /// Server handshakes in progress at once (cookie-verified, not yet established).
  public var halfOpen = 16
  /// New server handshakes per second, node-wide (each costs ≈ 3–4 ms of CPU on x86_64).
  public var handshakesPerSecond: UInt64 = 50
  /// New server handshakes per second from one source address (burst twice that).
  public var perSourcePerSecond: UInt64 = 2
  /// Sessions (established and half-open) one IPv4 address may hold at once; configured
  /// node peers are exempt (config `sessions_per_source`).
  public var perSourceSessions = 16
  /// A half-open handshake older than this is dropped.
  public var halfOpenTimeoutNs: UInt64 = 10_000_000_000
  /// An initiated session is rekeyed after this many application bytes either way…
  public var rekeyBytes: UInt64 = 1 << 34
  /// …or after this long.
  public var rekeyAfterNs: UInt64 = 3600 * 1_000_000_000
  /// How long the previous session is kept for records in flight after a rekey.
  public var rekeyGraceNs: UInt64 = 5_000_000_000
  /// Plain wisp frames only from exits: every other peer must use a session.
  public var required = false
  public init() {}
}

/// A node this node keeps a session with (config `peer = NAME=ADDR:PORT=FINGERPRINT`).
public struct LinkPeer {
  public var name: String
  public var endpoint: Endpoint
  public var fingerprint: Fingerprint
  public init(name: String, endpoint: Endpoint, fingerprint: Fingerprint) {
    self.name = name
    self.endpoint = endpoint
    self.fingerprint = fingerprint
  }
}

/// Session counters for status and metrics. Refusals and drops are security-relevant.
public struct SessionCounters {
  public var helloVerifyRequests: UInt64 = 0
  public var unverifiedBytesIn: UInt64 = 0
  public var unverifiedBytesOut: UInt64 = 0
  public var handshakesAdmitted: UInt64 = 0
  public var handshakesFull: UInt64 = 0
  public var handshakesResumed: UInt64 = 0
  public var rekeys: UInt64 = 0
  public var closeNotifySent: UInt64 = 0
  public var closedByPeer: UInt64 = 0
  /// Hellos of a peer that dialled while this end was dialling it, ignored because this
  /// end's dial won the tie-break (the peer serves it instead).
  public var crossedDialsKept: UInt64 = 0
  public var recordsSealed: UInt64 = 0
  public var recordsOpened: UInt64 = 0
  /// Refusals and drops, by reason (`SessionRefusal`).
  public var refusals = [UInt64](repeating: 0, count: SessionRefusal.allCases.count)
  public init() {}
  public subscript(_ r: SessionRefusal) -> UInt64 { refusals[r.rawValue] }

  /// Adds another shard's counters (status sums the shards).
  public mutating func add(_ o: SessionCounters) {
    helloVerifyRequests &+= o.helloVerifyRequests
    unverifiedBytesIn &+= o.unverifiedBytesIn
    unverifiedBytesOut &+= o.unverifiedBytesOut
    handshakesAdmitted &+= o.handshakesAdmitted
    handshakesFull &+= o.handshakesFull
    handshakesResumed &+= o.handshakesResumed
    rekeys &+= o.rekeys
    closeNotifySent &+= o.closeNotifySent
    closedByPeer &+= o.closedByPeer
    crossedDialsKept &+= o.crossedDialsKept
    recordsSealed &+= o.recordsSealed
    recordsOpened &+= o.recordsOpened
    for i in 0..<refusals.count { refusals[i] &+= o.refusals[i] }
  }

  /// Counts one refusal.
  public mutating func refuse(_ r: SessionRefusal) { refusals[r.rawValue] &+= 1 }

  /// "reason=n ..." for the non-zero refusals ("none" without any).
  public var refusalSummary: String {
    var s = ""
    for r in SessionRefusal.allCases where refusals[r.rawValue] > 0 { s += (s.isEmpty ? "" : " ") + "\(r.name)=\(refusals[r.rawValue])" }
    return s.isEmpty ? "none" : s
  }
}

/// Why the session layer refused a handshake or dropped a datagram.
public enum SessionRefusal: Int, CaseIterable {
  case sourceRate = 0    // too many handshakes from one address
  case handshakeRate     // node-wide handshake budget spent
  case halfOpenFull      // too many handshakes in progress
  case tableFull         // no free session slot
  case badHello          // a ClientHello that does not parse, or too short to answer
  case noSession         // a DTLS record from an address with no session
  case plainOnSession    // a plain frame from a peer that has a session (spoofing?)
  case plainRefused      // a plain frame while sessions are required
  case notPinned         // a node peer's key is not the pinned one
  case badCertificate    // not P-256, not validly self-signed
  case protocolVersion   // not DTLS 1.2
  case noSharedSuite     // CBC or other suites only
  case handshakeTimeout  // retransmissions ran out, or half-open too long
  case idleTimeout       // no record within the read timeout
  case peerAlert         // the peer refused us
  case failed            // any other mbedTLS failure
  case tooLarge          // a frame larger than a record can carry
  case sourceFull        // the source address holds its share of sessions already
  case workerBusy        // the handshake worker's inbox was full

  public var name: StaticString {
    switch self {
    case .sourceRate: return "source_rate"
    case .handshakeRate: return "handshake_rate"
    case .halfOpenFull: return "half_open_full"
    case .tableFull: return "table_full"
    case .badHello: return "bad_hello"
    case .noSession: return "no_session"
    case .plainOnSession: return "plain_on_session"
    case .plainRefused: return "plain_refused"
    case .notPinned: return "not_pinned"
    case .badCertificate: return "bad_certificate"
    case .protocolVersion: return "protocol_version"
    case .noSharedSuite: return "no_shared_suite"
    case .handshakeTimeout: return "handshake_timeout"
    case .idleTimeout: return "idle_timeout"
    case .peerAlert: return "peer_alert"
    case .failed: return "failed"
    case .tooLarge: return "too_large"
    case .sourceFull: return "source_full"
    case .workerBusy: return "worker_busy"
    }
  }

  static func of(_ e: TLSError) -> SessionRefusal {
    switch e {
    case .peerNotPinned: return .notPinned
    case .peerCertificateInvalid: return .badCertificate
    case .handshakeTimeout: return .handshakeTimeout
    case .idleTimeout: return .idleTimeout
    case .peerAlert: return .peerAlert
    case .mbedtls(_, let code):
      if code == WISP_ERR_SSL_BAD_PROTOCOL_VERSION { return .protocolVersion }
      if code == WISP_ERR_SSL_NO_CIPHER_CHOSEN { return .noSharedSuite }
      if code == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED { return .badCertificate }
      return .failed
    }
  }
}

/// One peer address and its sessions.
public final class Link {
  public let endpoint: Endpoint
  public let role: DTLSRole
  /// The current session, once the worker handed it over: frames are sealed in it.
  var current: DTLSSession? = nil
  /// The handshake on the worker for this peer (its token; 0: none): the first one, or a
  /// new one next to `current` (rekey or reconnection, "pending").
  var work: UInt64 = 0
  /// Whether `work` counts as half-open (a server's first handshake, or a pending one).
  var workHalfOpen = false
  var workStartedNs: UInt64 = 0
  /// Records that came for a session the worker has not handed over yet: at most
  /// `heldLimit` for a first session (a stranger's), `heldLimitRekey` next to an established
  /// one (a node link under traffic while the peer already seals under the new keys).
  var held: [[UInt8]] = []
  static let heldLimit = 8
  static let heldLimitRekey = 128
  /// The session before the last rekey, for records still in flight, until `previousUntilNs`.
  var previous: DTLSSession? = nil
  var previousUntilNs: UInt64 = 0
  /// Index in the configured peers (a node link), or nil (a client).
  public internal(set) var peer: Int?
  public internal(set) var lastActiveNs: UInt64
  var wasEstablished = false
  /// The random of this link's latest dial's ClientHello (the crossed-dial tie-break).
  var helloRandom: [UInt8]? = nil
  /// A rekey the worker refused is tried again after this.
  var nextRekeyNs: UInt64 = 0

  init(endpoint: Endpoint, role: DTLSRole, peer: Int?, nowNs: UInt64) {
    self.endpoint = endpoint
    self.role = role
    self.peer = peer
    lastActiveNs = nowNs
  }

  public var established: Bool { current?.state == .established }

  /// The established session (only for `established` links).
  public var session: DTLSSession {
    guard let current else { preconditionFailure("no session before the handshake ends") }
    return current
  }

  /// Whether a handshake this node serves for the peer is on the worker: a pending one, or
  /// a server's first.
  var servingHandshake: Bool { work != 0 && (current != nil || role == .server) }
}

public final class SessionTable: LinkLayer {
  public let limits: SessionLimits
  public private(set) var counters = SessionCounters()
  public private(set) var links: [Link] = []
  public private(set) var peers: [LinkPeer]
  /// This thread's cookie context (the worker's server configuration has a twin).
  let cookies: Cookies
  /// Where handshakes run (inline until `startWorker`).
  public let worker: HandshakeWorker
  var nextToken: UInt64 = 1
  /// Results of an inline worker, applied once the call that caused them returns.
  var inlineResults: [HandshakeResult] = []
  /// Sends queued records out at once (a result applied outside the receive path).
  public var flushSends: (() -> Void)? = nil
  let own: Fingerprint
  let random: RandomGenerator
  let now: () -> UInt64
  /// The time the adopted sessions' timers and the frames they deliver go by: that of the
  /// batch `receive` is called for, of the last `poll`, of a `finish` (never going back).
  /// Read, not asked for: mbedTLS reads its timer several times per record.
  public let clock: SessionClock
  /// Frames delivered by sessions, and records they write (set by `attach`; tests set their own).
  public var deliverFrame: ((UnsafeRawBufferPointer, Endpoint) -> Void)? = nil
  public var sendDatagram: ((UnsafeRawBufferPointer, Endpoint) -> Bool)? = nil
  /// Exit destinations (plain UDP, never sessions).
  public var isExit: (Endpoint) -> Bool = { _ in false }
  var index: [Endpoint: Int] = [:]
  /// Links per IPv4 address (at most `links.count` entries: an address with none has none).
  var perSource: [UInt64: Int] = [:]
  var establishedCount = 0 { didSet { updateGate() } }
  var halfOpenCount = 0
  /// The attached loop's gate: cleared while `admitsPlain` and `seal` pass every frame.
  var gate: LinkGate? = nil
  // Admission buckets (TokenBucket.swift, in handshakes): node-wide (burst one second's
  // worth) and per source address (hashed into fixed slots, burst two seconds' worth).
  let handshakeRate: TokenRate
  var handshakeLevel = BucketLevel()
  let sourceRate: TokenRate
  var sourceKeys: [UInt64]
  var sourceLevels: [BucketLevel]
  static let sourceSlots = 1024
  /// When each configured peer may be dialled next.
  var nextDialNs: [UInt64]
  /// An initiator waits this long for the peer with the lower fingerprint to call first.
  public static let fallbackConnectNs: UInt64 = 3_000_000_000
  /// A link that ended is dialled again after this (+ the fallback for the higher
  /// fingerprint, + up to 1 s of jitter): the lower fingerprint, which holds the ticket,
  /// calls first and resumes, also when the other end has just restarted (its own first
  /// dial waits `fallbackConnectNs`).
  public static let redialNs: UInt64 = 1_000_000_000
  let answer = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 16)
  let tidBuffer = UnsafeMutableRawPointer.allocate(byteCount: 24, alignment: 8)

  /// Keeps the session of each node link this node dials across restarts (a 0600 file per
  /// peer, written when a link comes up or is rekeyed; nil: memory only).
  public var saveTicket: ((Fingerprint, [UInt8]) -> Void)? = nil
  public var loadTicket: ((Fingerprint) -> [UInt8]?)? = nil

  /// A table serving clients and `peers` with `identity`; `prefersChaCha` from the board.
  /// `ticketSeed`: 32 secret bytes from the state directory, so that tickets this node
  /// issued survive its restart (SessionTickets.swift).
  public init(identity: Identity, random: RandomGenerator, peers: [LinkPeer], limits: SessionLimits,
              prefersChaCha: Bool, mtu: UInt16 = UInt16(Wire.maxDatagram), ticketSeed: [UInt8]? = nil,
              now: @escaping () -> UInt64) throws(TLSError) {
    func options(_ role: DTLSRole) -> DTLSOptions {
      var o = DTLSOptions(role: role, pinned: peers.map { $0.fingerprint })
      o.prefersChaCha = prefersChaCha
      o.mtu = mtu
      o.handshakeTimeoutMaxMs = 4000  // 1 + 2 + 4 s, then a half-open handshake is gone
      return o
    }
    var so = options(.server)
    so.ticketSeed = ticketSeed
    so.acceptClients = true
    let co = options(.client)
    // The worker's: its own DRBG (a CTR_DRBG is one thread's), configurations and cookie twin.
    let workerRandom = try RandomGenerator()
    cookies = try Cookies(random: random, lifetimeSeconds: DTLSConfig.cookieLifetimeSeconds)
    let server = try DTLSConfig(options: so, identity: identity, random: workerRandom, cookies: try cookies.twin())
    let client = try DTLSConfig(options: co, identity: identity, random: workerRandom)
    worker = HandshakeWorker(server: server, client: client, random: workerRandom, halfOpenTimeoutNs: limits.halfOpenTimeoutNs,
                             capacity: limits.capacity + limits.halfOpen, now: now)
    own = identity.fingerprint
    self.random = random
    self.peers = peers
    self.limits = limits
    self.now = now
    let t = now()
    clock = SessionClock(ns: t)
    handshakeRate = TokenRate(perSecond: limits.handshakesPerSecond, burst: limits.handshakesPerSecond)
    sourceRate = TokenRate(perSecond: limits.perSourcePerSecond, burst: 2 * limits.perSourcePerSecond)
    sourceKeys = [UInt64](repeating: 0, count: SessionTable.sourceSlots)
    sourceLevels = [BucketLevel](repeating: BucketLevel(), count: SessionTable.sourceSlots)
    nextDialNs = [UInt64](repeating: 0, count: peers.count)
    links.reserveCapacity(limits.capacity)
    index.reserveCapacity(limits.capacity * 2)
    for i in 0..<peers.count { nextDialNs[i] = t + dialDelay(i) }
    // Inline until `startWorker`: results come back here, flights go out as records do.
    let me = Unmanaged.passUnretained(self)
    worker.post = { r in me.takeUnretainedValue().inlineResults.append(r); return true }
    worker.sendDirect = { d, to in me.takeUnretainedValue().sendDatagram?(d, to) ?? false }
  }

  /// Moves the handshakes to a thread of their own. `post` hands a result to the thread
  /// that owns this table (shard 0's mailbox; the shard calls `finish`); `sendFd`: the
  /// UDP socket the worker sends flights on itself (nil: flights come back through `post`).
  /// 0, or -errno. `shutdown` stops the thread.
  public func startWorker(post: @escaping (HandshakeResult) -> Bool, sendFd: Int32?) -> Int32 {
    worker.post = post
    if let fd = sendFd {
      worker.sendDirect = { d, to in
        guard let p = d.baseAddress else { return false }
        return wisp_sendto(fd, p, d.count, to.ip, to.port) == d.count
      }
    } else {
      worker.sendDirect = nil
    }
    return worker.start()
  }

  deinit {
    answer.deallocate()
    tidBuffer.deallocate()
  }

  /// Wires the table to a relay loop: frames in through `handleFrame`, records out through
  /// `sendCopy`. `shutdown` breaks the reference cycle.
  public func attach<IO: DatagramIO>(to loop: RelayLoop<IO>) {
    let clock = self.clock
    deliverFrame = { frame, from in loop.handleFrame(frame, from: from, nowNs: clock.ns) }
    sendDatagram = { d, to in loop.sendCopy(d, to: to) }
    flushSends = { loop.flush() }
    loop.attach(link: self)
    gate = loop.linkGate
    updateGate()
  }

  /// Keeps the loop's gate current: the early answers of `admitsPlain` and `seal`.
  func updateGate() { gate?.judges = establishedCount != 0 || limits.required }

  // MARK: - LinkLayer

  /// Steps 1–5 for one DTLS datagram.
  public func receive(_ d: UnsafeRawBufferPointer, from: Endpoint, nowNs: UInt64) {
    clock.advance(to: nowNs)
    let slot = index[SessionTable.key(from)]
    switch HelloVerify.kind(d) {
    case .clientHello:
      hello(d, from: from, slot: slot, nowNs: nowNs)
    case .handshake:
      guard let slot else { refuse(.noSession); return }
      let link = links[slot]
      link.lastActiveNs = nowNs
      if link.work != 0 {
        toWorker(link, d)
      } else if let s = link.current {
        s.input(d)  // a retransmitted last flight: mbedTLS answers with its own again
        settle(slot, nowNs: nowNs)
      }
    case .other:
      guard let slot else { refuse(.noSession); return }
      let link = links[slot]
      link.lastActiveNs = nowNs
      guard let s = link.current else {
        // The first handshake is on the worker: alerts go there, records wait for the session.
        if d.first == 23 { hold(link, d) } else { toWorker(link, d) }
        return
      }
      let bad = s.badRecords
      let opened = counters.recordsOpened
      s.input(d)
      if s.badRecords != bad, let old = link.previous, old.state == .established {
        // Sealed under the keys before the rekey: in flight when the peer switched.
        s.forgiveBadRecords(s.badRecords - bad)
        let oldBad = old.badRecords
        old.input(d)
        if link.work != 0 && counters.recordsOpened == opened { old.forgiveBadRecords(old.badRecords - oldBad) }
      }
      if link.work != 0 && d.first == 23 && counters.recordsOpened == opened {
        // Nothing opened while a new session is on the worker: sealed under its keys, with
        // sequence numbers the current session may even take for replays. Held for it.
        if s.badRecords > bad { s.forgiveBadRecords(s.badRecords - bad) }
        hold(link, d)
      }
      settle(slot, nowNs: nowNs)
    }
    applyInlineResults()
  }

  /// A copy of `d` for the handshake on the worker (refused when its inbox is full).
  func toWorker(_ link: Link, _ d: UnsafeRawBufferPointer) {
    if !worker.submit(.input(token: link.work, datagram: Array(d))) { refuse(.workerBusy) }
  }

  /// Keeps a copy of a record for the session the worker is about to hand over.
  func hold(_ link: Link, _ d: UnsafeRawBufferPointer) {
    if link.held.count >= (link.current == nil ? Link.heldLimit : Link.heldLimitRekey) { refuse(.noSession); return }
    link.held.append(Array(d))
  }

  public func admitsPlain(from: Endpoint, type: UInt8) -> Bool {
    if establishedCount == 0 && !limits.required { return true }
    // A PING carries nothing and its PONG is no larger: RTT probes (wisp client --peers, from
    // a socket of their own) work with any node, sessions required or not.
    if type == FrameType.ping.rawValue { return true }
    if let i = index[SessionTable.key(from)], links[i].established {
      refuse(.plainOnSession)
      return false
    }
    if limits.required && !isExit(from) {
      refuse(.plainRefused)
      return false
    }
    return true
  }

  /// Writes `frame` as one record to `to` if a session with it is established.
  public func seal(_ frame: UnsafeRawBufferPointer, to: Endpoint) -> Bool {
    if establishedCount == 0 && !limits.required { return false }
    if let i = index[SessionTable.key(to)], let s = links[i].current, s.state == .established {
      do {
        try s.write(frame)
        counters.recordsSealed &+= 1
      } catch {
        refuse(.tooLarge)
      }
      return true
    }
    if limits.required && !isExit(to) {
      refuse(.plainRefused)
      return true
    }
    return false
  }

  /// Step 6.
  public func poll(nowNs: UInt64) {
    clock.advance(to: nowNs)
    if worker.inbox == nil {
      worker.tick(nowNs: nowNs)  // inline: the worker's timers run here
      applyInlineResults()
    }
    var i = 0
    while i < links.count {
      let link = links[i]
      if let s = link.current { SessionTable.fire(s, nowNs) }
      if let p = link.previous { SessionTable.fire(p, nowNs) }
      if link.previous != nil && nowNs >= link.previousUntilNs { link.previous = nil }
      if link.work != 0 && nowNs &- link.workStartedNs > limits.halfOpenTimeoutNs + SessionTable.workerGraceNs {
        // The worker ends its handshakes at the half-open limit; its answer was lost.
        if link.current == nil { remove(i, why: .handshakeTimeout); continue }  // cancels it there
        worker.submit(.cancel(token: link.work))
        endWork(link)
        refuse(.handshakeTimeout)
      }
      if link.role == .client, link.established, link.work == 0, nowNs >= link.nextRekeyNs {
        let s = link.session
        if s.bytesIn &+ s.bytesOut >= limits.rekeyBytes || nowNs &- s.establishedNs >= limits.rekeyAfterNs {
          startRekey(link, nowNs: nowNs)
        }
      }
      if settle(i, nowNs: nowNs) { i += 1 }
    }
    for p in 0..<peers.count where nowNs >= nextDialNs[p] {
      nextDialNs[p] = nowNs + SessionTable.redialNs
      if index[SessionTable.key(peers[p].endpoint)] == nil { dial(p, nowNs: nowNs) }
    }
    applyInlineResults()
  }

  /// How long after the half-open limit the table gives up on a handshake the worker never
  /// answered for (a result its full mailbox refused).
  public static let workerGraceNs: UInt64 = 2_000_000_000

  /// Runs `s`'s mbedTLS timer if it is due.
  static func fire(_ s: DTLSSession, _ nowNs: UInt64) {
    if let d = s.deadlineNs, d <= nowNs { s.handleTimeout() }
  }

  /// Step 7: close_notify to every established peer; then the table lets go of the loop
  /// (the reference cycle `attach` made).
  public func shutdown() {
    if worker.inbox != nil {
      worker.stop()  // joined: its figures are final
      Log.info("handshake worker stopped", "steps=\(worker.steps) busy_ms=\(worker.busyNs / 1_000_000)"
                 + " results_lost=\(worker.resultsLost) refused_full=\(worker.refusedFull)")
    }
    for l in links where l.established {
      l.session.close()
      counters.closeNotifySent &+= 1
    }
    deliverFrame = nil
    sendDatagram = nil
    flushSends = nil
    isExit = { _ in false }
  }

  // MARK: - Status

  public var establishedSessions: Int { establishedCount }
  public var halfOpenSessions: Int { halfOpenCount }

  /// Replaces the configured peers (SIGHUP). Links to peers that are gone become client links.
  public func update(peers new: [LinkPeer]) {
    peers = new
    nextDialNs = [UInt64](repeating: 0, count: new.count)
    let t = now()
    for i in 0..<new.count { nextDialNs[i] = t + dialDelay(i) }
    for l in links { l.peer = new.firstIndex { $0.endpoint == l.endpoint } }
  }

  // MARK: - Internals

  static func key(_ e: Endpoint) -> Endpoint { e }

  /// The peer with the lower fingerprint dials at once; the other waits for it, then dials.
  func dialDelay(_ p: Int) -> UInt64 {
    own.bytes.lexicographicallyPrecedes(peers[p].fingerprint.bytes) ? 0 : SessionTable.fallbackConnectNs
  }

  /// Whether a client link still dialling keeps its dial against the peer's cookie-verified
  /// ClientHello `hello` (both ends dialled at once). Both ends compare the same two values —
  /// the randoms of their ClientHellos, which a client repeats with the cookie — so exactly
  /// one of them keeps its dial: the higher random. (Comparing fingerprints is not enough:
  /// each end compares its own key with the key it pinned, and with a wrong pin both can
  /// believe they are the lower one, ignore each other and time out, and the wrong pin is
  /// never reported.) A dial whose random is not known yet gives way.
  func keepsOwnDial(_ link: Link, against hello: UnsafeRawBufferPointer) -> Bool {
    guard let mine = link.helloRandom, let theirs = HelloVerify.random(hello) else { return false }
    return theirs.lexicographicallyPrecedes(mine)
  }

  /// Steps 2–3 for a ClientHello from `from`.
  func hello(_ d: UnsafeRawBufferPointer, from: Endpoint, slot: Int?, nowNs: UInt64) {
    // The address the cookie is bound to, in a buffer made once (no allocation per hello).
    tidBuffer.storeBytes(of: from.ip.bigEndian, as: UInt32.self)
    tidBuffer.storeBytes(of: from.port.bigEndian, toByteOffset: 4, as: UInt16.self)
    let tid = UnsafeRawBufferPointer(start: tidBuffer, count: 6)  // as Cookies.transportID (IPv4, like the sockets)
    guard let cookie = HelloVerify.cookie(d) else {
      refuse(.badHello)
      return
    }
    let valid = cookies.valid(cookie, transportID: tid)
    if !valid {
      // 2. Stateless: a HelloVerifyRequest, never larger than the request.
      counters.unverifiedBytesIn &+= UInt64(d.count)
      let n = HelloVerify.write(answering: d, transportID: tid, cookies: cookies, into: answer)
      if n == 0 { refuse(.badHello); return }
      if sendDatagram?(UnsafeRawBufferPointer(start: answer, count: n), from) == true {
        counters.helloVerifyRequests &+= 1
        counters.unverifiedBytesOut &+= UInt64(n)
      }
      return
    }
    // 3. Admission, cheapest refusals first.
    if let slot, links[slot].servingHandshake {
      toWorker(links[slot], d)  // a retransmitted ClientHello of the handshake in progress
      return
    }
    let peer = peers.firstIndex { $0.endpoint == from }
    if let slot, links[slot].role == .client, !links[slot].established, peer != nil,
       keepsOwnDial(links[slot], against: d) {
      counters.crossedDialsKept &+= 1
      return  // both dialled at once and ours wins the tie-break (see keepsOwnDial)
    }
    guard takeSourceToken(from.sourceKey, nowNs: nowNs) else { refuse(.sourceRate); return }
    if peer == nil && slot == nil && (perSource[from.sourceKey] ?? 0) >= limits.perSourceSessions {
      refuse(.sourceFull)
      return
    }
    // A configured node (its address proved by the cookie) is not held back by a flood of
    // strangers: the node-wide budget and the half-open cap apply to everyone else.
    if peer == nil {
      guard takeGlobalToken(nowNs: nowNs) else { refuse(.handshakeRate); return }
      guard halfOpenCount < limits.halfOpen else { refuse(.halfOpenFull); return }
    }
    if slot == nil && links.count >= limits.capacity {
      guard peer != nil, evictClient() else { refuse(.tableFull); return }
    }
    // The handshake itself: a copy of the ClientHello to the worker, or a refusal.
    let token = takeToken()
    guard worker.submit(.serve(token: token, peer: from, hello: Array(d))) else { refuse(.workerBusy); return }
    counters.handshakesAdmitted &+= 1
    if let slot {
      let link = links[slot]
      if link.role == .client && !link.established {
        // Both ends dialled at once and the peer's dial won the tie-break: serve it.
        remove(slot, why: nil)
      } else {
        beginWork(link, token, halfOpen: true, nowNs: nowNs)  // pending, next to the session
        return
      }
    }
    let link = Link(endpoint: from, role: .server, peer: peer, nowNs: nowNs)
    add(link)
    beginWork(link, token, halfOpen: true, nowNs: nowNs)
  }

  func takeToken() -> UInt64 {
    defer { nextToken &+= 1 }
    return nextToken
  }

  /// `link`'s handshake `token` is on the worker.
  func beginWork(_ link: Link, _ token: UInt64, halfOpen: Bool, nowNs: UInt64) {
    link.work = token
    link.workHalfOpen = halfOpen
    link.workStartedNs = nowNs
    if halfOpen { halfOpenCount += 1 }
  }

  /// `link`'s handshake on the worker ended (or was given up).
  func endWork(_ link: Link) {
    if link.work != 0 && link.workHalfOpen { halfOpenCount -= 1 }
    link.work = 0
    link.workHalfOpen = false
    link.held = []
  }

  // MARK: - Handshakes that ended on the worker

  /// Applies what the worker handed back (on the thread that owns the table): a flight to
  /// send, or a handshake that ended — an established session is adopted by this thread.
  public func finish(_ r: HandshakeResult) {
    clock.advance(to: now())
    switch r {
    case .flight(let to, let bytes):
      _ = bytes.withUnsafeBytes { sendDatagram?($0, to) }
    case .dialed(let token, let peer, let random):
      if let i = index[SessionTable.key(peer)], links[i].work == token { links[i].helloRandom = random }
      return
    case .done(let token, let peer, let session, let failure):
      guard let i = index[SessionTable.key(peer)], links[i].work == token else { return }  // its link went
      let l = links[i]
      let held = l.held
      let wasFirst = l.current == nil
      endWork(l)
      guard let s = session else {
        if wasFirst { remove(i, why: failure ?? .handshakeTimeout) }  // nothing worth keeping
        else if let failure { refuse(SessionRefusal.of(failure)) }
        break
      }
      let me = Unmanaged.passUnretained(self)
      s.adopt(clock: clock,
              send: { d in me.takeUnretainedValue().sendDatagram?(d, peer) ?? false },
              deliver: { frame in
                let t = me.takeUnretainedValue()
                t.counters.recordsOpened &+= 1
                t.deliverFrame?(frame, peer)
              })
      let t = clock.ns
      if wasFirst {
        l.current = s
        guard established(i, nowNs: t) else { break }
      } else {
        count(s)
        l.previous = l.current
        l.previousUntilNs = t + limits.rekeyGraceNs
        l.current = s
        counters.rekeys &+= 1
        if l.role == .client { remember(s, of: l) }
        Log.info("session rekeyed", "peer=\(l.endpoint.text)\(peerName(l)) resumed=\(s.resumed ? 1 : 0)")
      }
      s.step()  // records that came in the handshake's last datagram, and the read timer
      for d in held {
        // A held record may be an old session's duplicate or a forgery: not held against this one.
        let bad = s.badRecords
        d.withUnsafeBytes { s.input($0) }
        if s.badRecords > bad { s.forgiveBadRecords(s.badRecords - bad) }
      }
      settle(i, nowNs: t)
    }
    flushSends?()
  }

  /// Results an inline worker produced during the last call.
  func applyInlineResults() {
    while !inlineResults.isEmpty {
      let r = inlineResults.removeFirst()
      finish(r)
    }
  }

  func refuse(_ r: SessionRefusal) { counters.refusals[r.rawValue] &+= 1 }

  /// A random delay below `limit` ns (from the DRBG).
  func jitterNs(_ limit: UInt64) -> UInt64 {
    guard let b = random.bytes(8) else { return limit / 2 }
    var v: UInt64 = 0
    for x in b { v = v << 8 | UInt64(x) }
    return v % limit
  }

  func add(_ link: Link) {
    index[SessionTable.key(link.endpoint)] = links.count
    links.append(link)
    perSource[link.endpoint.sourceKey, default: 0] += 1
  }

  /// Removes link `i` (swap with the last), logging why.
  func remove(_ i: Int, why: TLSError?) {
    let l = links[i]
    if l.wasEstablished { establishedCount -= 1 }
    if l.work != 0 { _ = worker.submit(.cancel(token: l.work)) }  // lost if full: it times out there
    endWork(l)
    index[SessionTable.key(l.endpoint)] = nil
    let source = l.endpoint.sourceKey
    if let n = perSource[source], n > 1 { perSource[source] = n - 1 } else { perSource[source] = nil }
    let last = links.count - 1
    if i != last {
      links[i] = links[last]
      index[SessionTable.key(links[i].endpoint)] = i
    }
    links.removeLast()
    if let p = l.peer, p < peers.count {
      // Jitter (0-1 s) so that two nodes whose views of each other disagree (a wrong pin)
      // do not keep dialling each other at the same instant.
      nextDialNs[p] = now() + SessionTable.redialNs + dialDelay(p) + jitterNs(1_000_000_000)
    }
    if let why {
      refuse(SessionRefusal.of(why))
      Log.warn("session failed", "peer=\(l.endpoint.text)\(peerName(l)) error=\"\(Log.quote(why.description))\"")
    } else if l.wasEstablished {
      Log.info("session closed", "peer=\(l.endpoint.text)\(peerName(l)) by=\(l.current?.closedByPeer == true ? "peer" : "us")")
    }
  }

  func peerName(_ l: Link) -> String {
    if let p = l.peer, p < peers.count { return " name=\(peers[p].name)" }
    return ""
  }

  /// Brings link `i`'s bookkeeping up to date after its session moved. Returns false when
  /// the link was removed (the slot now holds another link).
  @discardableResult
  func settle(_ i: Int, nowNs: UInt64) -> Bool {
    let l = links[i]
    guard let s = l.current else { return true }  // the first handshake is on the worker
    switch s.state {
    case .handshaking, .established:
      return true
    case .closed:
      if s.closedByPeer { counters.closedByPeer &+= 1 }
      remove(i, why: nil)
      return false
    case .failed:
      remove(i, why: s.failure)
      return false
    }
  }

  /// Link `i`'s first session was just handed over, established. False when it was refused
  /// (and the link removed).
  func established(_ i: Int, nowNs: UInt64) -> Bool {
    let l = links[i]
    let s = l.session
    if let p = peers.firstIndex(where: { $0.endpoint == l.endpoint }), let fp = s.peerFingerprint,
       fp != peers[p].fingerprint {
      // A configured node's address must present that node's pinned key.
      s.close()
      remove(i, why: .peerNotPinned(fp))
      return false
    }
    l.wasEstablished = true
    establishedCount += 1
    count(s)
    // Remember the ticket: if this link fails, the next dial resumes (one round trip).
    if l.role == .client { remember(s, of: l) }
    if l.peer == nil, let fp = s.peerFingerprint, let p = peers.firstIndex(where: { $0.fingerprint == fp }),
       peers[p].endpoint == l.endpoint {
      l.peer = p
    }
    Log.info("session up", "peer=\(l.endpoint.text)\(peerName(l)) role=\(l.role == .server ? "server" : "client")"
               + " kind=\(l.peer == nil ? "client" : "node") suite=\(s.cipherSuite) resumed=\(s.resumed ? 1 : 0)"
               + " key=\(s.peerFingerprint?.hex ?? "-")")
    return true
  }

  func count(_ s: DTLSSession) {
    if s.resumed { counters.handshakesResumed &+= 1 } else { counters.handshakesFull &+= 1 }
  }

  /// Dials configured peer `p` (client role), resuming a remembered session if any.
  func dial(_ p: Int, nowNs: UInt64) {
    if links.count >= limits.capacity && !evictClient() { refuse(.tableFull); return }
    let to = peers[p].endpoint
    let saved = tickets[SessionTable.key(to)] ?? loadTicket?(peers[p].fingerprint).flatMap({ SavedSession(serialized: $0) })
    let token = takeToken()
    let link = Link(endpoint: to, role: .client, peer: p, nowNs: nowNs)
    add(link)
    beginWork(link, token, halfOpen: false, nowNs: nowNs)
    // The worker sends the first ClientHello (resuming `saved`'s ticket, if any).
    if !worker.submit(.dial(token: token, peer: to, resume: saved)) {
      refuse(.workerBusy)
      remove(links.count - 1, why: nil)  // dialled again after `redialNs`
    }
  }

  /// Tickets of sessions this node initiated, to resume the next one.
  var tickets: [Endpoint: SavedSession] = [:]

  /// Keeps `s`'s ticket for the next dial to `l`'s peer, in memory and (node links) on disk.
  func remember(_ s: DTLSSession, of l: Link) {
    guard let saved = s.savedSession() else { return }
    tickets[SessionTable.key(l.endpoint)] = saved
    if let p = l.peer, p < peers.count, let save = saveTicket, let bytes = saved.serialized() { save(peers[p].fingerprint, bytes) }
  }

  /// Rekey by a new handshake next to the current session, resuming it (one round trip).
  func startRekey(_ l: Link, nowNs: UInt64) {
    let saved = l.session.savedSession()
    if let saved { tickets[SessionTable.key(l.endpoint)] = saved }
    let token = takeToken()
    guard worker.submit(.dial(token: token, peer: l.endpoint, resume: saved)) else {
      refuse(.workerBusy)
      l.nextRekeyNs = nowNs + SessionTable.redialNs
      return
    }
    beginWork(l, token, halfOpen: true, nowNs: nowNs)
  }

  /// Makes room by dropping the least recently active client link (never a node link).
  func evictClient() -> Bool {
    var victim: Int? = nil
    for i in 0..<links.count where links[i].peer == nil {
      if victim == nil || links[i].lastActiveNs < links[victim!].lastActiveNs { victim = i }
    }
    guard let v = victim else { return false }
    links[v].current?.close()
    remove(v, why: nil)
    return true
  }

  func takeGlobalToken(nowNs: UInt64) -> Bool {
    handshakeLevel.take(1, nowNs: nowNs, rate: handshakeRate)
  }

  func takeSourceToken(_ ip: UInt64, nowNs: UInt64) -> Bool {
    let h = Int(truncatingIfNeeded: ((ip ^ ip >> 32) &* 0x9E37_79B9_7F4A_7C15) >> 40) & (SessionTable.sourceSlots - 1)
    if sourceKeys[h] != ip {  // a new source (or a collision): it starts with a full burst
      sourceKeys[h] = ip
      sourceLevels[h] = BucketLevel()
    }
    return sourceLevels[h].take(1, nowNs: nowNs, rate: sourceRate)
  }
}
