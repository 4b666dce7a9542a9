// What a node does with one datagram. Runs on host and device.
//
// The pipeline (the loop in WispOS/RelayLoop.swift calls stage 3 for each datagram):
//   1. receive a batch of datagrams into pool buffers (recvmmsg)
//   2. classify each by socket: a reply on an exit circuit's own socket, or a frame
//   3. `Forwarder.handle`: decode and bounds-check (Frame.decode), look the circuit
//      up (O(1)), apply the node and circuit rate caps and the quota, and rewrite
//      the frame *in place* into what must be sent: same buffer, a new circuit id,
//      or a header stripped (exit) or prepended (exit reply), or a reply
//   4. [link encryption: the session layer seals here, once sessions land]
//   5. queue the rewritten datagram in the send batch (drop + count when full)
//   6. send the batch (sendmmsg), return every buffer to the pool
//
// Nothing here allocates: every table is fixed-capacity and every output is
// written over the input.

/// End-to-end sealing at an exit (implemented with mbedTLS in WispTLS): one state per
/// sealed exit circuit, indexed by the circuit's forward half.
public protocol ExitCipher: AnyObject {
  /// Installs the circuit's keys (64 bytes: client→exit, then exit→client), derived by the
  /// worker. False refuses the circuit.
  func install(half: Int, keys: UnsafeRawPointer) -> Bool
  /// Opens a sealed DATA body (counter, ciphertext, tag) in place; returns the plaintext's
  /// offset and length within the body, or nil if it is not authentic or is a replay.
  func open(half: Int, body: UnsafeMutableRawPointer, length: Int) -> (offset: Int, length: Int)?
  /// Seals `length` bytes at `payload` in place: the counter goes in the 8 bytes before it,
  /// the tag in the 16 after. Returns the sealed length (`length + Wire.sealOverhead`), or
  /// -1 when the circuit has no keys.
  func seal(half: Int, payload: UnsafeMutableRawPointer, length: Int) -> Int
  /// Forgets the circuit's keys (it ended).
  func remove(half: Int)
}

/// The UDP sockets of exit circuits (implemented by the relay loop over its I/O): every
/// exit circuit has one of its own, connected to its destination, so replies reach only
/// the circuit that asked and nobody else can send into it.
public protocol ExitSockets: AnyObject {
  /// Opens the socket for the exit circuit whose forward half is `half`: a descriptor
  /// (≥ 0), or negative when none could be opened.
  func openExit(to: Endpoint, half: Int32) -> Int32
  /// Closes an exit circuit's socket.
  func closeExit(_ fd: Int32)
}

/// What to do with a handled datagram.
public enum Verdict: Equatable {
  /// Send `length` bytes starting `offset` bytes from the datagram's start
  /// (negative: a header was prepended into headroom) to `to`.
  case send(to: Endpoint, offset: Int, length: Int)
  /// Send that many bytes on an exit circuit's own socket (descriptor `fd`).
  case sendExit(fd: Int32, offset: Int, length: Int)
  /// Dropped and counted under `reason`.
  case drop(DropReason)
  /// Consumed with nothing to send (e.g. a DESTROY at the circuit's end).
  case consumed
}

/// Node-wide traffic counters.
public struct TrafficCounters {
  public var received: UInt64 = 0
  public var forwardedPackets: UInt64 = 0
  public var forwardedBytes: UInt64 = 0
  public var circuitsCreated: UInt64 = 0
  public var circuitsDestroyed: UInt64 = 0
  public var pings: UInt64 = 0
  public var pongs: UInt64 = 0
  public var receipts: UInt64 = 0
  /// BIND frames this node sent (one per circuit it holds with credit on).
  public var binds: UInt64 = 0
  /// Circuits closed because no receipt bound them within the bind timeout.
  public var unbound: UInt64 = 0
  public init() {}
}

/// Forwarding limits a node owner sets.
public struct Limits {
  public var nodeMbit: UInt64 = 0
  public var circuitMbit: UInt64 = 0
  public var quotaBytes: UInt64 = 0
  public var quotaResetDay: Int = 1
  public var idleSeconds: UInt32 = UInt32(Defaults.circuitIdleSeconds)
  /// Extend to and exit to special-purpose addresses too (AddressPolicy.swift; tests only).
  public var labAddresses = false
  public init() {}
}

