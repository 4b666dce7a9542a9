// Three complete nodes in one process, wired by the in-memory datagram network: each is a
// NodeShard (RelayLoop over MemoryIO, Forwarder, DTLS session table) with its credit
// worker and journal, on threads of their own as in `wisp run`. A client (CircuitClient
// over another MemoryIO endpoint) builds a circuit A -> B -> C -> echo, sealed end to end
// with C, with a DTLS session to A and the node links A-B, B-C; it sends messages and signs
// v2 receipts with a payer key, each on the binding its node sent in BIND. Every message
// must come back once, every link must carry DTLS records, and each node's journal must
// hold the receipts for what it relayed.
import Testing
import CPosix
import WispCore
import WispOS
import WispTLS
import WispNode
import WispClient
import WispTestSupport

/// A node assembled as `wisp run` assembles a shard (one shard, a credit worker).
final class TestNode {
  let name: String
  let credit: NodeCredit
  let shard: NodeShard<MemoryIO>
  let worker: CreditWorker
  let inbox: Mailbox<ControlMessage>
  var last = ShardSnapshot()

  /// `window`: the credit window (0: relay without receipts).
  init(name: String, endpoint: Endpoint, network: MemoryNetwork, directory: String, exits: [Endpoint],
       window: UInt64 = 1 << 20) throws {
    self.name = name
    credit = try #require(NodeCredit.open(directory: directory, window: window, commitInterval: 1))
    var limits = Limits()
    limits.labAddresses = true  // loopback nodes and service
    let fwd = Forwarder(circuits: 64, local: endpoint, limits: limits, allowedExits: exits, random: KernelRandom(),
                        nowEpoch: wisp_realtime_s())
    fwd.fingerprint = credit.fingerprint
    fwd.creditWindow = window
    if !exits.isEmpty { fwd.exitCipher = ExitSealer(halves: fwd.circuits.capacity) }
    let loop = try RelayLoop(io: try network.endpoint(endpoint), pool: PacketPool(capacity: 256), forwarder: fwd,
                             batch: 16)
    loop.timers.schedule(RelayLoop<MemoryIO>.TimerID.tick.rawValue, at: wisp_monotonic_ns() + 100_000_000, every: 100_000_000)
    inbox = try Mailbox(capacity: 256)
    shard = try NodeShard(index: 0, loop: loop, control: inbox)
    worker = try CreditWorker(credit: credit, shards: 1, halvesPerShard: fwd.circuits.capacity)
    if !exits.isEmpty { worker.keyAgreement = ExitKeyAgreement(keyPEM: credit.key.pem, point: credit.key.publicKey) }
    worker.connect(fwd, shard: 0)
    worker.shards = [shard.inbox]
  }

  /// Node links to `peers` (pinned), as `wisp run` sets up its session table.
  /// `required`: `links = required` (the node's default; false here unless a test asks).
  func link(_ peers: [PeerEntry], directory: String, required: Bool = false) throws {
    var config = RunConfig()
    config.stateDir = directory
    config.peers = peers
    config.linksRequired = required
    let table = try #require(Node.openSessions(config))
    table.attach(to: shard.loop)
    shard.sessions = table
    // Handshakes on their worker thread, flights back through the shard (in-memory network).
    #expect(shard.startHandshakeWorker(sendFd: nil) == 0)
  }

  func start() throws {
    #expect(worker.start() == 0)
    #expect(shard.start() == 0)
  }

  /// The shard's latest snapshot (asked for through its mailbox).
  func snapshot() -> ShardSnapshot {
    shard.inbox.post(.snapshot(generation: 1))
    let deadline = wisp_monotonic_ns() + 1_000_000_000
    while wisp_monotonic_ns() < deadline {
      _ = wisp_poll_in(inbox.fd, 50)
      inbox.acknowledge()
      var got = false
      while let m = inbox.take() { if case .snapshot(let s) = m { last = s; got = got || s.generation >= 1 } }
      if got { break }
    }
    return last
  }

