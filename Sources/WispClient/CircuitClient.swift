// A client of the mesh: builds a circuit through relays to an exit destination and
// sends numbered, timestamped messages over it, measuring RTT and loss from the echoes.
// Used by `wisp client`, `wisp demo` and the in-process tests (over any DatagramSocket).
// Runs on host and device.

/// The client on a UDP socket.
public typealias UDPCircuitClient = CircuitClient<UDPSocket>

import WispCore
import WispOS
import WispTLS

public final class CircuitClient<S: DatagramSocket> {
  public let socket: S
  public var first = Endpoint(ip: 0, port: 0)
  public var forwardId: UInt32 = 0
  public var backId: UInt32 = 0
  public let out = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
  public let inbuf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
  public var random = KernelRandom()
  // Statistics.
  public var sent: UInt64 = 0
  public var bytesSent: UInt64 = 0
  /// Distinct messages echoed back (a second copy of one counts in `duplicates` only).
  public var received: UInt64 = 0
  public var bytesReceived: UInt64 = 0
  public var duplicates: UInt64 = 0
  public var highestSeen: UInt64 = 0
  /// One bit per sequence number seen (grown on demand, up to `seenLimit` messages).
  public var seen: [UInt64] = []
  public static var seenLimit: UInt64 { 1 << 27 }
  /// When the latest echo arrived (monotonic ns; 0 before the first).
  public var lastEchoNs: UInt64 = 0
  // The current circuit: when it was built, echoes on it, the first one's arrival, and
  // the client's echoed bytes before it (receipts count this circuit's bytes only).
  public var circuitBuiltNs: UInt64 = 0
  public var circuitEchoes: UInt64 = 0
  public var circuitFirstEchoNs: UInt64 = 0
  public var circuitBytesBase: UInt64 = 0
  /// The client's sent bytes before the current circuit (for `carriesBothWays`).
  public var circuitSentBase: UInt64 = 0
  /// Round-trip times in microseconds, a ring of the latest samples.
  /// Echoes that did not open (sealed circuits): tampered or replayed.
  public var badSeals: UInt64 = 0
  public var rtts = [UInt32](repeating: 0, count: 4096)
  public var rttCount = 0
  // Receipts (v2): signed with the payer key, one per hop, each on that hop's binding.
  /// The payer key receipts are signed with (nil: no receipts).
  public var signer: P256Signer? = nil
  /// The hops of the current circuit, first hop first, as receipts see them.
  public var hopReceipts: [HopReceipts] = []
  /// Receipts sent (every hop, every circuit), and BINDs taken.
  public var receiptsSent: UInt64 = 0
  public var bindsReceived: UInt64 = 0
  /// BINDs that named no hop of the circuit, or a hop already bound (ignored).
  public var strayBinds: UInt64 = 0
  /// What earlier circuits' receipts signed, summed over their hops.
  public var spentEarlier: UInt64 = 0
  /// Bytes of new debt at a hop between receipts (well inside any node's credit window).
  public var receiptEvery: UInt64 = 512 * 1024

  /// Binds `local` (default: any address, any port; the kernel picks the source address
  /// for each relay, so the client works on loopback and in network namespaces alike).
  public convenience init(local: Endpoint = Endpoint(ip: 0, port: 0)) throws(Errno) where S == UDPSocket {
    self.init(socket: try UDPSocket(bind: local, bufferBytes: 4 << 20))
  }

  /// A client on `socket` (closed when the client goes).
  public init(socket: S) {
    self.socket = socket
  }

  deinit {
    if let l = link, l.state == .established { l.close() }  // close_notify before the socket goes
    out.deallocate()
    inbuf.deallocate()
    socket.close()
  }

  public enum BuildError: Error { case refused(UInt8), noAnswer, exitKeyMismatch, session(String) }

  // MARK: - The DTLS session with the first hop

