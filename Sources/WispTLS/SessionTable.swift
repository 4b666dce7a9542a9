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
//      refusal counted by reason. Only now is a server
//      session (mbedTLS buffers) allocated. From an address that already has a session it
//      starts a *pending* session next to it: a rekey or a reconnection;
//   4. handshake records go to the pending session if there is one, records of an
//      established session to its session; a record that fails there (bad MAC) right after
//      a rekey is tried on the previous session, kept `rekeyGraceNs` for in-flight traffic;
//   5. plaintext frames go back to the relay loop (`RelayLoop.handleFrame`) as if they had
//      arrived from the peer's address; frames the loop sends to a peer with an established
//      session are written as one record each (`seal`), never in the clear;
//   6. `poll` (every 50 ms): mbedTLS's retransmission timers, half-open expiry, connecting
//      to configured node peers (the peer with the lower fingerprint initiates at once, the
//      other after `fallbackConnectNs`), rekeying initiated sessions after a byte or time
//      limit (by resumption: one round trip), and removing failed or closed sessions;
//   7. `shutdown`: close_notify to every peer.
// Capacity is fixed (`SessionLimits.capacity`); mbedTLS allocates a session's record buffers
// when the session is admitted, never per packet.
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
      if code == MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION { return .protocolVersion }
      if code == MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN { return .noSharedSuite }
      if code == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED { return .badCertificate }
      return .failed
    }
  }
}

/// One peer address and its sessions.
public final class Link {
  public let endpoint: Endpoint
  public let role: DTLSRole
  /// The current session: frames are sealed in it once established.
  public internal(set) var session: DTLSSession
  /// A new handshake with the same peer (rekey or reconnection), not yet established.
  var pending: DTLSSession? = nil
  /// The session before the last rekey, for records still in flight, until `previousUntilNs`.
  var previous: DTLSSession? = nil
  var previousUntilNs: UInt64 = 0
  /// Index in the configured peers (a node link), or nil (a client).
  public internal(set) var peer: Int?
  public internal(set) var lastActiveNs: UInt64
  var wasEstablished = false

  init(endpoint: Endpoint, role: DTLSRole, session: DTLSSession, peer: Int?, nowNs: UInt64) {
    self.endpoint = endpoint
    self.role = role
    self.session = session
    self.peer = peer
    lastActiveNs = nowNs
  }

  public var established: Bool { session.state == .established }

  /// The handshake this node is serving for the peer, if one is in progress: a pending
  /// rekey, or a server session not yet established.
  var serverHandshake: DTLSSession? {
    if let p = pending { return p }
    return role == .server && session.state == .handshaking ? session : nil
  }
}

