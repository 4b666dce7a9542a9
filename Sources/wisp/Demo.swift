// `wisp demo` (what `make run` starts): a small mesh on loopback in one process.
//
//   client ──► node A ──► node B ──► node C (exit) ──► echo service
//
// Three relay nodes (each its own event loop on its own thread, the same code as
// `wisp run`), a UDP echo service and a client that sends timestamped messages
// through the circuit. Every link is a DTLS 1.2 session: client–A, and the pinned node
// links A–B and B–C. Prints one status line a second and a summary at the end.
import CPosix
import WispCore
import WispNode
import WispClient
import WispOS
import WispTLS

enum Demo {
  static func main(_ inv: Invocation) -> Int32 {
    var seconds: UInt64 = 10
    if let t = inv.value("--seconds") {
      guard let n = parseDecimal(t), n >= 1, n <= 86_400 else {
        Console.err("wisp: option '--seconds' must be a whole number from 1 to 86400, not '\(t)'")
        return 2
      }
      seconds = n
    }
    if inv.has("--forever") { seconds = 0 }
    var base: UInt16 = 7401
    if let t = inv.value("--base-port") {
      guard let n = parseDecimal(t), n >= 1024, n <= 65_000 else {
        Console.err("wisp: option '--base-port' must be from 1024 to 65000, not '\(t)'")
        return 2
      }
      base = UInt16(n)
    }
    let sigfd = wisp_signalfd()  // before any thread, so every thread inherits the mask
    wisp_ignore_sigpipe()
    let names = ["A", "B", "C"]
    let nodeEndpoints = (0..<3).map { Endpoint(ip: 0x7F00_0001, port: base + UInt16($0)) }
    let echoEndpoint = Endpoint(ip: 0x7F00_0001, port: base + 9)

    Console.out("wisp demo: a mesh of 3 relay nodes on loopback, a client and an echo service")
    Console.out("  client -> A \(nodeEndpoints[0].text) -> B \(nodeEndpoints[1].text) -> C \(nodeEndpoints[2].text) (exit) -> echo \(echoEndpoint.text)")
    // A local lab on one machine: the clock is assumed synchronised (clock_sync = assume),
    // so the nodes' time checks (receipt epochs) run at once whatever this machine's kernel
    // says; `clock.clockSynced` is what the nodes' credit side reads.
    let clock = NodeClock(mode: .assume)
    Console.out("  clock: \(clock.state.name) synchronised (a local lab: clock_sync = assume; this machine's kernel says"
                + " \(ClockSync.isSynchronised() ? "synchronised" : "unsynchronised"))")

    // Each node keeps its key and credit journal in a state directory of its own.
    var template = Array("/tmp/wisp-demo-XXXXXX".utf8CString)
    guard let dirp = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
      Console.err("wisp demo: cannot create a state directory under /tmp")
      return 1
    }
    let stateRoot = String(cString: dirp)
    var credits: [NodeCredit] = []
    var workers: [CreditWorker] = []
    var shards: [NodeShard<UDPBatchIO>] = []
    // Each node's shard posts its snapshots to a mailbox of its own: the demo's thread
    // reads the nodes only through them (as a node's control plane does).
    var inboxes: [Mailbox<ControlMessage>] = []
    for (i, e) in nodeEndpoints.enumerated() {
      let fd = wisp_udp_open(e.ip, e.port, 0, 1 << 20)
      if fd < 0 {
        Console.err("wisp demo: cannot bind \(e.text): \(Errno(-fd).description) (is another demo running? try --base-port)")
        return 1
      }
      var limits = Limits()
      limits.labAddresses = true  // loopback hops and exit: lab mode (AddressPolicy.swift)
      let fwd = Forwarder(circuits: 256, local: e, limits: limits, allowedExits: i == 2 ? [echoEndpoint] : [],
                          random: KernelRandom(), nowEpoch: Clock.epochSeconds())
      guard let credit = NodeCredit.open(directory: "\(stateRoot)/node\(names[i])", window: Credits.defaultWindow) else {
        Console.err("wisp demo: cannot set up node \(names[i])'s credit journal in \(stateRoot)")
        return 1
      }
      credit.clockSynced = { clock.clockSynced() }
      credits.append(credit)
      fwd.fingerprint = credit.fingerprint
      fwd.creditWindow = Credits.defaultWindow
      if i == 2 { fwd.exitCipher = ExitSealer(halves: fwd.circuits.capacity) }
      guard let loop = try? RelayLoop(io: UDPBatchIO(fd: fd, batch: 32, sendCapacity: 32 * 64, gso: true),
                                      pool: PacketPool(capacity: 512), forwarder: fwd, batch: 32),
            let inbox = try? Mailbox<ControlMessage>(capacity: 64),
            let shard = try? NodeShard<UDPBatchIO>(index: 0, loop: loop, control: inbox),
            let worker = try? CreditWorker(credit: credit, shards: 1, halvesPerShard: fwd.circuits.capacity) else {
        Console.err("wisp demo: cannot start node \(names[i])")
        return 1
      }
      if i == 2 { worker.keyAgreement = ExitKeyAgreement(keyPEM: credit.key.pem, point: credit.key.publicKey) }
      worker.connect(fwd, shard: 0)
      worker.shards = [shard.inbox]
      loop.timers.schedule(RelayLoop<UDPBatchIO>.TimerID.tick.rawValue, at: Clock.nowNs() + 200_000_000, every: 200_000_000)
      inboxes.append(inbox)
      shards.append(shard)
      workers.append(worker)
    }
    // DTLS: each node's identity is its node.key (made by NodeCredit); A–B and B–C are
    // node links pinned to each other's keys.
    for i in 0..<3 {
      var config = RunConfig()
      config.stateDir = "\(stateRoot)/node\(names[i])"
      for j in [i - 1, i + 1] where j >= 0 && j < 3 {
        config.peers.append(PeerEntry(name: names[j], endpoint: nodeEndpoints[j], key: credits[j].fingerprint))
      }
      guard let table = Node.openSessions(config) else {
        Console.err("wisp demo: cannot set up node \(names[i])'s DTLS sessions")
        return 1
      }
      table.attach(to: shards[i].loop)
      shards[i].sessions = table
      _ = shards[i].startHandshakeWorker(sendFd: shards[i].loop.io.fd)
    }
    guard let echo = try? UDPSocket(bind: echoEndpoint) else {
      Console.err("wisp demo: cannot bind the echo service on \(echoEndpoint.text)")
      return 1
    }
    for w in workers { _ = w.start() }
    for s in shards { _ = s.start() }
    // The latest snapshot of each node (asked for, then read from its mailbox).
    var snaps = [ShardSnapshot](repeating: ShardSnapshot(), count: 3)
    func read() {
      for i in 0..<3 {
        inboxes[i].acknowledge()
        while let m = inboxes[i].take() { if case .snapshot(let s) = m { snaps[i] = s } }
      }
    }
    func refresh() {
      for s in shards { s.inbox.post(.snapshot(generation: 1)) }
      Clock.sleep(ms: 20)
      read()
    }
    func stopNodes() {
      wisp_stop_request()
      for s in shards { s.inbox.post(.stop) }
      for s in shards { _ = wisp_thread_join(s.thread) }
      for w in workers {
        while !w.inbox.post(.stop) { Clock.sleep(ms: 10) }
        _ = wisp_thread_join(w.thread)
      }
      read()  // the nodes' last snapshots
    }
    var echoThread: UInt = 0
    var echoFd = echo.fd
    _ = wisp_thread_spawn({ ctx in
      let fd = ctx!.load(as: Int32.self)
      let buf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
      var ip: UInt32 = 0
      var port: UInt16 = 0
      while wisp_stop_requested() == 0 {
        if wisp_poll_in(fd, 100) <= 0 { continue }
        while true {
          let n = wisp_recvfrom(fd, buf, 2048, &ip, &port)
          if n < 0 { break }
          _ = wisp_sendto(fd, buf, Int(n), ip, port)
        }
      }
      buf.deallocate()
      return nil
    }, &echoFd, &echoThread)