  /// Carry every frame to the first relay inside a DTLS session (mutual authentication).
  public var useDTLS = false
  /// Pinned keys of relays, for the session with whichever is the first hop; a first hop
  /// without one is trusted on first use (its fingerprint is printed).
  public var pins: [(Endpoint, Fingerprint)] = []
  public var link: DTLSSession? = nil
  public var linkPeer = Endpoint(ip: 0, port: 0)
  public var identity: Identity? = nil
  public var drbg: RandomGenerator? = nil
  /// Frames opened from records, waiting for `nextFrame`.
  public var opened: [[UInt8]] = []
  /// How long a handshake with the first hop may take (retransmissions at 1, 2 s).
  public var connectTimeoutMs: UInt64 = 5000

  /// A mutually authenticated DTLS 1.2 session with `peer` (ends any earlier one).
  public func connect(_ peer: Endpoint) throws(BuildError) {
    if let old = link, old.state == .established { old.close() }
    link = nil
    let pin = pins.first { $0.0 == peer }?.1
    let s = try makeSession(peer, pin: pin)
    link = s
    linkPeer = peer
    let start = Clock.nowNs()
    s.step()
    while s.state == .handshaking && Clock.nowNs() - start < connectTimeoutMs * 1_000_000 {
      if socket.wait(ms: 50) {
        while let (len, from) = socket.receive(into: inbuf, capacity: 2048) {
          if from == peer { s.input(UnsafeRawBufferPointer(start: inbuf, count: len)) }
        }
      }
      if let d = s.deadlineNs, d <= Clock.nowNs() { s.handleTimeout() }
    }
    guard s.state == .established else {
      link = nil
      throw .session(s.failure?.description ?? "handshake with \(peer.text) timed out")
    }
    let handshakeMs = (Clock.nowNs() - start) / 1_000_000
    if pin == nil, let fp = s.peerFingerprint { Console.out("client: learned \(peer.text) key \(fp.hex)") }
    Console.out("client: dtls session with \(peer.text): \(s.cipherSuite) in \(handshakeMs) ms")
  }

  /// A client session with `peer`, pinned to `pin` (or learning the peer's key without one).
  public func makeSession(_ peer: Endpoint, pin: Fingerprint?) throws(BuildError) -> DTLSSession {
    let (id, random) = try clientIdentity()
    do throws(TLSError) {
      var o = DTLSOptions(role: .client, pinned: pin.map { [$0] } ?? [])
      o.learn = pin == nil
      o.mtu = UInt16(Wire.maxDatagram)
      let config = try DTLSConfig(options: o, identity: id, random: random)
      let sock = socket
      let me = Unmanaged.passUnretained(self)  // the session never outlives the client
      return try DTLSSession(config: config, peerIP: peer.ip, peerPort: peer.port, now: { Clock.nowNs() },
                             send: { d in sock.send(d.baseAddress!, d.count, to: peer) },
                             deliver: { f in me.takeUnretainedValue().opened.append(Array(f)) })
    } catch {
      throw .session(error.description)
    }
  }

  /// The client's one key, made once: the session presents the key its receipts are signed
  /// with, so the node sees the same client fingerprint in both.
  public func clientIdentity() throws(BuildError) -> (Identity, RandomGenerator) {
    if let identity, let drbg { return (identity, drbg) }
    let random: RandomGenerator
    do throws(TLSError) { random = try RandomGenerator() } catch { throw .session(error.description) }
    do throws(IdentityError) {
      let pem: [UInt8]
      if let key = signer { pem = key.pem } else { pem = try Identity.generateKeyPEM(random: random) }
      let id = try Identity(keyPEM: pem, certificatePEM: nil, path: "client", random: random)
      (identity, drbg) = (id, random)
      return (id, random)
    } catch {
      throw .session("cannot make a client key: \(error.description)")
    }
  }

  /// Sends the `n`-byte frame at `out` to the first hop (inside the session if there is one).
  @discardableResult
  public func sendFrame(_ n: Int) -> Bool {
    if let link {
      guard link.state == .established else { return false }
      do { try link.write(UnsafeRawBufferPointer(start: out, count: n)) } catch { return false }
      return true
    }
    return socket.send(out, n, to: first)
  }

