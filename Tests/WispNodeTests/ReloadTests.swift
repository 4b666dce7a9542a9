// Reload reaches a shard through its mailbox and keeps what runs: circuits to exits that
// stay keep flowing when the exit list is reordered and grows, and the new limits apply;
// a removed destination takes no new circuit.
import Testing
import CPosix
import WispCore
import WispOS
import WispTLS
import WispNode
import WispClient
import WispTestSupport

@Suite struct ReloadTests {
  @Test func reloadKeepsCircuitsAndAppliesTheNewExitList() throws {
    let net = MemoryNetwork()
    let e1 = Endpoint(ip: 0x7F00_0001, port: 9001), e2 = Endpoint(ip: 0x7F00_0001, port: 9002)
    let e3 = Endpoint(ip: 0x7F00_0001, port: 9003)
    let nodeEndpoint = Endpoint(ip: 0x7F00_0001, port: 7401)
    var template = Array("/tmp/wisp-reload-XXXXXX".utf8CString)
    let root = String(cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
    let node = try TestNode(name: "A", endpoint: nodeEndpoint, network: net, directory: root, exits: [e1, e2], window: 0)
    let echo = try EchoService(try net.endpoint(e2))
    try node.start()
    defer { node.stop(); echo.stop() }

    let client = CircuitClient(socket: try net.endpoint(Endpoint(ip: 0x7F00_0001, port: 5000)))
    try client.build(relays: [nodeEndpoint], exit: e2, exitKey: node.credit.fingerprint)
    func exchange(_ n: UInt64) -> UInt64 {
      let before = client.received
      for _ in 0..<n { client.send(seq: client.sent, size: 100) }
      let until = wisp_monotonic_ns() + 2_000_000_000
      while client.received < before + n && wisp_monotonic_ns() < until { client.receiveEchoes(waitMs: 20) }
      return client.received - before
    }
    #expect(exchange(50) == 50)

    // SIGHUP's message: exits reordered, one added, a rate cap set.
    var limits = Limits()
    limits.labAddresses = true
    limits.nodeMbit = 100
    #expect(node.shard.inbox.post(.limits(limits, exits: ExitPolicy(exits: [e3, e2, e1]), nowEpoch: wisp_realtime_s())))
    #expect(exchange(50) == 50)
    let s = node.snapshot()
    #expect(s.beat.circuits == 1 && s.beat.traffic.circuitsCreated == 1)
    #expect(s.drops.total == 0)

    // e2 removed: no new circuit to it.
    #expect(node.shard.inbox.post(.limits(limits, exits: ExitPolicy(exits: [e1]), nowEpoch: wisp_realtime_s())))
    _ = node.snapshot()  // the message has been applied once the snapshot answers
    let other = CircuitClient(socket: try net.endpoint(Endpoint(ip: 0x7F00_0001, port: 5001)))
    do {
      try other.build(relays: [nodeEndpoint], exit: e2, tries: 1, waitMs: 300)
      Issue.record("a circuit to a removed exit was built")
    } catch {
      guard case .refused(let r) = error else { Issue.record("expected REFUSED, got \(error)"); return }
      #expect(r == RefuseReason.exitNotAllowed.rawValue)
    }
  }
}