    // The node links come up within a round trip or two (at most 3 s: the fallback dial).
    let linkDeadline = Clock.nowNs() + 5_000_000_000
    while Clock.nowNs() < linkDeadline
      && !(snaps[0].sessionsEstablished == 1 && snaps[1].sessionsEstablished == 2 && snaps[2].sessionsEstablished == 1) {
      refresh()
    }
    guard let client = try? UDPCircuitClient() else {
      Console.err("wisp demo: could not open the client's socket")
      stopNodes()
      return 1
    }
    client.useDTLS = true
    client.pins = [(nodeEndpoints[0], credits[0].fingerprint)]
    guard let clientKey = P256Signer.generate() else {
      Console.err("wisp demo: cannot make the client's key")
      stopNodes()
      return 1
    }
    client.enableReceipts(key: clientKey, hops: credits.map { $0.fingerprint })
    do {
      // Sealed end to end with node C: A and B carry only ciphertext.
      try client.build(relays: nodeEndpoints, exit: echoEndpoint, exitKey: credits[2].fingerprint)
    } catch {
      Console.err("wisp demo: could not build the 3-hop circuit")
      stopNodes()
      return 1
    }
    Console.out("  DTLS 1.2 sessions (mutual ECDSA P-256, pinned keys): client-A, node links A-B and B-C")
    Console.out("  circuit built through A, B and C; sending 1200-byte messages, about 8 Mbit/s;")
    Console.out("  payloads sealed end to end between the client and C (A and B carry ciphertext);")
    Console.out("  the client signs a receipt for each node every 512 KB (credit window: 4 MB)")
    Console.out("")

