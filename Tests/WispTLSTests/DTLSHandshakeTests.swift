import Testing
@testable import WispTLS
import WispCore

/// Two sessions wired through in-memory datagram queues, on a fake clock.
final class Wire {
  var toServer: [[UInt8]] = []
  var toClient: [[UInt8]] = []
  var nowNs: UInt64 = 1_000_000_000
  var serverReceived: [[UInt8]] = []
  var clientReceived: [[UInt8]] = []
  var dropAll = false
  var sentByClient = 0
}

/// A generator per use: tests run in parallel, and a CTR_DRBG context is not thread-safe.
var testRandom: RandomGenerator { try! RandomGenerator() }
/// A fresh identity, from a generator of its own (tests run in parallel; a CTR_DRBG context
/// must not be shared between threads).
func newIdentity() -> Identity {
  let random = try! RandomGenerator()
  let pem = try! Identity.generateKeyPEM(random: random)
  return try! Identity(keyPEM: pem, certificatePEM: nil, path: "test", random: random)
}
nonisolated(unsafe) let serverIdentity = newIdentity()
nonisolated(unsafe) let clientIdentity = newIdentity()

struct Pair {
  let server: DTLSSession
  let client: DTLSSession
  let wire: Wire

  init(serverOptions: DTLSOptions, clientOptions: DTLSOptions) throws {
    try self.init(serverConfig: try DTLSConfig(options: serverOptions, identity: serverIdentity, random: testRandom),
                  clientConfig: try DTLSConfig(options: clientOptions, identity: clientIdentity, random: testRandom))
  }

  init(serverConfig sc: DTLSConfig, clientConfig cc: DTLSConfig) throws {
    let wire = Wire()
    server = try DTLSSession(config: sc, peerIP: 0x7f00_0001, peerPort: 40000, now: { wire.nowNs },
                             send: { d in if !wire.dropAll { wire.toClient.append(Array(d)) }; return true },
                             deliver: { wire.serverReceived.append(Array($0)) })
    client = try DTLSSession(config: cc, peerIP: 0x7f00_0001, peerPort: 7400, now: { wire.nowNs },
                             send: { d in wire.sentByClient += 1; if !wire.dropAll { wire.toServer.append(Array(d)) }; return true },
                             deliver: { wire.clientReceived.append(Array($0)) })
    self.wire = wire
  }

  /// Moves datagrams both ways until nothing is left to move.
  func pump(rounds: Int = 50) {
    client.step()
    for _ in 0..<rounds {
      if wire.toServer.isEmpty && wire.toClient.isEmpty { return }
      let a = wire.toServer; wire.toServer = []
      for d in a { d.withUnsafeBytes { server.receive($0) } }
      server.step()
      let b = wire.toClient; wire.toClient = []
      for d in b { d.withUnsafeBytes { client.receive($0) } }
      client.step()
    }
  }
}

func options(_ role: DTLSRole, pin: Identity?, chacha: Bool = true) -> DTLSOptions {
  var o = DTLSOptions(role: role, pinned: pin.map { [$0.fingerprint] } ?? [])
  o.prefersChaCha = chacha
  return o
}

@Suite struct DTLSHandshakeTests {
  @Test func mutualAuthenticationAndApplicationData() throws {
    let p = try Pair(serverOptions: options(.server, pin: clientIdentity),
                     clientOptions: options(.client, pin: serverIdentity))
    p.pump()
    #expect(p.server.state == .established, "server: \(p.server.failure?.description ?? "")")
    #expect(p.client.state == .established, "client: \(p.client.failure?.description ?? "")")
    #expect(p.server.helloVerifyRequests == 1, "the server always asks for a cookie first")
    #expect(p.client.peerFingerprint == serverIdentity.fingerprint)
    #expect(p.server.peerFingerprint == clientIdentity.fingerprint)
    #expect(p.client.cipherSuite == "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256")
    #expect(p.client.protocolVersion == "DTLSv1.2")

    try Array("ping".utf8).withUnsafeBytes { try p.client.write($0) }
    p.pump()
    #expect(p.wire.serverReceived == [Array("ping".utf8)])
    try Array("pong".utf8).withUnsafeBytes { try p.server.write($0) }
    p.pump()
    #expect(p.wire.clientReceived == [Array("pong".utf8)])

    p.client.close()
    p.pump()
    #expect(p.server.state == .closed)
    #expect(p.server.closedByPeer)
  }

