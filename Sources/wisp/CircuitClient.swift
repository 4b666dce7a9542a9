// A client of the mesh: builds a circuit through relays to an exit destination and
// sends numbered, timestamped messages over it, measuring RTT and loss from the echoes.
// Used by `wisp demo`. Runs on host and device.
import WispCore
import WispOS
import WispTLS

final class CircuitClient {
  let socket: UDPSocket
  var first = Endpoint(ip: 0, port: 0)
  var forwardId: UInt32 = 0
  var backId: UInt32 = 0
  let out = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
  let inbuf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
  var random = KernelRandom()
  // Statistics.
  var sent: UInt64 = 0
  var received: UInt64 = 0
  var bytesReceived: UInt64 = 0
  var highestSeen: UInt64 = 0
  /// Round-trip times in microseconds, a ring of the latest samples.
  var rtts = [UInt32](repeating: 0, count: 4096)
  var rttCount = 0
  // Receipts: the client's key, each hop's fingerprint, the circuit's serial.
  var signer: P256Signer? = nil
  var hops: [WispCore.Fingerprint] = []
  var serial: UInt64 = 0
  var receiptedUpTo: UInt64 = 0
  var receiptsSent: UInt64 = 0
  /// Bytes of echo between receipts (well inside any node's credit window).
  var receiptEvery: UInt64 = 512 * 1024

  init() throws(Errno) {
    socket = try UDPSocket(bind: Endpoint(ip: 0x7F00_0001, port: 0), bufferBytes: 4 << 20)
  }

  deinit {
    out.deallocate()
    inbuf.deallocate()
    socket.close()
  }

  enum BuildError: Error { case refused(UInt8), noAnswer }

  /// Builds a circuit through `relays` (1–3) ending at `exit`; retries on silence.
  func build(relays: [Endpoint], exit: Endpoint) throws(BuildError) {
    precondition(!relays.isEmpty && relays.count <= Wire.maxHops, "1-3 relays")
    first = relays[0]
    var bodyLen = 0
    let body = out + Wire.headerSize
    for r in relays.dropFirst() { bodyLen += Frame.encodeHop(body + bodyLen, kind: .extend, to: r) }
    bodyLen += Frame.encodeHop(body + bodyLen, kind: .exit, to: exit)
    var my = random.next32() | 1
    if my == 0 { my = 1 }
    let n = Frame.encodeHeader(out, type: .create, bodyLength: bodyLen, circuit: my)
    for _ in 0..<5 {
      socket.send(out, n, to: first)
      let deadline = Clock.nowNs() + 1_000_000_000
      while Clock.nowNs() < deadline {
        if !socket.wait(ms: 100) { continue }
        while let (len, _) = socket.receive(into: inbuf, capacity: 2048) {
          guard case .success(let h) = Frame.decode(inbuf, length: len), h.circuit == my else { continue }
          if h.type == .created {
            backId = my
            forwardId = Frame.load32(inbuf, Wire.headerSize)
            return
          }
          if h.type == .refused { throw .refused(inbuf.load(fromByteOffset: Wire.headerSize, as: UInt8.self)) }
        }
      }
    }
    throw .noAnswer
  }

  /// Signs receipts for `hops` (node fingerprints, first hop first) with `key`.
  func enableReceipts(key: P256Signer, hops: [WispCore.Fingerprint]) {
    signer = key
    self.hops = hops
    serial = UInt64(random.next32()) << 32 | UInt64(random.next32()) | 1
  }

  /// What this client acknowledges to every hop: each echoed byte crossed each hop twice
  /// (out and back), so twice the echoed bytes never exceeds what a hop relayed.
  var acknowledged: UInt64 { bytesReceived * 2 }

  /// Sends a cumulative receipt to every hop when enough new traffic came back.
  func sendReceiptsIfDue(force: Bool = false) {
    guard var key = signer else { return }
    let amount = acknowledged
    if amount == receiptedUpTo || (!force && amount - receiptedUpTo < receiptEvery) { return }
    for hop in hops {
      guard let r = Receipt.make(signer: &key, verifier: P256Verifier(), node: hop, serial: serial, bytes: amount,
                                 epoch: UInt64(max(0, Clock.epochSeconds()))) else { continue }
      let body = r.encoded
      body.withUnsafeBytes { (out + Wire.headerSize).copyMemory(from: $0.baseAddress!, byteCount: body.count) }
      let n = Frame.encodeHeader(out, type: .receipt, bodyLength: body.count, circuit: forwardId)
      if socket.send(out, n, to: first) { receiptsSent += 1 }
    }
    signer = key
    receiptedUpTo = amount
  }

  /// Sends message `seq` of `size` body bytes (≥ 16: sequence and send time).
  func send(seq: UInt64, size: Int) {
    let body = out + Wire.headerSize
    body.storeBytes(of: seq.bigEndian, as: UInt64.self)
    body.storeBytes(of: Clock.nowNs().bigEndian, toByteOffset: 8, as: UInt64.self)
    let n = Frame.encodeHeader(out, type: .data, bodyLength: max(size, 16), circuit: forwardId)
    if socket.send(out, n, to: first) { sent += 1 }
  }

  /// Takes every echo waiting (up to `ms` of waiting for the first).
  func receiveEchoes(waitMs: Int32) {
    if !socket.wait(ms: waitMs) { return }
    let now = Clock.nowNs()
    while let (len, _) = socket.receive(into: inbuf, capacity: 2048) {
      guard case .success(let h) = Frame.decode(inbuf, length: len), h.type == .data, h.circuit == backId,
            h.bodyLength >= 16 else { continue }
      let body = inbuf + Wire.headerSize
      let seq = UInt64(bigEndian: body.loadUnaligned(as: UInt64.self))
      let t0 = UInt64(bigEndian: body.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
      received += 1
      bytesReceived += UInt64(h.bodyLength)
      if seq > highestSeen { highestSeen = seq }
      if now > t0 {
        rtts[rttCount % rtts.count] = UInt32(min((now - t0) / 1000, UInt64(UInt32.max)))
        rttCount += 1
      }
    }
  }

  /// (p50, p99) round-trip time in microseconds over the latest samples.
  func rttPercentiles() -> (UInt32, UInt32) {
    let n = min(rttCount, rtts.count)
    if n == 0 { return (0, 0) }
    let sorted = rtts[0..<n].sorted()
    return (sorted[n / 2], sorted[min(n - 1, n * 99 / 100)])
  }
}
