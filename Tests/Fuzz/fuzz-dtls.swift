// Fuzz target: the DTLS input path, a node's SessionTable (SESSIONS.md) fed datagrams on a
// fake clock, as the relay loop feeds it (Tests/WispTLSTests/SessionTableTests.swift drives
// it the same way).
//
// Input: a sequence of operations, each starting with one byte `op`: op % 4 picks
//   0  a datagram `[length u16] [bytes]` from sender (op >> 2) % 4: two strangers, the
//      node's pinned peer, or the address of the genuine client below;
//   1  the clock advances (op >> 2) × 25 ms and the table runs its timers;
//   2  a genuine DTLS client (a real mbedTLS session at the client's address, made on first
//      use) takes (op >> 2) % 4 + 1 round trips with the table: cookie exchange, handshake,
//      then sessions, interleaved with whatever the fuzzer sends from its address;
//   3  the table is asked to seal a frame to, and admit a plain frame from, sender (op >> 2) % 4.
// A fresh table per input (at most 48 operations); the node's identity is made once.
import WispCore
import WispOS
import WispTLS

let nodeAddress = Endpoint(ip: 0x0A00_0001, port: 7400)
let senders = [
  Endpoint(ip: 0xC000_0201, port: 4444),   // a stranger
  Endpoint(ip: 0xC000_0201, port: 4445),   // the same stranger, another port
  Endpoint(ip: 0x0A00_0003, port: 7400),   // the pinned peer node
  Endpoint(ip: 0x0A00_0002, port: 5000),   // the genuine client
]
let clientAddress = senders[3]

func makeIdentity(_ random: RandomGenerator) -> Identity {
  let pem = try! Identity.generateKeyPEM(random: random)
  return try! Identity(keyPEM: pem, certificatePEM: nil, path: "fuzz", random: random)
}
nonisolated(unsafe) let random = try! RandomGenerator()
nonisolated(unsafe) let nodeIdentity = makeIdentity(random)
nonisolated(unsafe) let peerIdentity = makeIdentity(random)
nonisolated(unsafe) let clientIdentity = makeIdentity(random)
nonisolated(unsafe) let clientConfig: DTLSConfig = {
  var o = DTLSOptions(role: .client, pinned: [nodeIdentity.fingerprint])
  o.prefersChaCha = true
  return try! DTLSConfig(options: o, identity: clientIdentity, random: random)
}()

/// The fake network and clock: what the table sent to the client, and what the client sent.
final class FakeNet {
  var nowNs: UInt64 = 1_000_000_000
  var toClient: [[UInt8]] = []
  var toTable: [[UInt8]] = []
  var sent = 0
  var delivered = 0
}

func fuzzOne(_ input: UnsafeRawBufferPointer) {
  var r = FuzzReader(input)
  let wire = FakeNet()
  var limits = SessionLimits()
  limits.capacity = 4
  limits.halfOpen = 2
  let table = try! SessionTable(identity: nodeIdentity, random: random,
                                peers: [LinkPeer(name: "b", endpoint: senders[2], fingerprint: peerIdentity.fingerprint)],
                                limits: limits, prefersChaCha: true, now: { wire.nowNs })
  table.sendDatagram = { d, to in
    wire.sent += 1
    invariant(d.count <= Wire.maxDatagram, "a datagram of \(d.count) bytes")
    if to == clientAddress && wire.toClient.count < 64 { wire.toClient.append(Array(d)) }
    return true
  }
  table.deliverFrame = { _, _ in wire.delivered += 1 }
  var client: DTLSSession? = nil
  var ops = 0
  while !r.atEnd && ops < 48 {
    ops += 1
    let op = r.u8()
    let arg = Int(op >> 2)
    switch op % 4 {
    case 0:
      let bytes = r.take(Int(r.u16()) % 1500)
      table.receive(bytes, from: senders[arg % 4], nowNs: wire.nowNs)
    case 1:
      wire.nowNs &+= UInt64(arg) * 25_000_000
      table.poll(nowNs: wire.nowNs)
    case 2:
      if client == nil {
        client = try! DTLSSession(config: clientConfig, peerIP: nodeAddress.ip, peerPort: nodeAddress.port,
                                  now: { wire.nowNs },
                                  send: { d in if wire.toTable.count < 64 { wire.toTable.append(Array(d)) }; return true },
                                  deliver: { _ in })
      }
      for _ in 0...(arg % 4) {
        client!.step()
        let out = wire.toTable; wire.toTable = []
        for d in out { d.withUnsafeBytes { table.receive($0, from: clientAddress, nowNs: wire.nowNs) } }
        let back = wire.toClient; wire.toClient = []
        for d in back { d.withUnsafeBytes { client!.receive($0) } }
      }
    default:
      let to = senders[arg % 4]
      var frame = [UInt8](repeating: 7, count: Wire.headerSize + 4)
      frame.withUnsafeMutableBytes { _ = Frame.encodeHeader($0.baseAddress!, type: .data, bodyLength: 4, circuit: 1) }
      _ = frame.withUnsafeBytes { table.seal($0, to: to) }
      _ = table.admitsPlain(from: to, type: 1)
    }
  }
  invariant(table.links.count <= limits.capacity + 1, "\(table.links.count) sessions")
  table.shutdown()
}

// MARK: seeds

func fuzzSeeds() -> [[UInt8]] {
  // A genuine ClientHello, as the first flight of a client.
  var hello: [UInt8] = []
  let s = try! DTLSSession(config: clientConfig, peerIP: 1, peerPort: 1, now: { 0 },
                           send: { hello = Array($0); return true }, deliver: { _ in })
  s.step()
  func datagram(_ sender: UInt8, _ b: [UInt8]) -> [UInt8] { [sender << 2, UInt8(b.count >> 8), UInt8(b.count & 255)] + b }
  let handshake = [UInt8](repeating: 2 | (3 << 2), count: 6)       // six round trips of the genuine client
  return [
    datagram(0, hello),
    datagram(0, hello) + datagram(1, hello) + datagram(0, hello) + [1 | (40 << 2)] + datagram(0, hello),
    handshake,
    handshake + datagram(3, [23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]) + [3 | (3 << 2)] + handshake,
    datagram(2, [22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]) + [1 | (63 << 2), 1 | (63 << 2)],
    datagram(3, [21, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 2, 0, 2, 1, 0]),
  ]
}
