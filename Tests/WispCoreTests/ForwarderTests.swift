// The forwarding logic, driven with datagrams as the loop would hand them over.
import Testing
@testable import WispCore

/// A datagram in a pool-like buffer with headroom.
final class Datagram {
  var storage = [UInt8](repeating: 0, count: Defaults.bufferSize)
  var length: Int
  init(_ bytes: [UInt8]) {
    length = bytes.count
    for (i, b) in bytes.enumerated() { storage[Defaults.headroom + i] = b }
  }
  func handle<R>(_ f: Forwarder<R>, from: Endpoint, nowNs: UInt64 = 1_000_000_000) -> (Verdict, [UInt8]) {
    storage.withUnsafeMutableBytes { raw in
      let p = raw.baseAddress! + Defaults.headroom
      let v = f.handle(p, length: length, from: from, nowNs: nowNs)
      if case .send(_, let off, let len) = v {
        return (v, Array(UnsafeRawBufferPointer(start: p + off, count: len)))
      }
      if case .sendExit(_, let off, let len) = v {
        return (v, Array(UnsafeRawBufferPointer(start: p + off, count: len)))
      }
      return (v, [])
    }
  }
  /// The datagram as a reply read from the newest exit socket the forwarder opened.
  func reply<R>(_ f: Forwarder<R>, nowNs: UInt64 = 1_000_000_000) -> (Verdict, [UInt8]) {
    let s = f.exitSockets as! FakeExitSockets
    let (fd, half) = s.open.last ?? (-1, -1)
    return storage.withUnsafeMutableBytes { raw in
      let p = raw.baseAddress! + Defaults.headroom
      let v = f.exitReply(p, length: length, half: half, fd: fd, nowNs: nowNs)
      if case .send(_, let off, let len) = v {
        return (v, Array(UnsafeRawBufferPointer(start: p + off, count: len)))
      }
      return (v, [])
    }
  }
}

/// Exit sockets as descriptors 100, 101, ... (no real socket).
final class FakeExitSockets: ExitSockets {
  var open: [(fd: Int32, half: Int32)] = []
  var closed: [Int32] = []
  var next: Int32 = 100
  var refuse = false
  func openExit(to: Endpoint, half: Int32) -> Int32 {
    if refuse { return -1 }
    next += 1
    open.append((next - 1, half))
    return next - 1
  }
  func closeExit(_ fd: Int32) {
    closed.append(fd)
    open.removeAll { $0.fd == fd }
  }
  var lastFd: Int32 { open.last?.fd ?? -1 }
}

func hopBytes(_ kind: UInt8, _ e: Endpoint) -> [UInt8] {
  [kind, 0, UInt8(e.port >> 8), UInt8(e.port & 255), UInt8(e.ip >> 24), UInt8((e.ip >> 16) & 255), UInt8((e.ip >> 8) & 255), UInt8(e.ip & 255)]
}
func u32(_ b: [UInt8], _ o: Int) -> UInt32 { UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3]) }

let client = Endpoint(ip: 0x7F00_0001, port: 5000)
let nodeA = Endpoint(ip: 0x7F00_0001, port: 7001)
let nodeB = Endpoint(ip: 0x7F00_0001, port: 7002)
let service = Endpoint(ip: 0x7F00_0001, port: 9000)

/// Limits in lab mode: these tests run on loopback addresses (AddressPolicy.swift).
var labLimits: Limits { var l = Limits(); l.labAddresses = true; return l }

func node(_ local: Endpoint, exits: [Endpoint] = [], limits: Limits = labLimits, circuits: Int = 16,
          sources: SourceLimitSettings = SourceLimitSettings()) -> Forwarder<CountingRandom> {
  let f = Forwarder(circuits: circuits, local: local, limits: limits, allowedExits: exits, random: CountingRandom(),
                    nowEpoch: 1_700_000_000, sourceLimits: sources)
  f.exitSockets = FakeExitSockets()
  return f
}

@Suite struct ForwarderTests {
  /// client → A → B (exit) → service, and back.
  @Test func twoHopCircuitWithExit() {
    let a = node(nodeA)
    let b = node(nodeB, exits: [service])
    // CREATE {extend B, {exit service}} from the client to A.
    let (v1, out1) = Datagram(bytes(2, 0xC1, hopBytes(1, nodeB) + hopBytes(2, service))).handle(a, from: client)
    guard case .send(let to1, _, _) = v1 else { Issue.record("A did not extend"); return }
    #expect(to1 == nodeB)
    #expect(out1[1] == 2 && out1.count == 16)        // CREATE with the inner hop only
    let aBack = u32(out1, 4)
    // B: exit allowed, answers CREATED at once.
    let (v2, out2) = Datagram(out1).handle(b, from: nodeA)
    guard case .send(let to2, _, _) = v2 else { Issue.record("B did not answer"); return }
    #expect(to2 == nodeA && out2[1] == 3 && u32(out2, 4) == aBack)
    // A turns it into CREATED for the client.
    let (v3, out3) = Datagram(out2).handle(a, from: nodeB)
    guard case .send(let to3, _, _) = v3 else { Issue.record("A did not relay CREATED"); return }
    #expect(to3 == client && out3[1] == 3 && u32(out3, 4) == 0xC1)
    let aFwd = u32(out3, 8)
    // DATA client → A → B → service as plain UDP.
    let (v4, out4) = Datagram(bytes(1, aFwd, Array("hello".utf8))).handle(a, from: client)
    guard case .send(let to4, _, _) = v4 else { Issue.record("A dropped DATA"); return }
    #expect(to4 == nodeB)
    let (v5, out5) = Datagram(out4).handle(b, from: nodeA)
    #expect(v5 == .sendExit(fd: (b.exitSockets as! FakeExitSockets).lastFd, offset: 8, length: 5))
    #expect(out5 == Array("hello".utf8))
    // The reply: plain UDP on the circuit's exit socket gets a header at B, back to the client.
    let (v6, out6) = Datagram(Array("world".utf8)).reply(b)
    guard case .send(let to6, let off6, _) = v6 else { Issue.record("B dropped the reply"); return }
    #expect(to6 == nodeA && off6 == -8)
    let (v7, out7) = Datagram(out6).handle(a, from: nodeB)
    guard case .send(let to7, _, _) = v7 else { Issue.record("A dropped the reply"); return }
    #expect(to7 == client && u32(out7, 4) == 0xC1 && Array(out7[8...]) == Array("world".utf8))
    #expect(a.traffic.forwardedPackets == 2 && b.traffic.forwardedPackets == 2)
    #expect(a.traffic.forwardedBytes == 10)
    // DESTROY from the client tears down A's circuit and goes on to B.
    let (v8, out8) = Datagram(bytes(4, aFwd, [0])).handle(a, from: client)
    #expect(v8 != .consumed)
    #expect(a.circuits.circuitsInUse == 0)
    _ = Datagram(out8).handle(b, from: nodeA)
    #expect(b.circuits.circuitsInUse == 0)
    #expect((b.exitSockets as! FakeExitSockets).closed == [100] && b.exitSocketsOpen == 0)  // the socket closed with it
  }

