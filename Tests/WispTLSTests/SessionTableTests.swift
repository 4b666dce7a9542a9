import Testing
@testable import WispTLS
import WispCore
import WispOS
import CPosix

/// Two session tables (two nodes) and any number of extra endpoints, wired through one
/// in-memory network on a fake clock.
final class Mesh {
  var nowNs: UInt64 = 1_000_000_000
  /// (from, to, datagram) in flight.
  var inFlight: [(Endpoint, Endpoint, [UInt8])] = []
  var tables: [(Endpoint, SessionTable)] = []
  var delivered: [(Endpoint, Endpoint, [UInt8])] = []  // (at, from, frame)
  /// Datagrams to endpoints with no table (spoofed sources).
  var lost: [(Endpoint, [UInt8])] = []
  /// Tests run in parallel: each mesh has its own random generator (CTR_DRBG is not thread-safe).
  let random = try! RandomGenerator()

  func add(_ at: Endpoint, identity: Identity, peers: [LinkPeer], limits: SessionLimits = SessionLimits()) -> SessionTable {
    let t = try! SessionTable(identity: identity, random: random, peers: peers, limits: limits,
                              prefersChaCha: true, now: { [unowned self] in self.nowNs })
    t.sendDatagram = { [unowned self] d, to in self.inFlight.append((at, to, Array(d))); return true }
    t.deliverFrame = { [unowned self] f, from in self.delivered.append((at, from, Array(f))) }
    tables.append((at, t))
    return t
  }

  /// Delivers everything in flight (and what that causes), polling every table each round.
  func run(rounds: Int = 40, stepNs: UInt64 = 60_000_000, drop: ((Endpoint, Endpoint, [UInt8]) -> Bool)? = nil) {
    for _ in 0..<rounds {
      nowNs += stepNs
      for (_, t) in tables { t.poll(nowNs: nowNs) }
      let batch = inFlight
      inFlight = []
      for (from, to, d) in batch {
        if let drop, drop(from, to, d) { continue }
        guard let t = tables.first(where: { $0.0 == to })?.1 else { lost.append((to, d)); continue }
        d.withUnsafeBytes { t.receive($0, from: from, nowNs: nowNs) }
      }
    }
  }

  /// Runs `rounds` rounds one at a time; returns the longest run of consecutive rounds
  /// after which `t` had an established session.
  func runCountingLongestUp(_ t: SessionTable, rounds: Int) -> Int {
    var longest = 0, current = 0
    for _ in 0..<rounds {
      run(rounds: 1)
      current = t.establishedSessions > 0 ? current + 1 : 0
      longest = max(longest, current)
    }
    return longest
  }
}

let nodeA = Endpoint(ip: 0x7f00_0001, port: 7401)
let nodeB = Endpoint(ip: 0x7f00_0001, port: 7402)
nonisolated(unsafe) let identityA = newIdentity()
nonisolated(unsafe) let identityB = newIdentity()

func linkedPair(limits: SessionLimits = SessionLimits()) -> (Mesh, SessionTable, SessionTable) {
  let mesh = Mesh()
  let a = mesh.add(nodeA, identity: identityA, peers: [LinkPeer(name: "b", endpoint: nodeB, fingerprint: identityB.fingerprint)], limits: limits)
  let b = mesh.add(nodeB, identity: identityB, peers: [LinkPeer(name: "a", endpoint: nodeA, fingerprint: identityA.fingerprint)], limits: limits)
  mesh.run(rounds: 80)  // the fallback dial is 3 s away at most
  return (mesh, a, b)
}

/// The first datagram a DTLS client sends: a ClientHello without cookie.
func clientHello() -> [UInt8] {
  var hello: [UInt8] = []
  let c = try! DTLSConfig(options: options(.client, pin: nil), identity: clientIdentity, random: testRandom)
  let s = try! DTLSSession(config: c, peerIP: 1, peerPort: 1, now: { 0 }, send: { hello = Array($0); return true }, deliver: { _ in })
  s.step()
  return hello
}