/// The forwarding logic of one shard: circuit table, exit policy, limits and counters.
public final class Forwarder<R: RandomSource> {
  public let circuits: CircuitTable
  public var drops = DropCounters()
  public var traffic = TrafficCounters()
  public var quota: Quota
  public private(set) var limits: Limits
  var nodeBucket: TokenBucket
  /// The per-circuit cap (each half keeps its own level).
  var circuitRate: TokenRate
  var random: R
  /// This node's own endpoint (never extended to, to avoid loops).
  public let local: Endpoint
  /// The credit window W of a payer (0: relay without receipts). The worker grants each
  /// circuit its limit; here it only says whether credit is enforced at all.
  public var creditWindow: UInt64 = 0
  /// Bytes an unbound circuit may relay (its limit until a receipt binds it).
  public var unboundAllowance: UInt64 = Credits.defaultUnboundAllowance
  /// Seconds within which a receipt must bind a new circuit, or it is closed (DESTROY 4,
  /// counted `unbound`). Only with credit enforced and a node key.
  public var bindTimeout: UInt32 = Credits.defaultBindTimeout
  /// Queues a frame this node writes in addition to the verdict (a CREATED before the BIND
  /// that follows it, DESTROYs of unbound circuits): sent in order, before the verdict's
  /// frame. Nil: no BIND is sent and unbound circuits are not closed (no credit).
  public var emit: ((UnsafeRawBufferPointer, Endpoint) -> Void)?
  /// This node's key fingerprint: RECEIPT frames naming it are consumed, others forwarded.
  public var fingerprint: Fingerprint? = nil
  /// Hands a receipt addressed to this node to the credit worker, which verifies and
  /// records it off this thread and answers through `credited`: the circuit's forward half
  /// (index and local id, which tells a reused slot apart), the bytes relayed on the
  /// circuit so far and the circuit's binding (a receipt naming another binding pays for
  /// a closed circuit's debt, never for this circuit). False when the worker's queue is
  /// full (dropped, `worker_busy`).
  public var onReceipt: ((Receipt, _ half: Int32, _ localId: UInt32, _ relayed: UInt64, _ binding: Binding) -> Bool)?
  /// Hands a sealed exit's key agreement to the worker: the circuit's forward half, its
  /// local id and the client's 65-byte point. The answer comes back through
  /// `exitKeysReady` / `exitKeysFailed`. False when the worker's queue is full.
  public var onExitKeys: ((_ half: Int32, _ localId: UInt32, _ clientPoint: UnsafeRawBufferPointer) -> Bool)?
  /// Told of every PONG: who answered and the 8-byte token its PING carried.
  public var onPong: ((Endpoint, UInt64) -> Void)?
  /// Seals and opens payloads of circuits that asked for a sealed exit (nil: refused).
  public var exitCipher: ExitCipher? = nil
  /// Opens and closes exit circuits' sockets (nil: exit circuits are refused). The relay
  /// loop sets itself here and clears it when its run ends.
  public var exitSockets: ExitSockets? = nil
  /// Exit sockets this shard may hold at once, and how many are open.
  public var exitSocketBudget = Defaults.exitSockets
  public private(set) var exitSocketsOpen = 0
  /// Exit destinations this node delivers to (ExitPolicy.swift).
  public private(set) var exitPolicy: ExitPolicy
  /// Per-source shares of circuits and of expensive work.
  public let sources: SourceTable

  public init(circuits: Int, local: Endpoint, limits: Limits, exitPolicy: ExitPolicy, random: R,
              nowEpoch: Int64, shard: Int = 0, shardBits: Int = 0,
              sourceLimits: SourceLimitSettings = SourceLimitSettings()) {
    self.circuits = CircuitTable(circuits: circuits, shard: shard, shardBits: shardBits)
    self.local = local
    self.limits = limits
    var random = random
    sources = SourceTable(settings: sourceLimits, key0: random.next32(), key1: random.next32())
    self.random = random
    nodeBucket = TokenBucket(mbit: limits.nodeMbit)
    circuitRate = TokenRate(mbit: limits.circuitMbit)
    quota = Quota(limitBytes: limits.quotaBytes, resetDay: limits.quotaResetDay, nowEpoch: nowEpoch)
    self.exitPolicy = exitPolicy
  }

  /// A forwarder whose exit policy accepts exactly `allowedExits` (the `exits` list).
  public convenience init(circuits: Int, local: Endpoint, limits: Limits, allowedExits: [Endpoint], random: R,
                          nowEpoch: Int64, shard: Int = 0, shardBits: Int = 0,
                          sourceLimits: SourceLimitSettings = SourceLimitSettings()) {
    self.init(circuits: circuits, local: local, limits: limits, exitPolicy: ExitPolicy(exits: allowedExits), random: random,
              nowEpoch: nowEpoch, shard: shard, shardBits: shardBits, sourceLimits: sourceLimits)
  }

  /// Applies new rate limits (SIGHUP); the quota's usage is kept.
  public func update(limits new: Limits, nowEpoch: Int64) {
    if new.nodeMbit != limits.nodeMbit { nodeBucket = TokenBucket(mbit: new.nodeMbit) }
    circuitRate = TokenRate(mbit: new.circuitMbit)
    if new.quotaBytes != limits.quotaBytes || new.quotaResetDay != limits.quotaResetDay {
      let used = quota.used
      quota = Quota(limitBytes: new.quotaBytes, resetDay: new.quotaResetDay, nowEpoch: nowEpoch)
      quota.restore(used: used, periodStart: quota.periodStart)
    }
    let labChanged = new.labAddresses != limits.labAddresses
    limits = new
    if labChanged { rejudgeExits() }
  }

  /// Replaces the exit policy (SIGHUP). Circuits keep their own sockets and keys; DATA on
  /// a circuit whose destination left the policy is dropped (`exit_not_allowed`), and flows
  /// again if a later policy takes the destination back.
  public func setExitPolicy(_ policy: ExitPolicy) {
    exitPolicy = policy
    rejudgeExits()
  }

  /// An exit policy that accepts exactly `allowed` (the `exits` list).
  public func setExits(_ allowed: [Endpoint]) { setExitPolicy(ExitPolicy(exits: allowed)) }

  /// What the policy says of `e` as an exit destination of this node (at most one pass
  /// over the rules: CREATE and reloads only).
  @inline(__always)
  func exitVerdict(_ e: Endpoint) -> ExitPolicy.Verdict {
    exitPolicy.verdict(e, local: local, lab: limits.labAddresses)
  }

  /// Judges every exit circuit's destination again (the policy or lab mode changed), so
  /// that the DATA path reads one flag per packet.
  func rejudgeExits() {
    circuits.forEachInUse { i, h in
      guard h.outIsExit else { return }
      circuits.half(i).pointee.exitRefused = exitVerdict(h.outEndpoint) != .accept
    }
  }