  @Test func ticketResumptionSkipsTheKeyExchangeAndKeepsThePins() throws {
    let sc = try DTLSConfig(options: options(.server, pin: clientIdentity), identity: serverIdentity, random: testRandom)
    let cc = try DTLSConfig(options: options(.client, pin: serverIdentity), identity: clientIdentity, random: testRandom)
    let first = try Pair(serverConfig: sc, clientConfig: cc)
    first.pump()
    #expect(first.client.state == .established)
    #expect(!first.client.resumed)
    let saved = try #require(first.client.savedSession())
    first.client.close()
    first.pump()

    let second = try Pair(serverConfig: sc, clientConfig: cc)
    try second.client.resume(saved)
    second.pump()
    #expect(second.client.state == .established, "\(second.client.failure?.description ?? "")")
    #expect(second.server.state == .established, "\(second.server.failure?.description ?? "")")
    #expect(second.client.resumed)
    #expect(second.server.resumed)
    #expect(second.server.peerFingerprint == clientIdentity.fingerprint)
    #expect(second.client.peerFingerprint == serverIdentity.fingerprint)

    // A client that no longer pins the server refuses the resumed session too.
    let stranger = newIdentity()
    let strict = try DTLSConfig(options: options(.client, pin: stranger), identity: clientIdentity, random: testRandom)
    let third = try Pair(serverConfig: sc, clientConfig: strict)
    try third.client.resume(saved)
    third.pump()
    #expect(third.client.state == .failed)
  }