@Suite struct SessionTableTests {
  @Test func pinnedNodesLinkUpOnceAndCarryFramesSealed() throws {
    let (mesh, a, b) = linkedPair()
    #expect(a.establishedSessions == 1 && b.establishedSessions == 1)
    #expect(a.links.count == 1 && b.links.count == 1)
    // Exactly one of them initiated.
    #expect((a.links[0].role == .client) != (b.links[0].role == .client))
    #expect(a.links[0].peer == 0 && b.links[0].peer == 0)
    let frame: [UInt8] = [0xD2, 0x05, 0, 8, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    let took = frame.withUnsafeBytes { a.seal($0, to: nodeB) }
    #expect(took)
    // On the wire it is a DTLS application record, not the frame.
    #expect(mesh.inFlight.count == 1 && mesh.inFlight[0].2[0] == 23)
    #expect(!mesh.inFlight[0].2.contains(0xD2) || mesh.inFlight[0].2.count != frame.count)
    mesh.run(rounds: 1)
    #expect(mesh.delivered.count == 1)
    #expect(mesh.delivered[0].0 == nodeB && mesh.delivered[0].1 == nodeA && mesh.delivered[0].2 == frame)
    // A plain frame from a peer that has a session is refused and counted.
    #expect(!b.admitsPlain(from: nodeA, type: FrameType.data.rawValue))
    #expect(b.admitsPlain(from: nodeA, type: FrameType.ping.rawValue))  // RTT probes
    #expect(b.counters[.plainOnSession] == 1)
    #expect(b.admitsPlain(from: Endpoint(ip: 0x7f00_0009, port: 9), type: FrameType.data.rawValue))
    // Nothing to seal for an address without a session.
    #expect(!frame.withUnsafeBytes { a.seal($0, to: Endpoint(ip: 0x7f00_0009, port: 9)) })
  }

  /// The relay loop's gate (LinkLayer.swift) is cleared exactly while admitsPlain and seal
  /// pass every frame as it is: no session established and sessions optional.
  @Test func theLoopsGateFollowsTheEarlyAnswers() throws {
    let mesh = Mesh()
    let a = mesh.add(nodeA, identity: identityA, peers: [LinkPeer(name: "b", endpoint: nodeB, fingerprint: identityB.fingerprint)])
    let b = mesh.add(nodeB, identity: identityB, peers: [LinkPeer(name: "a", endpoint: nodeA, fingerprint: identityA.fingerprint)])
    let ga = LinkGate(), gb = LinkGate()
    a.gate = ga; a.updateGate()
    b.gate = gb; b.updateGate()
    let stranger = Endpoint(ip: 0x7f00_0009, port: 9)
    let frame: [UInt8] = [0xD2, 0x05, 0, 8, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    #expect(!ga.judges && !gb.judges)
    #expect(b.admitsPlain(from: nodeA, type: FrameType.data.rawValue))
    mesh.run(rounds: 80)
    #expect(a.establishedSessions == 1 && b.establishedSessions == 1)
    #expect(ga.judges && gb.judges)
    #expect(!b.admitsPlain(from: nodeA, type: FrameType.data.rawValue))  // what the gate lets the loop ask
    #expect(frame.withUnsafeBytes { b.seal($0, to: nodeA) })
    b.remove(0, why: nil)
    #expect(b.establishedSessions == 0 && !gb.judges && ga.judges)
    #expect(b.admitsPlain(from: nodeA, type: FrameType.data.rawValue))
    #expect(!frame.withUnsafeBytes { b.seal($0, to: nodeA) })
    // Sessions required: every plain frame is judged, with or without a session.
    var required = SessionLimits()
    required.required = true
    let c = mesh.add(Endpoint(ip: 0x7f00_0001, port: 7403), identity: newIdentity(), peers: [], limits: required)
    let gc = LinkGate()
    gc.judges = false
    c.gate = gc; c.updateGate()
    #expect(gc.judges && !c.admitsPlain(from: stranger, type: FrameType.data.rawValue))
    // A shard without sessions: judged while it has node links or sessions are required.
    let plain = PlainLinks(required: false, nodeLinks: [])
    let gp = LinkGate()
    plain.gate = gp; plain.updateGate()
    #expect(!gp.judges && plain.admitsPlain(from: nodeA, type: FrameType.data.rawValue))
    plain.update(nodeLinks: [nodeA])
    #expect(gp.judges && !plain.admitsPlain(from: nodeA, type: FrameType.data.rawValue))
    plain.update(nodeLinks: [])
    #expect(!gp.judges)
    let strict = PlainLinks(required: true, nodeLinks: [])
    let gs = LinkGate()
    gs.judges = false
    strict.gate = gs; strict.updateGate()
    #expect(gs.judges && !strict.admitsPlain(from: stranger, type: FrameType.data.rawValue))
  }

  @Test func aWrongPinIsRefusedAndCounted() throws {
    let mesh = Mesh()
    let stranger = newIdentity()
    let a = mesh.add(nodeA, identity: identityA, peers: [LinkPeer(name: "b", endpoint: nodeB, fingerprint: stranger.fingerprint)])
    let b = mesh.add(nodeB, identity: identityB, peers: [LinkPeer(name: "a", endpoint: nodeA, fingerprint: identityA.fingerprint)])
    let bUp = mesh.runCountingLongestUp(b, rounds: 400)  // 24 s: dials, refusals and redials with jitter
    #expect(a.establishedSessions == 0)
    // A refuses B's key whoever dials: as client by its pin, as server because B's address is
    // a configured node that must present the pinned key (its close_notify ends B's side).
    #expect(a.counters[.notPinned] >= 1)
    #expect(bUp <= 2)
  }

  /// Three identities where A's key and the (wrong) key A pinned for B order as `aBelowPin`,
  /// and B's key orders below A's as `bBelowA`.
  func orderedIdentities(aBelowPin: Bool, bBelowA: Bool) -> (Identity, Identity, Identity) {
    while true {
      let a = newIdentity(), b = newIdentity(), pin = newIdentity()
      if a.fingerprint.bytes.lexicographicallyPrecedes(pin.fingerprint.bytes) == aBelowPin,
         b.fingerprint.bytes.lexicographicallyPrecedes(a.fingerprint.bytes) == bBelowA { return (a, b, pin) }
    }
  }

  /// With a wrong pin each end compares its key with a different pair of keys, so both may
  /// believe they are the lower one and dial at once (or both wait, then dial at once). The
  /// crossed dial is broken by the ClientHello randoms, which both ends see alike: a
  /// handshake happens and the wrong pin is reported, in every ordering, the first time.
  @Test(arguments: [true, false])
  func aWrongPinIsReportedWhicheverWayTheKeysOrder(bothBelieveLower: Bool) throws {
    let (ia, ib, pin) = orderedIdentities(aBelowPin: bothBelieveLower, bBelowA: bothBelieveLower)
    let mesh = Mesh()
    let a = mesh.add(nodeA, identity: ia, peers: [LinkPeer(name: "b", endpoint: nodeB, fingerprint: pin.fingerprint)])
    let b = mesh.add(nodeB, identity: ib, peers: [LinkPeer(name: "a", endpoint: nodeA, fingerprint: ia.fingerprint)])
    // Both dial in the same round (at once, or both after the 3 s fallback): 4 s is enough for
    // one handshake, less than the 10 s after which a dial that got no answer times out.
    let bUp = mesh.runCountingLongestUp(b, rounds: 70)
    #expect(a.counters[.notPinned] >= 1)
    #expect(a.establishedSessions == 0)
    // When B dialled, its side ends established just before A's close_notify arrives.
    #expect(bUp <= 2)
    #expect(a.counters.crossedDialsKept + b.counters.crossedDialsKept >= 1)
  }

  /// Both ends of a correctly pinned pair dial at the same instant: exactly one dial wins,
  /// the other end serves it, and one session links them.
  @Test func crossedDialsEndInOneSession() throws {
    let mesh = Mesh()
    let a = mesh.add(nodeA, identity: identityA, peers: [LinkPeer(name: "b", endpoint: nodeB, fingerprint: identityB.fingerprint)])
    let b = mesh.add(nodeB, identity: identityB, peers: [LinkPeer(name: "a", endpoint: nodeA, fingerprint: identityA.fingerprint)])
    a.applyInlineResults(); b.applyInlineResults()
    a.dial(0, nowNs: mesh.nowNs)
    b.dial(0, nowNs: mesh.nowNs)
    a.applyInlineResults(); b.applyInlineResults()
    #expect(a.links.count == 1 && a.links[0].helloRandom != nil && b.links[0].helloRandom != nil)
    mesh.run(rounds: 30)  // 1.8 s: before either end's own dial schedule
    #expect(a.establishedSessions == 1 && b.establishedSessions == 1)
    #expect((a.links[0].role == .client) != (b.links[0].role == .client))
    // The winner ignored the loser's hello; the loser served the winner's.
    #expect((a.counters.crossedDialsKept > 0) != (b.counters.crossedDialsKept > 0))
    let winner = a.counters.crossedDialsKept > 0 ? a : b
    #expect(winner.links[0].role == .client)
  }

  @Test func spoofedHellosGetOneSmallAnswerAndNoState() throws {
    let mesh = Mesh()
    let a = mesh.add(nodeA, identity: identityA, peers: [])
    let hello = clientHello()
    for i in 0..<200 {
      let spoofed = Endpoint(ip: 0x7f0a_0000 + UInt32(i), port: 5000)
      hello.withUnsafeBytes { a.receive($0, from: spoofed, nowNs: mesh.nowNs) }
    }
    #expect(a.links.isEmpty)
    #expect(a.counters.helloVerifyRequests == 200)
    #expect(mesh.inFlight.count == 200)
    #expect(mesh.inFlight.allSatisfy { $0.2.count <= hello.count && $0.2[0] == 22 && $0.2[13] == 3 })
    #expect(a.counters.unverifiedBytesOut <= a.counters.unverifiedBytesIn)
    // A truncated ClientHello gets no answer at all.
    Array(hello[0..<40]).withUnsafeBytes { a.receive($0, from: Endpoint(ip: 0x7f0b_0000, port: 1), nowNs: mesh.nowNs) }
    #expect(a.counters.helloVerifyRequests == 200)
    #expect(a.counters[.badHello] == 1)
    // Records from an address without a session are dropped.
    [23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0].withUnsafeBytes { a.receive($0, from: nodeB, nowNs: mesh.nowNs) }
    #expect(a.counters[.noSession] == 1)
  }

  @Test func aClientWithACookieIsAdmittedAndItsKeyLearned() throws {
    let mesh = Mesh()
    let a = mesh.add(nodeA, identity: identityA, peers: [])
    let client = newIdentity()
    // A client is a table with node A as its only peer (it dials; A accepts any key).
    let c = mesh.add(nodeB, identity: client, peers: [LinkPeer(name: "a", endpoint: nodeA, fingerprint: identityA.fingerprint)])
    mesh.run(rounds: 80)
    #expect(c.establishedSessions == 1 && a.establishedSessions == 1)
    #expect(a.links[0].peer == nil)  // a client, not a node link
    #expect(a.links[0].session.peerFingerprint == client.fingerprint)
    #expect(a.counters.helloVerifyRequests >= 1 && a.counters.handshakesFull == 1)
  }

  @Test func admissionLimitsRefuseByReasonAndKeepEstablishedSessions() throws {
    var limits = SessionLimits()
    limits.halfOpen = 2
    limits.perSourcePerSecond = 0
    limits.handshakesPerSecond = 0
    let (mesh, a, b) = linkedPair(limits: limits)
    #expect(a.establishedSessions == 1)
    // Many clients complete the cookie exchange, then never finish their handshakes.
    var clients: [SessionTable] = []
    for i in 0..<6 {
      let e = Endpoint(ip: 0x7f14_0000 + UInt32(i), port: 6000)
      clients.append(mesh.add(e, identity: clientIdentity, peers: [LinkPeer(name: "a", endpoint: nodeA, fingerprint: identityA.fingerprint)]))
    }
    // Let ClientHellos and HelloVerifyRequests through, then cut everything from A to clients.
    mesh.run(rounds: 80) { from, to, d in from == nodeA && to != nodeB && d[13] != 3 }
    #expect(a.counters[.halfOpenFull] > 0)
    #expect(a.halfOpenSessions <= 2)
    // The node link still carries frames.
    let frame: [UInt8] = [0xD2, 0x05, 0, 8, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9]
    mesh.delivered = []
    #expect(frame.withUnsafeBytes { b.seal($0, to: nodeA) })
    mesh.run(rounds: 1)
    #expect(mesh.delivered.contains { $0.0 == nodeA && $0.2 == frame })
  }

  /// One client handshake from `e` up to the ClientHello with its cookie, fed to `table`.
  func cookieHello(_ table: SessionTable, _ mesh: Mesh, from e: Endpoint, config: DTLSConfig) throws -> DTLSSession {
    var out: [[UInt8]] = []
    let s = try DTLSSession(config: config, peerIP: nodeA.ip, peerPort: nodeA.port, now: { mesh.nowNs },
                            send: { out.append(Array($0)); return true }, deliver: { _ in })
    s.step()
    for d in out { d.withUnsafeBytes { table.receive($0, from: e, nowNs: mesh.nowNs) } }
    let answers = mesh.inFlight.filter { $0.1 == e }
    mesh.inFlight.removeAll { $0.1 == e }
    out = []
    for d in answers { d.2.withUnsafeBytes { s.receive($0) } }
    s.step()
    for d in out { d.withUnsafeBytes { table.receive($0, from: e, nowNs: mesh.nowNs) } }
    return s
  }

  @Test func aConfiguredNodeIsAdmittedWhileStrangersSpendTheBudget() throws {
    var limits = SessionLimits()
    limits.handshakesPerSecond = 1  // one token to start with
    limits.halfOpen = 1
    let mesh = Mesh()
    let a = mesh.add(nodeA, identity: identityA, peers: [LinkPeer(name: "b", endpoint: nodeB, fingerprint: identityB.fingerprint)],
                     limits: limits)
    let config = try DTLSConfig(options: options(.client, pin: identityA), identity: clientIdentity, random: mesh.random)
    var keep: [DTLSSession] = []
    keep.append(try cookieHello(a, mesh, from: Endpoint(ip: 0x7f17_0001, port: 1), config: config))
    keep.append(try cookieHello(a, mesh, from: Endpoint(ip: 0x7f17_0002, port: 1), config: config))
    #expect(a.counters.handshakesAdmitted == 1)
    #expect(a.counters[.handshakeRate] == 1)
    // Budget spent and half-open full: node B (configured) still gets in.
    keep.append(try cookieHello(a, mesh, from: nodeB, config: config))
    #expect(a.counters.handshakesAdmitted == 2)
    #expect(a.halfOpenSessions == 2)
    #expect(a.counters[.handshakeRate] == 1 && a.counters[.halfOpenFull] == 0)
  }

  /// One address cannot hold more than its share of sessions, however slowly it asks
  /// (issue 14, finding 4); other addresses and configured peers still get in.
  @Test func oneAddressHoldsAtMostItsShareOfSessions() throws {
    var limits = SessionLimits()
    limits.perSourcePerSecond = 0  // no rate limit: only the count is tested
    limits.handshakesPerSecond = 0
    limits.halfOpen = 64
    limits.perSourceSessions = 3
    let mesh = Mesh()
    let a = mesh.add(nodeA, identity: identityA, peers: [LinkPeer(name: "b", endpoint: nodeB, fingerprint: identityB.fingerprint)],
                     limits: limits)
    let config = try DTLSConfig(options: options(.client, pin: identityA), identity: clientIdentity, random: mesh.random)
    var keep: [DTLSSession] = []
    // Ten from the configured peer's own address (other ports), then ten from another one.
    for port in UInt16(9000)..<9010 { keep.append(try cookieHello(a, mesh, from: Endpoint(ip: nodeB.ip, port: port), config: config)) }
    for port in UInt16(9000)..<9010 { keep.append(try cookieHello(a, mesh, from: Endpoint(ip: 0x7f18_0001, port: port), config: config)) }
    #expect(a.counters.handshakesAdmitted == 6)
    #expect(a.counters[.sourceFull] == 14)
    #expect(a.links.filter { $0.endpoint.ip == 0x7f18_0001 }.count == 3)
    // A third address, and the configured peer (exempt, at an address already full).
    keep.append(try cookieHello(a, mesh, from: Endpoint(ip: 0x7f18_0002, port: 1), config: config))
    keep.append(try cookieHello(a, mesh, from: nodeB, config: config))
    #expect(a.counters.handshakesAdmitted == 8 && a.counters[.sourceFull] == 14)
    // A session that goes frees its address's share: the half-open ones expire.
    mesh.run(rounds: 250, stepNs: 60_000_000)
    #expect(a.links.filter { $0.endpoint.ip == 0x7f18_0001 }.isEmpty)
    #expect(a.perSource[0x7f18_0001] == nil)
    keep.append(try cookieHello(a, mesh, from: Endpoint(ip: 0x7f18_0001, port: 9100), config: config))
    #expect(a.counters.handshakesAdmitted == 9 && a.counters[.sourceFull] == 14)
  }

  @Test func perSourceRateRefusesRepeatedHandshakes() throws {
    var limits = SessionLimits()
    limits.perSourcePerSecond = 1  // burst 2
    let mesh = Mesh()
    let a = mesh.add(nodeA, identity: identityA, peers: [], limits: limits)
    let config = try DTLSConfig(options: options(.client, pin: identityA), identity: clientIdentity, random: mesh.random)
    // Five handshakes from one address (five ports), all at once: cookie exchange, then admission.
    var sessions: [DTLSSession] = []
    for port in UInt16(7000)..<7005 {
      let e = Endpoint(ip: 0x7f15_0001, port: port)
      var out: [[UInt8]] = []
      let s = try DTLSSession(config: config, peerIP: nodeA.ip, peerPort: nodeA.port, now: { mesh.nowNs },
                              send: { out.append(Array($0)); return true }, deliver: { _ in })
      sessions.append(s)
      s.step()
      for d in out { d.withUnsafeBytes { a.receive($0, from: e, nowNs: mesh.nowNs) } }
      let answers = mesh.inFlight.filter { $0.1 == e }
      mesh.inFlight = []
      out = []
      for d in answers { d.2.withUnsafeBytes { s.receive($0) } }
      s.step()  // the ClientHello with the cookie
      for d in out { d.withUnsafeBytes { a.receive($0, from: e, nowNs: mesh.nowNs) } }
    }
    #expect(a.counters.helloVerifyRequests == 5)
    #expect(a.counters.handshakesAdmitted == 2)
    #expect(a.counters[.sourceRate] == 3)
    #expect(a.halfOpenSessions == 2)
  }

  @Test func rekeyKeepsFramesFlowingAndResumes() throws {
    var limits = SessionLimits()
    limits.rekeyBytes = 4000
    let (mesh, a, b) = linkedPair(limits: limits)
    let initiator = a.links[0].role == .client ? a : b
    let other = initiator === a ? b : a
    let to = initiator === a ? nodeB : nodeA
    let from = initiator === a ? nodeA : nodeB
    var frame = [UInt8](repeating: 7, count: 1000)
    frame[0] = 0xD2
    var sent = 0
    for i in 0..<12 {
      frame[1] = UInt8(i)
      #expect(frame.withUnsafeBytes { initiator.seal($0, to: to) })
      sent += 1
      // Records from before the rekey still in flight when it completes: delivered late.
      mesh.run(rounds: 1)
    }
    mesh.run(rounds: 20)
    #expect(initiator.counters.rekeys >= 1 && other.counters.rekeys >= 1)
    #expect(initiator.counters.handshakesResumed >= 1)
    #expect(mesh.delivered.filter { $0.1 == from }.count == sent)
    #expect(other.establishedSessions == 1 && initiator.establishedSessions == 1)
  }

  @Test func aLinkThatFailsIsRedialledWithItsTicket() throws {
    let (mesh, a, b) = linkedPair()
    let initiator = a.links[0].role == .client ? a : b
    let other = initiator === a ? b : a
    // The peer goes silent and forgets the session (as after a network outage): the
    // initiator's session ends, and it dials again, resuming with the remembered ticket.
    other.remove(0, why: nil)
    initiator.links[0].session.failByTimeout()
    initiator.links[0].session.close()
    mesh.run(rounds: 160)  // 9.6 s: the initiator redials within 1-2 s, the other not before 4 s
    #expect(initiator.establishedSessions == 1 && other.establishedSessions == 1)
    #expect(initiator.counters.handshakesResumed == 1)
    #expect(other.counters.handshakesResumed == 1)
  }

  @Test func shutdownSaysCloseNotify() throws {
    let (mesh, a, b) = linkedPair()
    a.shutdown()
    #expect(a.counters.closeNotifySent == 1)
    mesh.run(rounds: 2)
    #expect(b.establishedSessions == 0)
    #expect(b.counters.closedByPeer == 1)
  }

  /// The handshakes on a worker thread of their own, as in a node: results come back
  /// through a mailbox the test drains for each table (as shard 0 does), flights with them.
  @Test func aWorkerThreadLinksNodesAndRekeysUnderTraffic() throws {
    var limits = SessionLimits()
    limits.rekeyBytes = 8000  // one rekey, after 8 of the 14 frames
    let mesh = Mesh()
    let a = mesh.add(nodeA, identity: identityA, peers: [LinkPeer(name: "b", endpoint: nodeB, fingerprint: identityB.fingerprint)], limits: limits)
    let b = mesh.add(nodeB, identity: identityB, peers: [LinkPeer(name: "a", endpoint: nodeA, fingerprint: identityA.fingerprint)], limits: limits)
    var boxes: [Mailbox<HandshakeResult>] = []
    for t in [a, b] {
      let box = try Mailbox<HandshakeResult>(capacity: 256)
      boxes.append(box)
      #expect(t.startWorker(post: { box.post($0) }, sendFd: nil) == 0)
    }
    defer { a.shutdown(); b.shutdown() }
    /// Rounds of the mesh with the workers' answers applied on this thread.
    func turn(_ rounds: Int) {
      for _ in 0..<rounds {
        for (i, t) in [a, b].enumerated() {
          _ = wisp_poll_in(boxes[i].fd, 2)
          boxes[i].acknowledge()
          while let r = boxes[i].take() { t.finish(r) }
        }
        mesh.run(rounds: 1)
      }
    }
    for _ in 0..<400 where !(a.establishedSessions == 1 && b.establishedSessions == 1) { turn(1) }
    #expect(a.establishedSessions == 1 && b.establishedSessions == 1)
    #expect(a.worker.steps > 0 && b.worker.steps > 0)
    let initiator = a.links[0].role == .client ? a : b
    let other = initiator === a ? b : a
    let to = initiator === a ? nodeB : nodeA
    let from = initiator === a ? nodeA : nodeB
    var frame = [UInt8](repeating: 7, count: 1000)
    frame[0] = 0xD2
    for i in 0..<14 {
      frame[1] = UInt8(i)
      #expect(frame.withUnsafeBytes { initiator.seal($0, to: to) })
      turn(1)
    }
    for _ in 0..<400 where !(initiator.counters.rekeys >= 1 && other.counters.rekeys >= 1
                             && a.halfOpenSessions == 0 && b.halfOpenSessions == 0) { turn(1) }
    #expect(initiator.counters.rekeys >= 1 && other.counters.rekeys >= 1)
    #expect(initiator.counters.handshakesResumed >= 1)
    // Every frame arrives once, whether it crossed the hand-over of the new session or not.
    #expect(mesh.delivered.filter { $0.1 == from }.count == 14)
    #expect(initiator.counters[.workerBusy] == 0 && other.counters[.workerBusy] == 0)
    #expect(a.halfOpenSessions == 0 && b.halfOpenSessions == 0)
  }

  /// A worker that does not keep up: admitted handshakes beyond its inbox are refused and
  /// counted (`worker_busy`); nothing waits, and an established link keeps forwarding.
  @Test func aBusyWorkerRefusesHandshakesAndForwardingGoesOn() throws {
    var limits = SessionLimits()
    limits.perSourcePerSecond = 0
    limits.handshakesPerSecond = 0
    limits.halfOpen = 64
    let (mesh, a, b) = linkedPair(limits: limits)
    try a.worker.queueOnly(capacity: 2)
    let config = try DTLSConfig(options: options(.client, pin: identityA), identity: clientIdentity, random: mesh.random)
    var keep: [DTLSSession] = []
    let admitted = a.counters.handshakesAdmitted  // the node link's, if A served it
    for i in 0..<5 { keep.append(try cookieHello(a, mesh, from: Endpoint(ip: 0x7f19_0001 + UInt32(i), port: 1), config: config)) }
    #expect(a.counters.handshakesAdmitted - admitted == 2)
    #expect(a.counters[.workerBusy] == 3)
    #expect(a.links.count == 3 && a.halfOpenSessions == 2)  // the node link and two waiting
    let frame: [UInt8] = [0xD2, 0x05, 0, 8, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9]
    mesh.delivered = []
    #expect(frame.withUnsafeBytes { b.seal($0, to: nodeA) })
    mesh.run(rounds: 1)
    #expect(mesh.delivered.contains { $0.0 == nodeA && $0.2 == frame })
    // The table gives up on handshakes the worker never answers (half-open limit + grace).
    mesh.run(rounds: 220)
    #expect(a.halfOpenSessions == 0 && a.links.count == 1)
  }
}