  func stop() {
    shard.inbox.post(.stop)
    Threads.join(shard.thread)
    while !worker.inbox.post(.stop) { _ = wisp_poll_in(-1, 5) }
    Threads.join(worker.thread)
    inbox.acknowledge()
    while let m = inbox.take() { if case .snapshot(let s) = m { last = s } }
  }
}

/// An echo service on the in-memory network, on its own thread.
final class EchoService {
  let io: MemoryIO
  let stopFlag = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
  var thread: UInt = 0
  init(_ io: MemoryIO) throws {
    self.io = io
    stopFlag.initialize(to: 0)
    let io = self.io, flag = stopFlag
    thread = try Threads.spawn {
      while wisp_atomic_load_u64(flag) == 0 {
        if !io.wait(ms: 20) { continue }
        while let d = io.next() { io.send(d.bytes, to: d.from) }
      }
    }.get()
  }
  func stop() { wisp_atomic_store_u64(stopFlag, 1); Threads.join(thread) }
  deinit { stopFlag.deallocate() }
}

/// Three nodes A -> B -> C on the in-memory network, linked A-B and B-C by pinned DTLS
/// sessions, with an echo service that C may exit to; started (call `stop()` when done).
final class TestChain {
  static let names = ["A", "B", "C"]
  let endpoints: [Endpoint]
  let echoEndpoint: Endpoint
  var nodes: [TestNode] = []
  let echo: EchoService

