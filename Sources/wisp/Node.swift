// `wisp run`: a relay node of one or more shards on one UDP port.
//
// Shard k is a RelayLoop on its own SO_REUSEPORT socket, with its own pool and
// circuit table, on its own thread (shard 0 on the main thread, which also owns
// the signalfd). The kernel steers each datagram to the shard named by the low
// bits of its circuit id (a classic BPF program), so a circuit's frames always
// meet the table that holds it and the hot path shares no lock.
import CPosix
import WispCore
import WispOS
import WispTLS

final class Node {
  let config: RunConfig
  var loops: [RelayLoop] = []
  var threads: [UInt] = []
  let startNs = wisp_monotonic_ns()
  var lastStats: (ns: UInt64, packets: UInt64, bytes: UInt64) = (0, 0, 0)
  var lastRate: (ns: UInt64, packets: UInt64, bytes: UInt64, pps: UInt64, kbit: UInt64) = (0, 0, 0, 0, 0)
  var statusFd: Int32 = -1
  var metricsFd: Int32 = -1
  var current: RunConfig
  var leds: NodeLEDs? = nil
  var credit: NodeCredit? = nil
  var peers = NodePeers([])
  /// DTLS sessions (on shard 0; nil with `sessions = 0`).
  var sessions: SessionTable? = nil
  var ticks: UInt64 = 0
  static let statusTag: UInt64 = 16
  static let metricsTag: UInt64 = 17

  init(config: RunConfig) {
    self.config = config
    current = config
  }

  static func main(_ inv: Invocation) -> Int32 {
    let config: RunConfig
    switch ConfigLoader.forRun(inv) {
    case .success(let c): config = c
    case .failure(let f):
      Console.err("wisp: \(f.message)")
      if f.exitCode == 2 { Console.err(Arguments.usage(.run)) }
      return f.exitCode
    }
    Log.name = "wisp[\(config.name)]"
    let node = Node(config: config)
    return node.run()
  }