  @Test func refusals() {
    let a = node(nodeA, exits: [service], circuits: 1)
    func refuse(_ body: [UInt8], _ reason: UInt8, _ counter: DropReason) {
      let before = a.drops[counter]
      let (v, out) = Datagram(bytes(2, 0x77, body)).handle(a, from: client)
      #expect(v == .send(to: client, offset: 0, length: 9))
      #expect(out[1] == 8 && u32(out, 4) == 0x77 && out[8] == reason, "reason \(reason)")
      #expect(a.drops[counter] == before + 1)
    }
    refuse([], 4, .refusedCreate)                                          // no local service
    refuse(hopBytes(2, Endpoint(ip: 0x7F00_0001, port: 53)), 3, .exitPolicy)      // not in the exit policy
    refuse(hopBytes(1, nodeA), 7, .forbiddenAddress)                       // to itself
    refuse(hopBytes(1, Endpoint(ip: 0xE000_0001, port: 5)), 7, .forbiddenAddress)  // multicast
    refuse(hopBytes(9, nodeB), 6, .badBody)
    #expect(a.circuits.circuitsInUse == 0)
    _ = Datagram(bytes(2, 0x78, hopBytes(1, nodeB))).handle(a, from: client)
    refuse(hopBytes(1, nodeB), 1, .refusedCreate)                          // table full
  }

  @Test func refusedTravelsBackAndFrees() {
    let a = node(nodeA)
    let (_, out1) = Datagram(bytes(2, 0xC1, hopBytes(1, nodeB))).handle(a, from: client)
    let (v, out) = Datagram(bytes(8, u32(out1, 4), [3])).handle(a, from: nodeB)
    #expect(v == .send(to: client, offset: 0, length: 9))
    #expect(u32(out, 4) == 0xC1 && out[8] == 3)
    #expect(a.circuits.circuitsInUse == 0)
  }

  @Test func dataBeforeCreatedAndStrangers() {
    let a = node(nodeA)
    let (_, out1) = Datagram(bytes(2, 0xC1, hopBytes(1, nodeB))).handle(a, from: client)
    let back = u32(out1, 4)
    // DATA toward the client on the back half works at once (the client is known)...
    let (vb, _) = Datagram(bytes(1, back, [1])).handle(a, from: nodeB)
    #expect(vb == .send(to: client, offset: 0, length: 9))
    // ...but a stranger using the same id is dropped.
    let (vs, _) = Datagram(bytes(1, back, [1])).handle(a, from: service)
    #expect(vs == .drop(.unknownCircuit))
    // Unsolicited CREATED and duplicate CREATED.
    #expect(Datagram(bytes(3, 0x1234, [0, 0, 0, 1])).handle(a, from: nodeB).0 == .drop(.unexpectedReply))
    _ = Datagram(bytes(3, back, [0, 0, 0, 9])).handle(a, from: nodeB)
    #expect(Datagram(bytes(3, back, [0, 0, 0, 9])).handle(a, from: nodeB).0 == .drop(.unexpectedReply))
    #expect(Datagram(bytes(3, back, [0, 0, 0, 9])).handle(a, from: nodeB).0 == .drop(.unexpectedReply))
    #expect(a.drops[.unexpectedReply] == 3)
  }

  @Test func pendingCircuitDropsForwardData() {
    let a = node(nodeA)
    _ = Datagram(bytes(2, 0xC1, hopBytes(1, nodeB))).handle(a, from: client)
    // The client cannot know the forward id before CREATED; probing every slot finds nothing usable.
    var pending = 0, unknown = 0
    for id in UInt32(1)...4096 {
      let (v, _) = Datagram(bytes(1, id, [0])).handle(a, from: client)
      if v == .drop(.circuitPending) { pending += 1 } else if v == .drop(.unknownCircuit) { unknown += 1 }
    }
    #expect(pending <= 1)
    #expect(unknown >= 4095)
  }