  /// Frees the circuit `i` belongs to: both halves' exit socket, keys and source shares first.
  func freeCircuit(_ i: Int) {
    let h = circuits.half(i)
    if h.pointee.inUse { released(Int(h.pointee.peer), circuits.half(Int(h.pointee.peer))) }
    released(i, h)
    circuits.free(i)
  }

  /// A half is being freed: close its exit socket and keys, give back its source's share.
  func released(_ i: Int, _ h: UnsafeMutablePointer<Half>) {
    if h.pointee.exitSocket != 0 {
      if h.pointee.sourceCounted { sources.releaseExit(h.pointee.inEndpoint) }
      exitSockets?.closeExit(h.pointee.exitSocket - 1)
      h.pointee.exitSocket = 0
      exitSocketsOpen -= 1
    }
    if h.pointee.sealed { exitCipher?.remove(half: i); h.pointee.sealed = false }
    if h.pointee.sourceCounted { sources.releaseCircuit(h.pointee.inEndpoint); h.pointee.sourceCounted = false }
    if h.pointee.pendingCounted { sources.releasePending(h.pointee.inEndpoint); h.pointee.pendingCounted = false }
  }

  /// Handles one datagram of `length` bytes at `p` from `from`. The buffer has at
  /// least `Defaults.headroom` bytes before `p` and `Wire.maxDatagram` after it.
  @inline(__always)
  public func handle(_ p: UnsafeMutableRawPointer, length: Int, from: Endpoint, nowNs: UInt64) -> Verdict {
    traffic.received &+= 1
    // 3. Decode and bounds-check.
    let header: FrameHeader
    switch Frame.decode(p, length: length) {
    case .success(let h): header = h
    case .failure(let reason):
      if reason == .badVersion && p.load(as: UInt8.self) == Wire.oldVersionByte { return oldVersion(p, length: length, from: from) }
      return drop(reason)
    }
    switch header.type {
    case .data: return data(p, header: header, from: from, nowNs: nowNs)
    case .create: return create(p, header: header, from: from, nowNs: nowNs)
    case .created: return created(p, header: header, from: from, nowNs: nowNs)
    case .refused: return refused(p, header: header, from: from)
    case .destroy: return destroy(p, header: header, from: from)
    case .ping:
      traffic.pings &+= 1
      p.storeBytes(of: FrameType.pong.rawValue, toByteOffset: 1, as: UInt8.self)
      return .send(to: from, offset: 0, length: length)
    case .pong:
      traffic.pongs &+= 1
      onPong?(from, UInt64(bigEndian: (p + Wire.headerSize).loadUnaligned(as: UInt64.self)))
      return .consumed
    case .receipt: return receipt(p, header: header, from: from, nowNs: nowNs)
    case .bind: return bind(p, header: header, from: from, nowNs: nowNs)
    }
  }

  /// A v1 frame: a CREATE (at least 9 bytes, so the answer is never larger) is answered with
  /// a v2 REFUSED 8, whose first byte says which version this node speaks; the rest dropped.
  func oldVersion(_ p: UnsafeMutableRawPointer, length: Int, from: Endpoint) -> Verdict {
    drops.count(.oldVersion)
    guard length >= Wire.headerSize + 1, p.load(fromByteOffset: 1, as: UInt8.self) == FrameType.create.rawValue else {
      return .drop(.oldVersion)
    }
    let id = Frame.load32(p, 4)
    if id == 0 { return .drop(.oldVersion) }
    let n = Frame.encodeHeader(p, type: .refused, bodyLength: 1, circuit: id)
    p.storeBytes(of: RefuseReason.version.rawValue, toByteOffset: Wire.headerSize, as: UInt8.self)
    return .send(to: from, offset: 0, length: n)
  }

  @inline(__always)
  func drop(_ reason: DropReason) -> Verdict {
    drops.count(reason)
    return .drop(reason)
  }

  /// Rate caps, credit limit, quota and counters for `bytes` of payload on half `h`.
  @inline(__always)
  func admit(_ h: UnsafeMutablePointer<Half>, bytes: Int, nowNs: UInt64) -> DropReason? {
    if quota.limit != 0 && quota.reached { return .quotaReached }
    if creditWindow != 0 {
      let relayed = h.pointee.bytes &+ circuits.half(Int(h.pointee.peer)).pointee.bytes
      if relayed &+ UInt64(bytes) > h.pointee.creditLimit { return .unpaid }
    }
    if !nodeBucket.take(bytes, nowNs: nowNs) { return .rateLimited }
    if !h.pointee.bucket.take(bytes, nowNs: nowNs, rate: circuitRate) { return .rateLimited }
    quota.add(bytes)
    h.pointee.packets &+= 1
    h.pointee.bytes &+= UInt64(bytes)
    h.pointee.lastActive = UInt32(truncatingIfNeeded: nowNs / 1_000_000_000)
    traffic.forwardedPackets &+= 1
    traffic.forwardedBytes &+= UInt64(bytes)
    return nil
  }