  @Test func ticketsFromASeededKeySurviveAServerRestartAndSessionsSurviveTheirFile() throws {
    let random = try RandomGenerator()
    let seed = try #require(random.bytes(32))
    func server(_ seed: [UInt8]?) throws -> DTLSConfig {
      var o = options(.server, pin: clientIdentity)
      o.ticketSeed = seed
      return try DTLSConfig(options: o, identity: serverIdentity, random: random)
    }
    let cc = try DTLSConfig(options: options(.client, pin: serverIdentity), identity: clientIdentity, random: random)
    let first = try Pair(serverConfig: try server(seed), clientConfig: cc)
    first.pump()
    #expect(first.client.state == .established)
    // The client keeps its session in a file (bytes), the server restarts with the same seed.
    let bytes = try #require(first.client.savedSession()?.serialized())
    let restored = try #require(SavedSession(serialized: bytes))
    let second = try Pair(serverConfig: try server(seed), clientConfig: cc)
    try second.client.resume(restored)
    second.pump()
    #expect(second.client.state == .established && second.client.resumed && second.server.resumed == true)
    // Another seed (or none) cannot open the old ticket: a full handshake instead.
    let other = try Pair(serverConfig: try server(try #require(random.bytes(32))), clientConfig: cc)
    try other.client.resume(try #require(SavedSession(serialized: bytes)))
    other.pump()
    #expect(other.client.state == .established && !other.client.resumed)
    // Damaged session bytes are refused, not trusted.
    var bad = bytes
    bad[0] ^= 0xFF
    #expect(SavedSession(serialized: bad) == nil)
  }

  @Test func serverOrderDecidesTheSuite() throws {
    let p = try Pair(serverOptions: options(.server, pin: clientIdentity, chacha: false),
                     clientOptions: options(.client, pin: serverIdentity, chacha: true))
    p.pump()
    #expect(p.client.state == .established)
    #expect(p.client.cipherSuite == "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256")
  }

  @Test func clientRefusesAServerWhoseKeyIsNotPinned() throws {
    let stranger = newIdentity()
    let p = try Pair(serverOptions: options(.server, pin: clientIdentity),
                     clientOptions: options(.client, pin: stranger))
    p.pump()
    #expect(p.client.state == .failed)
    guard case .peerNotPinned(let fp)? = p.client.failure else {
      Issue.record("client failure: \(p.client.failure?.description ?? "none")"); return
    }
    #expect(fp == serverIdentity.fingerprint)
    #expect(p.server.state == .failed, "the server hears the client's alert")
  }

  @Test func serverRefusesAClientWhoseKeyIsNotPinned() throws {
    let stranger = newIdentity()
    let p = try Pair(serverOptions: options(.server, pin: stranger),
                     clientOptions: options(.client, pin: serverIdentity))
    p.pump()
    #expect(p.server.state == .failed)
    guard case .peerNotPinned(let fp)? = p.server.failure else {
      Issue.record("server failure: \(p.server.failure?.description ?? "none")"); return
    }
    #expect(fp == clientIdentity.fingerprint)
    #expect(p.client.state != .established)
  }

  @Test func learnModeRecordsTheServerFingerprint() throws {
    var co = options(.client, pin: nil)
    co.learn = true
    let p = try Pair(serverOptions: options(.server, pin: clientIdentity), clientOptions: co)
    p.pump()
    #expect(p.client.state == .established)
    #expect(p.client.peerFingerprint == serverIdentity.fingerprint)
  }

  @Test func learnModeIsClientOnly() throws {
    var so = options(.server, pin: nil)
    so.learn = true
    let p = try Pair(serverOptions: so, clientOptions: options(.client, pin: serverIdentity))
    p.pump()
    #expect(p.server.state == .failed)
  }

  @Test func lostFlightsAreRetransmittedOnTheCallersClock() throws {
    let p = try Pair(serverOptions: options(.server, pin: clientIdentity),
                     clientOptions: options(.client, pin: serverIdentity))
    p.wire.dropAll = true
    p.client.step()
    #expect(p.wire.sentByClient == 1)
    let deadline = try #require(p.client.deadlineNs)
    #expect(deadline == p.wire.nowNs + 1_000_000_000, "first retransmission after 1 s")
    p.client.handleTimeout()
    #expect(p.wire.sentByClient == 1, "nothing before the deadline")
    p.wire.nowNs = deadline
    p.client.handleTimeout()
    #expect(p.wire.sentByClient == 2)
    // Then the network heals and the handshake completes.
    p.wire.dropAll = false
    p.wire.nowNs += 2_000_000_000
    p.client.handleTimeout()
    p.pump()
    #expect(p.client.state == .established)
    // With everything lost, the doubling timer gives up with a clear error.
    let q = try Pair(serverOptions: options(.server, pin: clientIdentity),
                     clientOptions: options(.client, pin: serverIdentity))
    q.wire.dropAll = true
    q.client.step()
    for _ in 0..<10 {
      guard let d = q.client.deadlineNs else { break }
      q.wire.nowNs = d
      q.client.handleTimeout()
    }
    #expect(q.client.state == .failed)
    guard case .handshakeTimeout? = q.client.failure else {
      Issue.record("failure: \(q.client.failure?.description ?? "none")"); return
    }
  }

  @Test func anIdlePeerEndsAtTheReadTimeoutCountedFromItsLastRecord() throws {
    var so = options(.server, pin: clientIdentity)
    so.readTimeoutMs = 5000
    let p = try Pair(serverOptions: so, clientOptions: options(.client, pin: serverIdentity))
    p.pump()
    #expect(p.server.state == .established)
    // A record through the queue (`receive` + `step`), then one lent (`input`, the relay's path).
    try Array("a".utf8).withUnsafeBytes { try p.client.write($0) }
    p.pump()
    #expect(p.wire.serverReceived == [Array("a".utf8)])
    #expect(p.server.deadlineNs == p.wire.nowNs + 5_000_000_000, "the read timer runs from the last record")
    p.wire.nowNs += 4_000_000_000
    p.server.handleTimeout()
    #expect(p.server.state == .established)
    try Array("b".utf8).withUnsafeBytes { try p.client.write($0) }
    let datagrams = p.wire.toServer
    p.wire.toServer = []
    #expect(datagrams.count == 1)
    for d in datagrams { d.withUnsafeBytes { p.server.input($0) } }
    #expect(p.wire.serverReceived == [Array("a".utf8), Array("b".utf8)])
    let deadline = try #require(p.server.deadlineNs)
    #expect(deadline == p.wire.nowNs + 5_000_000_000, "a record starts the read timeout again")
    p.wire.nowNs = deadline - 1_000_000
    p.server.handleTimeout()
    #expect(p.server.state == .established)
    p.wire.nowNs = deadline
    p.server.handleTimeout()
    #expect(p.server.state == .failed)
    guard case .idleTimeout? = p.server.failure else {
      Issue.record("failure: \(p.server.failure?.description ?? "none")"); return
    }
  }

  @Test func garbageAfterTheHandshakeIsDroppedSilently() throws {
    let p = try Pair(serverOptions: options(.server, pin: clientIdentity),
                     clientOptions: options(.client, pin: serverIdentity))
    p.pump()
    #expect(p.server.state == .established)
    // A forged application-data record (epoch 1) and a truncated header.
    let forged: [UInt8] = [23, 254, 253, 0, 1, 0, 0, 0, 0, 0, 9, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]
    let short: [UInt8] = [22, 254]
    forged.withUnsafeBytes { p.server.receive($0) }
    short.withUnsafeBytes { p.server.receive($0) }
    p.server.step()
    #expect(p.server.state == .established)
    #expect(p.wire.serverReceived.isEmpty)
    try Array("still here".utf8).withUnsafeBytes { try p.client.write($0) }
    p.pump()
    #expect(p.wire.serverReceived == [Array("still here".utf8)])
  }

  @Test func malformedClientHelloFailsOnlyThatServerSession() throws {
    let p = try Pair(serverOptions: options(.server, pin: clientIdentity),
                     clientOptions: options(.client, pin: serverIdentity))
    let junk: [UInt8] = [22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 0, 0, 1, 0]
    junk.withUnsafeBytes { p.server.receive($0) }
    p.server.step()
    #expect(p.server.state == .failed, "a server session before its cookie holds no state worth keeping")
    #expect(p.server.failure != nil)
  }
}
