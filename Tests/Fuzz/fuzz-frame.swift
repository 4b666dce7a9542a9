// Fuzz target: Frame.decode and Forwarder.handle on a stream of datagrams.
//
// Input: a sequence of datagrams, each `[source | time step] [length u16] [bytes]`.
// The low 2 bits of the first byte pick the sender: a client, the next node, the exit side,
// a stranger; the other 6 bits advance the clock by that many × 50 ms. "The exit side" is,
// in turn: the worker finishing a sealed exit's key agreement (keys ready, or failed), a
// reply on the newest exit circuit's own socket, or a datagram from the exit destination
// at the node's port. A fresh node (8 circuits, one exit, a rate cap, a quota, a credit
// window; fake exit sockets and a fake exit cipher that writes its counter and tag where
// the real one would) handles them in order, as the relay loop would: each datagram in a
// pool-sized buffer with headroom. Checked: every send verdict stays inside the buffer,
// and decode agrees with the datagram's length.
import WispCore

let local = Endpoint(ip: 0x0A00_0001, port: 7400)
let senders = [
  Endpoint(ip: 0x0A00_0002, port: 5000),   // a client
  Endpoint(ip: 0x0A00_0003, port: 7400),   // the next node
  Endpoint(ip: 0x0A00_0009, port: 9000),   // the exit destination
  Endpoint(ip: 0xC000_0201, port: 4444),   // a stranger
]
/// One pool buffer, exactly its size (AddressSanitizer sees a write past it).
nonisolated(unsafe) let buffer = UnsafeMutableRawPointer.allocate(byteCount: Defaults.bufferSize, alignment: 16)

/// Exit sockets: descriptors counted up, the newest open one remembered.
final class FakeExitSockets: ExitSockets {
  var next: Int32 = 3
  var open: [(fd: Int32, half: Int32)] = []
  func openExit(to: Endpoint, half: Int32) -> Int32 {
    if open.count >= 6 { return -1 }
    next += 1
    open.append((next, half))
    return next
  }
  func closeExit(_ fd: Int32) { open.removeAll { $0.fd == fd } }
}

/// A stand-in for the AEAD: "opens" anything of at least the overhead, and writes a
/// counter and a tag around what it seals, as the real cipher does.
final class FakeExitCipher: ExitCipher {
  var keyed = Set<Int>()
  func install(half: Int, keys: UnsafeRawPointer) -> Bool { keyed.insert(half); return half % 5 != 4 }
  func open(half: Int, body: UnsafeMutableRawPointer, length: Int) -> (offset: Int, length: Int)? {
    guard keyed.contains(half), length >= Wire.sealOverhead else { return nil }
    return (8, length - Wire.sealOverhead)
  }
  func seal(half: Int, payload: UnsafeMutableRawPointer, length: Int) -> Int {
    guard keyed.contains(half) else { return -1 }
    (payload - 8).initializeMemory(as: UInt8.self, repeating: 0xC0, count: 8)
    (payload + length).initializeMemory(as: UInt8.self, repeating: 0x7A, count: 16)
    return length + Wire.sealOverhead
  }
  func remove(half: Int) { keyed.remove(half) }
}