  @inline(__always)
  func data(_ p: UnsafeMutableRawPointer, header: FrameHeader, from: Endpoint, nowNs: UInt64) -> Verdict {
    guard let i = circuits.lookup(header.circuit, from: from) else { return drop(.unknownCircuit) }
    let h = circuits.half(i)
    if h.pointee.pending { return drop(.circuitPending) }
    // The policy may have changed since the circuit was built (SIGHUP): refused before it is
    // charged, as at CREATE.
    if h.pointee.outIsExit && (h.pointee.exitSocket == 0 || h.pointee.exitRefused) { return drop(.exitNotAllowed) }
    if let reason = admit(h, bytes: header.bodyLength, nowNs: nowNs) { return drop(reason) }
    if h.pointee.outIsExit {
      let fd = h.pointee.exitSocket - 1
      if h.pointee.sealed {
        guard let c = exitCipher, let (off, n) = c.open(half: i, body: p + Wire.headerSize, length: header.bodyLength) else {
          return drop(.badSeal)
        }
        return .sendExit(fd: fd, offset: Wire.headerSize + off, length: n)
      }
      return .sendExit(fd: fd, offset: Wire.headerSize, length: header.bodyLength)
    }
    Frame.store32(p, 4, h.pointee.outId)
    return .send(to: h.pointee.outEndpoint, offset: 0, length: Wire.headerSize + header.bodyLength)
  }

  /// A reply on the socket of the exit circuit whose forward half is `half` (the loop
  /// knows it from the socket it read). The buffer has Defaults.headroom (≥ 16) bytes
  /// before p and ≥ 16 after the reply.
  public func exitReply(_ p: UnsafeMutableRawPointer, length: Int, half: Int32, fd: Int32, nowNs: UInt64) -> Verdict {
    traffic.received &+= 1
    guard half >= 0, Int(half) < circuits.capacity else { return drop(.unknownCircuit) }
    let f = circuits.half(Int(half))
    // The socket must still be this circuit's (a freed and reused half has another or none).
    if !f.pointee.inUse || !f.pointee.outIsExit || f.pointee.exitSocket != fd + 1 || f.pointee.pending {
      return drop(.unknownCircuit)
    }
    if length > Wire.maxBody { return drop(.oversized) }
    let h = circuits.half(Int(f.pointee.peer))
    let sealed = f.pointee.sealed
    if sealed && (exitCipher == nil || length + Wire.sealOverhead > Wire.maxBody) { return drop(.oversized) }
    // Charged as it leaves: sealed replies count their counter and tag, like sealed DATA
    // on the way out, so every hop of the circuit counts the same bytes.
    if let reason = admit(h, bytes: sealed ? length + Wire.sealOverhead : length, nowNs: nowNs) { return drop(reason) }
    if sealed, let c = exitCipher {
      // Counter in the 8 bytes before the reply, tag after it, header before the counter.
      let n = c.seal(half: Int(half), payload: p, length: length)
      if n < 0 { return drop(.badSeal) }
      let start = p - 8 - Wire.headerSize
      Frame.encodeHeader(start, type: .data, bodyLength: n, circuit: h.pointee.outId)
      return .send(to: h.pointee.outEndpoint, offset: -(8 + Wire.headerSize), length: n + Wire.headerSize)
    }
    Frame.encodeHeader(p - Wire.headerSize, type: .data, bodyLength: length, circuit: h.pointee.outId)
    return .send(to: h.pointee.outEndpoint, offset: -Wire.headerSize, length: length + Wire.headerSize)
  }

  /// Rewrites the datagram into REFUSED(reason) for the CREATE's sender.
  func refuse(_ p: UnsafeMutableRawPointer, id: UInt32, to: Endpoint, _ reason: RefuseReason, count: DropReason) -> Verdict {
    drops.count(count)
    let n = Frame.encodeHeader(p, type: .refused, bodyLength: 1, circuit: id)
    p.storeBytes(of: reason.rawValue, toByteOffset: Wire.headerSize, as: UInt8.self)
    return .send(to: to, offset: 0, length: n)
  }

  /// Whether `e` may be a next hop or an exit destination (AddressPolicy.swift: public
  /// unicast only, unless `limits.labAddresses`).
  @inline(__always)
  func reachable(_ e: Endpoint) -> Bool {
    AddressPolicy.refusal(e, local: local, lab: limits.labAddresses) == nil
  }