  func run() -> Int32 {
    wisp_ignore_sigpipe()
    // The node key and the credit journal come first: READY means recovered.
    let credit = NodeCredit.open(directory: config.stateDir, window: config.creditWindow,
                                 commitInterval: config.commitIntervalSec)
    self.credit = credit
    let shards = config.effectiveShards
    var shardBits = 0
    while (1 << shardBits) < shards { shardBits += 1 }
    let perShardPool = max(config.poolPackets / shards, config.batch * 4)
    let perShardCircuits = max(config.circuits / shards, 1)
    for k in 0..<shards {
      let fd = wisp_udp_open(config.listen.ip, config.listen.port, shards > 1 ? 1 : 0, 4 << 20)
      if fd < 0 {
        Log.error("cannot open UDP socket", "addr=\(config.listen.text) error=\"\(Errno(-fd).description)\"")
        return 1
      }
      if k == 0 && shards > 1 {
        let r = wisp_attach_reuseport_cbpf(fd, UInt32((1 << shardBits) - 1))
        if r < 0 { Log.error("cannot attach shard steering program", "error=\"\(Errno(-r).description)\""); return 1 }
      }
      let pool = PacketPool(capacity: perShardPool)
      let fwd = Forwarder(circuits: perShardCircuits, local: config.listen, limits: config.limits,
                          allowedExits: config.exits, random: KernelRandom(), nowEpoch: wisp_realtime_s(),
                          shard: k, shardBits: shardBits)
      if let credit {
        fwd.fingerprint = credit.fingerprint
        fwd.creditWindow = config.creditWindow
        fwd.onReceipt = { r, f, b in credit.take(r, f, b) }
        fwd.circuits.onClose = { serial in credit.closed(serial: serial) }
        if !config.exits.isEmpty {
          // Sealed exits: ECDH with this node's key; room for exits added by SIGHUP.
          fwd.exitCipher = ExitSealer(keyPEM: credit.key.pem, point: credit.key.publicKey, slots: max(config.exits.count, 16))
        }
      }
      do {
        let loop = try RelayLoop(fd: fd, pool: pool, forwarder: fwd, batch: config.batch, gso: config.gso,
                                 signals: k == 0)
        let now = wisp_monotonic_ns()
        loop.timers.schedule(RelayLoop.TimerID.tick.rawValue, at: now + 1_000_000_000, every: 1_000_000_000)
        loop.onEvent = { loop, event in self.handle(loop, event) }  // cycle broken in run()
        loops.append(loop)
      } catch {
        Log.error("cannot start event loop", "error=\"\(error.description)\"")
        return 1
      }
    }
    let now = wisp_monotonic_ns()
    let main = loops[0]
    if config.statsIntervalSec > 0 {
      main.timers.schedule(RelayLoop.TimerID.stats.rawValue, at: now + config.statsIntervalSec * 1_000_000_000,
                           every: config.statsIntervalSec * 1_000_000_000)
    }
    if config.durationSec > 0 {
      main.timers.schedule(RelayLoop.TimerID.stop.rawValue, at: now + config.durationSec * 1_000_000_000)
    }
    lastStats = (now, 0, 0)
    lastRate = (now, 0, 0, 0, 0)
    if let path = config.statusSocket {
      statusFd = wisp_unix_listen(path)
      if statusFd < 0 {
        Log.warn("no status socket", "path=\(path) error=\"\(Errno(-statusFd).description)\"")
      } else {
        try? main.watch(statusFd, tag: Node.statusTag)
      }
    }
    if let m = config.metrics {
      metricsFd = wisp_tcp_listen(m.ip, m.port)
      if metricsFd < 0 {
        Log.warn("no metrics endpoint", "addr=\(m.text) error=\"\(Errno(-metricsFd).description)\"")
      } else {
        try? main.watch(metricsFd, tag: Node.metricsTag)
      }
    }
    // systemd: watchdog at half the interval it asks for, READY once the port is bound.
    if config.watchdog, let usecText = ProcessInfo.environment("WATCHDOG_USEC"), let usec = parseDecimal(usecText), usec > 0 {
      let pidOK = ProcessInfo.environment("WATCHDOG_PID").map { parseDecimal($0) == UInt64(getpid()) } ?? true
      if pidOK {
        main.timers.schedule(RelayLoop.TimerID.watchdog.rawValue, at: now, every: usec * 500)
      }
    }
    if config.sessions > 0 {
      guard let table = Node.openSessions(config) else { return 1 }
      table.attach(to: main)
      sessions = table
    }
    peers = NodePeers(config.peers)
    main.forwarder.onPong = { [peers] from, token in peers.pong(from: from, token: token) }
    if !config.peers.isEmpty { peers.probe(main) }
    let ledPanel = NodeLEDs(lines: config.leds)
    ledPanel.set(.selfTest, true)   // lamp test for the first second
    ledPanel.set(.storageError, credit == nil || credit!.failed)
    leds = ledPanel
    main.timers.schedule(RelayLoop.TimerID.leds.rawValue, at: now)
    _ = wisp_sd_notify("READY=1\nSTATUS=relaying on \(config.listen.text)")
    Log.info("listening", "addr=\(config.listen.text) shards=\(shards) pool=\(perShardPool)x\(Defaults.bufferSize)B"
               + " circuits=\(perShardCircuits) batch=\(config.batch) gso=\(config.gso ? "on" : "off")"
               + " exits=\(config.exits.count) version=\(Build.version)")
    for k in 1..<max(loops.count, 1) where k < loops.count {
      var handle: UInt = 0
      let ctx = Unmanaged.passUnretained(loops[k]).toOpaque()
      let r = wisp_thread_spawn({ ctx in
        Unmanaged<RelayLoop>.fromOpaque(ctx!).takeUnretainedValue().run()
        return nil
      }, ctx, &handle)
      if r < 0 { Log.error("cannot start shard thread", "error=\"\(Errno(-r).description)\""); return 1 }
      threads.append(handle)
    }
    main.run()
    _ = wisp_sd_notify("STOPPING=1")
    credit?.close()
    leds?.shutdown(nowNs: wisp_monotonic_ns())
    wisp_stop_request()
    for t in threads { _ = wisp_thread_join(t) }
    for l in loops { l.onEvent = nil }
    if statusFd >= 0, let path = config.statusSocket {
      close(statusFd)
      if !path.hasBytePrefix("@") { _ = wisp_unlink(path) }
    }
    if metricsFd >= 0 { close(metricsFd) }
    Log.info("stopped", summary())
    return 0
  }

