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

final class Node {
  let config: RunConfig
  var loops: [RelayLoop] = []
  var threads: [UInt] = []
  let startNs = wisp_monotonic_ns()
  var lastStats: (ns: UInt64, packets: UInt64, bytes: UInt64) = (0, 0, 0)

  init(config: RunConfig) { self.config = config }

  static func main(_ inv: Invocation) -> Int32 {
    var board: Board? = nil
    if let name = inv.value("--board") {
      switch BoardFiles.load(name) {
      case .success(let b): board = b
      case .failure(let e):
        Console.err("wisp: \(e.message)")
        return 2
      }
    }
    let config: RunConfig
    do {
      config = try RunConfig.from(inv, board: board, cores: Int(wisp_cpu_count()))
    } catch {
      Console.err("wisp: \(error.message)")
      Console.err(Arguments.usage(.run))
      return 2
    }
    Log.name = "wisp[\(config.name)]"
    let node = Node(config: config)
    return node.run()
  }

  func run() -> Int32 {
    wisp_ignore_sigpipe()
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
    wisp_stop_request()
    for t in threads { _ = wisp_thread_join(t) }
    for l in loops { l.onEvent = nil }
    Log.info("stopped", summary())
    return 0
  }

  func handle(_ loop: RelayLoop, _ event: RelayLoop.Event) {
    switch event {
    case .tick:
      break
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
        Log.info("SIGHUP: nothing to reload (no config file in use)")
      }
    }
  }

  func stopAll() {
    wisp_stop_request()
    loops[0].stop()
  }

  func totals() -> (packets: UInt64, bytes: UInt64, circuits: Int, created: UInt64, drops: DropCounters, gso: UInt64) {
    var p: UInt64 = 0, b: UInt64 = 0, c = 0, cr: UInt64 = 0, g: UInt64 = 0
    var d = DropCounters()
    for l in loops {
      p += l.forwarder.traffic.forwardedPackets
      b += l.forwarder.traffic.forwardedBytes
      c += l.forwarder.circuits.circuitsInUse
      cr += l.forwarder.traffic.circuitsCreated
      g += l.gsoSegments
      for r in DropReason.allCases { d.count(r, l.forwarder.drops[r]) }
      d.count(.poolExhausted, 0)
    }
    return (p, b, c, cr, d, g)
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
    return "forwarded_packets=\(t.packets) forwarded_bytes=\(t.bytes) circuits_created=\(t.created)"
      + " circuits_open=\(t.circuits) gso_segments=\(t.gso) peak_rss_kb=\(rss) drops=\(t.drops.total) [\(t.drops.summary)]"
  }
}