  @Test func rateCapAndQuota() {
    var l = labLimits
    l.circuitMbit = 1   // 125,000 B/s, burst max(6250, 5888) bytes
    let a = node(nodeA, exits: [service], limits: l)
    let (_, out) = Datagram(bytes(2, 0xC1, hopBytes(2, service))).handle(a, from: client)
    let fwd = u32(out, 8)
    var sent = 0
    for _ in 0..<20 {
      if case .sendExit = Datagram(bytes(1, fwd, [UInt8](repeating: 0, count: 1000))).handle(a, from: client, nowNs: 5).0 { sent += 1 }
    }
    #expect(sent == 6)
    #expect(a.drops[.rateLimited] == 14)

    var q = labLimits
    q.quotaBytes = 3000
    let b = node(nodeB, exits: [service], limits: q)
    let (_, outB) = Datagram(bytes(2, 0xC2, hopBytes(2, service))).handle(b, from: client)
    let fwdB = u32(outB, 8)
    for _ in 0..<5 { _ = Datagram(bytes(1, fwdB, [UInt8](repeating: 0, count: 1000))).handle(b, from: client) }
    #expect(b.traffic.forwardedBytes == 3000)
    #expect(b.drops[.quotaReached] == 2)
    let (v, o) = Datagram(bytes(2, 0xC3, hopBytes(2, service))).handle(b, from: client)
    #expect(v == .send(to: client, offset: 0, length: 9) && o[8] == 2)   // REFUSED quota reached
  }

  @Test func pingIsEchoedAsPong() {
    let a = node(nodeA)
    let body: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    let (v, out) = Datagram(bytes(5, 0, body)).handle(a, from: client)
    #expect(v == .send(to: client, offset: 0, length: 17))
    #expect(out[1] == 6 && Array(out[8...]) == body)
  }

  @Test func garbageNeverCrashes() {
    let a = node(nodeA, exits: [service])
    var r = CountingRandom()
    for n in 0..<3000 {
      var g = [UInt8](repeating: 0, count: Int(r.next32() % 1600))
      for i in 0..<g.count { g[i] = UInt8(truncatingIfNeeded: r.next32()) }
      if n % 3 == 0 && !g.isEmpty { g[0] = 0xD2 }          // make many look like frames
      if n % 6 == 0 && g.count > 1 { g[1] = UInt8(1 + n % 8) }
      _ = Datagram(g).handle(a, from: client)
    }
    #expect(a.drops.total > 2500)
    #expect(a.traffic.received == 3000)
  }
}

@Suite struct ReceiptRoutingTests {
  func fp(_ b: UInt8) -> Fingerprint {
    [UInt8](repeating: b, count: 32).withUnsafeBytes { Fingerprint($0)! }
  }

  func receiptBody(node: Fingerprint, bytes: UInt64, binding: Binding = Binding(hi: 1, lo: 2)) -> [UInt8] {
    Receipt(node: node, payer: fp(9), binding: binding, bytes: bytes, epoch: 1_700_000_000,
            payerKey: [4] + [UInt8](repeating: 1, count: 64), signature: [UInt8](repeating: 0x30, count: 70)).encoded
  }

  /// The binding of the circuit whose forward half has local id `fwd`.
  func binding(_ a: Forwarder<CountingRandom>, _ fwd: UInt32) -> Binding {
    var b = Binding.zero
    a.circuits.forEachInUse { _, h in if h.isForward && h.localId == fwd { b = h.binding } }
    return b
  }