  /// The next frame for the client in `inbuf` (its length), opened from a record when the
  /// session carries it; nil when nothing is waiting.
  public func nextFrame() -> Int? {
    while true {
      if !opened.isEmpty {
        let f = opened.removeFirst()
        f.withUnsafeBytes { inbuf.copyMemory(from: $0.baseAddress!, byteCount: min(f.count, 2048)) }
        return min(f.count, 2048)
      }
      guard let (len, from) = socket.receive(into: inbuf, capacity: 2048) else { return nil }
      guard let link else { return len }
      if from != linkPeer || len == 0 { continue }
      let b = inbuf.load(as: UInt8.self)
      if b >= Wire.dtlsLow && b <= Wire.dtlsHigh {
        link.input(UnsafeRawBufferPointer(start: inbuf, count: len))
        if let d = link.deadlineNs, d <= Clock.nowNs() { link.handleTimeout() }
      }
      // A plain frame from a relay we have a session with is not trusted: dropped.
    }
  }

  /// End-to-end sealing with the exit of the current circuit (nil: plain payloads).
  public var channel: SealedChannel? = nil
  /// Whether payloads are sealed end to end.
  public var sealed: Bool { channel != nil }

  /// Builds a circuit through `relays` (1–3) ending at `exit`; retries on silence
  /// (`tries` CREATEs, `waitMs` for an answer to each).
  /// With `exitKey` (the last relay's fingerprint) the payloads are sealed end to end: the
  /// CREATE carries an ephemeral point, and the exit's point in CREATED must match `exitKey`.
  /// With receipts on (`signer`), the new circuit's receipts start afresh at its CREATED
  /// for `receiptHops` (one per relay, nil where the key is unknown; default: the hops
  /// given to `enableReceipts`); BINDs that came before the CREATED are kept for it.
  public func build(relays: [Endpoint], exit: Endpoint, tries: Int = 5, waitMs: UInt64 = 1000,
             exitKey: Fingerprint? = nil, receiptHops: [Fingerprint?]? = nil) throws(BuildError) {
    precondition(!relays.isEmpty && relays.count <= Wire.maxHops, "1-3 relays")
    first = relays[0]
    if useDTLS && (link == nil || link!.state != .established || linkPeer != first) {
      try connect(first)
    }
    channel = nil
    // Every CREATE sent, retries included, is a new circuit id and (sealed) a fresh
    // ephemeral key: an answer to any of them is accepted, with that attempt's key.
    var attempts: [(id: UInt32, ephemeral: P256Signer?)] = []
    var early: [(id: UInt32, body: [UInt8])] = []  // BINDs that overtook their CREATED
    for _ in 0..<max(tries, 1) {
      var bodyLen = 0
      let body = out + Wire.headerSize
      for r in relays.dropFirst() { bodyLen += Frame.encodeHop(body + bodyLen, kind: .extend, to: r) }
      var ephemeral: P256Signer? = nil
      if exitKey != nil {
        guard let e = P256Signer.generate() else { throw .noAnswer }
        ephemeral = e
        bodyLen += Frame.encodeHop(body + bodyLen, kind: .sealedExit, to: exit)
        e.publicKey.withUnsafeBytes { (body + bodyLen).copyMemory(from: $0.baseAddress!, byteCount: Wire.pointSize) }
        bodyLen += Wire.pointSize
      } else {
        bodyLen += Frame.encodeHop(body + bodyLen, kind: .exit, to: exit)
      }
      var my = random.next32() | 1
      if my == 0 { my = 1 }
      attempts.append((my, ephemeral))
      let n = Frame.encodeHeader(out, type: .create, bodyLength: bodyLen, circuit: my)
      sendFrame(n)
      let deadline = Clock.nowNs() + waitMs * 1_000_000
      while Clock.nowNs() < deadline {
        if !socket.wait(ms: 100) { continue }
        while let len = nextFrame() {
          guard case .success(let h) = Frame.decode(inbuf, length: len),
                let attempt = attempts.first(where: { $0.id == h.circuit }) else { continue }
          if h.type == .bind && h.bodyLength == Wire.bindBody && early.count < 2 * Wire.maxHops {
            early.append((attempt.id, Array(UnsafeRawBufferPointer(start: inbuf + Wire.headerSize, count: Wire.bindBody))))
            continue
          }
          if h.type == .created {
            if let expected = exitKey {
              // The exit's point must be the key we pinned for it, else a middle node lies.
              guard let e = attempt.ephemeral, h.bodyLength == Wire.sealedCreatedBody else { throw .exitKeyMismatch }
              let point = UnsafeRawBufferPointer(start: inbuf + Wire.headerSize + 4, count: Wire.pointSize)
              let nonce = UnsafeRawBufferPointer(start: inbuf + Wire.headerSize + 4 + Wire.pointSize, count: Wire.exitNonceSize)
              guard P256Verifier().fingerprint(ofKey: point) == expected,
                    let ch = SealedChannel(clientKeyPEM: e.pem, ownPoint: e.publicKey, exitPoint: point, exitNonce: nonce)
              else { throw .exitKeyMismatch }
              channel = ch
            }
            backId = attempt.id
            forwardId = Frame.load32(inbuf, Wire.headerSize)
            circuitBuiltNs = Clock.nowNs()
            circuitEchoes = 0
            circuitFirstEchoNs = 0
            circuitBytesBase = bytesReceived
            circuitSentBase = bytesSent
            if signer != nil {
              newReceiptCircuit(hops: receiptHops ?? hopReceipts.map { $0.node })
              for b in early where b.id == attempt.id { b.body.withUnsafeBytes { bind(body: $0) } }
            }
            return
          }
          if h.type == .refused { throw .refused(inbuf.load(fromByteOffset: Wire.headerSize, as: UInt8.self)) }
        }
      }
    }
    throw .noAnswer
  }