  // Cheap checks first (decode, quota, address, policy, the source's share, table and
  // socket space, the work budget); the key agreement of a sealed exit is the worker's.
  func create(_ p: UnsafeMutableRawPointer, header: FrameHeader, from: Endpoint, nowNs: UInt64) -> Verdict {
    let id = header.circuit
    if id == 0 { return drop(.badBody) }
    if header.bodyLength == 0 { return refuse(p, id: id, to: from, .noService, count: .refusedCreate) }
    let body = p + Wire.headerSize
    guard let hop = Frame.decodeHop(body, length: header.bodyLength) else {
      return refuse(p, id: id, to: from, .malformed, count: .badBody)
    }
    if quota.reached { return refuse(p, id: id, to: from, .quotaReached, count: .quotaReached) }
    let e = hop.endpoint
    let isExit = hop.kind == .exit || hop.kind == .sealedExit
    if isExit {
      // The exit policy, the address policy within it (ExitPolicy.swift).
      switch exitVerdict(e) {
      case .accept: break
      case .reject: return refuse(p, id: id, to: from, .exitNotAllowed, count: .exitPolicy)
      case .forbidden: return refuse(p, id: id, to: from, .unreachable, count: .forbiddenAddress)
      }
      if hop.kind == .sealedExit && (exitCipher == nil || onExitKeys == nil) {
        return refuse(p, id: id, to: from, .exitNotAllowed, count: .exitNotAllowed)
      }
      if exitSockets == nil { return refuse(p, id: id, to: from, .exitNotAllowed, count: .exitNotAllowed) }
      if exitSocketsOpen >= exitSocketBudget { return refuse(p, id: id, to: from, .tableFull, count: .exitSocketsFull) }
    } else if !reachable(e) {
      return refuse(p, id: id, to: from, .unreachable, count: .forbiddenAddress)
    }
    let waits = !isExit || hop.kind == .sealedExit  // pending until CREATED / the exit's keys
    let exempt = sources.isExempt(from)
    let nowSec = UInt32(truncatingIfNeeded: nowNs / 1_000_000_000)
    if !exempt && !sources.takeCircuit(from, pending: waits) {
      return refuse(p, id: id, to: from, .tableFull, count: .sourceLimit)
    }
    if isExit && !exempt && !sources.takeExit(from) {
      sources.releaseCircuit(from); if waits { sources.releasePending(from) }
      return refuse(p, id: id, to: from, .tableFull, count: .sourceLimit)
    }
    guard let (f, b) = circuits.allocate(prev: from, next: e, prevId: id, nowSec: nowSec, random: &random) else {
      if !exempt { sources.releaseCircuit(from); if waits { sources.releasePending(from) }; if isExit { sources.releaseExit(from) } }
      return refuse(p, id: id, to: from, .tableFull, count: .refusedCreate)
    }
    let fh = circuits.half(f)
    let bh = circuits.half(b)
    startCredit(fh, bh, from: from, exempt: exempt, nowSec: nowSec)
    fh.pointee.sourceCounted = !exempt
    fh.pointee.pendingCounted = !exempt && waits
    if !isExit {
      // Extend: the nested hop becomes the next node's CREATE body, in place.
      traffic.circuitsCreated &+= 1
      fh.pointee.pending = true
      let rest = hop.restLength
      if rest > 0 { (body).copyMemory(from: body + Wire.hopSize, byteCount: rest) }
      let n = Frame.encodeHeader(p, type: .create, bodyLength: rest, circuit: bh.pointee.localId)
      return .send(to: e, offset: 0, length: n)
    }
    // A sealed exit's key agreement within the budget, counted only now that every cheap
    // check has passed (a refused CREATE spends no one else's share).
    if hop.kind == .sealedExit && !sources.allow(.keyAgreement, from: from, nowSec: nowSec) {
      if !exempt { sources.releaseExit(from) }
      freeCircuit(f)
      return refuse(p, id: id, to: from, .busy, count: .overBudget)
    }
    // An exit: a socket of its own, connected to the destination.
    guard let sockets = exitSockets else {
      if hop.kind == .sealedExit { sources.refund(.keyAgreement, from: from, nowSec: nowSec) }
      if !exempt { sources.releaseExit(from) }
      freeCircuit(f)
      return drop(.exitNotAllowed)
    }
    let fd = sockets.openExit(to: e, half: Int32(f))
    if fd < 0 {
      if hop.kind == .sealedExit { sources.refund(.keyAgreement, from: from, nowSec: nowSec) }
      if !exempt { sources.releaseExit(from) }
      freeCircuit(f)
      return refuse(p, id: id, to: from, .tableFull, count: .exitSocketsFull)
    }
    exitSocketsOpen += 1
    fh.pointee.exitSocket = fd + 1
    fh.pointee.outIsExit = true
    bh.pointee.inIsExit = true
    if hop.kind == .sealedExit {
      // The worker derives the keys; CREATED leaves when they come back (exitKeysReady).
      fh.pointee.pending = true
      fh.pointee.sealed = true
      let point = UnsafeRawBufferPointer(start: body + Wire.hopSize, count: Wire.pointSize)
      guard let ask = onExitKeys, ask(Int32(f), fh.pointee.localId, point) else {
        sources.refund(.keyAgreement, from: from, nowSec: nowSec)
        freeCircuit(f)
        return refuse(p, id: id, to: from, .busy, count: .workerBusy)
      }
      traffic.circuitsCreated &+= 1
      return .consumed
    }
    traffic.circuitsCreated &+= 1
    let n = Frame.encodeHeader(p, type: .created, bodyLength: 4, circuit: id)
    Frame.store32(p, Wire.headerSize, fh.pointee.localId)
    return createdThenBind(p, length: n, to: from, forward: fh, backId: id)
  }

  /// A new circuit's credit: its binding (16 bytes of kernel randomness) and the unbound
  /// allowance as its limit, with the deadline for a binding receipt. Where receipts bind
  /// circuits, the allowance is one of its source's (SourceTable.takeUnbound): without one
  /// left the circuit carries nothing until it binds (counted: `sources.refused_unbound` in status).
  @inline(__always)
  func startCredit(_ fh: UnsafeMutablePointer<Half>, _ bh: UnsafeMutablePointer<Half>, from: Endpoint, exempt: Bool,
                   nowSec: UInt32) {
    fh.pointee.creditLimit = unboundAllowance
    bh.pointee.creditLimit = unboundAllowance
    guard creditWindow != 0 && fingerprint != nil else { return }
    if !exempt && unboundAllowance > 0 {
      if sources.takeUnbound(from, nowSec: nowSec) {
        fh.pointee.unboundCounted = true
      } else {
        fh.pointee.creditLimit = 0
        bh.pointee.creditLimit = 0
      }
    }
    fh.pointee.binding = Binding(hi: UInt64(random.next32()) << 32 | UInt64(random.next32()),
                                 lo: UInt64(random.next32()) << 32 | UInt64(random.next32()))
    if creditWindow != 0 && emit != nil { fh.pointee.bindDeadline = max(nowSec &+ bindTimeout, 1) }
  }