  @Test func consumedWhenAddressedHereAndTheWorkersLimitMovesTheCircuit() {
    let a = node(nodeA, exits: [service])
    a.fingerprint = fp(1)
    a.creditWindow = 1 << 20
    a.unboundAllowance = 3000
    var seen: [UInt64] = []
    var grant: UInt64 = 6000
    a.onReceipt = { r, half, localId, relayed, circuitBinding in
      #expect(a.circuits.half(Int(half)).pointee.isForward)
      #expect(relayed == 3000)
      seen.append(r.bytes)
      // What the credit worker answers after verifying (through the shard's mailbox): only
      // a receipt naming the circuit's own binding moves it.
      if r.binding == circuitBinding { a.credited(half: half, localId: localId, bound: true, receipted: r.bytes, limit: grant) }
      // An answer for a reused slot (another local id) changes nothing.
      a.credited(half: half, localId: localId &+ 1, bound: true, receipted: 1 << 40, limit: 1 << 41)
      return true
    }
    let (_, out) = Datagram(bytes(2, 0xC1, hopBytes(2, service))).handle(a, from: client)
    let fwd = u32(out, 8)
    let own = binding(a, fwd)
    #expect(own != .zero)
    // Unbound: 3 x 1000 bytes fit the unbound allowance, the 4th does not.
    for _ in 0..<3 { #expect(Datagram(bytes(1, fwd, [UInt8](repeating: 0, count: 1000))).handle(a, from: client).0 != .drop(.unpaid)) }
    #expect(Datagram(bytes(1, fwd, [UInt8](repeating: 0, count: 1000))).handle(a, from: client).0 == .drop(.unpaid))
    #expect(a.creditState().paused == 1 && a.creditState().pending == 3000 && a.creditState().unbound == 1)
    // A receipt for another binding is handed over (it may pay a closed circuit's debt) but
    // does not move this circuit.
    #expect(Datagram(bytes(7, fwd, receiptBody(node: fp(1), bytes: 3000))).handle(a, from: client).0 == .consumed)
    #expect(Datagram(bytes(1, fwd, [UInt8](repeating: 0, count: 1000))).handle(a, from: client).0 == .drop(.unpaid))
    // The circuit's own binding: consumed, the worker's limit resumes the circuit.
    #expect(Datagram(bytes(7, fwd, receiptBody(node: fp(1), bytes: 3000, binding: own))).handle(a, from: client).0 == .consumed)
    #expect(seen == [3000, 3000])
    #expect(Datagram(bytes(1, fwd, [UInt8](repeating: 0, count: 1000))).handle(a, from: client).0 != .drop(.unpaid))
    #expect(a.creditState().paused == 0 && a.creditState().unbound == 0)
    // A receipt for another node cannot leave through an exit; a malformed one is bad_body.
    #expect(Datagram(bytes(7, fwd, receiptBody(node: fp(2), bytes: 1))).handle(a, from: client).0 == .drop(.receiptUnsupported))
    #expect(Datagram(bytes(7, fwd, receiptBody(node: fp(1), bytes: 1, binding: own) + [0])).handle(a, from: client).0 == .drop(.badBody))
    #expect(Datagram(bytes(7, fwd, Array(receiptBody(node: fp(1), bytes: 1).prefix(50)))).handle(a, from: client).0 == .drop(.badBody))
    #expect(Datagram(bytes(7, 0x1234, receiptBody(node: fp(1), bytes: 1))).handle(a, from: client).0 == .drop(.unknownCircuit))
    // Cheap checks before the signature: a receipt that does not move the acknowledged
    // amount forward, or claims more than was relayed, never reaches the worker.
    #expect(Datagram(bytes(7, fwd, receiptBody(node: fp(1), bytes: 3000, binding: own))).handle(a, from: client).0 == .drop(.staleReceipt))
    #expect(Datagram(bytes(7, fwd, receiptBody(node: fp(1), bytes: 80_000, binding: own))).handle(a, from: client).0 == .drop(.badBody))
    #expect(seen == [3000, 3000])
    // A full worker queue refuses the receipt: dropped and counted, the circuit untouched.
    a.onReceipt = { _, _, _, _, _ in false }
    #expect(Datagram(bytes(7, fwd, receiptBody(node: fp(1), bytes: 3500, binding: own))).handle(a, from: client).0 == .drop(.workerBusy))
    #expect(a.drops[.workerBusy] == 1)
    _ = grant
    grant = 0
  }

  @Test func aZeroByteReceiptBindsAnUnboundCircuitOnce() {
    let a = node(nodeA, exits: [service])
    a.fingerprint = fp(1)
    a.creditWindow = 1 << 20
    var posted = 0
    a.onReceipt = { _, _, _, _, _ in posted += 1; return true }
    let (_, out) = Datagram(bytes(2, 0xC1, hopBytes(2, service))).handle(a, from: client)
    let fwd = u32(out, 8)
    let own = binding(a, fwd)
    // The first receipt may acknowledge 0 bytes (it binds); a second 0 while it waits is stale.
    #expect(Datagram(bytes(7, fwd, receiptBody(node: fp(1), bytes: 0, binding: own))).handle(a, from: client).0 == .consumed)
    #expect(Datagram(bytes(7, fwd, receiptBody(node: fp(1), bytes: 0, binding: own))).handle(a, from: client).0 == .drop(.staleReceipt))
    #expect(posted == 1)
  }

  @Test func boundCircuitsKeepAReserveOfTheReceiptBudget() {
    // 8 receipts per second node-wide: unbound circuits get 6 of them, a circuit bound by a
    // valid receipt (and no invalid one since) may use the last 2.
    let a = node(nodeA, exits: [service], circuits: 64, sources: SourceLimitSettings(expensivePerSource: 100, receiptsPerSecond: 8))
    a.fingerprint = fp(1)
    a.creditWindow = 1 << 30
    var answered: [(Int32, UInt32, UInt64)] = []
    a.onReceipt = { r, half, localId, _, _ in answered.append((half, localId, r.bytes)); return true }
    var fwds: [UInt32] = []
    for i in 0..<10 {
      let (_, out) = Datagram(bytes(2, UInt32(0x100 + i), hopBytes(2, service))).handle(a, from: client)
      fwds.append(u32(out, 8))
      _ = Datagram(bytes(1, fwds[i], [UInt8](repeating: 0, count: 500))).handle(a, from: client)
    }
    // Circuit 0 is bound by a valid receipt (the worker's answer moves it).
    _ = Datagram(bytes(7, fwds[0], receiptBody(node: fp(1), bytes: 100, binding: binding(a, fwds[0])))).handle(a, from: client, nowNs: 5_000_000_000)
    a.credited(half: answered[0].0, localId: answered[0].1, bound: true, receipted: 100, limit: 1 << 20)
    // The next second: a flood on the 9 unbound circuits takes 6, then nothing.
    for i in 1..<10 {
      _ = Datagram(bytes(7, fwds[i], receiptBody(node: fp(1), bytes: 200, binding: binding(a, fwds[i])))).handle(a, from: client, nowNs: 6_000_000_000)
    }
    #expect(answered.count == 1 + 6 && a.drops[.overBudget] == 3)
    // The bound circuit still gets its receipt through, from the reserve.
    let b0 = binding(a, fwds[0])
    #expect(Datagram(bytes(7, fwds[0], receiptBody(node: fp(1), bytes: 200, binding: b0))).handle(a, from: client, nowNs: 6_000_000_000).0 == .consumed)
    // A resend of an amount already on its way to the worker is stale, never a second check.
    #expect(Datagram(bytes(7, fwds[0], receiptBody(node: fp(1), bytes: 200, binding: b0))).handle(a, from: client, nowNs: 6_000_000_000).0 == .drop(.staleReceipt))
    // An answer that does not move the circuit (an invalid receipt) costs it the reserve.
    let last = answered[answered.count - 1]
    a.credited(half: last.0, localId: last.1, bound: true, receipted: 100, limit: 1 << 20)
    #expect(Datagram(bytes(7, fwds[0], receiptBody(node: fp(1), bytes: 300, binding: b0))).handle(a, from: client, nowNs: 6_000_000_000).0 == .drop(.overBudget))
  }

  @Test func receiptsForTheNextNodeAreForwardedAndChargedLikeData() {
    let a = node(nodeA)
    a.fingerprint = fp(1)
    a.creditWindow = 1 << 20
    a.unboundAllowance = 1000
    a.onReceipt = { _, _, _, _, _ in Issue.record("consumed a receipt for another node"); return true }
    let (_, o1) = Datagram(bytes(2, 0xC1, hopBytes(1, nodeB))).handle(a, from: client)
    _ = Datagram(bytes(3, u32(o1, 4), [0, 0, 0, 0x42])).handle(a, from: nodeB)   // CREATED from B: B's id 0x42
    var forwardId: UInt32 = 0
    a.circuits.forEachInUse { _, h in if h.isForward { forwardId = h.localId } }
    let body = receiptBody(node: fp(2), bytes: 500)
    let (v, out) = Datagram(bytes(7, forwardId, body)).handle(a, from: client)
    #expect(v == .send(to: nodeB, offset: 0, length: 8 + body.count))
    #expect(u32(out, 4) == 0x42 && Array(out[8...]) == body)
    // Charged like DATA: counted as relayed, and refused past the circuit's limit.
    #expect(a.traffic.forwardedBytes == UInt64(body.count))
    var n = 1
    while Datagram(bytes(7, forwardId, body)).handle(a, from: client).0 != .drop(.unpaid) { n += 1; if n > 100 { break } }
    #expect(n == 1000 / body.count && a.traffic.forwardedBytes == UInt64(n * body.count))
  }

  @Test func bindFollowsCreatedAndIsForwardedBackAndChargedLikeData() {
    // The exit (node B): CREATED is emitted first, then the verdict is its BIND.
    let b = node(nodeB, exits: [service])
    b.fingerprint = fp(2)
    b.creditWindow = 1 << 20
    var emitted: [([UInt8], Endpoint)] = []
    b.emit = { f, to in emitted.append((Array(f), to)) }
    let (v, out) = Datagram(bytes(2, 0x77, hopBytes(2, service))).handle(b, from: nodeA)
    #expect(emitted.count == 1 && emitted[0].0[1] == FrameType.created.rawValue && emitted[0].1 == nodeA)
    #expect(v == .send(to: nodeA, offset: 0, length: 8 + Wire.bindBody))
    #expect(out[1] == FrameType.bind.rawValue && u32(out, 4) == 0x77)
    #expect(Array(out[8..<40]) == fp(2).bytes)
    let fwdB = u32(emitted[0].0, 8)
    #expect(Binding(Array(out[40..<56])) == binding(b, fwdB) && b.traffic.binds == 1)

    // The middle node (A) forwards B's CREATED with its own BIND after it, then B's BIND
    // back to the client, charged like DATA.
    let a = node(nodeA)
    a.fingerprint = fp(1)
    a.creditWindow = 1 << 20
    var fromA: [([UInt8], Endpoint)] = []
    a.emit = { f, to in fromA.append((Array(f), to)) }
    let (_, o1) = Datagram(bytes(2, 0xC1, hopBytes(1, nodeB))).handle(a, from: client)
    let (v2, bindA) = Datagram(bytes(3, u32(o1, 4), [0, 0, 0, 0x42])).handle(a, from: nodeB)
    #expect(fromA.count == 1 && fromA[0].0[1] == FrameType.created.rawValue && u32(fromA[0].0, 4) == 0xC1)
    #expect(v2 == .send(to: client, offset: 0, length: 8 + Wire.bindBody) && bindA[1] == FrameType.bind.rawValue)
    let bindBody = Array(out[8...])
    let (v3, fwdBind) = Datagram(bytes(9, u32(o1, 4), bindBody)).handle(a, from: nodeB)
    #expect(v3 == .send(to: client, offset: 0, length: 8 + Wire.bindBody) && u32(fwdBind, 4) == 0xC1)
    #expect(a.traffic.forwardedBytes == UInt64(Wire.bindBody))
    // A BIND on the forward direction, or of another size, is dropped.
    #expect(Datagram(bytes(9, u32(fromA[0].0, 8), bindBody)).handle(a, from: client).0 == .drop(.unexpectedReply))
    #expect(Datagram(bytes(9, u32(o1, 4), bindBody + [0])).handle(a, from: nodeB).0 == .drop(.badBody))
  }

  @Test func circuitsNoReceiptBindsAreClosedAtTheBindTimeout() {
    let a = node(nodeA, exits: [service])
    a.fingerprint = fp(1)
    a.creditWindow = 1 << 20
    a.bindTimeout = 5
    var emitted: [([UInt8], Endpoint)] = []
    a.emit = { f, to in emitted.append((Array(f), to)) }
    a.onReceipt = { _, _, _, _, _ in true }
    let (_, _) = Datagram(bytes(2, 0xC1, hopBytes(2, service))).handle(a, from: client, nowNs: 10_000_000_000)
    let (_, _) = Datagram(bytes(2, 0xC2, hopBytes(2, service))).handle(a, from: client, nowNs: 10_000_000_000)
    let fwd2 = u32(emitted[1].0, 8)
    // Circuit 2 is bound in time.
    a.circuits.forEachInUse { i, h in
      if h.isForward && h.localId == fwd2 { a.credited(half: Int32(i), localId: h.localId, bound: true, receipted: 0, limit: 1000) }
    }
    emitted.removeAll()
    a.tick(nowNs: 14_000_000_000, nowEpoch: 1_700_000_000)
    #expect(a.circuits.circuitsInUse == 2 && emitted.isEmpty)
    a.tick(nowNs: 15_000_000_000, nowEpoch: 1_700_000_000)
    #expect(a.circuits.circuitsInUse == 1 && a.traffic.unbound == 1)
    #expect(emitted.count == 1 && emitted[0].1 == client && emitted[0].0[1] == FrameType.destroy.rawValue)
    #expect(u32(emitted[0].0, 4) == 0xC1 && emitted[0].0[8] == DestroyReason.unbound.rawValue)
  }

  /// A source that opens circuits and never binds them gets `unbound_per_source` unbound
  /// allowances at once, then one per refill period: rotating circuits does not multiply
  /// the free bytes. A circuit that binds gives its allowance back.
  @Test func aSourceHoldsFewUnboundAllowances() {
    var settings = SourceLimitSettings()
    settings.unboundPerSource = 3
    settings.unboundRefillSeconds = 5
    let a = node(nodeA, exits: [service], circuits: 64, sources: settings)
    a.fingerprint = fp(1)
    a.creditWindow = 1 << 20
    a.bindTimeout = 5
    var emitted: [([UInt8], Endpoint)] = []
    a.emit = { f, to in emitted.append((Array(f), to)) }
    a.onReceipt = { _, _, _, _, _ in true }
    let other = Endpoint(ip: 0x7f00_0063, port: 4000)
    func open(_ id: UInt32, from: Endpoint = client, at s: UInt64) -> UInt64 {
      emitted.removeAll()
      let (_, _) = Datagram(bytes(2, id, hopBytes(2, service))).handle(a, from: from, nowNs: s * 1_000_000_000)
      var limit: UInt64 = .max
      let local = u32(emitted[0].0, 8)
      a.circuits.forEachInUse { _, h in if h.isForward && h.localId == local { limit = h.creditLimit } }
      return limit
    }
    let u = a.unboundAllowance
    #expect(open(1, at: 10) == u && open(2, at: 10) == u && open(3, at: 10) == u)
    #expect(open(4, at: 10) == 0 && open(5, at: 11) == 0)  // none left: nothing until bound
    #expect(a.sources.refusedUnbound == 2)
    #expect(open(6, from: other, at: 11) == u)  // another source has its own
    #expect(open(7, at: 15) == u)  // one came back after 5 s
    #expect(open(8, at: 15) == 0)
    // A circuit that binds gives its allowance back.
    var bound = false
    a.circuits.forEachInUse { i, h in
      if !bound && h.isForward && h.inEndpoint == client && h.unboundCounted {
        bound = true
        a.credited(half: Int32(i), localId: h.localId, bound: true, receipted: 0, limit: 1000)
      }
    }
    #expect(bound && open(9, at: 15) == u)
    #expect(open(10, at: 15) == 0 && a.sources.refusedUnbound == 4)
    // Without a limit (0) every circuit gets the allowance.
    a.sources.settings.unboundPerSource = 0
    #expect(open(11, at: 15) == u)
  }
}

/// A stand-in cipher: "seals" by XOR with 0x5A, counter and tag as markers; keys are
/// accepted when their first byte is 4.
final class XorCipher: ExitCipher {
  var installed: [Int] = []
  var removed: [Int] = []
  func install(half: Int, keys: UnsafeRawPointer) -> Bool {
    if keys.load(as: UInt8.self) != 4 { return false }
    installed.append(half)
    return true
  }
  func open(half: Int, body: UnsafeMutableRawPointer, length: Int) -> (offset: Int, length: Int)? {
    if !installed.contains(half) { return nil }
    if length < Wire.sealOverhead || body.load(fromByteOffset: length - 1, as: UInt8.self) != 0x7A { return nil }
    for i in 8..<(length - 16) { body.storeBytes(of: body.load(fromByteOffset: i, as: UInt8.self) ^ 0x5A, toByteOffset: i, as: UInt8.self) }
    return (8, length - Wire.sealOverhead)
  }
  func seal(half: Int, payload: UnsafeMutableRawPointer, length: Int) -> Int {
    if !installed.contains(half) { return -1 }
    for i in 0..<length { payload.storeBytes(of: payload.load(fromByteOffset: i, as: UInt8.self) ^ 0x5A, toByteOffset: i, as: UInt8.self) }
    (payload - 8).initializeMemory(as: UInt8.self, repeating: 1, count: 8)
    (payload + length).initializeMemory(as: UInt8.self, repeating: 0x7A, count: 16)
    return length + Wire.sealOverhead
  }
  func remove(half: Int) { removed.append(half); installed.removeAll { $0 == half } }
}

/// What a forwarder asked the worker for: (forward half, local id, client point).
final class KeyRequests {
  var asked: [(half: Int32, localId: UInt32, point: [UInt8])] = []
  var accept = true
  func attach<R>(_ f: Forwarder<R>) {
    f.onExitKeys = { [unowned self] half, localId, point in
      if !accept { return false }
      asked.append((half, localId, Array(point)))
      return true
    }
  }
  /// The worker's answer: keys (first byte 4: good) and the CREATED tail (point 0xEE, nonce `nonce`).
  func answer<R>(_ f: Forwarder<R>, _ k: Int, keyByte: UInt8 = 4, nonce: UInt8 = 0xAB) -> (Verdict, [UInt8]) {
    let d = Datagram([])
    let keys = [keyByte] + [UInt8](repeating: 0, count: 63)
    let tail = [UInt8](repeating: 0xEE, count: Wire.pointSize) + [UInt8](repeating: nonce, count: Wire.exitNonceSize)
    return d.storage.withUnsafeMutableBytes { raw in
      let p = raw.baseAddress! + Defaults.headroom
      let v = keys.withUnsafeBytes { kb in
        tail.withUnsafeBytes { t in f.exitKeysReady(p, half: asked[k].half, localId: asked[k].localId, keys: kb.baseAddress!, created: t) }
      }
      if case .send(_, let off, let len) = v { return (v, Array(UnsafeRawBufferPointer(start: p + off, count: len))) }
      return (v, [])
    }
  }
}

@Suite struct SealedExitTests {
  @Test func sealedCircuitThroughAMiddleNode() {
    let a = node(nodeA)
    let b = node(nodeB, exits: [service])
    let cipher = XorCipher()
    b.exitCipher = cipher
    let worker = KeyRequests()
    worker.attach(b)
    let point: [UInt8] = [4] + [UInt8](repeating: 9, count: 64)
    var sealedHop = hopBytes(3, service)
    sealedHop += point
    // client → A (extend to B) → B (sealed exit)
    let (_, o1) = Datagram(bytes(2, 0xC1, hopBytes(1, nodeB) + sealedHop)).handle(a, from: client)
    #expect(o1.count == 8 + 8 + 65)
    // B makes the circuit pending and hands the key agreement to the worker: nothing sent yet.
    #expect(Datagram(o1).handle(b, from: nodeA).0 == .consumed)
    #expect(worker.asked.count == 1 && worker.asked[0].point == point)
    // DATA before the keys is dropped.
    // The worker's answer: CREATED with the exit's point and its fresh nonce.
    let (v2, o2) = worker.answer(b, 0)
    guard case .send(let to2, _, let n2) = v2 else { Issue.record("B did not send CREATED"); return }
    #expect(to2 == nodeA && n2 == 8 + Wire.sealedCreatedBody)
    #expect(Array(o2[12..<77]) == [UInt8](repeating: 0xEE, count: 65) && Array(o2[77...]) == [UInt8](repeating: 0xAB, count: 32))
    #expect(cipher.installed == [Int(worker.asked[0].half)])
    // A passes the exit's point and nonce back to the client untouched.
    let (v3, o3) = Datagram(o2).handle(a, from: nodeB)
    #expect(v3 == .send(to: client, offset: 0, length: 8 + Wire.sealedCreatedBody))
    #expect(Array(o3[12...]) == Array(o2[12...]))
    let fwd = u32(o3, 8)
    // Sealed DATA: counter, "ciphertext" (hello ^ 0x5A), tag; A forwards it as is, B opens it.
    let ct = Array("hello".utf8).map { $0 ^ 0x5A }
    let sealedBody = [UInt8](repeating: 1, count: 8) + ct + [UInt8](repeating: 0x7A, count: 16)
    let (_, o4) = Datagram(bytes(1, fwd, sealedBody)).handle(a, from: client)
    #expect(Array(o4[8...]) == sealedBody)   // the middle node carries ciphertext only
    let (v5, o5) = Datagram(o4).handle(b, from: nodeA)
    #expect(v5 == .sendExit(fd: (b.exitSockets as! FakeExitSockets).lastFd, offset: 16, length: 5))
    #expect(o5 == Array("hello".utf8))
    // The reply on the circuit's own socket is sealed at B: header, counter, ciphertext, tag.
    let (v6, o6) = Datagram(Array("world".utf8)).reply(b)
    #expect(v6 == .send(to: nodeA, offset: -16, length: 8 + 5 + 24))
    #expect(Array(o6[16..<21]) == Array("world".utf8).map { $0 ^ 0x5A })
    #expect(b.traffic.forwardedBytes == UInt64(sealedBody.count + 5 + 24))
    // A body that does not open is dropped and counted.
    let bad = [UInt8](repeating: 1, count: 8) + ct + [UInt8](repeating: 0, count: 16)
    let (_, o7) = Datagram(bytes(1, fwd, bad)).handle(a, from: client)
    #expect(Datagram(o7).handle(b, from: nodeA).0 == .drop(.badSeal))
  }

