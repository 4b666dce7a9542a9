// The client's receipts (v2) against a stand-in first hop that plays a three-node circuit
// A -> B -> C: it answers the CREATE, sends the BIND of each node (drawing a binding for
// each), echoes DATA, and counts what each node would charge, from the frames it sees,
// as WIRE-PROTOCOL.md says nodes count: DATA bodies both ways at every node, RECEIPT
// bodies for later nodes at the nodes they pass, BIND bodies of later nodes at the nodes
// that forward them back. The client's receipts must carry each node's own binding, be
// signed by the payer, and say exactly what that node counted; with a spending cap the
// client stops before its receipts pass it.
import Testing
import CPosix
import WispCore
import WispOS
import WispTLS
import WispClient
import WispTestSupport

/// A stand-in for the first hop of a three-node circuit, on its own thread. Read its
/// records only after `stop()`.
final class FakeCircuit {
  let network: MemoryNetwork  // endpoints hold it unowned: kept alive with the circuit
  let io: MemoryIO
  let nodes: [Fingerprint]
  let bindings: [Binding]
  let stopFlag = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
  var thread: UInt = 0
  /// What each node counts (index 0 = A), and every receipt in arrival order with the
  /// count of its node when it arrived.
  var counted: [UInt64] = [0, 0, 0]
  var receipts: [(hop: Int, receipt: Receipt, countedThen: UInt64)] = []
  var undecodable = 0
  var dataFrames = 0

  init(_ network: MemoryNetwork, at: Endpoint, nodes: [Fingerprint]) throws {
    self.network = network
    self.io = try network.endpoint(at)
    self.nodes = nodes
    var r = KernelRandom()
    bindings = nodes.map { _ in Binding(hi: UInt64(r.next32()) << 32 | UInt64(r.next32()), lo: UInt64(r.next32())) }
    stopFlag.initialize(to: 0)
    thread = try Threads.spawn { [self] in run() }.get()
  }

  deinit { stopFlag.deallocate() }

  func stop() { wisp_atomic_store_u64(stopFlag, 1); Threads.join(thread) }

  func run() {
    let buf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
    defer { buf.deallocate() }
    var clientId: UInt32 = 0
    let myId: UInt32 = 0x0A0B_0C0D
    while wisp_atomic_load_u64(stopFlag) == 0 {
      if !io.wait(ms: 10) { continue }
      while let (n, from) = io.receive(into: buf, capacity: 2048) {
        guard case .success(let h) = Frame.decode(buf, length: n) else { continue }
        switch h.type {
        case .create:
          clientId = h.circuit
          var m = Frame.encodeHeader(buf, type: .created, bodyLength: 4, circuit: clientId)
          Frame.store32(buf, Wire.headerSize, myId)
          _ = io.send(buf, m, to: from)
          // The BINDs as a real chain sends them: A's own, then B's and C's forwarded back.
          for i in 0..<3 {
            let body = nodes[i].bytes + bindings[i].bytes
            body.withUnsafeBytes { (buf + Wire.headerSize).copyMemory(from: $0.baseAddress!, byteCount: body.count) }
            m = Frame.encodeHeader(buf, type: .bind, bodyLength: Wire.bindBody, circuit: clientId)
            _ = io.send(buf, m, to: from)
            for j in 0..<i { counted[j] += UInt64(Wire.bindBody) }  // charged by the nodes it passes
          }
        case .data where h.circuit == myId:
          dataFrames += 1
          for j in 0..<3 { counted[j] += 2 * UInt64(h.bodyLength) }  // out and, echoed, back
          Frame.store32(buf, 4, clientId)
          _ = io.send(buf, n, to: from)
        case .receipt where h.circuit == myId:
          var reader = ByteReader(UnsafeRawBufferPointer(start: buf + Wire.headerSize, count: h.bodyLength))
          guard let r = Receipt.decode(&reader), reader.remaining == 0, let hop = nodes.firstIndex(of: r.node) else {
            undecodable += 1
            continue
          }
          for j in 0..<hop { counted[j] += UInt64(h.bodyLength) }  // forwarded through the earlier nodes
          receipts.append((hop, r, counted[hop]))
        default: continue
        }
      }
    }
  }
}

@Suite struct ClientReceiptTests {
  let payerKey = P256Signer.generate()!

