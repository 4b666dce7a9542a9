// What a node does with one datagram. Runs on host and device.
//
// The pipeline (the loop in WispOS/RelayLoop.swift calls stage 3 for each datagram):
//   1. receive a batch of datagrams into pool buffers (recvmmsg)
//   2. classify each by source: a permitted exit destination's reply, or a frame
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

/// End-to-end sealing at an exit (implemented with mbedTLS in WispTLS). One state per
/// permitted exit destination, indexed like `Forwarder.exits`.
public protocol ExitCipher: AnyObject {
  /// A sealed circuit to exit `slot`: derive keys from the client's ephemeral point and
  /// write this node's public point (65 bytes) to `exitKeyOut`. False refuses the circuit.
  func accept(slot: Int, clientKey: UnsafeRawPointer, exitKeyOut: UnsafeMutableRawPointer) -> Bool
  /// Opens a sealed DATA body (counter, ciphertext, tag) in place; returns the plaintext's
  /// offset and length within the body, or nil if it is not authentic or is a replay.
  func open(slot: Int, body: UnsafeMutableRawPointer, length: Int) -> (offset: Int, length: Int)?
  /// Seals `length` bytes at `payload` in place: the counter goes in the 8 bytes before it,
  /// the tag in the 16 after. Returns the sealed length (`length + Wire.sealOverhead`).
  func seal(slot: Int, payload: UnsafeMutableRawPointer, length: Int) -> Int
}

/// What to do with a handled datagram.
public enum Verdict: Equatable {
  /// Send `length` bytes starting `offset` bytes from the datagram's start
  /// (negative: a header was prepended into headroom) to `to`.
  case send(to: Endpoint, offset: Int, length: Int)
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
  public init() {}
}

/// Forwarding limits a node owner sets.
public struct Limits {
  public var nodeMbit: UInt64 = 0
  public var circuitMbit: UInt64 = 0
  public var quotaBytes: UInt64 = 0
  public var quotaResetDay: Int = 1
  public var idleSeconds: UInt32 = UInt32(Defaults.circuitIdleSeconds)
  public init() {}
}