  @Test func everySealedCreateIsItsOwnCircuitWithItsOwnSocketAndKeys() {
    // A replayed CREATE (same bytes) makes a second circuit: its own socket, its own keys
    // request; the first circuit's replies and keys are untouched.
    let b = node(nodeB, exits: [service])
    let cipher = XorCipher()
    b.exitCipher = cipher
    let worker = KeyRequests()
    worker.attach(b)
    let create = bytes(2, 0xC1, hopBytes(3, service) + [4] + [UInt8](repeating: 9, count: 64))
    _ = Datagram(create).handle(b, from: client)
    _ = worker.answer(b, 0, nonce: 1)
    _ = Datagram(create).handle(b, from: nodeA)  // the replay, from someone else
    _ = worker.answer(b, 1, nonce: 2)
    let sockets = b.exitSockets as! FakeExitSockets
    #expect(sockets.open.count == 2 && sockets.open[0].fd != sockets.open[1].fd)
    #expect(cipher.installed.count == 2 && cipher.installed[0] != cipher.installed[1])
    // A reply on the first socket goes to the first circuit's client only.
    let d = Datagram(Array("mine".utf8))
    let v = d.storage.withUnsafeMutableBytes { raw in
      b.exitReply(raw.baseAddress! + Defaults.headroom, length: 4, half: sockets.open[0].half, fd: sockets.open[0].fd, nowNs: 1_000_000_000)
    }
    guard case .send(let to, _, _) = v else { Issue.record("reply dropped"); return }
    #expect(to == client)
    // A reply claimed for the first circuit on the second socket is dropped.
    let v2 = d.storage.withUnsafeMutableBytes { raw in
      b.exitReply(raw.baseAddress! + Defaults.headroom, length: 4, half: sockets.open[0].half, fd: sockets.open[1].fd, nowNs: 1_000_000_000)
    }
    #expect(v2 == .drop(.unknownCircuit))
  }