  /// Signs receipts with the payer key `key` for `hops` (node fingerprints, first hop first).
  public func enableReceipts(key: P256Signer, hops: [Fingerprint]) {
    signer = key
    newReceiptCircuit(hops: hops.map { Optional($0) })
  }

  /// After a (re)build: the new circuit's hops (nil: a hop whose key is not known gets no
  /// receipt, but keeps its place: what it forwards is charged by the hops before it).
  /// Nothing carries over from the old circuit: each node draws a new binding (BIND) and
  /// amounts start at 0 on it. What the old circuit's receipts signed goes to `spentEarlier`.
  public func newReceiptCircuit(hops: [Fingerprint?]) {
    spentEarlier &+= signedOnCircuit
    hopReceipts = hops.map { HopReceipts(node: $0) }
    resends = 0
  }

  /// Whether the circuit carries an application's traffic both ways (`wisp forward`)
  /// rather than echoes of the client's own messages.
  public var carriesBothWays = false

  /// The DATA body bytes of the current circuit that every hop counts. Echoes: each echoed
  /// byte crossed each hop twice (out and back), so twice the echoed bytes never exceeds
  /// what a hop relayed. Both ways: every body byte sent and every one received; a byte
  /// lost on the way out is still paid for (nodes accept a receipt up to an eighth beyond
  /// what they relayed plus 64 KiB: WIRE-PROTOCOL.md).
  public var acknowledged: UInt64 {
    carriesBothWays ? (bytesSent - circuitSentBase) + (bytesReceived - circuitBytesBase)
                    : (bytesReceived - circuitBytesBase) * 2
  }

  /// What hop `i` of the current circuit is owed: the DATA bodies (`acknowledged`), plus
  /// the RECEIPT bodies this client sent for hops after it and the BIND bodies it received
  /// from hops after it. A node charges every frame it forwards for another node like
  /// DATA; the ones it sends or consumes itself are not charged.
  public func owed(hop i: Int) -> UInt64 {
    var total = acknowledged
    if i + 1 < hopReceipts.count {
      for j in (i + 1)..<hopReceipts.count { total &+= hopReceipts[j].receiptBytes &+ hopReceipts[j].bindBytes }
    }
    return total
  }

  /// The hops that get receipts (their key is known).
  public var payingHops: Int { hopReceipts.reduce(0) { $0 + ($1.node == nil ? 0 : 1) } }

