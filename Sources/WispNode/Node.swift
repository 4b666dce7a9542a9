// `wisp run`: a relay node of one or more shards on one UDP port.
//
// Threads and who owns what:
//   - the control plane runs on the main thread (ControlLoop): signals (stop, SIGHUP
//     reload, SIGUSR1), the status socket and the metrics endpoint, peer RTT probes, the
//     LEDs, the systemd watchdog and the credit journal's group commits. It forwards no
//     packets, never touches a shard's state and never blocks on a client of its sockets
//     (RequestServer);
//   - shard k is a RelayLoop on its own SO_REUSEPORT socket, with its own pool and circuit
//     table, on a thread of its own (NodeShard). The kernel steers each plain frame to the
//     shard named by the low bits of its circuit id (a classic BPF program), so a
//     circuit's frames always meet the table that holds it, and everything else (DTLS
//     records, exit replies) to shard 0, which holds the DTLS session table. The other
//     shards apply the same link rules without sessions (PlainLinks);
//   - the two talk only through bounded mailboxes (Mailbox, woken by an eventfd):
//     ShardMessage to a shard, ControlMessage back.
import CPosix
import WispCore
import WispOS
import WispTLS

public final class Node {
  public let config: RunConfig
  public var current: RunConfig
  public let startNs = wisp_monotonic_ns()
  public var shards: [NodeShard<UDPBatchIO>] = []
  public var control: ControlLoop? = nil
  /// What the shards post to the control plane.
  public let inbox: Mailbox<ControlMessage>
  /// The latest snapshot of each shard, the request generation it answered, and when it
  /// arrived (control-plane clock; a shard that stops posting stops the watchdog).
  public var latest: [ShardSnapshot] = []
  public var answered: [UInt64] = []
  public var heardNs: [UInt64] = []
  public var generation: UInt64 = 0
  public var lastStats: (ns: UInt64, packets: UInt64, bytes: UInt64) = (0, 0, 0)
  public var lastRate: (ns: UInt64, packets: UInt64, bytes: UInt64, pps: UInt64, kbit: UInt64) = (0, 0, 0, 0, 0)
  public var statusFd: Int32 = -1
  public var metricsFd: Int32 = -1
  /// The status socket's and the metrics endpoint's clients (nil: not listening).
  public var statusServer: RequestServer? = nil
  public var metricsServer: RequestServer? = nil
  public var leds: NodeLEDs? = nil
  /// Whether the wall clock is synchronised (NodeClock.swift); `clock.clockSynced` for the credit side.
  public let clock: NodeClock
  public var credit: NodeCredit? = nil
  /// The payer list in force (NodePayers.swift; nil: payers unverified).
  public var payers: PayerList? = nil
  /// The thread that verifies and records receipts and commits the journal (nil without credit).
  public var worker: CreditWorker? = nil
  public var peers = NodePeers([])
  public var ticks: UInt64 = 0
  public var watchdogUsec: UInt64 = 0
  public enum Timer: Int { case tick = 1, stats, stop, watchdog, leds, connections }
  public static let statusTag: UInt64 = 16
  public static let metricsTag: UInt64 = 17
  public static let inboxTag: UInt64 = 18
  /// Tags of the status socket's connections (32 + slot) and the metrics endpoint's (48 + slot).
  public static let statusConnectionTags: UInt64 = 32
  public static let metricsConnectionTags: UInt64 = 48
  /// The group the status socket belongs to when the node runs as root (the packaged
  /// service runs as user and group `wisp`, so there the process's group is this one).
  public static let serviceGroup = "wisp"

  /// A node for `config` (nothing runs until `run`).
  public init(config: RunConfig) throws(Errno) {
    self.config = config
    current = config
    clock = NodeClock(mode: config.clockSync)
    // Room for every shard's periodic snapshot, answers to requests and PONGs.
    inbox = try Mailbox(capacity: 64 + 8 * config.effectiveShards)
  }