  /// The node identity (the same `node.key` as receipts) and the session table, as
  /// `config` says (also the demo's nodes).
  static func openSessions(_ config: RunConfig) -> SessionTable? {
    do throws(TLSError) {
      let random = try RandomGenerator()
      let identity: Identity
      do throws(IdentityError) {
        identity = try IdentityStore(directory: config.stateDir).loadOrCreate(random: random).identity
      } catch {
        Log.error("no node identity for DTLS sessions", "dir=\(config.stateDir) error=\"\(Log.quote(error.description))\"")
        return nil
      }
      var limits = SessionLimits()
      limits.capacity = config.sessions
      limits.halfOpen = min(config.halfOpen, config.sessions)
      limits.handshakesPerSecond = config.handshakeRate
      limits.required = config.linksRequired
      limits.rekeyBytes = config.rekeyMiB << 20
      limits.rekeyAfterNs = config.rekeySeconds * 1_000_000_000
      let table = try SessionTable(identity: identity, random: random, peers: Node.linkPeers(config), limits: limits,
                                   prefersChaCha: config.prefersChaCha, ticketSeed: Node.ticketSeed(config.stateDir, random),
                                   now: { wisp_monotonic_ns() })
      // The sessions of the links this node dials, so that a restart resumes them.
      let dir = config.stateDir + "/links"
      table.saveTicket = { fp, bytes in
        do throws(Errno) {
          if !Files.exists(dir) { try Files.makeDirectory(dir) }
          try Files.writeDurably(dir + "/" + fp.hex + ".session", bytes, mode: 0o600)
        } catch {
          Log.warn("cannot keep a link's session for resumption", "dir=\(dir) error=\"\(error.description)\"")
        }
      }
      table.loadTicket = { fp in try? Files.read(dir + "/" + fp.hex + ".session", limit: 64 * 1024) }
      Log.info("dtls sessions", "capacity=\(limits.capacity) half_open=\(limits.halfOpen) handshake_rate=\(limits.handshakesPerSecond)"
                 + " links=\(limits.required ? "required" : "optional") node_links=\(table.peers.count)"
                 + " prefer=\(config.prefersChaCha ? "chacha20" : "aes128gcm") key=\(identity.fingerprint.hex)")
      return table
    } catch {
      Log.error("cannot set up DTLS sessions", "error=\"\(Log.quote(error.description))\"")
      return nil
    }
  }

  /// `ticket.seed` in the state directory (32 random bytes, 0600), made on first use: the
  /// session-ticket key survives restarts. nil (a per-process key) if it cannot be kept.
  static func ticketSeed(_ dir: String, _ random: RandomGenerator) -> [UInt8]? {
    let path = dir + "/ticket.seed"
    if let b = try? Files.read(path, limit: 64), b.count == 32 { return b }
    guard let seed = random.bytes(32) else { return nil }
    do throws(Errno) {
      try Files.writeDurably(path, seed, mode: 0o600)
    } catch {
      Log.warn("no ticket.seed: session tickets will not survive a restart", "path=\(path) error=\"\(error.description)\"")
      return nil
    }
    return seed
  }

  /// Configured peers with a pinned key: the node links.
  static func linkPeers(_ c: RunConfig) -> [LinkPeer] {
    var out: [LinkPeer] = []
    for p in c.peers {
      if let k = p.key { out.append(LinkPeer(name: p.name, endpoint: p.endpoint, fingerprint: Fingerprint(bytes: k.bytes))) }
    }
    return out
  }

