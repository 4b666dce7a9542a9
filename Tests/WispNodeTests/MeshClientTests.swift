// The client library: path choice by RTT, and failover when a relay of the path dies,
// on the in-memory network with real nodes.
import Testing
import CPosix
import WispCore
import WispOS
import WispTLS
import WispNode
import WispClient
import WispTestSupport

@Suite struct MeshClientTests {
  func peer(_ name: String, _ port: UInt16, rtt: UInt32, alive: Bool = true) -> MeshPeer {
    var p = MeshPeer(name: name, endpoint: Endpoint(ip: 0x7F00_0001, port: port), key: nil)
    p.rttUs = rtt
    p.alive = alive
    return p
  }

  @Test func cheapestPathsFirstExitRulesAndExclusions() throws {
    let net = MemoryNetwork()
    let client = CircuitClient(socket: try net.endpoint(Endpoint(ip: 0x7F00_0001, port: 5000)))
    let peers = [peer("r1", 1, rtt: 400), peer("r2", 2, rtt: 100), peer("r3", 3, rtt: 300), peer("r4", 4, rtt: 50),
                 peer("r5", 5, rtt: 10, alive: false)]
    let mesh = MeshClient(peers: peers, hops: 3, exitVia: nil, exit: Endpoint(ip: 0x7F00_0001, port: 9000), client: client,
                          probeSocket: try net.endpoint(Endpoint(ip: 0x7F00_0001, port: 5001)), silenceMs: 500)
    let c = mesh.candidates(exclude: [])
    // 4 alive peers, 3 hops: each of 4 exits with one pair of the other 3 = 12 paths.
    #expect(c.count == 12)
    #expect(c.first?.cost == 450 && c.first?.path.contains(4) == false)  // r4+r2+r3, the dead r5 never
    #expect(c.allSatisfy { !$0.path.contains(4) })
    #expect(zip(c, c.dropFirst()).allSatisfy { $0.cost <= $1.cost })
    #expect(c[0].path.first == 3)  // the cheapest first hop first
    #expect(c.allSatisfy { p in p.path.count < 3 || peers[p.path[0]].rttUs <= peers[p.path[1]].rttUs })  // non-exit relays by RTT
    // Excluding a relay, and a relay refused as an exit.
    #expect(mesh.candidates(exclude: [1]).allSatisfy { !$0.path.contains(1) })
    mesh.peers[2].noExit = true
    #expect(mesh.candidates(exclude: []).allSatisfy { $0.path.last != 2 })
    // --exit-via: every path ends there.
    let via = MeshClient(peers: peers, hops: 2, exitVia: 0, exit: Endpoint(ip: 0x7F00_0001, port: 9000), client: client,
                         probeSocket: try net.endpoint(Endpoint(ip: 0x7F00_0001, port: 5002)), silenceMs: 500)
    #expect(via.candidates(exclude: []).allSatisfy { $0.path.last == 0 && $0.path.count == 2 })
    #expect(via.candidates(exclude: [0]).isEmpty)
    // A DTLS first hop must be pinned (no --trust-first-hop): only r2 has a key.
    mesh.peers[2].noExit = false
    mesh.peers[1].key = Fingerprint(hex: String(repeating: "ab", count: 32))
    mesh.firstHopNeedsKey = true
    let pinned = mesh.candidates(exclude: [])
    #expect(pinned.count == 4 && pinned.allSatisfy { $0.path[0] == 1 })
  }