  @Test func sealedExitRefusedWithoutCipherBadPointOrWorker() {
    let b = node(nodeB, exits: [service])
    var hop = hopBytes(3, service)
    hop += [UInt8](repeating: 9, count: 65)
    let (_, o) = Datagram(bytes(2, 0x77, hop)).handle(b, from: nodeA)   // no cipher: refused
    #expect(o[1] == 8 && o[8] == 3)
    b.exitCipher = XorCipher()
    let worker = KeyRequests()
    worker.attach(b)
    // The worker's keys do not install (a point that is not on the curve): REFUSED 3, freed.
    #expect(Datagram(bytes(2, 0x78, hop)).handle(b, from: nodeA).0 == .consumed)
    let (v, o2) = worker.answer(b, 0, keyByte: 9)
    #expect(v == .send(to: nodeA, offset: 0, length: 9) && o2[1] == 8 && o2[8] == 3 && u32(o2, 4) == 0x78)
    #expect(b.circuits.circuitsInUse == 0 && b.exitSocketsOpen == 0)
    #expect(Datagram(bytes(2, 0x79, hopBytes(3, service) + [4, 1])).handle(b, from: nodeA).1[8] == 6)  // short point: malformed
    // A full worker queue: REFUSED 9, nothing kept.
    worker.accept = false
    let (_, o3) = Datagram(bytes(2, 0x7A, hop)).handle(b, from: nodeA)
    #expect(o3[8] == 9 && b.circuits.circuitsInUse == 0 && b.drops[.workerBusy] == 1)
  }