  /// The CREATED frame at `p` (`length` bytes, for `to`) is queued first, then the BIND of
  /// the circuit whose forward half is `fh` is written at `p` (circuit id `backId`, the
  /// previous hop's) as the verdict: the client learns the binding right after CREATED.
  /// Without credit enforced (`creditWindow` 0), a node key or `emit`: the CREATED alone.
  @inline(__always)
  func createdThenBind(_ p: UnsafeMutableRawPointer, length: Int, to: Endpoint, forward fh: UnsafeMutablePointer<Half>,
                       backId: UInt32) -> Verdict {
    guard creditWindow != 0, let fp = fingerprint, let emit else { return .send(to: to, offset: 0, length: length) }
    emit(UnsafeRawBufferPointer(start: p, count: length), to)
    let n = Frame.encodeHeader(p, type: .bind, bodyLength: Wire.bindBody, circuit: backId)
    let body = p + Wire.headerSize
    body.storeBytes(of: fp.w0.bigEndian, toByteOffset: 0, as: UInt64.self)
    body.storeBytes(of: fp.w1.bigEndian, toByteOffset: 8, as: UInt64.self)
    body.storeBytes(of: fp.w2.bigEndian, toByteOffset: 16, as: UInt64.self)
    body.storeBytes(of: fp.w3.bigEndian, toByteOffset: 24, as: UInt64.self)
    body.storeBytes(of: fh.pointee.binding.hi.bigEndian, toByteOffset: 32, as: UInt64.self)
    body.storeBytes(of: fh.pointee.binding.lo.bigEndian, toByteOffset: 40, as: UInt64.self)
    traffic.binds &+= 1
    return .send(to: to, offset: 0, length: n)
  }

  /// The worker's keys for a sealed exit circuit (forward half `half`, `localId`): installs
  /// them and writes CREATED (id, then `created`: the exit's point and fresh nonce) at `p`
  /// for the client's side. Dropped when the circuit ended meanwhile.
  public func exitKeysReady(_ p: UnsafeMutableRawPointer, half: Int32, localId: UInt32, keys: UnsafeRawPointer,
                            created: UnsafeRawBufferPointer) -> Verdict {
    guard half >= 0, Int(half) < circuits.capacity, created.count == Wire.sealedCreatedBody - 4 else { return drop(.unexpectedReply) }
    let f = circuits.half(Int(half))
    guard f.pointee.inUse, f.pointee.localId == localId, f.pointee.pending, f.pointee.sealed else { return drop(.unexpectedReply) }
    let b = circuits.half(Int(f.pointee.peer))
    guard let c = exitCipher, c.install(half: Int(half), keys: keys) else {
      let id = b.pointee.outId, to = b.pointee.outEndpoint
      freeCircuit(Int(half))
      return refuse(p, id: id, to: to, .exitNotAllowed, count: .exitNotAllowed)
    }
    f.pointee.pending = false
    if f.pointee.pendingCounted { sources.releasePending(f.pointee.inEndpoint); f.pointee.pendingCounted = false }
    let n = Frame.encodeHeader(p, type: .created, bodyLength: Wire.sealedCreatedBody, circuit: b.pointee.outId)
    Frame.store32(p, Wire.headerSize, localId)
    (p + Wire.headerSize + 4).copyMemory(from: created.baseAddress!, byteCount: created.count)
    return createdThenBind(p, length: n, to: b.pointee.outEndpoint, forward: f, backId: b.pointee.outId)
  }

  /// The worker could not agree keys (a client point that is not on the curve): REFUSED 3
  /// written at `p` for the client's side, the circuit freed.
  public func exitKeysFailed(_ p: UnsafeMutableRawPointer, half: Int32, localId: UInt32) -> Verdict {
    guard half >= 0, Int(half) < circuits.capacity else { return drop(.unexpectedReply) }
    let f = circuits.half(Int(half))
    guard f.pointee.inUse, f.pointee.localId == localId, f.pointee.pending, f.pointee.sealed else { return drop(.unexpectedReply) }
    let b = circuits.half(Int(f.pointee.peer))
    let id = b.pointee.outId, to = b.pointee.outEndpoint
    freeCircuit(Int(half))
    return refuse(p, id: id, to: to, .exitNotAllowed, count: .exitNotAllowed)
  }

  func created(_ p: UnsafeMutableRawPointer, header: FrameHeader, from: Endpoint, nowNs: UInt64) -> Verdict {
    guard let b = circuits.lookup(header.circuit, from: from) else { return drop(.unexpectedReply) }
    let bh = circuits.half(b)
    let fh = circuits.half(Int(bh.pointee.peer))
    if !fh.pointee.pending || fh.pointee.outIsExit { return drop(.unexpectedReply) }
    let next = Frame.load32(p, Wire.headerSize)
    if next == 0 { return drop(.badBody) }
    fh.pointee.outId = next
    fh.pointee.pending = false
    if fh.pointee.pendingCounted { sources.releasePending(fh.pointee.inEndpoint); fh.pointee.pendingCounted = false }
    Frame.store32(p, 4, bh.pointee.outId)
    Frame.store32(p, Wire.headerSize, fh.pointee.localId)
    // A sealed exit's point and nonce (after the id) travel back to the client untouched.
    return createdThenBind(p, length: Wire.headerSize + header.bodyLength, to: bh.pointee.outEndpoint, forward: fh,
                           backId: bh.pointee.outId)
  }

  func refused(_ p: UnsafeMutableRawPointer, header: FrameHeader, from: Endpoint) -> Verdict {
    guard let b = circuits.lookup(header.circuit, from: from) else { return drop(.unexpectedReply) }
    let bh = circuits.half(b)
    let fh = circuits.half(Int(bh.pointee.peer))
    if !fh.pointee.pending || fh.pointee.outIsExit { return drop(.unexpectedReply) }
    let prev = bh.pointee.outEndpoint
    Frame.store32(p, 4, bh.pointee.outId)
    freeCircuit(b)
    return .send(to: prev, offset: 0, length: Wire.headerSize + 1)
  }