  init(network: MemoryNetwork, basePort: UInt16, echoPort: UInt16, directoryPrefix: String) throws {
    endpoints = (1...3).map { Endpoint(ip: 0x7F00_0001, port: basePort + UInt16($0)) }
    echoEndpoint = Endpoint(ip: 0x7F00_0001, port: echoPort)
    var template = Array("\(directoryPrefix)-XXXXXX".utf8CString)
    let root = String(cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
    let names = TestChain.names
    for i in 0..<3 {
      nodes.append(try TestNode(name: names[i], endpoint: endpoints[i], network: network, directory: "\(root)/\(names[i])",
                                exits: i == 2 ? [echoEndpoint] : []))
    }
    for i in 0..<3 {
      var peers: [PeerEntry] = []
      for j in [i - 1, i + 1] where j >= 0 && j < 3 {
        peers.append(PeerEntry(name: names[j], endpoint: endpoints[j], key: nodes[j].credit.fingerprint))
      }
      try nodes[i].link(peers, directory: "\(root)/\(names[i])")
    }
    echo = try EchoService(try network.endpoint(echoEndpoint))
    for n in nodes { try n.start() }
  }

  /// Waits (at most 6 s) for the node links; the lower fingerprint dials within about 2 s.
  func waitForLinks() {
    let deadline = wisp_monotonic_ns() + 6_000_000_000
    while wisp_monotonic_ns() < deadline
      && !(nodes[0].snapshot().sessionsEstablished == 1 && nodes[1].snapshot().sessionsEstablished == 2
           && nodes[2].snapshot().sessionsEstablished == 1) {
      _ = wisp_poll_in(-1, 20)
    }
  }

  func stop() {
    for n in nodes { n.stop() }
    echo.stop()
  }
}

@Suite struct ThreeNodeTests {
  @Test func sealedReceiptedCircuitThroughThreeNodesOverDTLSLinks() throws {
    let network = MemoryNetwork()
    // Addresses on the in-memory network only: nothing leaves the process.
    let chain = try TestChain(network: network, basePort: 7400, echoPort: 9000, directoryPrefix: "/tmp/wisp-three-nodes")
    defer { chain.stop() }
    let (nodes, endpoints, echoEndpoint, names) = (chain.nodes, chain.endpoints, chain.echoEndpoint, TestChain.names)
    chain.waitForLinks()
    #expect(nodes.map { $0.last.sessionsEstablished } == [1, 2, 1])
    // The handshakes ran on each node's handshake worker, not on its forwarding thread.
    for n in nodes { #expect((n.shard.sessions?.worker.steps ?? 0) > 0, "node \(n.name): no handshake on the worker") }

    let client = CircuitClient(socket: try network.endpoint(Endpoint(ip: 0x7F00_0001, port: 5000)))
    client.useDTLS = true
    client.pins = [(endpoints[0], nodes[0].credit.fingerprint)]
    client.receiptEvery = 16 * 1024
    client.enableReceipts(key: try #require(P256Signer.generate()), hops: nodes.map { $0.credit.fingerprint })
    try client.build(relays: endpoints, exit: echoEndpoint, exitKey: nodes[2].credit.fingerprint)
    #expect(client.sealed)
    // Each node sends BIND right after CREATED; the client answers each with a receipt for
    // 0 bytes, which binds the circuit to its payer within the node's unbound allowance.
    let bindDeadline = wisp_monotonic_ns() + 2_000_000_000
    while client.bindsReceived < 3 && wisp_monotonic_ns() < bindDeadline { client.receiveEchoes(waitMs: 20) }
    #expect(client.bindsReceived == 3 && client.hopReceipts.allSatisfy { $0.binding != nil })
    // The workers bind (an ECDSA check each) before the circuit carries more than the
    // unbound allowance: wait for it here, a loaded machine may take longer than the traffic.
    while nodes.contains(where: { $0.credit.tables().payers < 1 }) && wisp_monotonic_ns() < bindDeadline + 3_000_000_000 {
      client.receiveEchoes(waitMs: 20)
    }
    let messages: UInt64 = 400
    for seq in 0..<messages {
      client.send(seq: seq, size: 600)
      if seq % 20 == 19 { client.receiveEchoes(waitMs: 50); client.sendReceiptsIfDue() }
    }
    let until = wisp_monotonic_ns() + 3_000_000_000
    while client.received < messages && wisp_monotonic_ns() < until { client.receiveEchoes(waitMs: 50) }
    client.sendReceiptsIfDue(force: true)
    #expect(client.received == messages)
    #expect(client.duplicates == 0 && client.badSeals == 0)
    #expect(client.receiptsSent > 0)

    // Each node relayed every message out and back, through DTLS records on its links.
    let relayed = nodes.map { $0.snapshot() }
    for (i, s) in relayed.enumerated() {
      #expect(s.beat.traffic.forwardedPackets >= 2 * messages, "node \(names[i]) forwarded \(s.beat.traffic.forwardedPackets)")
      #expect(s.links.recordsOpened > 0 && s.links.recordsSealed > 0, "node \(names[i]) carried no DTLS records")
      #expect(s.drops.total == 0, "node \(names[i]) dropped \(s.drops.summary)")
    }
    // Every node bound the circuit (its BIND reached the client) and got receipts on its
    // own binding; the last receipts reach every node's worker and journal. Each node is
    // paid what it counted: the DATA both ways, and the RECEIPTs and BINDs of the nodes
    // after it that it carried (charged like DATA).
    #expect(client.bindsReceived == 3 && client.strayBinds == 0)
    #expect(client.hopReceipts.allSatisfy { $0.binding != nil })
    let signed = client.hopReceipts.map { $0.signed }
    #expect(signed[2] == client.acknowledged && signed[1] > signed[2] && signed[0] > signed[1], "\(signed)")
    let creditDeadline = wisp_monotonic_ns() + 3_000_000_000
    while wisp_monotonic_ns() < creditDeadline
      && nodes.enumerated().contains(where: { $1.credit.report().totals.receipted < signed[$0] }) {
      _ = wisp_poll_in(-1, 20)
    }
    for (i, n) in nodes.enumerated() {
      let r = n.credit.report()
      #expect(r.totals.receipted == signed[i], "node \(n.name): receipted \(r.totals.receipted) of \(signed[i])")
      #expect(r.rejected == 0 && r.accepted > 0)
      #expect(n.credit.tables().payers == 1, "node \(n.name): one payer bound")
    }
    #expect(network.dropped == 0)
  }
}