/// The forwarding logic of one shard: circuit table, exit map, limits and counters.
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
  /// Bytes a circuit may relay beyond its last valid receipt (0: relay without receipts).
  public var creditWindow: UInt64 = 0
  /// This node's key fingerprint: RECEIPT frames naming it are consumed, others forwarded.
  public var fingerprint: Fingerprint? = nil
  /// Hands a receipt addressed to this node to the credit worker, which verifies and
  /// records it off this thread and answers through `credited`: the circuit's forward half
  /// (index and local id, which tells a reused slot apart) and the bytes relayed on the
  /// circuit so far. False when the worker's queue is full (dropped, `worker_busy`).
  public var onReceipt: ((Receipt, _ half: Int32, _ localId: UInt32, _ relayed: UInt64) -> Bool)?
  /// Told of every PONG: who answered and the 8-byte token its PING carried.
  public var onPong: ((Endpoint, UInt64) -> Void)?
  /// Seals and opens payloads of circuits that asked for a sealed exit (nil: refused).
  public var exitCipher: ExitCipher? = nil
  /// Exit destinations the policy allows, the circuit (backward half) each one currently
  /// serves, and whether that circuit's payloads are sealed end to end.
  public private(set) var exits: [(endpoint: Endpoint, half: Int32, sealed: Bool)]

  public init(circuits: Int, local: Endpoint, limits: Limits, allowedExits: [Endpoint], random: R,
              nowEpoch: Int64, shard: Int = 0, shardBits: Int = 0) {
    self.circuits = CircuitTable(circuits: circuits, shard: shard, shardBits: shardBits)
    self.local = local
    self.limits = limits
    self.random = random
    nodeBucket = TokenBucket(mbit: limits.nodeMbit)
    circuitRate = TokenRate(mbit: limits.circuitMbit)
    quota = Quota(limitBytes: limits.quotaBytes, resetDay: limits.quotaResetDay, nowEpoch: nowEpoch)
    exits = allowedExits.map { (endpoint: $0, half: -1, sealed: false) }
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
    limits = new
  }

  /// Replaces the exit policy (SIGHUP). Destinations that stay keep their circuit.
  public func setExits(_ allowed: [Endpoint]) {
    var next: [(endpoint: Endpoint, half: Int32, sealed: Bool)] = []
    for e in allowed {
      if let i = exitIndex(e) { next.append(exits[i]) } else { next.append((endpoint: e, half: -1, sealed: false)) }
    }
    exits = next
  }

  /// Whether datagrams from `e` are exit replies (plain UDP, no wisp header).
  @inline(__always)
  public func isExitSource(_ e: Endpoint) -> Bool { !exits.isEmpty && exitIndex(e) != nil }

  /// Index in `exits` of a permitted destination, or nil.
  @inline(__always)
  func exitIndex(_ e: Endpoint) -> Int? {
    for i in 0..<exits.count where exits[i].endpoint == e { return i }
    return nil
  }

  /// Handles one datagram of `length` bytes at `p` from `from`. The buffer has at
  /// least `Defaults.headroom` bytes before `p` and `Wire.maxDatagram` after it.
  @inline(__always)
  public func handle(_ p: UnsafeMutableRawPointer, length: Int, from: Endpoint, nowNs: UInt64) -> Verdict {
    traffic.received &+= 1
    // 2. A reply from an exit destination carries no wisp header.
    if !exits.isEmpty, let x = exitIndex(from) {
      return exitReply(p, length: length, exit: x, nowNs: nowNs)
    }
    // 3. Decode and bounds-check.
    let header: FrameHeader
    switch Frame.decode(p, length: length) {
    case .success(let h): header = h
    case .failure(let reason): return drop(reason)
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
    case .receipt: return receipt(p, header: header, from: from)
    }
  }

  @inline(__always)
  func drop(_ reason: DropReason) -> Verdict {
    drops.count(reason)
    return .drop(reason)
  }

  /// Rate caps, credit window, quota and counters for `bytes` of payload on half `h`.
  @inline(__always)
  func admit(_ h: UnsafeMutablePointer<Half>, bytes: Int, nowNs: UInt64) -> DropReason? {
    if quota.limit != 0 && quota.reached { return .quotaReached }
    if creditWindow != 0 {
      let p = circuits.half(Int(h.pointee.peer))
      let relayed = h.pointee.bytes &+ p.pointee.bytes
      let receipted = h.pointee.isForward ? h.pointee.receipted : p.pointee.receipted
      if relayed &+ UInt64(bytes) > receipted &+ creditWindow { return .unpaid }
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
    if let reason = admit(h, bytes: header.bodyLength, nowNs: nowNs) { return drop(reason) }
    if h.pointee.outIsExit {
      // The policy may have changed since the circuit was built (SIGHUP).
      guard let x = exitIndex(h.pointee.outEndpoint) else { return drop(.exitNotAllowed) }
      if exits[x].sealed {
        guard let c = exitCipher, let (off, n) = c.open(slot: x, body: p + Wire.headerSize, length: header.bodyLength) else {
          return drop(.badSeal)
        }
        return .send(to: h.pointee.outEndpoint, offset: Wire.headerSize + off, length: n)
      }
      return .send(to: h.pointee.outEndpoint, offset: Wire.headerSize, length: header.bodyLength)
    }
    Frame.store32(p, 4, h.pointee.outId)
    return .send(to: h.pointee.outEndpoint, offset: 0, length: Wire.headerSize + header.bodyLength)
  }

  func exitReply(_ p: UnsafeMutableRawPointer, length: Int, exit x: Int, nowNs: UInt64) -> Verdict {
    // The buffer has Defaults.headroom (≥ 16) bytes before p and ≥ 16 after the reply.
    let hi = exits[x].half
    if hi < 0 { return drop(.unknownCircuit) }
    if length > Wire.maxBody { return drop(.oversized) }
    let h = circuits.half(Int(hi))
    if !h.pointee.inUse || !h.pointee.inIsExit { return drop(.unknownCircuit) }
    let sealed = exits[x].sealed
    if sealed && (exitCipher == nil || length + Wire.sealOverhead > Wire.maxBody) { return drop(.oversized) }
    // Charged as it leaves: sealed replies count their counter and tag, like sealed DATA
    // on the way out, so every hop of the circuit counts the same bytes.
    if let reason = admit(h, bytes: sealed ? length + Wire.sealOverhead : length, nowNs: nowNs) { return drop(reason) }
    if sealed, let c = exitCipher {
      // Counter in the 8 bytes before the reply, tag after it, header before the counter.
      let n = c.seal(slot: x, payload: p, length: length)
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
    let top = e.ip >> 24
    if e == local || e.ip == 0 || e.ip == 0xFFFF_FFFF || (top >= 224 && top <= 239) {
      return refuse(p, id: id, to: from, .unreachable, count: .refusedCreate)
    }
    var exitSlot: Int? = nil
    if hop.kind == .exit || hop.kind == .sealedExit {
      guard let x = exitIndex(e) else { return refuse(p, id: id, to: from, .exitNotAllowed, count: .exitNotAllowed) }
      exitSlot = x
    }
    let nowSec = UInt32(truncatingIfNeeded: nowNs / 1_000_000_000)
    guard let (f, b) = circuits.allocate(prev: from, next: e, prevId: id, nowSec: nowSec, random: &random) else {
      return refuse(p, id: id, to: from, .tableFull, count: .refusedCreate)
    }
    traffic.circuitsCreated &+= 1
    let fh = circuits.half(f)
    let bh = circuits.half(b)
    if let x = exitSlot {
      var bodyLength = 4
      if hop.kind == .sealedExit {
        // The client's point follows the hop; this node's point goes back in CREATED.
        var key = [UInt8](repeating: 0, count: Wire.pointSize)
        let ok = key.withUnsafeMutableBytes { k in
          exitCipher?.accept(slot: x, clientKey: body + Wire.hopSize, exitKeyOut: k.baseAddress!) ?? false
        }
        if !ok {
          circuits.free(f)
          return refuse(p, id: id, to: from, .exitNotAllowed, count: .exitNotAllowed)
        }
        key.withUnsafeBytes { (p + Wire.headerSize + 4).copyMemory(from: $0.baseAddress!, byteCount: Wire.pointSize) }
        bodyLength += Wire.pointSize
      }
      // The exit serves one circuit at a time: a newer circuit takes its replies.
      exits[x].half = Int32(b)
      exits[x].sealed = hop.kind == .sealedExit
      fh.pointee.outIsExit = true
      bh.pointee.inIsExit = true
      let n = Frame.encodeHeader(p, type: .created, bodyLength: bodyLength, circuit: id)
      Frame.store32(p, Wire.headerSize, fh.pointee.localId)
      return .send(to: from, offset: 0, length: n)
    }
    // Extend: the nested hop becomes the next node's CREATE body, in place.
    fh.pointee.pending = true
    let rest = hop.restLength
    if rest > 0 { (body).copyMemory(from: body + Wire.hopSize, byteCount: rest) }
    let n = Frame.encodeHeader(p, type: .create, bodyLength: rest, circuit: bh.pointee.localId)
    return .send(to: e, offset: 0, length: n)
  }

  func created(_ p: UnsafeMutableRawPointer, header: FrameHeader, from: Endpoint, nowNs: UInt64) -> Verdict {
    guard let b = circuits.lookup(header.circuit, from: from) else { return drop(.unexpectedReply) }
    let bh = circuits.half(b)
    let fh = circuits.half(Int(bh.pointee.peer))
    if !fh.pointee.pending { return drop(.unexpectedReply) }
    let next = Frame.load32(p, Wire.headerSize)
    if next == 0 { return drop(.badBody) }
    fh.pointee.outId = next
    fh.pointee.pending = false
    Frame.store32(p, 4, bh.pointee.outId)
    Frame.store32(p, Wire.headerSize, fh.pointee.localId)
    // A sealed exit's point (after the id) travels back to the client untouched.
    return .send(to: bh.pointee.outEndpoint, offset: 0, length: Wire.headerSize + header.bodyLength)
  }

  func refused(_ p: UnsafeMutableRawPointer, header: FrameHeader, from: Endpoint) -> Verdict {
    guard let b = circuits.lookup(header.circuit, from: from) else { return drop(.unexpectedReply) }
    let bh = circuits.half(b)
    if !circuits.half(Int(bh.pointee.peer)).pointee.pending { return drop(.unexpectedReply) }
    let prev = bh.pointee.outEndpoint
    Frame.store32(p, 4, bh.pointee.outId)
    circuits.free(b)
    return .send(to: prev, offset: 0, length: Wire.headerSize + 1)
  }

  func destroy(_ p: UnsafeMutableRawPointer, header: FrameHeader, from: Endpoint) -> Verdict {
    guard let i = circuits.lookup(header.circuit, from: from) else { return drop(.unknownCircuit) }
    let h = circuits.half(i).pointee
    let peer = circuits.half(Int(h.peer)).pointee
    for x in 0..<exits.count where exits[x].half == Int32(i) || exits[x].half == h.peer { exits[x].half = -1 }
    circuits.free(i)
    traffic.circuitsDestroyed &+= 1
    if h.outIsExit || h.pending || peer.inIsExit && h.outIsExit { return .consumed }
    Frame.store32(p, 4, h.outId)
    return .send(to: h.outEndpoint, offset: 0, length: Wire.headerSize + 1)
  }

  /// RECEIPT: consumed when it names this node, else forwarded along the circuit like DATA
  /// (not charged as payload). Circuit id and link are checked exactly as for DATA.
  func receipt(_ p: UnsafeMutableRawPointer, header: FrameHeader, from: Endpoint) -> Verdict {
    guard let i = circuits.lookup(header.circuit, from: from) else { return drop(.unknownCircuit) }
    let h = circuits.half(i)
    var reader = ByteReader(UnsafeRawBufferPointer(start: p + Wire.headerSize, count: header.bodyLength))
    guard let r = Receipt.decode(&reader), reader.remaining == 0 else { return drop(.badBody) }
    if let mine = fingerprint, r.node == mine {
      guard let take = onReceipt else { return drop(.receiptUnsupported) }
      let f = h.pointee.isForward ? Int32(i) : h.pointee.peer
      let forward = circuits.half(Int(f))
      let relayed = forward.pointee.bytes &+ circuits.half(Int(forward.pointee.peer)).pointee.bytes
      guard take(r, f, forward.pointee.localId, relayed) else { return drop(.workerBusy) }
      traffic.receipts &+= 1
      return .consumed
    }
    if h.pointee.pending || h.pointee.outIsExit { return drop(.receiptUnsupported) }  // nowhere to go
    Frame.store32(p, 4, h.pointee.outId)
    return .send(to: h.pointee.outEndpoint, offset: 0, length: Wire.headerSize + header.bodyLength)
  }

  /// The credit worker's answer for a receipt: the circuit's serial and the bytes its
  /// receipts acknowledge (which move its credit window). Ignored when the half no longer
  /// holds the circuit the receipt came on.
  public func credited(half: Int32, localId: UInt32, serial: UInt64, receipted: UInt64) {
    guard half >= 0, Int(half) < circuits.capacity else { return }
    let h = circuits.half(Int(half))
    guard h.pointee.inUse, h.pointee.isForward, h.pointee.localId == localId else { return }
    h.pointee.serial = serial
    if receipted > h.pointee.receipted { h.pointee.receipted = receipted }
  }

  /// (paused circuits, relayed-but-unreceipted bytes) — for status, not the packet path.
  public func creditState() -> (paused: Int, pending: UInt64) {
    var paused = 0
    var pending: UInt64 = 0
    circuits.forEachInUse { i, h in
      guard h.isForward else { return }
      let total = h.bytes &+ circuits.half(Int(h.peer)).pointee.bytes
      if total > h.receipted { pending &+= total - h.receipted }
      if creditWindow != 0 && total >= h.receipted &+ creditWindow { paused += 1 }
    }
    return (paused, pending)
  }

  /// Once a second: expire idle circuits, roll the quota period over.
  public func tick(nowNs: UInt64, nowEpoch: Int64) {
    let n = circuits.expire(nowSec: UInt32(truncatingIfNeeded: nowNs / 1_000_000_000), idleSec: limits.idleSeconds)
    if n > 0 {
      for x in 0..<exits.count where exits[x].half >= 0 && !circuits.half(Int(exits[x].half)).pointee.inUse {
        exits[x].half = -1
      }
    }
    quota.rollover(nowEpoch: nowEpoch)
  }
}