    // Each node's LEDs on the console backend: lamp test, then ready, relaying flicker.
    var leds: [NodeLEDs] = []
    for _ in shards {
      let l = NodeLEDs(lines: LEDLines())
      l.set(.selfTest, true)
      leds.append(l)
    }
    let result = TrafficRun.run(client: client, seconds: seconds, size: 1200, kbit: 7_680, sigfd: sigfd) { elapsed in
      var line = " |"
      read()  // keeps the mailboxes empty for the last snapshots
      for (i, s) in shards.enumerated() {
        if elapsed >= 1_000_000_000 { leds[i].set(.selfTest, false); leds[i].set(.ready, true) }
        _ = leds[i].update(nowNs: Clock.nowNs(), packets: wisp_atomic_load_u64(s.published))
        let name = leds[i].panel.engine.shown.map { "\($0.name)" } ?? "dark"
        line += " \(names[i]) \(credits[i].report().totals.receipted / 1000) kB credit"
          + " LEDs \(LEDText.dots(leds[i].panel.levels, leds[i].panel.engine.layout)) \(name);"
      }
      return line
    }
    Clock.sleep(ms: 100)
    stopNodes()  // the credit workers commit each journal as they end
    _ = wisp_thread_join(echoThread)
    echo.close()

    Console.out("")
    Console.out(result.interrupted ? "stopped by signal." : "done.")
    Console.out(result.summary)
    Console.out("relayed per node (each message crosses every node twice, out and back):")
    for (i, s) in snaps.enumerated() {
      let t = s.beat.traffic
      let c = s.links
      Console.out("  node \(names[i]): \(t.forwardedPackets) packets, \(t.forwardedBytes) bytes,"
                  + " drops \(s.drops.total), circuits created \(t.circuitsCreated);"
                  + " DTLS records opened \(c.recordsOpened), sealed \(c.recordsSealed)")
    }
    Console.out("")
    Console.out("credit earned (signed receipts from the client, synced to each node's journal):")
    for (i, c) in credits.enumerated() {
      let r = c.report()
      let t = r.totals
      Console.out("  node \(names[i]): \(t.receipted) bytes receipted in \(r.accepted) receipts, \(t.committed) committed"
                  + " (\(r.rejected) rejected)  key \(String(c.fingerprint.hex.utf8.prefix(16))!)...")
    }
    Console.out("  journals: \(stateRoot)/node{A,B,C}   (see: wisp credits --state-dir \(stateRoot)/nodeA)")
    return 0
  }
}
