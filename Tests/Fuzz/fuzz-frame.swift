// Fuzz target: Frame.decode and Forwarder.handle on a stream of datagrams.
//
// Input: a sequence of datagrams, each `[source | time step] [length u16] [bytes]`.
// The low 2 bits of the first byte pick the sender (a client, the next node, the exit
// destination, a stranger); the other 6 bits advance the clock by that many × 50 ms.
// A fresh node (8 circuits, one exit, a rate cap) handles them in order, as the relay
// loop would: each datagram in a pool-sized buffer with headroom. Checked: every send
// verdict stays inside the buffer, and decode agrees with the datagram's length.
import WispCore

let local = Endpoint(ip: 0x0A00_0001, port: 7400)
let senders = [
  Endpoint(ip: 0x0A00_0002, port: 5000),   // a client
  Endpoint(ip: 0x0A00_0003, port: 7400),   // the next node
  Endpoint(ip: 0x0A00_0009, port: 9000),   // the exit destination
  Endpoint(ip: 0xC000_0201, port: 4444),   // a stranger
]
nonisolated(unsafe) let buffer = UnsafeMutableRawPointer.allocate(byteCount: Defaults.bufferSize, alignment: 16)

func fuzzOne(_ input: UnsafeRawBufferPointer) {
  var r = FuzzReader(input)
  var limits = Limits()
  limits.circuitMbit = 1
  limits.quotaBytes = 100_000
  let node = Forwarder(circuits: 8, local: local, limits: limits, allowedExits: [senders[2]],
                       random: FuzzRandom(), nowEpoch: 1_700_000_000)
  node.creditWindow = 4096
  node.fingerprint = fuzzNode
  var receipts = 0
  node.onReceipt = { _, _, _, _ in receipts += 1; return receipts % 2 == 0 }
  var nowNs: UInt64 = 1_000_000_000
  var datagrams = 0
  while !r.atEnd && datagrams < 64 {
    datagrams += 1
    let head = r.u8()
    let from = senders[Int(head & 3)]
    nowNs &+= UInt64(head >> 2) * 50_000_000
    let length = min(Int(r.u16()), Wire.maxDatagram)
    let bytes = r.take(length)
    let p = buffer + Defaults.headroom
    // Stale bytes from the last datagram must not matter: fill what is past the input.
    p.initializeMemory(as: UInt8.self, repeating: 0xEE, count: Defaults.bufferSize - Defaults.headroom)
    if let base = bytes.baseAddress { p.copyMemory(from: base, byteCount: bytes.count) }
    if case .success(let h) = Frame.decode(p, length: bytes.count) {
      invariant(h.bodyLength >= 0 && Wire.headerSize + h.bodyLength <= bytes.count, "decode: body \(h.bodyLength) of \(bytes.count)")
    }
    switch node.handle(p, length: bytes.count, from: from, nowNs: nowNs) {
    case .send(_, let offset, let length):
      invariant(offset >= -Defaults.headroom && length >= 0 && length <= Wire.maxDatagram + Wire.headerSize
                && Defaults.headroom + offset + length <= Defaults.bufferSize,
                "send offset \(offset) length \(length) outside the buffer")
    case .drop, .consumed: break
    }
    if datagrams % 8 == 0 {
      _ = node.creditState()
      node.credited(half: 0, localId: UInt32(head), serial: UInt64(head), receipted: UInt64(length))
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
    datagram(0, frame(.ping, circuit: 0, [1, 2, 3, 4, 5, 6, 7, 8])),
    datagram(1, frame(.refused, circuit: 1, [3])),
    datagram(0, frame(.receipt, circuit: 1, fuzzReceipt(9, serial: 1, bytes: 4096).encoded)),
    datagram(3, frame(.create, circuit: 5, hop(.sealedExit, exit) + [UInt8](repeating: 4, count: Wire.pointSize))),
    datagram(3, [0x16, 0xFE, 0xFD, 0, 0]),
  ]
}