  @Test func keyAgreementsAreBudgetedPerSource() {
    let b = node(nodeB, exits: [service], circuits: 64, sources: SourceLimitSettings(expensivePerSource: 3, keyAgreementsPerSecond: 5))
    b.exitCipher = XorCipher()
    let worker = KeyRequests()
    worker.attach(b)
    let hop = hopBytes(3, service) + [4] + [UInt8](repeating: 9, count: 64)
    for i in 0..<10 { _ = Datagram(bytes(2, UInt32(0x100 + i), hop)).handle(b, from: client) }
    #expect(worker.asked.count == 3 && b.drops[.overBudget] == 7)   // the source's 3 per second
    let other = Endpoint(ip: 0x0A00_0002, port: 7)
    for i in 0..<10 { _ = Datagram(bytes(2, UInt32(0x200 + i), hop)).handle(b, from: other) }
    #expect(worker.asked.count == 5)                                  // the node's 5 per second
    // The next second, budgets are back.
    _ = Datagram(bytes(2, 0x300, hop)).handle(b, from: other, nowNs: 2_000_000_000)
    #expect(worker.asked.count == 6)
  }
}

@Suite struct SourceLimitTests {
  @Test func oneSourceCannotFillTheTable() {
    let a = node(nodeA, circuits: 64, sources: SourceLimitSettings(circuitsPerSource: 8, pendingPerSource: 4))
    let stranger = Endpoint(ip: 0x0A00_0001, port: 1)
    for i in 0..<100 { _ = Datagram(bytes(2, UInt32(1 + i), hopBytes(1, nodeB))).handle(a, from: Endpoint(ip: stranger.ip, port: UInt16(1000 + i))) }
    #expect(a.circuits.circuitsInUse == 4 && a.drops[.sourceLimit] == 96)   // 4 pending at most, any port
    // Another source still builds circuits.
    let (v, _) = Datagram(bytes(2, 0x500, hopBytes(1, nodeB))).handle(a, from: client)
    guard case .send(let to, _, _) = v else { Issue.record("second source refused"); return }
    #expect(to == nodeB)
    // Configured peers are exempt.
    a.sources.exempt = [stranger.sourceKey]
    _ = Datagram(bytes(2, 0x600, hopBytes(1, nodeB))).handle(a, from: stranger)
    #expect(a.circuits.circuitsInUse == 6)
  }