  func destroy(_ p: UnsafeMutableRawPointer, header: FrameHeader, from: Endpoint) -> Verdict {
    guard let i = circuits.lookup(header.circuit, from: from) else { return drop(.unknownCircuit) }
    let h = circuits.half(i).pointee
    freeCircuit(i)
    traffic.circuitsDestroyed &+= 1
    if h.outIsExit || h.pending { return .consumed }
    Frame.store32(p, 4, h.outId)
    return .send(to: h.outEndpoint, offset: 0, length: Wire.headerSize + 1)
  }

  /// BIND from the next hop (towards the client, on the circuit's backward half): forwarded
  /// and charged exactly like DATA. A BIND on a forward half is dropped (`unexpected_reply`).
  func bind(_ p: UnsafeMutableRawPointer, header: FrameHeader, from: Endpoint, nowNs: UInt64) -> Verdict {
    guard let i = circuits.lookup(header.circuit, from: from) else { return drop(.unknownCircuit) }
    let h = circuits.half(i)
    if h.pointee.isForward || h.pointee.pending { return drop(.unexpectedReply) }
    if let reason = admit(h, bytes: header.bodyLength, nowNs: nowNs) { return drop(reason) }
    Frame.store32(p, 4, h.pointee.outId)
    return .send(to: h.pointee.outEndpoint, offset: 0, length: Wire.headerSize + header.bodyLength)
  }

  /// RECEIPT: consumed when it names this node, else forwarded along the circuit and
  /// charged like DATA (relayed count, rate caps, quota, credit limit). Circuit id and link
  /// are checked exactly as for DATA. Before its signature is handed to the worker: the
  /// cheap checks (a receipt naming this circuit's binding must move its acknowledged amount
  /// forward beyond what is already on its way to the worker, within what was relayed; the
  /// first may say 0 bytes), at most `Defaults.receiptsInFlightPerCircuit` in flight per
  /// circuit, and the source's and node's budget. A receipt naming another binding goes to
  /// the worker as a payment of a closed circuit's debt (it moves nothing here).
  func receipt(_ p: UnsafeMutableRawPointer, header: FrameHeader, from: Endpoint, nowNs: UInt64) -> Verdict {
    guard let i = circuits.lookup(header.circuit, from: from) else { return drop(.unknownCircuit) }
    let h = circuits.half(i)
    var reader = ByteReader(UnsafeRawBufferPointer(start: p + Wire.headerSize, count: header.bodyLength))
    guard let r = Receipt.decode(&reader), reader.remaining == 0 else { return drop(.badBody) }
    if let mine = fingerprint, r.node == mine {
      guard let take = onReceipt else { return drop(.receiptUnsupported) }
      let f = h.pointee.isForward ? Int32(i) : h.pointee.peer
      let forward = circuits.half(Int(f))
      let relayed = forward.pointee.bytes &+ circuits.half(Int(forward.pointee.peer)).pointee.bytes
      let own = r.binding == forward.pointee.binding
      if own {
        // A receipt may acknowledge a little more than this node relayed: a client that
        // carries traffic both ways (`wisp forward`) pays for what it sent, and what was
        // lost before this hop is its loss, not a reason to refuse every later receipt.
        if r.bytes > Receipt.acceptable(relayed: relayed) { return drop(.badBody) }
        // Not beyond what the circuit's receipts already acknowledge or what is on its way
        // to the worker (a resent receipt while its first copy waits): stale. The first
        // receipt of an unbound circuit may say 0 (it binds).
        let first = !forward.pointee.bound && !forward.pointee.receiptWaiting
        if !first && r.bytes <= max(forward.pointee.receipted, forward.pointee.receiptPosted) { return drop(.staleReceipt) }
      }
      if forward.pointee.receiptsInFlight >= Defaults.receiptsInFlightPerCircuit { return drop(.overBudget) }
      // A circuit bound by a valid receipt, with no invalid one since, may use the reserve
      // (the last quarter of the node's budget each second): a flood of receipts on other
      // circuits cannot starve it.
      let kind: Expense = own && forward.pointee.bound && !forward.pointee.receiptFailed ? .boundReceipt : .receipt
      let nowSec = UInt32(truncatingIfNeeded: nowNs / 1_000_000_000)
      if !sources.allow(kind, from: from, nowSec: nowSec) { return drop(.overBudget) }
      guard take(r, f, forward.pointee.localId, relayed, forward.pointee.binding) else {
        sources.refund(kind, from: from, nowSec: nowSec)
        return drop(.workerBusy)
      }
      forward.pointee.receiptsInFlight &+= 1
      if own {
        forward.pointee.receiptPosted = max(forward.pointee.receiptPosted, r.bytes)
        forward.pointee.receiptWaiting = true
      }
      traffic.receipts &+= 1
      return .consumed
    }
    if h.pointee.pending || h.pointee.outIsExit { return drop(.receiptUnsupported) }  // nowhere to go
    if let reason = admit(h, bytes: header.bodyLength, nowNs: nowNs) { return drop(reason) }
    Frame.store32(p, 4, h.pointee.outId)
    return .send(to: h.pointee.outEndpoint, offset: 0, length: Wire.headerSize + header.bodyLength)
  }