func fuzzOne(_ input: UnsafeRawBufferPointer) {
  var r = FuzzReader(input)
  var limits = Limits()
  limits.circuitMbit = 1
  limits.quotaBytes = 100_000
  let node = Forwarder(circuits: 8, local: local, limits: limits, allowedExits: [senders[2]],
                       random: FuzzRandom(), nowEpoch: 1_700_000_000)
  let sockets = FakeExitSockets()
  node.exitSockets = sockets
  node.exitCipher = FakeExitCipher()
  node.creditWindow = 4096
  node.fingerprint = fuzzNode
  var receipts = 0
  node.onReceipt = { _, _, _, _, _ in receipts += 1; return receipts % 2 == 0 }
  node.emit = { frame, _ in invariant(frame.count >= Wire.headerSize && frame.count <= Wire.maxDatagram, "emitted \(frame.count) bytes") }
  var keyJobs: [(half: Int32, localId: UInt32)] = []
  node.onExitKeys = { half, localId, point in
    invariant(point.count == Wire.pointSize, "a client point of \(point.count) bytes")
    if keyJobs.count >= 4 { return false }
    keyJobs.append((half, localId))
    return true
  }
  var nowNs: UInt64 = 1_000_000_000
  var datagrams = 0
  while !r.atEnd && datagrams < 64 {
    datagrams += 1
    let head = r.u8()
    let sender = Int(head & 3)
    nowNs &+= UInt64(head >> 2) * 50_000_000
    let length = min(Int(r.u16()), Wire.maxDatagram)
    let bytes = r.take(length)
    let p = buffer + Defaults.headroom
    // Stale bytes from the last datagram must not matter: fill what is past the input.
    p.initializeMemory(as: UInt8.self, repeating: 0xEE, count: Defaults.bufferSize - Defaults.headroom)
    if let base = bytes.baseAddress { p.copyMemory(from: base, byteCount: bytes.count) }
    let verdict: Verdict
    if sender == 2 && !keyJobs.isEmpty && length % 2 == 0 {
      let job = keyJobs.removeFirst()
      if length % 4 == 0 {
        let keys = [UInt8](repeating: 0x4B, count: 64)
        let created = [UInt8](repeating: 0x43, count: Wire.sealedCreatedBody - 4)
        verdict = keys.withUnsafeBytes { k in
          created.withUnsafeBytes { node.exitKeysReady(p, half: job.half, localId: job.localId, keys: k.baseAddress!, created: $0) }
        }
      } else {
        verdict = node.exitKeysFailed(p, half: job.half, localId: job.localId)
      }
    } else if sender == 2, let socket = sockets.open.last, length % 2 == 1 {
      verdict = node.exitReply(p, length: bytes.count, half: socket.half, fd: socket.fd, nowNs: nowNs)
    } else {
      if case .success(let h) = Frame.decode(p, length: bytes.count) {
        invariant(h.bodyLength >= 0 && Wire.headerSize + h.bodyLength <= bytes.count, "decode: body \(h.bodyLength) of \(bytes.count)")
      }
      verdict = node.handle(p, length: bytes.count, from: senders[sender], nowNs: nowNs)
    }
    switch verdict {
    case .send(_, let offset, let length), .sendExit(_, let offset, let length):
      invariant(offset >= -Defaults.headroom && length >= 0 && length <= Wire.maxDatagram
                && Defaults.headroom + offset + length <= Defaults.bufferSize,
                "send offset \(offset) length \(length) outside the buffer")
    case .drop, .consumed: break
    }
    if datagrams % 8 == 0 {
      _ = node.creditState()
      node.credited(half: Int32(head & 15), localId: UInt32(head), bound: head & 1 == 0, receipted: UInt64(length),
                    limit: UInt64(length) << 2)
      node.setLimit(half: Int32(head & 7), localId: UInt32(head), limit: UInt64(head))
      node.tick(nowNs: nowNs, nowEpoch: 1_700_000_000 + Int64(nowNs / 1_000_000_000))
    }
  }
  invariant(node.circuits.circuitsInUse <= 8, "more circuits than the table holds")
}

// MARK: seeds

func datagram(_ from: UInt8, _ bytes: [UInt8]) -> [UInt8] {
  [from, UInt8(bytes.count >> 8), UInt8(bytes.count & 255)] + bytes
}
func frame(_ type: FrameType, circuit: UInt32, _ body: [UInt8]) -> [UInt8] {
  var b = [UInt8](repeating: 0, count: Wire.headerSize + body.count)
  b.withUnsafeMutableBytes { p in
    _ = Frame.encodeHeader(p.baseAddress!, type: type, bodyLength: body.count, circuit: circuit)
  }
  for (i, x) in body.enumerated() { b[Wire.headerSize + i] = x }
  return b
}
func hop(_ kind: HopKind, _ e: Endpoint) -> [UInt8] {
  var b = [UInt8](repeating: 0, count: Wire.hopSize)
  b.withUnsafeMutableBytes { _ = Frame.encodeHop($0.baseAddress!, kind: kind, to: e) }
  return b
}

func fuzzSeeds() -> [[UInt8]] {
  let next = senders[1], exit = senders[2]
  return [
    // CREATE to extend, then DATA, DESTROY.
    datagram(0, frame(.create, circuit: 0xC1, hop(.extend, next) + hop(.exit, exit)))
      + datagram(1, frame(.created, circuit: 1, [0, 0, 0, 9]))
      + datagram(4, frame(.data, circuit: 2, Array("hello".utf8)))
      + datagram(0, frame(.destroy, circuit: 2, [0])),
    // An exit circuit, DATA out, a reply from the destination.
    datagram(0, frame(.create, circuit: 0xC2, hop(.exit, exit)))
      + datagram(0, frame(.data, circuit: 1, [UInt8](repeating: 7, count: 100)))
      + datagram(2, Array("reply".utf8)),
    datagram(3, frame(.create, circuit: 6, hop(.exit, exit))) + datagram(2, Array("from the destination".utf8)),
    datagram(0, frame(.ping, circuit: 0, [1, 2, 3, 4, 5, 6, 7, 8])),
    datagram(1, frame(.refused, circuit: 1, [3])),
    datagram(0, frame(.receipt, circuit: 1, fuzzReceipt(9, serial: 1, bytes: 4096).encoded)),
    // A sealed exit: CREATE, the worker's keys, sealed DATA out, a reply on its socket.
    datagram(0, frame(.create, circuit: 5, hop(.sealedExit, exit) + [4] + [UInt8](repeating: 1, count: Wire.pointSize - 1)))
      + datagram(2, [UInt8](repeating: 0, count: 4))
      + datagram(0, frame(.data, circuit: 1, [UInt8](repeating: 9, count: 40)))
      + datagram(2, Array("sealed reply".utf8) + [1]),
    datagram(3, [0x16, 0xFE, 0xFD, 0, 0]),
  ]
}