  func handle(_ loop: RelayLoop, _ event: RelayLoop.Event) {
    switch event {
    case .tick:
      ticks += 1
      if ticks % (NodePeers.intervalNs / 1_000_000_000) == 0 && !peers.peers.isEmpty { peers.probe(loops[0]) }
      if let leds {
        let now = wisp_monotonic_ns()
        if now - startNs >= 1_000_000_000 { leds.set(.selfTest, false); leds.set(.ready, true) }
        leds.set(.quotaReached, loops.contains { $0.forwarder.quota.reached })
      }
      if let credit {
        credit.tick()
        leds?.set(.storageError, credit.failed)
        if config.creditWindow > 0 { leds?.set(.unpaid, loops.contains { $0.forwarder.creditState().paused > 0 }) }
      }
    case .leds:
      if let leds {
        let now = wisp_monotonic_ns()
        let next = leds.update(nowNs: now, packets: forwardedPackets())
        loop.timers.schedule(RelayLoop.TimerID.leds.rawValue, at: next)
      }
    case .watchdog:
      _ = wisp_sd_notify("WATCHDOG=1")
    case .readable(let tag):
      if tag == Node.statusTag { serveStatus() } else if tag == Node.metricsTag { serveMetrics() }
    case .stats:
      Console.err(statusLine())
    case .stop:
      Log.info("run time over, stopping")
      stopAll()
    case .signal(let s):
      if s == SIGTERM || s == SIGINT {
        Log.info("signal, stopping", "signal=\(s)")
        stopAll()
      } else if s == SIGUSR1 {
        Console.err(statusLine())
      } else if s == SIGHUP {
        reload()
      }
    }
  }

  /// SIGHUP: re-read the config file; keep the old one if the new one is invalid.
  func reload() {
    guard let path = current.configPath else {
      Log.info("SIGHUP: no config file in use, nothing to reload")
      return
    }
    _ = wisp_sd_notify("RELOADING=1")
    defer { _ = wisp_sd_notify("READY=1") }
    switch ConfigLoader.load(path: path, boardOverride: nil, inv: nil) {
    case .failure(let f):
      Log.error("reload failed, keeping the running config", "error=\"\(Log.quote(f.message))\"")
    case .success(let new):
      if new.listen != current.listen || new.effectiveShards != current.effectiveShards || new.poolPackets != current.poolPackets
        || new.circuits != current.circuits {
        Log.warn("listen, shards, pool and circuits take effect on restart")
      }
      let now = wisp_realtime_s()
      for l in loops {
        l.forwarder.update(limits: new.limits, nowEpoch: now)
        l.forwarder.setExits(new.exits)
      }
      if new.leds != current.leds || (current.configPath != nil && new.boardName != current.boardName) {
        // New LED lines: release the old ones (dark first), then request the new ones.
        leds?.shutdown(nowNs: wisp_monotonic_ns())
        let fresh = NodeLEDs(lines: new.leds)
        fresh.set(.ready, true)
        fresh.set(.storageError, credit == nil || credit!.failed)
        leds = fresh
        Log.info("LED lines reloaded", "backend=\"\(Log.quote(fresh.backend))\"")
      }
      peers.update(new.peers)
      sessions?.update(peers: Node.linkPeers(new))
      var kept = current
      kept.peers = new.peers
      kept.limits = new.limits
      kept.exits = new.exits
      kept.leds = new.leds
      kept.boardName = new.boardName
      kept.statsIntervalSec = new.statsIntervalSec
      current = kept
      Log.info("reloaded", "file=\(path) rate_mbit=\(new.limits.nodeMbit) circuit_rate_mbit=\(new.limits.circuitMbit)"
                 + " quota_bytes=\(new.limits.quotaBytes) exits=\(new.exits.count)")
    }
  }

