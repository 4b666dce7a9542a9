// `wisp forward` as a library (UDPForward) over the in-memory network: three complete
// nodes with DTLS links, an echo service behind the last one, two local senders. Each
// sender gets a circuit of its own and only its own replies; an oversized datagram is
// dropped and counted; each node's journal holds receipts, on the bindings it drew, for
// exactly what it carried for the forward (the DATA both ways, and the RECEIPT and BIND
// frames of the nodes after it); the spending cap stops the traffic before the receipts
// pass it; closing a sender settles it.
import Testing
import CPosix
import WispCore
import WispOS
import WispTLS
import WispNode
import WispClient
import WispTestSupport

@Suite struct ForwardTests {
  /// Runs the forward's handlers (as the event loop of `wisp forward` would) for `ms`.
  static func pump(_ f: UDPForward<MemoryIO>, ms: UInt64, until done: () -> Bool = { false }) {
    let end = wisp_monotonic_ns() + ms * 1_000_000
    var lastTick: UInt64 = 0
    while wisp_monotonic_ns() < end && !done() {
      _ = wisp_poll_in(-1, 2)
      let now = wisp_monotonic_ns()
      f.listenReadable(nowNs: now)
      f.probeReadable(nowNs: now)
      for i in 0..<f.settings.maxSenders { f.circuitReadable(i, nowNs: now) }
      if now - lastTick > 100_000_000 { f.tick(nowNs: now); lastTick = now }
    }
  }

