// One shard of a node: a relay loop on its own thread, and the mailbox through which the
// control plane reaches it.
//
// Everything a shard mutates — its pool, circuit table, forwarder, limits, exit list and
// (on the session shard) the DTLS session table — belongs to its thread alone. The control
// plane never touches it: it posts a `ShardMessage` to the shard's inbox (an eventfd in the
// loop's epoll set wakes it) and reads what the shard posts back to the control mailbox:
// a `ShardSnapshot` every second and on request, PONGs, and a last snapshot when it stops.
// The only value shared otherwise is the forwarded-packet count the shard publishes (one
// relaxed atomic) for the activity LED, which blinks 20 times a second.
import CPosix
import WispCore
import WispOS
import WispTLS

/// What the control plane asks of a shard.
public enum ShardMessage {
  /// New limits and exit list (SIGHUP).
  case limits(Limits, exits: ExitPolicy, nowEpoch: Int64)
  /// New node links (SIGHUP): the session shard updates its table, the others their rules.
  case nodeLinks([LinkPeer])
  /// PING these peers (the session shard).
  case ping([Endpoint])
  /// Post a snapshot tagged `generation`.
  case snapshot(generation: UInt64)
  /// The credit worker's answer for a receipt (CreditWorker).
  case credited(half: Int32, localId: UInt32, bound: Bool, receipted: UInt64, limit: UInt64)
  /// The worker rebalances a payer's window: a bound circuit's new limit (CreditWorker).
  case limit(half: Int32, localId: UInt32, limit: UInt64)
  /// The worker's keys for a sealed exit circuit (empty: the client's point was not valid),
  /// and the CREATED tail (the exit's point and fresh nonce).
  case exitKeys(half: Int32, localId: UInt32, keys: [UInt8], created: [UInt8])
  /// A DTLS handshake the session table's handshake worker finished (or a flight to send).
  case handshake(HandshakeResult)
  /// Stop the loop (the thread posts its last snapshot and ends).
  case stop
}

/// What shards tell the control plane.
public enum ControlMessage {
  /// Every second: the shard is turning, and its plain counters (no allocation).
  case beat(ShardBeat)
  /// An answer to `.snapshot`, or the last one at stop.
  case snapshot(ShardSnapshot)
  /// A PONG: who answered and the token its PING carried.
  case pong(Endpoint, UInt64)
}

/// What a shard posts every second: plain figures only, so that posting allocates nothing
/// on the forwarding thread (the LEDs, the watchdog and the quota state need no more).
public struct ShardBeat {
  public var shard = 0
  public var traffic = TrafficCounters()
  public var quotaUsed: UInt64 = 0
  public var quotaReached = false
  public var poolFree = 0
  public var circuits = 0
  public var creditPaused = 0
  public var creditPending: UInt64 = 0
  public var creditUnbound = 0
  public init() {}
}

/// A shard's figures at one moment, copied out of its thread (arrays copied whole, so the
/// shard's own counters stay unshared and counting never copies them).
public struct ShardSnapshot {
  /// The request it answers (`UInt64.max`: the last, at stop).
  public var generation: UInt64 = 0
  /// The heartbeat's figures (shard, traffic, quota, pool, circuits, credit state).
  public var beat = ShardBeat()
  public var drops = DropCounters()
  public var poolSize = 0
  public var gsoSegments: UInt64 = 0
  public var groSegments: UInt64 = 0
  /// Session counters (the session table's, or the refusals of a shard without one).
  public var links = SessionCounters()
  public var hasSessionTable = false
  public var sessionsEstablished = 0
  public var sessionsHalfOpen = 0
  public var sessionsCapacity = 0
  public var sessionLines: [StatusSnapshot.SessionLine] = []
  /// Exit circuits' sockets open and the shard's budget for them.
  public var exitSocketsOpen = 0
  public var exitSocketBudget = 0
  /// Refusals by the per-source shares (circuits and exits) and budgets (expensive work).
  public var sourceRefusedCircuits: UInt64 = 0
  public var sourceRefusedPending: UInt64 = 0
  public var sourceRefusedExpensive: UInt64 = 0
  public var sourceRefusedUnbound: UInt64 = 0
  public init() {}
}

public final class NodeShard<IO: DatagramIO> {
  public let index: Int
  public let loop: RelayLoop<IO>
  public let inbox: Mailbox<ShardMessage>
  public let control: Mailbox<ControlMessage>
  /// The session table (the session shard only).
  public var sessions: SessionTable? = nil
  /// The link rules of a shard without sessions (nil: no rules to apply).
  public var plain: PlainLinks? = nil
  /// Forwarded packets, published for the activity LED.
  public let published = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
  public let ping = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
  /// Where frames the shard writes outside the receive path are built (headroom first).
  let scratch = UnsafeMutableRawPointer.allocate(byteCount: Defaults.bufferSize, alignment: 16)
  public var thread: UInt = 0
  public static var inboxTag: UInt64 { 20 }
  /// Room for the credit worker's answers to a full queue of receipts, and the control plane's messages.
  public static var inboxCapacity: Int { CreditWorker.queueCapacity + 64 }