  func snapshot() -> StatusSnapshot {
    let t = totals()
    let now = wisp_monotonic_ns()
    if now - lastRate.ns >= 1_000_000_000 {
      let dt = now - lastRate.ns
      lastRate = (now, t.packets, t.bytes, (t.packets - lastRate.packets) * 1_000_000_000 / dt,
                  (t.bytes - lastRate.bytes) * 8 * 1_000_000 / dt)
    }
    var s = StatusSnapshot()
    s.name = config.name
    s.listen = config.listen.text
    s.uptimeSec = (now - startNs) / 1_000_000_000
    s.shards = loops.count
    s.circuits = t.circuits
    s.circuitsCreated = t.created
    s.packets = t.packets
    s.bytes = t.bytes
    s.pps = lastRate.pps
    s.kbitPerSec = lastRate.kbit
    s.drops = t.drops
    for l in loops {
      s.quotaUsed += l.forwarder.quota.used
      s.quotaReached = s.quotaReached || l.forwarder.quota.reached
      s.poolFree += l.pool.available
      s.poolSize += l.pool.capacity
    }
    s.quotaLimit = current.limits.quotaBytes
    s.quotaResetDay = current.limits.quotaResetDay
    s.recentErrors = Log.recent
    s.ledState = leds?.summary ?? "off"
    if let credit {
      let t = credit.totals()
      s.identity = credit.fingerprint.hex
      s.creditKnown = true
      s.creditReceipted = t.receipted
      s.creditReceipts = t.receipts
      s.creditCommitted = t.committed
      s.creditError = credit.lastError
    }
    for l in loops {
      let cs = l.forwarder.creditState()
      s.creditPaused += cs.paused
      s.creditPending += cs.pending
    }
    s.creditWindow = config.creditWindow
    let nowNs = wisp_monotonic_ns()
    if let t = sessions {
      s.sessions = t.counters
      s.sessionsEstablished = t.establishedSessions
      s.sessionsHalfOpen = t.halfOpenSessions
      s.sessionsCapacity = t.limits.capacity
      for l in t.links where l.established {
        let name = l.peer.map { $0 < t.peers.count ? t.peers[$0].name + "@" : "" } ?? ""
        s.sessionLines.append(.init(peer: name + l.endpoint.text, kind: l.peer == nil ? "client" : "node",
                                    suite: l.session.cipherSuite, key: l.session.peerFingerprint?.hex ?? "-",
                                    ageSec: (nowNs &- l.session.establishedNs) / 1_000_000_000,
                                    bytesIn: l.session.bytesIn, bytesOut: l.session.bytesOut))
      }
    }
    s.peers = peers.peers.map { p in
      StatusSnapshot.PeerLine(name: p.name, endpoint: p.endpoint.text, srttUs: p.srttUs, lastRttUs: p.lastRttUs,
                              sent: p.sent, answered: p.answered,
                              lastSeenSec: p.lastSeenNs == 0 ? nil : (nowNs - p.lastSeenNs) / 1_000_000_000)
    }
    return s
  }

  /// Answers every waiting client of a listening socket (at most 8 per wake-up): reads one
  /// request (100 ms at most), writes `reply(request)`, closes.
  func serve(_ listener: Int32, reply: ([UInt8]) -> String) {
    for _ in 0..<8 {
      let c = wisp_accept(listener)
      if c < 0 { return }
      var req = [UInt8](repeating: 0, count: 1024)
      let n = req.withUnsafeMutableBytes { wisp_read_timeout(c, $0.baseAddress, $0.count, 100) }
      var text = reply(n > 0 ? Array(req[0..<Int(n)]) : [])
      _ = text.withUTF8 { wisp_write_all(c, $0.baseAddress, $0.count, 200) }
      close(c)
    }
  }

  /// `wisp status`: "json" asks for JSON, anything else for text.
  func serveStatus() {
    serve(statusFd) { req in req.first == 106 ? self.snapshot().json() : self.snapshot().text() }  // 'j'
  }

  /// Prometheus scrapes: any GET gets the metrics.
  func serveMetrics() {
    serve(metricsFd) { req in
      guard req.count >= 4, req[0] == 71, req[1] == 69, req[2] == 84, req[3] == 32 else {  // "GET "
        return "HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"
      }
      let body = self.snapshot().prometheus()
      return "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
    }
  }