  /// What the current circuit's receipts signed, summed over its hops.
  public var signedOnCircuit: UInt64 { hopReceipts.reduce(0) { $0 &+ $1.signed } }
  /// What the payer signed on every circuit of this client (what settlement counts
  /// against its budget: the latest amount of each hop's binding, summed).
  public var spent: UInt64 { spentEarlier &+ signedOnCircuit }
  /// What the payer owes so far: earlier circuits' amounts and, for every hop of the current
  /// circuit that gets receipts, what it is owed (signed or not yet: an unbound hop's too).
  public var owedTotal: UInt64 {
    var total = spentEarlier
    for i in hopReceipts.indices where hopReceipts[i].node != nil { total &+= max(owed(hop: i), hopReceipts[i].signed) }
    return total
  }

  /// What `bodyBytes` more of DATA on the current circuit will cost the payer (each hop
  /// that gets receipts counts it).
  public func cost(bodyBytes: UInt64) -> UInt64 { bodyBytes &* UInt64(payingHops) }

  /// Room kept under a spending cap for what a circuit of `hops` relays costs besides DATA
  /// (every hop paying: the worst case): two rounds of receipts (each hop is charged the
  /// receipts for the hops after it) and the BINDs of the hops after each hop.
  public static func capReserve(hops: Int) -> UInt64 {
    var r: UInt64 = 0
    for i in 0..<max(hops, 0) { r += UInt64(hops - 1 - i) * (2 * UInt64(Receipt.maxEncoded) + UInt64(Wire.bindBody)) }
    return r
  }

  /// The most the payer may sign on this client, summed over every hop and circuit (0: no
  /// cap). `fitsCap` tells whether more traffic stays under it; the caller stops sending.
  public var spendCap: UInt64 = 0

  /// Whether `bodyBytes` more of DATA, crossing every paying hop `ways` times (2: an echo or
  /// a reply expected), stay under `spendCap` on top of what is owed and `capReserve`.
  public func fitsCap(bodyBytes: UInt64, ways: UInt64) -> Bool {
    spendCap == 0
      || owedTotal &+ cost(bodyBytes: bodyBytes &* ways) &+ CircuitClient.capReserve(hops: max(hopReceipts.count, 1)) <= spendCap
  }

  /// The DATA body of a message of `size` bytes from `send(seq:size:)` on this circuit.
  public func messageBody(size: Int) -> Int {
    let size = max(size, 16)
    return channel == nil ? size : min(size, Wire.maxBody - Wire.sealOverhead) + Wire.sealOverhead
  }

  /// When receipts were last sent, and how often the latest amounts were sent again.
  var lastReceiptNs: UInt64 = 0
  var resends = 0

  /// A BIND from a node of the circuit (the frame in `inbuf`, its header `h`): the binding
  /// is kept for the hop whose fingerprint it names (the first BIND per hop wins), and a
  /// first receipt (the amount so far, 0 on a new circuit) goes to that hop at once, so the
  /// node binds the circuit to the payer within its unbound allowance. A BIND naming no hop
  /// still counts as charged by the hops before the first hop not yet bound whose key is
  /// unknown (every node forwarding it charged it). Returns whether it was this circuit's.
  @discardableResult
  public func takeBind(_ h: FrameHeader) -> Bool {
    guard h.type == .bind, h.circuit == backId, h.bodyLength == Wire.bindBody else { return false }
    bind(body: UnsafeRawBufferPointer(start: inbuf + Wire.headerSize, count: Wire.bindBody))
    return true
  }

  /// A BIND's body (node fp, binding) for the current circuit.
  func bind(body: UnsafeRawBufferPointer) {
    guard !hopReceipts.isEmpty else { return }
    guard body.count == Wire.bindBody, let node = Fingerprint(UnsafeRawBufferPointer(rebasing: body[0..<32])),
          let binding = Binding(Array(body[32..<48])) else { return }
    bindsReceived += 1
    var hop = hopReceipts.firstIndex { $0.node == node }
    if hop == nil { hop = hopReceipts.firstIndex { $0.node == nil && $0.bindBytes == 0 } }
    guard let i = hop, hopReceipts[i].bindBytes == 0 else { strayBinds += 1; return }
    hopReceipts[i].bindBytes = UInt64(Wire.bindBody)
    guard hopReceipts[i].node != nil else { return }
    hopReceipts[i].binding = binding
    if var key = signer {
      sendReceipt(hop: i, amount: max(owed(hop: i), hopReceipts[i].signed), key: &key)
      signer = key
    }
  }