public final class SessionTable: LinkLayer {
  public let limits: SessionLimits
  public private(set) var counters = SessionCounters()
  public private(set) var links: [Link] = []
  public private(set) var peers: [LinkPeer]
  let server: DTLSConfig
  let client: DTLSConfig
  let own: Fingerprint
  let random: RandomGenerator
  let now: () -> UInt64
  /// Frames delivered by sessions, and records they write (set by `attach`; tests set their own).
  public var deliverFrame: ((UnsafeRawBufferPointer, Endpoint) -> Void)? = nil
  public var sendDatagram: ((UnsafeRawBufferPointer, Endpoint) -> Bool)? = nil
  /// Exit destinations (plain UDP, never sessions).
  public var isExit: (Endpoint) -> Bool = { _ in false }
  var index: [UInt64: Int] = [:]
  /// Links per IPv4 address (at most `links.count` entries: an address with none has none).
  var perSource: [UInt32: Int] = [:]
  var establishedCount = 0
  var halfOpenCount = 0
  // Admission buckets (TokenBucket.swift, in handshakes): node-wide (burst one second's
  // worth) and per source address (hashed into fixed slots, burst two seconds' worth).
  let handshakeRate: TokenRate
  var handshakeLevel = BucketLevel()
  let sourceRate: TokenRate
  var sourceKeys: [UInt32]
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
  let tidBuffer = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)

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
    server = try DTLSConfig(options: so, identity: identity, random: random)
    client = try DTLSConfig(options: co, identity: identity, random: random)
    own = identity.fingerprint
    self.random = random
    self.peers = peers
    self.limits = limits
    self.now = now
    let t = now()
    handshakeRate = TokenRate(perSecond: limits.handshakesPerSecond, burst: limits.handshakesPerSecond)
    sourceRate = TokenRate(perSecond: limits.perSourcePerSecond, burst: 2 * limits.perSourcePerSecond)
    sourceKeys = [UInt32](repeating: 0, count: SessionTable.sourceSlots)
    sourceLevels = [BucketLevel](repeating: BucketLevel(), count: SessionTable.sourceSlots)
    nextDialNs = [UInt64](repeating: 0, count: peers.count)
    links.reserveCapacity(limits.capacity)
    index.reserveCapacity(limits.capacity * 2)
    for i in 0..<peers.count { nextDialNs[i] = t + dialDelay(i) }
  }

  deinit {
    answer.deallocate()
    tidBuffer.deallocate()
  }

  /// Wires the table to a relay loop: frames in through `handleFrame`, records out through
  /// `sendCopy`. `shutdown` breaks the reference cycle.
  public func attach<IO: DatagramIO>(to loop: RelayLoop<IO>) {
    deliverFrame = { frame, from in loop.handleFrame(frame, from: from, nowNs: wisp_monotonic_ns()) }
    sendDatagram = { d, to in loop.sendCopy(d, to: to) }
    loop.attach(link: self)
  }

  // MARK: - LinkLayer

  /// Steps 1–5 for one DTLS datagram.
  public func receive(_ d: UnsafeRawBufferPointer, from: Endpoint, nowNs: UInt64) {
    let slot = index[SessionTable.key(from)]
    switch HelloVerify.kind(d) {
    case .clientHello:
      hello(d, from: from, slot: slot, nowNs: nowNs)
    case .handshake:
      guard let slot else { refuse(.noSession); return }
      let link = links[slot]
      link.lastActiveNs = nowNs
      (link.pending ?? link.session).input(d)
      settle(slot, nowNs: nowNs)
    case .other:
      guard let slot else { refuse(.noSession); return }
      let link = links[slot]
      link.lastActiveNs = nowNs
      let s = link.session
      let bad = s.badRecords
      s.input(d)
      if s.badRecords != bad, let old = link.previous, old.state == .established {
        // Sealed under the keys before the rekey: in flight when the peer switched.
        s.forgiveBadRecords(s.badRecords - bad)
        old.input(d)
      }
      settle(slot, nowNs: nowNs)
    }
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
    if let i = index[SessionTable.key(to)], links[i].established {
      do {
        try links[i].session.write(frame)
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
    var i = 0
    while i < links.count {
      let link = links[i]
      SessionTable.fire(link.session, nowNs)
      if let p = link.pending { SessionTable.fire(p, nowNs) }
      if let p = link.previous { SessionTable.fire(p, nowNs) }
      if link.previous != nil && nowNs >= link.previousUntilNs { link.previous = nil }
      if link.session.state == .handshaking && !link.wasEstablished && link.role == .server
        && nowNs &- link.session.createdNs > limits.halfOpenTimeoutNs {
        link.session.failByTimeout()
      }
      if let p = link.pending, p.state == .handshaking, nowNs &- p.createdNs > limits.halfOpenTimeoutNs {
        p.failByTimeout()
      }
      if link.role == .client, link.established, link.pending == nil {
        let s = link.session
        if s.bytesIn &+ s.bytesOut >= limits.rekeyBytes || nowNs &- s.establishedNs >= limits.rekeyAfterNs {
          startRekey(link)
        }
      }
      if settle(i, nowNs: nowNs) { i += 1 }
    }
    for p in 0..<peers.count where nowNs >= nextDialNs[p] {
      nextDialNs[p] = nowNs + SessionTable.redialNs
      if index[SessionTable.key(peers[p].endpoint)] == nil { dial(p, nowNs: nowNs) }
    }
  }

  /// Runs `s`'s mbedTLS timer if it is due.
  static func fire(_ s: DTLSSession, _ nowNs: UInt64) {
    if let d = s.deadlineNs, d <= nowNs { s.handleTimeout() }
  }

  /// Step 7: close_notify to every established peer; then the table lets go of the loop
  /// (the reference cycle `attach` made).
  public func shutdown() {
    for l in links where l.established {
      l.session.close()
      counters.closeNotifySent &+= 1
    }
    deliverFrame = nil
    sendDatagram = nil
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

  static func key(_ e: Endpoint) -> UInt64 { UInt64(e.ip) << 16 | UInt64(e.port) }

  /// The peer with the lower fingerprint dials at once; the other waits for it, then dials.
  func dialDelay(_ p: Int) -> UInt64 {
    own.bytes.lexicographicallyPrecedes(peers[p].fingerprint.bytes) ? 0 : SessionTable.fallbackConnectNs
  }

  /// Steps 2–3 for a ClientHello from `from`.
  func hello(_ d: UnsafeRawBufferPointer, from: Endpoint, slot: Int?, nowNs: UInt64) {
    // The address the cookie is bound to, in a buffer made once (no allocation per hello).
    tidBuffer.storeBytes(of: from.ip.bigEndian, as: UInt32.self)
    tidBuffer.storeBytes(of: from.port.bigEndian, toByteOffset: 4, as: UInt16.self)
    let tid = UnsafeRawBufferPointer(start: tidBuffer, count: 6)
    guard let cookie = HelloVerify.cookie(d) else {
      refuse(.badHello)
      return
    }
    let valid = server.cookieValid(cookie, transportID: tid)
    if !valid {
      // 2. Stateless: a HelloVerifyRequest, never larger than the request.
      counters.unverifiedBytesIn &+= UInt64(d.count)
      guard let cookies = server.cookies else { return }
      let n = HelloVerify.write(answering: d, transportID: tid, cookies: cookies, into: answer)
      if n == 0 { refuse(.badHello); return }
      if sendDatagram?(UnsafeRawBufferPointer(start: answer, count: n), from) == true {
        counters.helloVerifyRequests &+= 1
        counters.unverifiedBytesOut &+= UInt64(n)
      }
      return
    }
    // 3. Admission, cheapest refusals first.
    if let slot, let inProgress = links[slot].serverHandshake {
      inProgress.input(d)  // a retransmitted ClientHello of the handshake in progress
      settle(slot, nowNs: nowNs)
      return
    }
    let peer = peers.firstIndex { $0.endpoint == from }
    if let slot, links[slot].role == .client, !links[slot].established, let p = peer,
       own.bytes.lexicographicallyPrecedes(peers[p].fingerprint.bytes) {
      return  // both dialled at once: the lower fingerprint keeps its own dial (see below)
    }
    guard takeSourceToken(from.ip, nowNs: nowNs) else { refuse(.sourceRate); return }
    if peer == nil && slot == nil && (perSource[from.ip] ?? 0) >= limits.perSourceSessions {
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
    let session: DTLSSession
    do {
      session = try makeSession(server, to: from)
    } catch {
      refuse(.failed)
      return
    }
    counters.handshakesAdmitted &+= 1
    if let slot {
      let link = links[slot]
      if link.role == .client && !link.established {
        // Both ends dialled at once. The one with the lower fingerprint keeps its dial;
        // the other serves it.
        remove(slot, why: nil)
        add(Link(endpoint: from, role: .server, session: session, peer: peer, nowNs: nowNs))
        session.input(d)
        settle(links.count - 1, nowNs: nowNs)
        return
      }
      link.pending = session
      halfOpenCount += 1
      session.input(d)
      settle(slot, nowNs: nowNs)
      return
    }
    add(Link(endpoint: from, role: .server, session: session, peer: peer, nowNs: nowNs))
    session.input(d)
    settle(links.count - 1, nowNs: nowNs)
  }

  func refuse(_ r: SessionRefusal) { counters.refusals[r.rawValue] &+= 1 }

  /// A random delay below `limit` ns (from the DRBG).
  func jitterNs(_ limit: UInt64) -> UInt64 {
    guard let b = random.bytes(8) else { return limit / 2 }
    var v: UInt64 = 0
    for x in b { v = v << 8 | UInt64(x) }
    return v % limit
  }

  func makeSession(_ config: DTLSConfig, to peer: Endpoint) throws(TLSError) -> DTLSSession {
    // The sessions never outlive the table: an unretained reference (no cycle, no `unowned`
    // in Embedded Swift).
    let me = Unmanaged.passUnretained(self)
    return try DTLSSession(config: config, peerIP: peer.ip, peerPort: peer.port, now: now,
                           send: { d in me.takeUnretainedValue().sendDatagram?(d, peer) ?? false },
                           deliver: { frame in
                             let t = me.takeUnretainedValue()
                             t.counters.recordsOpened &+= 1
                             t.deliverFrame?(frame, peer)
                           })
  }

  func add(_ link: Link) {
    index[SessionTable.key(link.endpoint)] = links.count
    links.append(link)
    perSource[link.endpoint.ip, default: 0] += 1
    if link.session.state == .handshaking && link.role == .server { halfOpenCount += 1 }
  }

  /// Removes link `i` (swap with the last), logging why.
  func remove(_ i: Int, why: TLSError?) {
    let l = links[i]
    if l.wasEstablished { establishedCount -= 1 }
    if l.role == .server && !l.wasEstablished { halfOpenCount -= 1 }
    if l.pending != nil { halfOpenCount -= 1 }
    index[SessionTable.key(l.endpoint)] = nil
    if let n = perSource[l.endpoint.ip], n > 1 { perSource[l.endpoint.ip] = n - 1 } else { perSource[l.endpoint.ip] = nil }
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
      Log.info("session closed", "peer=\(l.endpoint.text)\(peerName(l)) by=\(l.session.closedByPeer ? "peer" : "us")")
    }
  }

  func peerName(_ l: Link) -> String {
    if let p = l.peer, p < peers.count { return " name=\(peers[p].name)" }
    return ""
  }

  /// Brings link `i`'s bookkeeping up to date after its sessions moved. Returns false when
  /// the link was removed (the slot now holds another link).
  @discardableResult
  func settle(_ i: Int, nowNs: UInt64) -> Bool {
    let l = links[i]
    if let p = l.pending {
      switch p.state {
      case .established:
        halfOpenCount -= 1
        count(p)
        l.previous = l.session
        l.previousUntilNs = nowNs + limits.rekeyGraceNs
        l.session = p
        l.pending = nil
        counters.rekeys &+= 1
        if l.role == .client { remember(p, of: l) }
        Log.info("session rekeyed", "peer=\(l.endpoint.text)\(peerName(l)) resumed=\(p.resumed ? 1 : 0)")
      case .failed, .closed:
        halfOpenCount -= 1
        if let e = p.failure { refuse(SessionRefusal.of(e)) }
        l.pending = nil
      case .handshaking: break
      }
    }
    let s = l.session
    switch s.state {
    case .handshaking:
      return true
    case .established:
      if !l.wasEstablished {
        if let p = peers.firstIndex(where: { $0.endpoint == l.endpoint }), let fp = s.peerFingerprint,
           fp != peers[p].fingerprint {
          // A configured node's address must present that node's pinned key.
          s.close()
          remove(i, why: .peerNotPinned(fp))
          return false
        }
        l.wasEstablished = true
        establishedCount += 1
        if l.role == .server { halfOpenCount -= 1 }
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
      }
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

  func count(_ s: DTLSSession) {
    if s.resumed { counters.handshakesResumed &+= 1 } else { counters.handshakesFull &+= 1 }
  }

  /// Dials configured peer `p` (client role), resuming a remembered session if any.
  func dial(_ p: Int, nowNs: UInt64) {
    if links.count >= limits.capacity && !evictClient() { refuse(.tableFull); return }
    guard let s = try? makeSession(client, to: peers[p].endpoint) else { refuse(.failed); return }
    if let saved = tickets[SessionTable.key(peers[p].endpoint)] ?? loadTicket?(peers[p].fingerprint).flatMap({ SavedSession(serialized: $0) }) {
      try? s.resume(saved)
    }
    add(Link(endpoint: peers[p].endpoint, role: .client, session: s, peer: p, nowNs: nowNs))
    s.step()  // the first ClientHello
    settle(links.count - 1, nowNs: nowNs)
  }

  /// Tickets of sessions this node initiated, to resume the next one.
  var tickets: [UInt64: SavedSession] = [:]

  /// Keeps `s`'s ticket for the next dial to `l`'s peer, in memory and (node links) on disk.
  func remember(_ s: DTLSSession, of l: Link) {
    guard let saved = s.savedSession() else { return }
    tickets[SessionTable.key(l.endpoint)] = saved
    if let p = l.peer, p < peers.count, let save = saveTicket, let bytes = saved.serialized() { save(peers[p].fingerprint, bytes) }
  }

  /// Rekey by a new handshake next to the current session, resuming it (one round trip).
  func startRekey(_ l: Link) {
    guard let s = try? makeSession(client, to: l.endpoint) else { return }
    if let saved = l.session.savedSession() {
      tickets[SessionTable.key(l.endpoint)] = saved
      try? s.resume(saved)
    }
    l.pending = s
    halfOpenCount += 1
    s.step()
  }

  /// Makes room by dropping the least recently active client link (never a node link).
  func evictClient() -> Bool {
    var victim: Int? = nil
    for i in 0..<links.count where links[i].peer == nil {
      if victim == nil || links[i].lastActiveNs < links[victim!].lastActiveNs { victim = i }
    }
    guard let v = victim else { return false }
    links[v].session.close()
    remove(v, why: nil)
    return true
  }

  func takeGlobalToken(nowNs: UInt64) -> Bool {
    handshakeLevel.take(1, nowNs: nowNs, rate: handshakeRate)
  }

  func takeSourceToken(_ ip: UInt32, nowNs: UInt64) -> Bool {
    let h = Int((ip &* 2_654_435_761) >> 22) & (SessionTable.sourceSlots - 1)
    if sourceKeys[h] != ip {  // a new source (or a collision): it starts with a full burst
      sourceKeys[h] = ip
      sourceLevels[h] = BucketLevel()
    }
    return sourceLevels[h].take(1, nowNs: nowNs, rate: sourceRate)
  }
}