  public init(index: Int, loop: RelayLoop<IO>, control: Mailbox<ControlMessage>) throws(Errno) {
    self.index = index
    self.loop = loop
    self.control = control
    inbox = try Mailbox(capacity: NodeShard.inboxCapacity)
    published.initialize(to: 0)
    try loop.watch(inbox.fd, tag: NodeShard.inboxTag)
    loop.published = published
    loop.forwarder.onPong = { from, token in control.post(.pong(from, token)) }
    // Frames the forwarder writes besides its verdict (a CREATED before its BIND, DESTROYs
    // of unbound circuits) join the send batch in order, sealed when a session exists.
    loop.forwarder.emit = { frame, to in  // cycle broken when the thread ends
      if let link = loop.link, link.seal(frame, to: to) { return }
      loop.sendCopy(frame, to: to)
    }
    loop.onEvent = { _, event in self.handle(event) }  // cycle broken when the thread ends
  }

  deinit {
    published.deallocate()
    ping.deallocate()
    scratch.deallocate()
  }

  /// Starts the shard's thread: 0, or -errno.
  public func start() -> Int32 {
    switch Threads.spawn({ [self] in
      loop.run()
      control.post(.snapshot(snapshot(generation: UInt64.max)))
      loop.onEvent = nil
      loop.forwarder.onPong = nil
      loop.forwarder.emit = nil
    }) {
    case .success(let h): thread = h; return 0
    case .failure(let e): return -e.code
    }
  }

  /// Runs on the shard's thread.
  public func handle(_ event: RelayLoop<IO>.Event) {
    switch event {
    case .tick:
      loop.flush()  // DESTROYs of circuits the tick closed unbound
      control.post(.beat(beat()))
    case .readable(let tag) where tag == NodeShard.inboxTag:
      inbox.acknowledge()
      while let m = inbox.take() { apply(m) }
    default:
      break
    }
  }

  public func apply(_ m: ShardMessage) {
    switch m {
    case .limits(let limits, let exits, let now):
      loop.forwarder.update(limits: limits, nowEpoch: now)
      loop.forwarder.setExitPolicy(exits)
    case .nodeLinks(let peers):
      sessions?.update(peers: peers)
      plain?.update(nodeLinks: peers.map { $0.endpoint })
      loop.forwarder.sources.exempt = peers.map { $0.endpoint.sourceKey }
    case .ping(let targets):
      let n = Frame.encodeHeader(ping, type: .ping, bodyLength: 8, circuit: 0)
      (ping + Wire.headerSize).storeBytes(of: wisp_monotonic_ns().bigEndian, as: UInt64.self)
      for t in targets { loop.sendFrame(UnsafeRawBufferPointer(start: ping, count: n), to: t) }
    case .snapshot(let g):
      control.post(.snapshot(snapshot(generation: g)))
    case .credited(let half, let localId, let bound, let receipted, let limit):
      loop.forwarder.credited(half: half, localId: localId, bound: bound, receipted: receipted, limit: limit)
    case .limit(let half, let localId, let limit):
      loop.forwarder.setLimit(half: half, localId: localId, limit: limit)
    case .exitKeys(let half, let localId, let keys, let created):
      let p = scratch + Defaults.headroom
      let f = loop.forwarder
      let verdict: Verdict
      if keys.count == 64 {
        verdict = keys.withUnsafeBytes { k in
          created.withUnsafeBytes { c in f.exitKeysReady(p, half: half, localId: localId, keys: k.baseAddress!, created: c) }
        }
      } else {
        verdict = f.exitKeysFailed(p, half: half, localId: localId)
      }
      loop.sendVerdict(p, verdict)
    case .handshake(let r):
      sessions?.finish(r)
    case .stop:
      loop.stop()
    }
  }

  public func beat() -> ShardBeat {
    let f = loop.forwarder
    var b = ShardBeat()
    b.shard = index
    b.traffic = f.traffic
    b.quotaUsed = f.quota.used
    b.quotaReached = f.quota.reached
    b.poolFree = loop.pool.available
    b.circuits = f.circuits.circuitsInUse
    let cs = f.creditState()
    b.creditPaused = cs.paused
    b.creditPending = cs.pending
    b.creditUnbound = cs.unbound
    return b
  }

  public func snapshot(generation: UInt64) -> ShardSnapshot {
    let f = loop.forwarder
    var s = ShardSnapshot()
    s.generation = generation
    s.beat = beat()
    for r in DropReason.allCases { s.drops.count(r, f.drops[r]) }  // a copy of its own
    s.poolSize = loop.pool.capacity
    s.gsoSegments = loop.io.gsoSegments
    s.groSegments = loop.io.groSegments
    s.exitSocketsOpen = f.exitSocketsOpen
    s.exitSocketBudget = f.exitSocketBudget
    s.sourceRefusedCircuits = f.sources.refusedCircuits
    s.sourceRefusedPending = f.sources.refusedPending
    s.sourceRefusedExpensive = f.sources.refusedExpensive
    s.sourceRefusedUnbound = f.sources.refusedUnbound
    if let t = sessions {
      s.hasSessionTable = true
      s.links.add(t.counters)  // a copy of its own
      s.sessionsEstablished = t.establishedSessions
      s.sessionsHalfOpen = t.halfOpenSessions
      s.sessionsCapacity = t.limits.capacity
      let now = wisp_monotonic_ns()
      for l in t.links where l.established {
        let name = l.peer.map { $0 < t.peers.count ? t.peers[$0].name + "@" : "" } ?? ""
        s.sessionLines.append(.init(peer: name + l.endpoint.text, kind: l.peer == nil ? "client" : "node",
                                    suite: l.session.cipherSuite, key: l.session.peerFingerprint?.hex ?? "-",
                                    ageSec: (now &- l.session.establishedNs) / 1_000_000_000,
                                    bytesIn: l.session.bytesIn, bytesOut: l.session.bytesOut))
      }
    } else if let p = plain {
      s.links.add(p.counters)
    }
    return s
  }
}