  /// Signs and sends one receipt for hop `i`; true if it left.
  @discardableResult
  func sendReceipt(hop i: Int, amount: UInt64, key: inout P256Signer) -> Bool {
    guard let node = hopReceipts[i].node, let binding = hopReceipts[i].binding,
          let r = Receipt.make(signer: &key, verifier: P256Verifier(), node: node, binding: binding, bytes: amount,
                               epoch: UInt64(max(0, Clock.epochSeconds()))) else { return false }
    let body = r.encoded
    body.withUnsafeBytes { (out + Wire.headerSize).copyMemory(from: $0.baseAddress!, byteCount: body.count) }
    let n = Frame.encodeHeader(out, type: .receipt, bodyLength: body.count, circuit: forwardId)
    // Signed is signed: a receipt that did not leave may be sent later, the payer owes it.
    hopReceipts[i].signed = amount
    hopReceipts[i].receipts += 1
    lastReceiptNs = Clock.nowNs()
    guard sendFrame(n) else { return false }
    hopReceipts[i].receiptBytes &+= UInt64(body.count)
    receiptsSent += 1
    return true
  }

  /// Sends cumulative receipts to the bound hops when the first hop's new debt reaches
  /// `receiptEvery` (or anything is new, with `force`). The last hop goes first: the
  /// receipts for later hops pass the earlier ones, which charge them, so each earlier
  /// hop's receipt includes them. A circuit that echoes nothing for 250 ms may be paused at
  /// a node that never got the latest receipt (lost, or refused over a budget): the same
  /// amounts are signed and sent again, at most every 250 ms and 8 times, or both ends
  /// would wait for each other for good.
  public func sendReceiptsIfDue(force: Bool = false) {
    guard var key = signer, !hopReceipts.isEmpty else { return }
    var newest: UInt64 = 0
    var bound = false
    for i in hopReceipts.indices where hopReceipts[i].binding != nil {
      let o = owed(hop: i)
      if o > hopReceipts[i].signed { newest = max(newest, o - hopReceipts[i].signed) }
      bound = true
    }
    let now = Clock.nowNs()
    if newest > 0 { resends = 0 }
    let stalled = bound && acknowledged > 0 && resends < 8 && now &- lastEchoNs > 250_000_000
      && now &- lastReceiptNs > 250_000_000
    if stalled {
      resends += 1
    } else if newest == 0 || (!force && newest < receiptEvery) {
      return
    }
    for i in hopReceipts.indices.reversed() where hopReceipts[i].binding != nil {
      let amount = max(owed(hop: i), hopReceipts[i].signed)
      if amount == hopReceipts[i].signed && !stalled && hopReceipts[i].receipts > 0 { continue }
      sendReceipt(hop: i, amount: amount, key: &key)
    }
    signer = key
  }

  /// The amounts signed per hop, for reports ("A 1234, B 1000, C -").
  public var signedText: String {
    hopReceipts.enumerated().map { i, h in
      "hop \(i + 1) " + (h.node == nil ? "no key" : h.binding == nil ? "unbound" : "\(h.signed)")
    }.joined(separator: ", ")
  }

  /// Sends message `seq` of `size` body bytes (≥ 16: sequence and send time).
  public func send(seq: UInt64, size: Int) {
    let size = max(size, 16)
    // Sealed: the plaintext starts after the 8-byte counter.
    let plain = out + Wire.headerSize + (channel == nil ? 0 : 8)
    plain.storeBytes(of: seq.bigEndian, as: UInt64.self)
    plain.storeBytes(of: Clock.nowNs().bigEndian, toByteOffset: 8, as: UInt64.self)
    for i in 16..<size { plain.storeBytes(of: 0, toByteOffset: i, as: UInt8.self) }
    var bodyLength = size
    if let ch = channel {
      bodyLength = ch.seal(payload: plain, length: min(size, Wire.maxBody - Wire.sealOverhead))
    }
    let n = Frame.encodeHeader(out, type: .data, bodyLength: bodyLength, circuit: forwardId)
    if sendFrame(n) { sent += 1; bytesSent += UInt64(bodyLength) }  // as on the wire, like echoes
  }