  public func run() -> Int32 {
    wisp_ignore_sigpipe()
    // Signals are blocked before any thread starts, so that every thread inherits the mask.
    let control: ControlLoop
    do throws(Errno) { control = try ControlLoop(signals: true) } catch {
      Log.error("cannot start the control loop", "error=\"\(error.description)\"")
      return 1
    }
    self.control = control
    // Wire protocol v2 and the sockets carry IPv4 only, for now (Endpoint.swift).
    // (IPv6 exit rules are accepted: they match no destination until the wire carries IPv6.)
    let addresses = [config.listen] + config.exits + config.peers.map { $0.endpoint } + (config.metrics.map { [$0] } ?? [])
    if let v6 = addresses.first(where: { !$0.isIPv4 }) {
      Log.error("IPv6 addresses are not carried yet (wire protocol v2 is IPv4)", "addr=\(v6.text)")
      return 1
    }
    // The node key and the credit journal come first: READY means recovered.
    let credit = NodeCredit.open(directory: config.stateDir, window: config.creditWindow,
                                 commitInterval: config.commitIntervalSec)
    self.credit = credit
    if config.payersPath != nil && credit == nil {
      Log.error("a payer list needs credit: the state directory or node key is unusable")
      return 1
    }
    credit?.unboundAllowance = config.unboundAllowance
    // Time checks (receipt epochs, payer validity) wait while the clock is unsynchronised.
    let clock = self.clock
    credit?.clockSynced = { clock.clockSynced() }
    if !startPayers() { return 1 }
    var count = config.effectiveShards
    if count > 1 && config.shards == nil {
      // Automatic sharding needs the kernel's reuseport steering program (qemu-user and
      // old kernels lack it): without it, one shard rather than none.
      let r = wisp_reuseport_cbpf_supported()
      if r < 0 {
        Log.warn("one shard: this kernel cannot steer frames to shards", "error=\"\(Errno(-r).description)\"")
        count = 1
      }
    }
    var shardBits = 0
    while (1 << shardBits) < count { shardBits += 1 }
    let perShardPool = max(config.poolPackets / count, config.batch * 4)
    let perShardCircuits = max(config.circuits / count, 1)
    if let credit {
      do throws(Errno) { worker = try CreditWorker(credit: credit, shards: count, halvesPerShard: perShardCircuits * 2) } catch {
        Log.error("cannot start the credit worker", "error=\"\(error.description)\"")
        return 1
      }
      // Sealed exits: the node key is parsed once, for the worker's key agreements.
      worker?.keyAgreement = ExitKeyAgreement(keyPEM: credit.key.pem, point: credit.key.publicKey)
    }
    // Exit sockets: the configured budget, within the open-file limit (64 kept for the rest).
    let files = Int(wisp_nofile_limit())
    let exitBudget = files > 64 ? min(config.exitSockets, files - 64) : config.exitSockets
    if exitBudget < config.exitSockets {
      Log.warn("exit sockets limited by the open-file limit", "configured=\(config.exitSockets) usable=\(exitBudget) nofile=\(files)")
    }
    let peerIPs = Node.linkPeers(config).map { $0.endpoint.sourceKey }
    for k in 0..<count {
      let fd = wisp_udp_open(config.listen.ip, config.listen.port, count > 1 ? 1 : 0, 4 << 20)
      if fd < 0 {
        Log.error("cannot open UDP socket", "addr=\(config.listen.text) error=\"\(Errno(-fd).description)\"")
        return 1
      }
      if k == 0 && count > 1 {
        let r = wisp_attach_reuseport_cbpf(fd, UInt32((1 << shardBits) - 1))
        if r < 0 { Log.error("cannot attach shard steering program", "error=\"\(Errno(-r).description)\""); return 1 }
      }
      let pool = PacketPool(capacity: perShardPool)
      let fwd = Forwarder(circuits: perShardCircuits, local: config.listen, limits: config.limits,
                          exitPolicy: config.exitPolicy, random: KernelRandom(), nowEpoch: wisp_realtime_s(),
                          shard: k, shardBits: shardBits, sourceLimits: config.sourceLimits.perShard(count))
      fwd.exitSocketBudget = max(exitBudget / count, exitBudget > 0 ? 1 : 0)
      fwd.sources.exempt = peerIPs
      if let credit {
        fwd.fingerprint = credit.fingerprint
        fwd.creditWindow = config.creditWindow
        fwd.unboundAllowance = config.unboundAllowance
        fwd.bindTimeout = config.bindTimeoutSec
        worker?.connect(fwd, shard: k)
        // Sealed exits: keys per circuit, agreed on the worker (exits may come with SIGHUP).
        fwd.exitCipher = ExitSealer(halves: fwd.circuits.capacity)
      }
      do throws(Errno) {
        let io = UDPBatchIO(fd: fd, batch: config.batch, sendCapacity: config.gso ? config.batch * 64 : config.batch, gso: config.gso)
        let loop = try RelayLoop(io: io, pool: pool, forwarder: fwd, batch: config.batch)
        loop.timers.schedule(RelayLoop<UDPBatchIO>.TimerID.tick.rawValue, at: wisp_monotonic_ns() + 1_000_000_000, every: 1_000_000_000)
        shards.append(try NodeShard<UDPBatchIO>(index: k, loop: loop, control: inbox))
      } catch {
        Log.error("cannot start event loop", "error=\"\(error.description)\"")
        return 1
      }
    }
    // Shard 0 holds the DTLS sessions; the others apply the same link rules without them.
    if config.sessions > 0 {
      guard let table = Node.openSessions(config) else { return 1 }
      table.attach(to: shards[0].loop)
      shards[0].sessions = table
      // Handshakes on a thread of their own; flights go out on shard 0's socket.
      let r = shards[0].startHandshakeWorker(sendFd: shards[0].loop.io.fd)
      if r < 0 { Log.error("cannot start the handshake worker", "error=\"\(Errno(-r).description)\""); return 1 }
      let links = Node.linkPeers(config).map { $0.endpoint }
      for s in shards.dropFirst() where config.linksRequired || !links.isEmpty {
        let rules = PlainLinks(required: config.linksRequired, nodeLinks: links)
        rules.attach(to: s.loop)
        s.plain = rules
      }
    }
    latest = shards.map { var s = ShardSnapshot(); s.beat.shard = $0.index; return s }
    answered = [UInt64](repeating: 0, count: shards.count)
    let now = wisp_monotonic_ns()
    heardNs = [UInt64](repeating: now, count: shards.count)
    do throws(Errno) { try control.watch(inbox.fd, tag: Node.inboxTag) } catch {
      Log.error("cannot watch the control mailbox", "error=\"\(error.description)\"")
      return 1
    }
    control.timers.schedule(Timer.tick.rawValue, at: now + 1_000_000_000, every: 1_000_000_000)
    if config.statsIntervalSec > 0 {
      control.timers.schedule(Timer.stats.rawValue, at: now + config.statsIntervalSec * 1_000_000_000,
                              every: config.statsIntervalSec * 1_000_000_000)
    }
    if config.durationSec > 0 {
      control.timers.schedule(Timer.stop.rawValue, at: now + config.durationSec * 1_000_000_000)
    }
    lastStats = (now, 0, 0)
    lastRate = (now, 0, 0, 0, 0)
    if let path = config.statusSocket {
      statusFd = wisp_unix_listen(path, Node.serviceGroup)
      if statusFd < 0 {
        Log.warn("no status socket", "path=\(path) error=\"\(Errno(-statusFd).description)\"")
      } else {
        try? control.watch(statusFd, tag: Node.statusTag)
        // "json" asks for JSON, anything else for text; a request is one line.
        statusServer = RequestServer(listener: statusFd, listenTag: Node.statusTag, baseTag: Node.statusConnectionTags,
                                     control: control, isComplete: { $0.contains(10) }) { req in
          req.first == 106 ? self.snapshot().json() : self.snapshot().text()  // 'j'
        }
      }
    }
    if let m = config.metrics {
      metricsFd = wisp_tcp_listen(m.ip, m.port)
      if metricsFd < 0 {
        Log.warn("no metrics endpoint", "addr=\(m.text) error=\"\(Errno(-metricsFd).description)\"")
      } else {
        try? control.watch(metricsFd, tag: Node.metricsTag)
        metricsServer = RequestServer(listener: metricsFd, listenTag: Node.metricsTag, baseTag: Node.metricsConnectionTags,
                                      control: control, isComplete: Node.httpHeadersComplete) { req in self.metricsReply(req) }
      }
    }
    // systemd: watchdog at half the interval it asks for, READY once the port is bound.
    if config.watchdog, let usecText = ProcessInfo.environment("WATCHDOG_USEC"), let usec = parseDecimal(usecText), usec > 0 {
      let pidOK = ProcessInfo.environment("WATCHDOG_PID").map { parseDecimal($0) == UInt64(getpid()) } ?? true
      if pidOK {
        watchdogUsec = usec
        control.timers.schedule(Timer.watchdog.rawValue, at: now, every: usec.saturatingMultiply(500))
      }
    }
    peers = NodePeers(config.peers)
    let ledPanel = NodeLEDs(lines: config.leds)
    ledPanel.set(.selfTest, true)   // lamp test for the first second
    ledPanel.set(.storageError, credit == nil || credit!.report().failed)
    ledPanel.set(.clockUnsynced, !clock.state.trusted)
    leds = ledPanel
    control.timers.schedule(Timer.leds.rawValue, at: now)
    control.onEvent = { event in self.handle(event) }  // cycle broken below
    if let worker {
      worker.shards = shards.map { $0.inbox }
      let r = worker.start()
      if r < 0 { Log.error("cannot start the credit worker", "error=\"\(Errno(-r).description)\""); return 1 }
    }
    for s in shards {
      let r = s.start()
      if r < 0 { Log.error("cannot start shard thread", "error=\"\(Errno(-r).description)\""); return 1 }
    }
    if !config.peers.isEmpty { shards[0].inbox.post(.ping(peers.probeTargets())) }
    _ = wisp_sd_notify("READY=1\nSTATUS=relaying on \(config.listen.text)")
    Log.info("listening", "addr=\(config.listen.text) shards=\(count) pool=\(perShardPool)x\(Defaults.bufferSize)B"
               + " circuits=\(perShardCircuits) batch=\(config.batch) gso=\(config.gso ? "on" : "off")"
               + " exit_rules=\(config.exitPolicy.rules.count) version=\(Build.version)")
    if !config.exitPolicy.isEmpty { Log.info("exit policy", "rules=\"\(Log.quote(config.exitPolicy.text))\"") }
    control.run()
    _ = wisp_sd_notify("STOPPING=1")
    wisp_stop_request()  // a shard whose inbox was full stops at its next tick
    for s in shards { _ = wisp_thread_join(s.thread) }
    if let worker {
      // After the shards: the circuits they closed reach the journal, then its last commit.
      while !worker.inbox.post(.stop) { _ = wisp_poll_in(-1, 10) }
      _ = wisp_thread_join(worker.thread)
    }
    drainInbox()  // the shards' last snapshots
    control.onEvent = nil
    leds?.shutdown(nowNs: wisp_monotonic_ns())
    statusServer?.closeAll()
    metricsServer?.closeAll()
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
  public static func openSessions(_ config: RunConfig) -> SessionTable? {
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
      limits.perSourceSessions = config.sessionsPerSource
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
      table.loadTicket = { fp in
        guard let bytes = try? Files.read(dir + "/" + fp.hex + ".session", limit: 64 * 1024) else { return nil }
        // mbedTLS stamps its version into a saved session and refuses another's (after an
        // upgrade from bookworm's 2.28 to trixie's 3.6, or any library update): full handshake.
        if SavedSession(serialized: bytes) == nil {
          Log.info("saved link session refused, full handshake instead",
                   "peer=\(fp.hex) reason=\"written by another mbedTLS version, or damaged\"")
          return nil
        }
        return bytes
      }
      Log.info("dtls sessions", "capacity=\(limits.capacity) half_open=\(limits.halfOpen) handshake_rate=\(limits.handshakesPerSecond)"
                 + " per_source=\(limits.perSourceSessions)"
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
  public static func ticketSeed(_ dir: String, _ random: RandomGenerator) -> [UInt8]? {
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
  public static func linkPeers(_ c: RunConfig) -> [LinkPeer] {
    var out: [LinkPeer] = []
    for p in c.peers {
      if let k = p.key { out.append(LinkPeer(name: p.name, endpoint: p.endpoint, fingerprint: Fingerprint(bytes: k.bytes))) }
    }
    return out
  }

  /// Runs on the control thread.
  public func handle(_ event: ControlLoop.Event) {
    switch event {
    case .timer(let id):
      switch Timer(rawValue: id) {
      case .tick: tick()
      case .leds:
        if let leds {
          let now = wisp_monotonic_ns()
          let next = leds.update(nowNs: now, packets: forwardedPackets())
          control?.timers.schedule(Timer.leds.rawValue, at: next)
        }
      case .watchdog:
        // Only while every shard's loop is turning: each posts a snapshot every second.
        if let k = Node.stalledShard(heardNs: heardNs, nowNs: wisp_monotonic_ns(), watchdogUsec: watchdogUsec) {
          Log.error("a shard has stopped answering: no watchdog ping", "shard=\(k)")
        } else {
          _ = wisp_sd_notify("WATCHDOG=1")
        }
      case .stats:
        Console.err(statusLine())
      case .stop:
        Log.info("run time over, stopping")
        stopAll()
      case .connections:
        let now = wisp_monotonic_ns()
        statusServer?.expire(now: now)
        metricsServer?.expire(now: now)
        armConnectionTimer()
      case .none: break
      }
    case .readable(let tag):
      if tag == Node.inboxTag { drainInbox() }
      else if let server = statusServer, server.owns(tag) { server.handle(tag, now: wisp_monotonic_ns()); armConnectionTimer() }
      else if let server = metricsServer, server.owns(tag) { server.handle(tag, now: wisp_monotonic_ns()); armConnectionTimer() }
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

  /// Once a second: peer probes, LED states, the journal's group commit.
  public func tick() {
    ticks += 1
    clock.refresh()  // one read-only adjtimex a tick (NodeClock.swift)
    leds?.set(.clockUnsynced, !clock.state.trusted)
    if ticks % (NodePeers.intervalNs / 1_000_000_000) == 0 && !peers.peers.isEmpty {
      shards[0].inbox.post(.ping(peers.probeTargets()))
    }
    if let leds {
      let now = wisp_monotonic_ns()
      if now.since(startNs) >= 1_000_000_000 { leds.set(.selfTest, false); leds.set(.ready, true) }
      leds.set(.quotaReached, latest.contains { $0.beat.quotaReached })
    }
    if let credit {
      leds?.set(.storageError, credit.report().failed)
      if config.creditWindow > 0 { leds?.set(.unpaid, latest.contains { $0.beat.creditPaused > 0 }) }
    }
  }

  /// Takes every message the shards posted.
  public func drainInbox() {
    inbox.acknowledge()
    let now = wisp_monotonic_ns()
    while let m = inbox.take() {
      switch m {
      case .snapshot(let s):
        let k = s.beat.shard
        guard k < latest.count else { continue }
        latest[k] = s
        answered[k] = max(answered[k], s.generation)
        heardNs[k] = now
      case .beat(let b):
        guard b.shard < latest.count else { continue }
        latest[b.shard].beat = b
        heardNs[b.shard] = now
      case .pong(let from, let token):
        peers.pong(from: from, token: token)
      }
    }
  }

  /// Asks every shard for a snapshot and waits for the answers (250 ms at most; a shard
  /// that does not answer in time is shown as it last was).
  public func refreshSnapshots() {
    generation += 1
    let g = generation
    for s in shards { s.inbox.post(.snapshot(generation: g)) }
    let deadline = wisp_monotonic_ns() + 250_000_000
    while answered.contains(where: { $0 < g }) {
      let now = wisp_monotonic_ns()
      if now >= deadline { break }
      _ = wisp_poll_in(inbox.fd, Int32((deadline - now) / 1_000_000 + 1))
      drainInbox()
    }
  }

  /// SIGHUP: re-read the config file; keep the old one if the new one is invalid.
  public func reload() {
    guard let path = current.configPath else {
      if current.payersPath != nil { reloadPayers(current) }
      Log.info("SIGHUP: no config file in use, nothing else to reload")
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
      // Each shard applies the new limits and exits on its own thread.
      let now = wisp_realtime_s()
      var refused = 0
      for s in shards where !s.inbox.post(.limits(new.limits, exits: new.exitPolicy, nowEpoch: now)) { refused += 1 }
      if refused > 0 { Log.error("reload not delivered to every shard (mailbox full): reload again", "shards=\(refused)") }
      if new.leds != current.leds || (current.configPath != nil && new.boardName != current.boardName) {
        // New LED lines: release the old ones (dark first), then request the new ones.
        leds?.shutdown(nowNs: wisp_monotonic_ns())
        let fresh = NodeLEDs(lines: new.leds)
        fresh.set(.ready, true)
        fresh.set(.storageError, credit == nil || credit!.report().failed)
        fresh.set(.clockUnsynced, !clock.state.trusted)
        leds = fresh
        Log.info("LED lines reloaded", "backend=\"\(Log.quote(fresh.backend))\"")
      }
      if new.creditWindow != current.creditWindow || new.unboundAllowance != current.unboundAllowance
        || new.bindTimeoutSec != current.bindTimeoutSec {
        Log.warn("credit_window, unbound_allowance and bind_timeout take effect on restart")
      }
      if credit != nil {
        reloadPayers(new)
        if payers != nil { current.payersPath = new.payersPath; current.settlementKeys = new.settlementKeys
          current.settlementThreshold = new.settlementThreshold; current.requirePayers = new.requirePayers }
      }
      peers.update(new.peers)
      let links = Node.linkPeers(new)
      for s in shards { s.inbox.post(.nodeLinks(links)) }
      var kept = current
      kept.peers = new.peers
      kept.limits = new.limits
      kept.exits = new.exits
      kept.exitRules = new.exitRules
      kept.leds = new.leds
      kept.boardName = new.boardName
      kept.statsIntervalSec = new.statsIntervalSec
      kept.clockSync = new.clockSync
      clock.mode = new.clockSync
      clock.refresh()
      kept.payersPath = current.payersPath
      kept.settlementKeys = current.settlementKeys
      kept.settlementThreshold = current.settlementThreshold
      kept.requirePayers = current.requirePayers
      current = kept
      Log.info("reloaded", "file=\(path) rate_mbit=\(new.limits.nodeMbit) circuit_rate_mbit=\(new.limits.circuitMbit)"
                 + " quota_bytes=\(new.limits.quotaBytes) exit_rules=\(new.exitPolicy.rules.count)")
    }
  }

  /// The first shard not heard from for the watchdog interval (at least 3 s), if any: the
  /// watchdog is answered only while this is nil.
  public static func stalledShard(heardNs: [UInt64], nowNs: UInt64, watchdogUsec: UInt64) -> Int? {
    let limit = max(watchdogUsec.saturatingMultiply(1000), 3_000_000_000)
    return heardNs.firstIndex { nowNs.since($0) > limit }
  }

  /// The node's status from fresh shard snapshots (control thread).
  public func snapshot() -> StatusSnapshot {
    refreshSnapshots()
    let t = totals()
    let now = wisp_monotonic_ns()
    if now.since(lastRate.ns) >= 1_000_000_000 {
      let dt = now.since(lastRate.ns)
      lastRate = (now, t.packets, t.bytes, Rate.perSecond(t.packets.since(lastRate.packets), overNs: dt),
                  Rate.kbitPerSecond(bytes: t.bytes.since(lastRate.bytes), overNs: dt))
    }
    var s = StatusSnapshot()
    s.name = config.name
    s.listen = config.listen.text
    s.labAddresses = config.limits.labAddresses
    s.clock = clock.state
    s.exitPolicy = current.exitPolicy.rules.map { $0.text }
    s.uptimeSec = now.since(startNs) / 1_000_000_000
    s.shards = shards.count
    s.circuits = t.circuits
    s.circuitsCreated = t.created
    s.packets = t.packets
    s.bytes = t.bytes
    s.pps = lastRate.pps
    s.kbitPerSec = lastRate.kbit
    s.drops = t.drops
    s.mailboxRefused = mailboxRefused()
    s.connectionsRefused = (statusServer?.refused ?? 0) &+ (metricsServer?.refused ?? 0)
    s.connectionsExpired = (statusServer?.expired ?? 0) &+ (metricsServer?.expired ?? 0)
    for l in latest {
      s.quotaUsed &+= l.beat.quotaUsed
      s.quotaReached = s.quotaReached || l.beat.quotaReached
      s.poolFree &+= l.beat.poolFree
      s.poolSize &+= l.poolSize
      s.creditPaused &+= l.beat.creditPaused
      s.creditPending &+= l.beat.creditPending
      s.unboundOpen += l.beat.creditUnbound
      s.unboundClosed &+= l.beat.traffic.unbound
      s.bindsSent &+= l.beat.traffic.binds
      s.exitSocketsOpen += l.exitSocketsOpen
      s.exitSocketBudget += l.exitSocketBudget
      s.sourceRefusedCircuits &+= l.sourceRefusedCircuits
      s.sourceRefusedPending &+= l.sourceRefusedPending
      s.sourceRefusedExpensive &+= l.sourceRefusedExpensive
      s.sourceRefusedUnbound &+= l.sourceRefusedUnbound
    }
    s.keyAgreements = worker?.keyAgreements ?? 0
    s.keyAgreementsFailed = worker?.keyAgreementsFailed ?? 0
    s.quotaLimit = current.limits.quotaBytes
    s.quotaResetDay = current.limits.quotaResetDay
    s.recentErrors = Log.recent
    s.ledState = leds?.summary ?? "off"
    if let credit {
      let r = credit.report()
      s.identity = credit.fingerprint.hex
      s.creditKnown = true
      s.creditReceipted = r.totals.receipted
      s.creditReceipts = r.totals.receipts
      s.creditCommitted = r.totals.committed
      s.creditError = r.lastError
      s.creditTables = credit.tables()
      s.clockSynced = credit.clockSynced()
      payerStatus(&s)
    }
    s.creditWindow = config.creditWindow
    if latest.contains(where: { $0.hasSessionTable }) {
      var c = SessionCounters()
      for l in latest {
        c.add(l.links)
        s.sessionsEstablished &+= l.sessionsEstablished
        s.sessionsHalfOpen &+= l.sessionsHalfOpen
        s.sessionsCapacity &+= l.sessionsCapacity
        s.sessionLines += l.sessionLines
      }
      s.sessions = c
    }
    let nowNs = wisp_monotonic_ns()
    s.peers = peers.peers.map { p in
      StatusSnapshot.PeerLine(name: p.name, endpoint: p.endpoint.text, srttUs: p.srttUs, lastRttUs: p.lastRttUs,
                              sent: p.sent, answered: p.answered,
                              lastSeenSec: p.lastSeenNs == 0 ? nil : nowNs.since(p.lastSeenNs) / 1_000_000_000)
    }
    return s
  }

  /// The connection timer at the earliest deadline of an open status or metrics
  /// connection (cancelled when none is open).
  public func armConnectionTimer() {
    let a = statusServer?.nextDeadline, b = metricsServer?.nextDeadline
    let next = a.map { d in b.map { min(d, $0) } ?? d } ?? b
    if let next { control?.timers.schedule(Timer.connections.rawValue, at: next) }
    else { control?.timers.cancel(Timer.connections.rawValue) }
  }

  /// Whether an HTTP request's header block is whole (a blank line).
  public static func httpHeadersComplete(_ req: [UInt8]) -> Bool {
    if req.count < 2 { return false }
    for i in 1..<req.count where req[i] == 10 && (req[i - 1] == 10 || (i >= 3 && req[i - 1] == 13 && req[i - 2] == 10)) {
      return true
    }
    return false
  }

  /// Prometheus scrapes: any GET gets the metrics.
  public func metricsReply(_ req: [UInt8]) -> String {
    guard req.count >= 4, req[0] == 71, req[1] == 69, req[2] == 84, req[3] == 32 else {  // "GET "
      return "HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"
    }
    let body = snapshot().prometheus()
    return "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
  }

  public func stopAll() {
    for s in shards { s.inbox.post(.stop) }
    control?.stop()
  }

  /// Messages refused by the node's full mailboxes (each mailbox counts under its own lock).
  func mailboxRefused() -> UInt64 {
    var n = inbox.occupancy.refused &+ (worker?.inbox.occupancy.refused ?? 0)
    for s in shards { n &+= s.inbox.occupancy.refused }
    return n
  }

  /// Packets forwarded by every shard, as they published them (the LED timer asks 20
  /// times a second; no message, no allocation).
  public func forwardedPackets() -> UInt64 {
    var p: UInt64 = 0
    for s in shards { p &+= wisp_atomic_load_u64(s.published) }
    return p
  }

  /// Sums of the shards' latest snapshots.
  public func totals() -> (packets: UInt64, bytes: UInt64, circuits: Int, created: UInt64, drops: DropCounters, gso: UInt64, gro: UInt64,
                    links: SessionCounters) {
    var p: UInt64 = 0, b: UInt64 = 0, c = 0, cr: UInt64 = 0, g: UInt64 = 0, r: UInt64 = 0
    var d = DropCounters()
    var links = SessionCounters()
    for l in latest {
      p &+= l.beat.traffic.forwardedPackets
      b &+= l.beat.traffic.forwardedBytes
      c &+= l.beat.circuits
      cr &+= l.beat.traffic.circuitsCreated
      g &+= l.gsoSegments
      r &+= l.groSegments
      for reason in DropReason.allCases { d.count(reason, l.drops[reason]) }
      links.add(l.links)
    }
    return (p, b, c, cr, d, g, r, links)
  }

  public func statusLine() -> String {
    refreshSnapshots()
    let t = totals()
    let now = wisp_monotonic_ns()
    let dt = max(now.since(lastStats.ns), 1)
    let pps = Rate.perSecond(t.packets.since(lastStats.packets), overNs: dt)
    let kbit = Rate.kbitPerSecond(bytes: t.bytes.since(lastStats.bytes), overNs: dt)
    lastStats = (now, t.packets, t.bytes)
    return "status node=\(config.name) uptime_s=\(now.since(startNs) / 1_000_000_000) circuits=\(t.circuits)"
      + " pps=\(pps) mbit_s=\(formatFixed(kbit, decimals: 3)) forwarded=\(t.packets) bytes=\(t.bytes)"
      + " drops=\(t.drops.total) [\(t.drops.summary)]" + quotaStatus()
  }

  /// " quota=used/limit" and why new circuits are refused, when a quota is set.
  public func quotaStatus() -> String {
    let q = current.limits
    if q.quotaBytes == 0 { return "" }
    var used: UInt64 = 0
    for l in latest { used &+= l.beat.quotaUsed }
    var s = " quota_used=\(used) quota_limit=\(q.quotaBytes)"
    if latest.contains(where: { $0.beat.quotaReached }) {
      s += " refusing_new_circuits=\"monthly quota reached; resets on day \(q.quotaResetDay)\""
    }
    return s
  }

  /// The stop line, from the shards' last snapshots.
  public func summary() -> String {
    let t = totals()
    let rss = ProcessInfo.peakRSSKiB()
    var creditText = " credit=off"
    if let credit {
      let r = credit.report()
      creditText = " receipted_bytes=\(r.totals.receipted) committed_bytes=\(r.totals.committed) receipts_accepted=\(r.accepted)"
        + " receipts_rejected=\(r.rejected) receipts_uncredited=\(r.uncredited)"
        + " credit_queue_refused=\(worker?.inbox.occupancy.refused ?? 0) credit_answers_lost=\(worker?.answersLost ?? 0)"
    }
    let l = t.links
    let sessionsText = latest.contains(where: { $0.hasSessionTable })
      ? " sessions=\(latest.reduce(0) { $0 + $1.sessionsEstablished }) handshakes_full=\(l.handshakesFull)"
        + " handshakes_resumed=\(l.handshakesResumed) hello_verify_requests=\(l.helloVerifyRequests)"
        + " unverified_bytes_in=\(l.unverifiedBytesIn) unverified_bytes_out=\(l.unverifiedBytesOut)"
        + " records_sealed=\(l.recordsSealed) records_opened=\(l.recordsOpened)"
        + " close_notify_sent=\(l.closeNotifySent) session_refusals=[\(l.refusalSummary)]"
      : " sessions=off"
    return "forwarded_packets=\(t.packets) forwarded_bytes=\(t.bytes) circuits_created=\(t.created)" + sessionsText
      + " circuits_open=\(t.circuits) gso_segments=\(t.gso) gro_segments=\(t.gro) peak_rss_kb=\(rss) mailbox_refused=\(mailboxRefused())\(creditText) drops=\(t.drops.total) [\(t.drops.summary)]"
  }
}

extension NodeShard {
  /// Runs the session table's handshakes on a worker thread (HandshakeWorker) that hands
  /// them back through this shard's inbox; `sendFd`: the UDP socket the worker sends
  /// handshake flights on (nil: through the shard). 0, or -errno; the table's `shutdown`
  /// (when the loop ends) stops the thread.
  public func startHandshakeWorker(sendFd: Int32?) -> Int32 {
    guard let table = sessions else { return 0 }
    let inbox = self.inbox
    return table.startWorker(post: { r in inbox.post(.handshake(r)) }, sendFd: sendFd)
  }
}