  @Test func twoSendersThroughThreeNodesEachGetTheirOwnRepliesAndPayOnce() throws {
    let network = MemoryNetwork()
    let chain = try TestChain(network: network, basePort: 7500, echoPort: 9100, directoryPrefix: "/tmp/wisp-forward-test")
    defer { chain.stop() }
    let (nodes, endpoints, echoEndpoint, names) = (chain.nodes, chain.endpoints, chain.echoEndpoint, TestChain.names)
    chain.waitForLinks()

    // The forward: fixed path A -> B -> C, pinned, sealed, receipted.
    let peers = (0..<3).map { MeshPeer(name: names[$0], endpoint: endpoints[$0], key: nodes[$0].credit.fingerprint) }
    var chooser = PathChooser(peers: peers, hops: 3, exitVia: 2)
    chooser.fixedPath = [0, 1, 2]
    chooser.firstHopNeedsKey = true
    var settings = ForwardSettings(destination: echoEndpoint)
    settings.maxSenders = 4
    settings.receiptEvery = 32 * 1024
    settings.spendCap = 2_000_000
    let listenAt = Endpoint(ip: 0x7F00_0001, port: 5100)
    var nextPort: UInt16 = 6000
    let f = UDPForward<MemoryIO>(settings: settings, listen: try network.endpoint(listenAt),
                                 probeSocket: try network.endpoint(Endpoint(ip: 0x7F00_0001, port: 5101)), chooser: chooser,
                                 signer: try #require(P256Signer.generate()),
                                 makeSocket: { nextPort += 1; return try? network.endpoint(Endpoint(ip: 0x7F00_0001, port: nextPort)) })
    var lines: [String] = []
    var alerts: [String] = []
    f.log = { lines.append($0) }
    f.alert = { alerts.append($0) }
    f.warmUp(waitMs: 300)
    #expect(f.chooser.peers.allSatisfy { $0.alive }, "probes unanswered: \(f.statusText(nowNs: wisp_monotonic_ns()))")

    // Two applications, each sending numbered datagrams tagged with its own name.
    let apps = [try network.endpoint(Endpoint(ip: 0x7F00_0001, port: 4001)),
                try network.endpoint(Endpoint(ip: 0x7F00_0001, port: 4002))]
    let buf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
    defer { buf.deallocate() }
    var got = [[Int]](repeating: [], count: 2)
    var foreign = 0
    func collect() {
      for (k, app) in apps.enumerated() {
        while let (n, _) = app.receive(into: buf, capacity: 2048) {
          let b = UnsafeRawBufferPointer(start: buf, count: n)
          if n < 4 || b[0] != UInt8(k) { foreign += 1; continue }
          got[k].append(Int(b[1]) << 8 | Int(b[2]))
        }
      }
    }
    let perApp = 100
    for seq in 0..<perApp {
      for (k, app) in apps.enumerated() {
        buf.storeBytes(of: UInt8(k), as: UInt8.self)
        buf.storeBytes(of: UInt8(seq >> 8), toByteOffset: 1, as: UInt8.self)
        buf.storeBytes(of: UInt8(seq & 0xFF), toByteOffset: 2, as: UInt8.self)
        for i in 3..<1000 { buf.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: i, as: UInt8.self) }
        #expect(app.send(buf, 1000, to: listenAt))
      }
      ForwardTests.pump(f, ms: 5)
      collect()
    }
    // One datagram over the budget: dropped, counted, and the log names the MTU.
    #expect(apps[0].send(buf, Wire.maxForwardPayload + 1, to: listenAt))
    ForwardTests.pump(f, ms: 3000) { collect(); return got[0].count == perApp && got[1].count == perApp }
    ForwardTests.pump(f, ms: 100)  // the oversized datagram may still wait on the listening socket
    #expect(foreign == 0)
    #expect(got[0].sorted() == Array(0..<perApp) && got[1].sorted() == Array(0..<perApp),
            "\(got[0].count), \(got[1].count) back; node drops: \(nodes.map { $0.snapshot().drops.summary })")
    #expect(f.counters.oversized == 1)
    #expect(lines.contains { $0.contains("MTU = \(Wire.maxForwardPayload - 32)") })
    #expect(f.sendersOpen == 2 && f.counters.circuitsBuilt == 2)
    #expect(f.senders.compactMap { $0 }.allSatisfy { $0.client.sealed })

    // Every hop's journal holds receipts for exactly what it carried: the bytes carried
    // both ways, plus the RECEIPTs and BINDs of the hops after it.
    ForwardTests.pump(f, ms: 300)
    let carried = f.carried
    #expect(carried == UInt64(2 * perApp) * 2 * UInt64(1000 + Wire.sealOverhead))
    let clients = f.senders.compactMap { $0?.client }
    #expect(clients.allSatisfy { $0.bindsReceived == 3 && $0.hopReceipts.allSatisfy { $0.binding != nil } })
    func signed(_ hop: Int) -> UInt64 { clients.reduce(0) { $0 + $1.hopReceipts[hop].signed } }
    #expect(signed(2) == carried && signed(1) > signed(2) && signed(0) > signed(1))
    let creditDeadline = wisp_monotonic_ns() + 3_000_000_000
    while wisp_monotonic_ns() < creditDeadline
      && nodes.enumerated().contains(where: { $1.credit.report().totals.receipted < signed($0) }) {
      ForwardTests.pump(f, ms: 20)
    }
    for (i, n) in nodes.enumerated() {
      let r = n.credit.report()
      #expect(r.totals.receipted == signed(i), "node \(n.name): receipted \(r.totals.receipted) of \(signed(i))")
      #expect(r.rejected == 0)
    }
    #expect(f.spent == signed(0) + signed(1) + signed(2))

    // The spending cap (2,000,000 bytes signed in all; about 1,250,000 so far): traffic
    // stops before the receipts would pass it.
    for seq in 0..<400 {
      buf.storeBytes(of: UInt8(0), as: UInt8.self)
      buf.storeBytes(of: UInt8(seq >> 8), toByteOffset: 1, as: UInt8.self)
      #expect(apps[0].send(buf, 1000, to: listenAt))
      ForwardTests.pump(f, ms: 2)
    }
    ForwardTests.pump(f, ms: 500)
    #expect(f.capReached)
    #expect(f.counters.capReached > 0)
    // Under the cap, and near it: one more datagram (both ways, 3 hops) and the reserve for
    // the last receipts and BINDs of the 2 senders would have passed it.
    #expect(f.spent <= settings.spendCap, "signed \(f.spent) of \(settings.spendCap)")
    #expect(f.spent + 6 * UInt64(1000 + Wire.sealOverhead) + 2 * CircuitClient<MemoryIO>.capReserve(hops: 3) > settings.spendCap)
    #expect(lines.contains { $0.contains("spending cap reached") })
    #expect(alerts.count == 1 && alerts[0].contains("spending cap reached: ") && alerts[0].contains("bytes signed of a cap of 2000000"))
    #expect(f.statusText(nowNs: wisp_monotonic_ns()).contains("cap reached"))
    let before = f.spent
    f.shutdown()
    #expect(f.sendersOpen == 0 && f.spent == before)
  }

  @Test func sendersAreBoundedAndNewOnesRateLimited() throws {
    // No relay answers here: every build fails at once (no live path), which is enough to
    // see the sender table's bounds.
    let network = MemoryNetwork()
    let peers = [MeshPeer(name: "r", endpoint: Endpoint(ip: 0x7F00_0001, port: 7600), key: nil)]
    var settings = ForwardSettings(destination: Endpoint(ip: 0x7F00_0001, port: 9200))
    settings.maxSenders = 4
    settings.newSendersPerSecond = 3
    let listenAt = Endpoint(ip: 0x7F00_0001, port: 5200)
    var nextPort: UInt16 = 6100
    let f = UDPForward<MemoryIO>(settings: settings, listen: try network.endpoint(listenAt),
                                 probeSocket: try network.endpoint(Endpoint(ip: 0x7F00_0001, port: 5201)),
                                 chooser: PathChooser(peers: peers, hops: 1, exitVia: 0), signer: nil,
                                 makeSocket: { nextPort += 1; return try? network.endpoint(Endpoint(ip: 0x7F00_0001, port: nextPort)) })
    f.log = { _ in }
    let buf = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
    defer { buf.deallocate() }
    let apps = try (0..<6).map { try network.endpoint(Endpoint(ip: 0x7F00_0001, port: UInt16(4100 + $0))) }
    func send(_ which: Range<Int>, at t: UInt64) {
      for k in which { #expect(apps[k].send(buf, 10, to: listenAt)) }
      f.listenReadable(nowNs: t)
    }
    let t0 = UInt64(1_000) * 1_000_000_000  // whole seconds of a made-up clock
    // Five new senders in one second: three get a slot, two are refused by the rate.
    send(0..<5, at: t0)
    #expect(f.sendersOpen == 3 && f.counters.sendersRate == 2 && f.counters.noPath == 3)
    // The next second: one free slot; then the table is full of senders active within
    // the last second, so the others are refused.
    send(3..<6, at: t0 + 1_000_000_000)
    #expect(f.sendersOpen == 4 && f.counters.sendersFull == 2)
    // Later the idlest sender makes room.
    send(5..<6, at: t0 + 3_000_000_000)
    #expect(f.sendersOpen == 4 && f.counters.sendersClosed == 1)
    #expect(f.senders.contains { $0?.address.port == 4105 } && !f.senders.contains { $0?.address.port == 4100 })
  }
}