  /// RTT probes reach a node with `links = required`, which answers no plain PING: its
  /// stateless HelloVerifyRequest answers the probe's ClientHello (HelloProbe.swift). A node
  /// without sessions answers the PING. Neither keeps any state for the probe.
  @Test func probesReachNodesThatRequireLinks() throws {
    let net = MemoryNetwork()
    var template = Array("/tmp/wisp-mesh-probe-XXXXXX".utf8CString)
    let root = String(cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
    let required = try TestNode(name: "req", endpoint: Endpoint(ip: 0x7F00_0001, port: 7501), network: net,
                                directory: "\(root)/req", exits: [], window: 0)
    try required.link([], directory: "\(root)/req", required: true)
    let plain = try TestNode(name: "plain", endpoint: Endpoint(ip: 0x7F00_0001, port: 7502), network: net,
                             directory: "\(root)/plain", exits: [], window: 0)
    try required.start()
    try plain.start()
    defer { required.stop(); plain.stop() }
    let peers = [MeshPeer(name: "req", endpoint: Endpoint(ip: 0x7F00_0001, port: 7501), key: nil),
                 MeshPeer(name: "plain", endpoint: Endpoint(ip: 0x7F00_0001, port: 7502), key: nil),
                 MeshPeer(name: "nobody", endpoint: Endpoint(ip: 0x7F00_0001, port: 7503), key: nil)]
    let client = CircuitClient(socket: try net.endpoint(Endpoint(ip: 0x7F00_0001, port: 5000)))
    let mesh = MeshClient(peers: peers, hops: 1, exitVia: nil, exit: Endpoint(ip: 0x7F00_0001, port: 9000), client: client,
                          probeSocket: try net.endpoint(Endpoint(ip: 0x7F00_0001, port: 5001)), silenceMs: 500)
    mesh.probe(rounds: 2, waitMs: 500)
    #expect(mesh.peers[0].alive && mesh.peers[1].alive && !mesh.peers[2].alive, "\(mesh.probeReport())")
    let s = required.snapshot()
    #expect(s.links.helloVerifyRequests >= 2 && s.sessionsEstablished == 0 && s.sessionsHalfOpen == 0, "cookie answers, no session")
  }

  @Test func aDeadRelayOnThePathIsRoutedAround() throws {
    let net = MemoryNetwork()
    let echoEndpoint = Endpoint(ip: 0x7F00_0001, port: 9000)
    var template = Array("/tmp/wisp-mesh-client-XXXXXX".utf8CString)
    let root = String(cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
    var nodes: [TestNode] = []
    for i in 0..<4 {
      nodes.append(try TestNode(name: "r\(i + 1)", endpoint: Endpoint(ip: 0x7F00_0001, port: UInt16(7401 + i)), network: net,
                                directory: "\(root)/r\(i + 1)", exits: [echoEndpoint], window: 0))
    }
    let echo = try EchoService(try net.endpoint(echoEndpoint))
    for n in nodes { try n.start() }
    var stopped: Set<Int> = []
    defer {
      for (i, n) in nodes.enumerated() where !stopped.contains(i) { n.stop() }
      echo.stop()
    }
    let peers = nodes.enumerated().map { i, n in
      MeshPeer(name: n.name, endpoint: Endpoint(ip: 0x7F00_0001, port: UInt16(7401 + i)), key: n.credit.fingerprint)
    }
    let client = CircuitClient(socket: try net.endpoint(Endpoint(ip: 0x7F00_0001, port: 5000)))
    let mesh = MeshClient(peers: peers, hops: 3, exitVia: nil, exit: echoEndpoint, client: client,
                          probeSocket: try net.endpoint(Endpoint(ip: 0x7F00_0001, port: 5001)), silenceMs: 300)
    #expect(mesh.start())
    #expect(mesh.path.count == 3 && client.sealed)
    #expect(mesh.peers.allSatisfy { $0.alive })
    // Traffic; then the middle relay of the path dies (its loop stops reading).
    var seq: UInt64 = 0
    func run(ms: UInt64) {
      let until = wisp_monotonic_ns() + ms * 1_000_000
      while wisp_monotonic_ns() < until {
        client.send(seq: seq, size: 200)
        seq += 1
        client.receiveEchoes(waitMs: 5)
        _ = mesh.watch(wisp_monotonic_ns())
      }
    }
    run(ms: 300)
    let before = client.received
    #expect(before > 10)
    let dead = mesh.path[1]
    nodes[dead].stop()
    stopped.insert(dead)
    run(ms: 2500)
    #expect(mesh.reroutes == 1)
    #expect(!mesh.path.contains(dead) && mesh.path.count == 3)
    #expect(!mesh.peers[dead].alive)
    #expect(client.received > before + 10, "no echoes after the reroute")
    #expect(client.duplicates == 0 && client.badSeals == 0)
  }
}