  /// The credit worker's answer for a receipt: whether the circuit is bound to a payer, the
  /// bytes its receipts acknowledge and the relayed count it may now reach (`limit`, the
  /// worker's share of the payer's window). Ignored when the half no longer holds the
  /// circuit the receipt came on.
  public func credited(half: Int32, localId: UInt32, bound: Bool, receipted: UInt64, limit: UInt64) {
    guard half >= 0, Int(half) < circuits.capacity else { return }
    let h = circuits.half(Int(half))
    guard h.pointee.inUse, h.pointee.isForward, h.pointee.localId == localId else { return }
    if h.pointee.receiptsInFlight > 0 { h.pointee.receiptsInFlight -= 1 }
    if h.pointee.receiptsInFlight == 0 { h.pointee.receiptWaiting = false }
    // Every receipt handed to the worker acknowledged more than the one before it (the
    // cheap checks saw to it) and the worker answers in order: an answer that does not move
    // the circuit is an invalid receipt, and the circuit loses the bound-circuit reserve.
    if receipted > h.pointee.receipted || (bound && !h.pointee.bound) {
      h.pointee.receipted = receipted
    } else {
      h.pointee.receiptFailed = true
    }
    if !bound && h.pointee.receiptsInFlight == 0 { h.pointee.receiptPosted = h.pointee.receipted }
    if bound {
      h.pointee.bound = true
      h.pointee.bindDeadline = 0
      if h.pointee.unboundCounted { sources.giveBackUnbound(h.pointee.inEndpoint); h.pointee.unboundCounted = false }
      h.pointee.creditLimit = limit
      circuits.half(Int(h.pointee.peer)).pointee.creditLimit = limit
    }
  }

  /// Told the limit a `setLimit` applied (the worker counts a lowered limit only then).
  public var onLimitApplied: ((_ half: Int32, _ localId: UInt32, _ limit: UInt64) -> Void)?

  /// The worker rebalances a payer's window: a bound circuit's limit becomes `limit`, never
  /// below what it has relayed (so it pauses there at most). Ignored when the half no
  /// longer holds that circuit; otherwise the limit applied goes back to the worker.
  public func setLimit(half: Int32, localId: UInt32, limit: UInt64) {
    guard half >= 0, Int(half) < circuits.capacity else { return }
    let h = circuits.half(Int(half))
    guard h.pointee.inUse, h.pointee.isForward, h.pointee.localId == localId, h.pointee.bound else { return }
    let p = circuits.half(Int(h.pointee.peer))
    let applied = max(limit, h.pointee.bytes &+ p.pointee.bytes)
    h.pointee.creditLimit = applied
    p.pointee.creditLimit = applied
    onLimitApplied?(half, localId, applied)
  }

  /// (paused circuits, relayed-but-unreceipted bytes, circuits no receipt has bound yet)
  /// — for status, not the packet path.
  public func creditState() -> (paused: Int, pending: UInt64, unbound: Int) {
    var paused = 0, unbound = 0
    var pending: UInt64 = 0
    circuits.forEachInUse { i, h in
      guard h.isForward else { return }
      let total = h.bytes &+ circuits.half(Int(h.peer)).pointee.bytes
      if total > h.receipted { pending &+= total - h.receipted }
      if creditWindow != 0 && total >= h.creditLimit { paused += 1 }
      if !h.bound { unbound += 1 }
    }
    return (paused, pending, unbound)
  }

  /// Closes circuits that no receipt bound within the bind timeout: DESTROY 4 both ways
  /// (through `emit`), counted `unbound`.
  func closeUnbound(nowSec: UInt32) {
    guard creditWindow != 0, let emit else { return }
    var frame: (UInt64, UInt8) = (0, 0)
    withUnsafeMutableBytes(of: &frame) { buf in
      let q = buf.baseAddress!
      circuits.forEachInUse { i, h in
        guard h.isForward, !h.bound, h.bindDeadline != 0, Int32(bitPattern: nowSec &- h.bindDeadline) >= 0 else { return }
        let back = circuits.half(Int(h.peer)).pointee
        if back.inUse {  // towards the client: the backward half's out
          Frame.encodeHeader(q, type: .destroy, bodyLength: 1, circuit: back.outId)
          q.storeBytes(of: DestroyReason.unbound.rawValue, toByteOffset: Wire.headerSize, as: UInt8.self)
          emit(UnsafeRawBufferPointer(start: q, count: Wire.headerSize + 1), back.outEndpoint)
        }
        if !h.outIsExit && !h.pending {
          Frame.encodeHeader(q, type: .destroy, bodyLength: 1, circuit: h.outId)
          q.storeBytes(of: DestroyReason.unbound.rawValue, toByteOffset: Wire.headerSize, as: UInt8.self)
          emit(UnsafeRawBufferPointer(start: q, count: Wire.headerSize + 1), h.outEndpoint)
        }
        freeCircuit(i)
        traffic.unbound &+= 1
        traffic.circuitsDestroyed &+= 1
      }
    }
  }

  /// Once a second: expire idle circuits (their exit sockets close), roll the quota over.
  public func tick(nowNs: UInt64, nowEpoch: Int64) {
    closeUnbound(nowSec: UInt32(truncatingIfNeeded: nowNs / 1_000_000_000))
    circuits.expire(nowSec: UInt32(truncatingIfNeeded: nowNs / 1_000_000_000), idleSec: limits.idleSeconds) { i in
      let h = circuits.half(i)
      released(Int(h.pointee.peer), circuits.half(Int(h.pointee.peer)))
      released(i, h)
    }
    quota.rollover(nowEpoch: nowEpoch)
  }
}