  @Test func oneSourceCannotTakeEveryExitSocket() {
    let a = node(nodeA, exits: [service], circuits: 64, sources: SourceLimitSettings(exitsPerSource: 3))
    let stranger = Endpoint(ip: 0x0A00_0001, port: 1)
    for i in 0..<10 { _ = Datagram(bytes(2, UInt32(1 + i), hopBytes(2, service))).handle(a, from: stranger) }
    #expect(a.exitSocketsOpen == 3 && a.drops[.sourceLimit] == 7)
    let (v, _) = Datagram(bytes(2, 0x99, hopBytes(2, service))).handle(a, from: client)
    #expect(v == .send(to: client, offset: 0, length: 12) && a.exitSocketsOpen == 4)
  }

  @Test func sharesComeBackWhenCircuitsEnd() {
    let a = node(nodeA, exits: [service], circuits: 64, sources: SourceLimitSettings(circuitsPerSource: 2))
    for i in 0..<2 { _ = Datagram(bytes(2, UInt32(1 + i), hopBytes(2, service))).handle(a, from: client) }
    #expect(Datagram(bytes(2, 9, hopBytes(2, service))).handle(a, from: client).1[8] == 1)
    a.tick(nowNs: 1_000_000_000 + 200_000_000_000, nowEpoch: 1_700_000_200)  // idle expiry
    #expect(a.circuits.circuitsInUse == 0 && a.exitSocketsOpen == 0)
    let (v, _) = Datagram(bytes(2, 10, hopBytes(2, service))).handle(a, from: client, nowNs: 201_000_000_000)
    #expect(v == .send(to: client, offset: 0, length: 12))
  }

  @Test func oldVersionCreateGetsAVersionRefusal() {
    let a = node(nodeA)
    var create = bytes(2, 0x44, hopBytes(1, nodeB))
    create[0] = Wire.oldVersionByte
    let (v, o) = Datagram(create).handle(a, from: client)
    #expect(v == .send(to: client, offset: 0, length: 9))
    #expect(o[0] == Wire.versionByte && o[1] == 8 && o[8] == RefuseReason.version.rawValue && u32(o, 4) == 0x44)
    var data = bytes(1, 0x44, [1, 2, 3])
    data[0] = Wire.oldVersionByte
    #expect(Datagram(data).handle(a, from: client).0 == .drop(.oldVersion))
    #expect(a.drops[.oldVersion] == 2)
  }
}