  func stopAll() {
    wisp_stop_request()
    loops[0].stop()
  }

  /// Packets forwarded by every shard (allocation-free: the LED timer asks 20 times a second).
  func forwardedPackets() -> UInt64 {
    var p: UInt64 = 0
    for l in loops { p &+= l.forwarder.traffic.forwardedPackets }
    return p
  }

  func totals() -> (packets: UInt64, bytes: UInt64, circuits: Int, created: UInt64, drops: DropCounters, gso: UInt64, gro: UInt64) {
    var p: UInt64 = 0, b: UInt64 = 0, c = 0, cr: UInt64 = 0, g: UInt64 = 0, r: UInt64 = 0
    var d = DropCounters()
    for l in loops {
      p += l.forwarder.traffic.forwardedPackets
      b += l.forwarder.traffic.forwardedBytes
      c += l.forwarder.circuits.circuitsInUse
      cr += l.forwarder.traffic.circuitsCreated
      g += l.gsoSegments
      r += l.groSegments
      for r in DropReason.allCases { d.count(r, l.forwarder.drops[r]) }
      d.count(.poolExhausted, 0)
    }
    return (p, b, c, cr, d, g, r)
  }

  func statusLine() -> String {
    let t = totals()
    let now = wisp_monotonic_ns()
    let dt = max(now - lastStats.ns, 1)
    let pps = (t.packets - lastStats.packets) * 1_000_000_000 / dt
    let kbit = (t.bytes - lastStats.bytes) * 8 * 1_000_000 / dt
    lastStats = (now, t.packets, t.bytes)
    return "status node=\(config.name) uptime_s=\((now - startNs) / 1_000_000_000) circuits=\(t.circuits)"
      + " pps=\(pps) mbit_s=\(formatFixed(kbit, decimals: 3)) forwarded=\(t.packets) bytes=\(t.bytes)"
      + " drops=\(t.drops.total) [\(t.drops.summary)]" + quotaStatus()
  }

  /// " quota=used/limit" and why new circuits are refused, when a quota is set.
  func quotaStatus() -> String {
    let q = loops[0].forwarder.quota
    if q.limit == 0 { return "" }
    var used: UInt64 = 0
    for l in loops { used += l.forwarder.quota.used }
    var s = " quota_used=\(used) quota_limit=\(q.limit)"
    if loops.contains(where: { $0.forwarder.quota.reached }) {
      s += " refusing_new_circuits=\"monthly quota reached; resets on day \(q.resetDay)\""
    }
    return s
  }

  func summary() -> String {
    let t = totals()
    let rss = ProcessInfo.peakRSSKiB()
    var creditText = " credit=off"
    if let credit {
      let c = credit.totals()
      creditText = " receipted_bytes=\(c.receipted) committed_bytes=\(c.committed) receipts_accepted=\(credit.accepted)"
        + " receipts_rejected=\(credit.rejected) receipts_uncredited=\(credit.uncredited)"
    }
    return "forwarded_packets=\(t.packets) forwarded_bytes=\(t.bytes) circuits_created=\(t.created)"
      + (sessions.map { " sessions=\($0.establishedSessions) handshakes_full=\($0.counters.handshakesFull)"
          + " handshakes_resumed=\($0.counters.handshakesResumed) hello_verify_requests=\($0.counters.helloVerifyRequests)"
          + " unverified_bytes_in=\($0.counters.unverifiedBytesIn) unverified_bytes_out=\($0.counters.unverifiedBytesOut)"
          + " records_sealed=\($0.counters.recordsSealed) records_opened=\($0.counters.recordsOpened)"
          + " close_notify_sent=\($0.counters.closeNotifySent) session_refusals=[\($0.counters.refusalSummary)]" } ?? " sessions=off")
      + " circuits_open=\(t.circuits) gso_segments=\(t.gso) gro_segments=\(t.gro) peak_rss_kb=\(rss)\(creditText) drops=\(t.drops.total) [\(t.drops.summary)]"
  }
}