  /// Sends `length` bytes of an application's datagram on the circuit (sealed when the
  /// circuit is); false if it did not leave (too large, or the session refused it).
  public func sendPayload(_ p: UnsafeRawPointer, length: Int) -> Bool {
    let room = Wire.maxBody - (channel == nil ? 0 : Wire.sealOverhead)
    guard length <= room else { return false }
    let plain = out + Wire.headerSize + (channel == nil ? 0 : 8)
    plain.copyMemory(from: p, byteCount: length)
    var bodyLength = length
    if let ch = channel { bodyLength = ch.seal(payload: plain, length: length) }
    let n = Frame.encodeHeader(out, type: .data, bodyLength: bodyLength, circuit: forwardId)
    guard sendFrame(n) else { return false }
    sent += 1
    bytesSent += UInt64(bodyLength)
    return true
  }

  /// Takes every echo waiting (up to `ms` of waiting for the first).
  public func receiveEchoes(waitMs: Int32) {
    if !socket.wait(ms: waitMs) { return }
    let now = Clock.nowNs()
    while let len = nextFrame() {
      guard case .success(let h) = Frame.decode(inbuf, length: len) else { continue }
      if h.type == .bind { takeBind(h); continue }
      guard h.type == .data, h.circuit == backId, h.bodyLength >= 16 else { continue }
      var body = inbuf + Wire.headerSize
      if let ch = channel {
        guard let (off, n) = ch.open(body: body, length: h.bodyLength), n >= 16 else { badSeals += 1; continue }
        body += off
      }
      let seq = UInt64(bigEndian: body.loadUnaligned(as: UInt64.self))
      let t0 = UInt64(bigEndian: body.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
      if !markSeen(seq) { duplicates += 1; continue }
      received += 1
      bytesReceived += UInt64(h.bodyLength)
      lastEchoNs = now
      if circuitEchoes == 0 { circuitFirstEchoNs = now }
      circuitEchoes += 1
      if seq > highestSeen { highestSeen = seq }
      if now > t0 {
        rtts[rttCount % rtts.count] = UInt32(min((now - t0) / 1000, UInt64(UInt32.max)))
        rttCount += 1
      }
    }
  }

  /// Records `seq` as echoed; false if it had been echoed before.
  public func markSeen(_ seq: UInt64) -> Bool {
    if seq >= CircuitClient.seenLimit { return true }  // beyond tracking: counted, not checked
    let word = Int(seq >> 6)
    if word >= seen.count { seen.append(contentsOf: [UInt64](repeating: 0, count: max(word + 1 - seen.count, 1024))) }
    let bit = UInt64(1) << (seq & 63)
    if seen[word] & bit != 0 { return false }
    seen[word] |= bit
    return true
  }

  /// (p50, p99) round-trip time in microseconds over the latest samples.
  public func rttPercentiles() -> (UInt32, UInt32) {
    let n = min(rttCount, rtts.count)
    if n == 0 { return (0, 0) }
    let sorted = rtts[0..<n].sorted()
    return (sorted[n / 2], sorted[min(n - 1, n * 99 / 100)])
  }
}

/// Receipts for one hop of a circuit.
public struct HopReceipts {
  /// The node's fingerprint (nil: not known, so it gets no receipt).
  public var node: Fingerprint?
  /// The binding the node drew for this circuit, from its BIND (nil until it arrives).
  public var binding: Binding? = nil
  /// RECEIPT bodies sent to this hop, and the BIND body received from it (bytes): what
  /// the hops before it charge for them.
  public var receiptBytes: UInt64 = 0
  public var bindBytes: UInt64 = 0
  /// The latest amount signed for this hop's binding, and how many receipts were signed.
  public var signed: UInt64 = 0
  public var receipts: UInt64 = 0
  public init(node: Fingerprint?) { self.node = node }
}