  func setUp(port: UInt16) throws -> (CircuitClient<MemoryIO>, FakeCircuit, Endpoint, [Fingerprint]) {
    let net = MemoryNetwork()
    let relay = Endpoint(ip: 0x7F00_0001, port: port)
    let nodes = try (0..<3).map { _ in P256Verifier().fingerprint(ofKey: try #require(P256Signer.generate()).publicKey) }
    let fake = try FakeCircuit(net, at: relay, nodes: nodes)
    let client = CircuitClient(socket: try net.endpoint(Endpoint(ip: 0x7F00_0001, port: port + 1)))
    client.useDTLS = false
    client.enableReceipts(key: payerKey, hops: nodes)
    return (client, fake, relay, nodes)
  }

  @Test func receiptsCarryEachHopsBindingAndCountChargedReceiptsAndBinds() throws {
    let (client, fake, relay, nodes) = try setUp(port: 7810)
    client.receiptEvery = 8 * 1024
    try client.build(relays: [relay, relay, relay], exit: Endpoint(ip: 0x7F00_0001, port: 9000))
    // The BINDs: each hop gets its first receipt (0 bytes: nothing relayed yet) at once.
    let bindUntil = wisp_monotonic_ns() + 2_000_000_000
    while client.bindsReceived < 3 && wisp_monotonic_ns() < bindUntil { client.receiveEchoes(waitMs: 20) }
    #expect(client.bindsReceived == 3 && client.strayBinds == 0)
    #expect(client.hopReceipts.map { $0.binding } == fake.bindings.map { Optional($0) })
    #expect(client.receiptsSent == 3)
    for seq in 0..<300 as Range<UInt64> {
      client.send(seq: seq, size: 500)
      if seq % 10 == 9 { client.receiveEchoes(waitMs: 20); client.sendReceiptsIfDue() }
    }
    let until = wisp_monotonic_ns() + 3_000_000_000
    while client.received < 300 && wisp_monotonic_ns() < until { client.receiveEchoes(waitMs: 20) }
    client.sendReceiptsIfDue(force: true)
    let settle = wisp_monotonic_ns() + 200_000_000
    while wisp_monotonic_ns() < settle { _ = wisp_poll_in(-1, 10) }
    fake.stop()
    #expect(client.received == 300)
    #expect(fake.undecodable == 0)

    let payer = P256Verifier().fingerprint(ofKey: payerKey.publicKey)
    for hop in 0..<3 {
      let mine = fake.receipts.filter { $0.hop == hop }
      #expect(mine.count >= 2, "hop \(hop): \(mine.count) receipts")
      // The bind receipt came first and said 0.
      #expect(mine.first?.receipt.bytes == 0)
      for (_, r, countedThen) in mine {
        #expect(r.binding == fake.bindings[hop], "hop \(hop): a receipt on another binding")
        #expect(r.payer == payer)
        #expect(r.check(node: nodes[hop], verifier: P256Verifier()) == nil)
        // Never beyond what the node counted when it arrived (nodes allow an eighth more).
        #expect(r.bytes <= countedThen, "hop \(hop): \(r.bytes) signed, \(countedThen) counted")
      }
      #expect(zip(mine, mine.dropFirst()).allSatisfy { $0.receipt.bytes < $1.receipt.bytes })
      // The last receipt says exactly what the node counted: DATA both ways, plus the
      // RECEIPTs and BINDs of later nodes it carried.
      #expect(mine.last?.receipt.bytes == fake.counted[hop], "hop \(hop): \(mine.last?.receipt.bytes ?? 0) of \(fake.counted[hop])")
      #expect(client.hopReceipts[hop].signed == fake.counted[hop])
    }
    // The charged extras are real: the first hop was owed more than the DATA alone.
    let data = client.acknowledged
    #expect(fake.counted[2] == data)
    #expect(fake.counted[1] == data + client.hopReceipts[2].receiptBytes + UInt64(Wire.bindBody))
    #expect(fake.counted[0] == data + client.hopReceipts[1].receiptBytes + client.hopReceipts[2].receiptBytes
            + 2 * UInt64(Wire.bindBody))
    #expect(client.spent == fake.counted.reduce(0, +))
  }

  @Test func aNewCircuitGetsNewBindingsAndNothingCarriesOver() throws {
    let (client, fake, relay, _) = try setUp(port: 7820)
    try client.build(relays: [relay, relay, relay], exit: Endpoint(ip: 0x7F00_0001, port: 9000))
    for seq in 0..<20 as Range<UInt64> { client.send(seq: seq, size: 400) }
    let until = wisp_monotonic_ns() + 2_000_000_000
    while (client.received < 20 || client.bindsReceived < 3) && wisp_monotonic_ns() < until { client.receiveEchoes(waitMs: 20) }
    client.sendReceiptsIfDue(force: true)
    let first = client.hopReceipts
    let spentFirst = client.spent
    #expect(first.allSatisfy { $0.signed > 0 && $0.binding != nil })
    // Rotation: the new circuit starts unbound at 0 on every hop; what was signed stays spent.
    try client.build(relays: [relay, relay, relay], exit: Endpoint(ip: 0x7F00_0001, port: 9000))
    #expect(client.hopReceipts.allSatisfy { $0.signed == 0 && $0.receiptBytes == 0 } || client.bindsReceived > 3)
    #expect(client.spentEarlier == spentFirst && client.acknowledged == 0)
    fake.stop()
  }

  @Test func theClientStopsBeforeItsReceiptsPassTheCap() throws {
    let (client, fake, relay, _) = try setUp(port: 7830)
    client.receiptEvery = 4 * 1024
    client.spendCap = 100_000
    try client.build(relays: [relay, relay, relay], exit: Endpoint(ip: 0x7F00_0001, port: 9000))
    let body = UInt64(client.messageBody(size: 600))
    var seq: UInt64 = 0
    // What TrafficRun does: a message only while it fits; bounded in count.
    while seq < 1000 && client.fitsCap(bodyBytes: body, ways: 2) {
      client.send(seq: seq, size: 600)
      seq += 1
      client.receiveEchoes(waitMs: 5)
      client.sendReceiptsIfDue()
    }
    let until = wisp_monotonic_ns() + 2_000_000_000
    while client.received < seq && wisp_monotonic_ns() < until { client.receiveEchoes(waitMs: 20) }
    client.sendReceiptsIfDue(force: true)
    let settle = wisp_monotonic_ns() + 200_000_000
    while wisp_monotonic_ns() < settle { _ = wisp_poll_in(-1, 10) }
    fake.stop()
    #expect(seq < 1000, "never stopped")
    #expect(client.received == seq)
    #expect(!client.fitsCap(bodyBytes: body, ways: 2))
    // Under the cap, and not far under it: one more message (at 3 hops, both ways) and the
    // reserve for the last receipts would have passed it.
    #expect(client.spent <= client.spendCap, "signed \(client.spent) of \(client.spendCap)")
    #expect(client.spent + 6 * body + CircuitClient<MemoryIO>.capReserve(hops: 3) > client.spendCap)
    #expect(client.spent == fake.counted.reduce(0, +))
  }
}
