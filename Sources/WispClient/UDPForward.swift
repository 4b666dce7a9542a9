// `wisp forward`: a local UDP port whose datagrams travel through the mesh to one
// destination behind an exit, replies coming back to whoever sent them. One local UDP
// forward is enough for WireGuard, and WireGuard carries everything else. Runs on host and
// device, generic over its sockets (UDP here, in-memory in tests).
//
// The forward, in the order a datagram meets it:
//  1. a datagram arrives on the listening socket from a local sender (an address and port);
//     one larger than `Wire.maxForwardPayload` is dropped and counted (`oversized`), with a
//     log line naming the MTU to use (at most one every 10 s);
//  2. the sender's slot: each sender has a circuit of its own, on a socket of its own
//     (`maxSenders` at most; when all are taken, the sender idle longest is closed if it
//     has been idle a second, else the datagram is dropped, `senders_full`); at most
//     `newSendersPerSecond` new senders a second (`senders_rate`): each costs a handshake
//     and a circuit, so a flood of new source ports cannot keep the forward building;
//  3. a sender without a working circuit gets one: the cheapest path of live peers
//     (PathChooser), a DTLS session with the first hop, sealed end to end with the exit.
//     Building blocks the forward for its handshake and CREATE round trips; a failed build
//     is retried no sooner than a second later (datagrams meanwhile: `no_path`);
//  4. the payload is sealed and sent; replies on the sender's circuit are opened and sent
//     from the listening socket to the sender;
//  5. receipts (v2, signed with the payer key): every hop whose key is known gets a first
//     receipt as soon as its BIND names the circuit's binding, then receipts for what it
//     is owed (the body bytes carried both ways, plus the RECEIPT frames sent for, and
//     the BIND frames received from, the hops after it: nodes charge those like DATA),
//     every `receiptEvery` bytes and on the tick when anything is unreceipted
//     (CircuitClient.sendReceiptsIfDue);
//  6. the spending cap: what the payer signs, summed over every hop of every circuit (what
//     settlement counts against its budget), stays under `spendCap`: a datagram whose
//     cost (its body at each paying hop, out and, reserved for its reply, back), on top of
//     what is owed and a reserve for the last receipts and BINDs, would pass the cap is
//     not carried; from then on nothing more is carried (`cap_reached`), the last
//     receipts are signed and the forward says so once, on stderr and in the status.
//     Replies already on their way are still delivered and paid for (beyond what was
//     reserved for them, they may take the amount signed past the cap);
//  7. health, on the tick: every peer on a path in use is probed (a PING and a DTLS
//     ClientHello, answered by any live node) every `probeEvery`; a relay that answered
//     nothing for `deadAfter` is dead and every circuit through it is rebuilt without it.
//     Silence of the application proves nothing (WireGuard may be quiet for 25 s), so only
//     the probes decide — and a circuit that carried `unansweredLimit` datagrams over
//     `unansweredNs` with no reply while its relays answer is rebuilt too (a relay lost it);
//  8. idle senders (nothing either way for `idleNs`) are closed: final receipts, DESTROY
//     through the session's close, socket closed.
import WispCore
import WispOS
import WispTLS

public struct ForwardSettings {
  public var destination: Endpoint
  /// Senders (each with a circuit and a socket) at once, and new ones per second.
  public var maxSenders = 16
  public var newSendersPerSecond = 8
  /// A sender with no datagram either way for this long is closed.
  public var idleNs: UInt64 = 180_000_000_000
  /// Bytes the forward may sign for in total (0: no cap).
  public var spendCap: UInt64 = 0
  /// Probes of the relays in use: how often, and how long a silent relay counts as alive.
  public var probeEveryNs: UInt64 = 500_000_000
  public var deadAfterNs: UInt64 = 1_500_000_000
  /// Datagrams out with no reply (and for how long) before a circuit is rebuilt.
  public var unansweredLimit = 32
  public var unansweredNs: UInt64 = 10_000_000_000
  /// Body bytes between receipts.
  public var receiptEvery: UInt64 = 1 << 20
  public var useDTLS = true
  public init(destination: Endpoint) { self.destination = destination }
}

/// Why the forward dropped a datagram or closed a sender.
public struct ForwardCounters {
  public var oversized: UInt64 = 0
  public var sendersFull: UInt64 = 0
  public var sendersRate: UInt64 = 0
  public var noPath: UInt64 = 0
  public var capReached: UInt64 = 0
  public var sendFailed: UInt64 = 0
  public var badSeals: UInt64 = 0
  public var refused: UInt64 = 0
  public var circuitsBuilt: UInt64 = 0
  public var reroutes: UInt64 = 0
  public var sendersClosed: UInt64 = 0
  public var destroyed: UInt64 = 0
  public init() {}
}

public typealias UDPForwardEngine = UDPForward<UDPSocket>

public final class UDPForward<S: DatagramSocket> {
  public final class Sender {
    public let address: Endpoint
    public let client: CircuitClient<S>
    public var path: [Int] = []
    public var lastActiveNs: UInt64
    public var upPackets: UInt64 = 0
    public var downPackets: UInt64 = 0
    /// Datagrams sent since the latest reply, and when the first of them left.
    public var unanswered = 0
    public var unansweredSinceNs: UInt64 = 0
    /// No circuit now (never built, destroyed, or its path died); next build not before.
    public var broken = true
    public var nextBuildNs: UInt64 = 0
    /// Bytes carried by circuits this sender had before the current one.
    public var carriedEarlier: UInt64 = 0
    init(address: Endpoint, client: CircuitClient<S>, nowNs: UInt64) {
      self.address = address
      self.client = client
      self.lastActiveNs = nowNs
    }
    /// What the payer signed for this sender, every hop of every circuit summed.
    public var spent: UInt64 { client.spent }
    /// Body bytes carried both ways, on every circuit of this sender.
    public var carried: UInt64 { carriedEarlier + (path.isEmpty ? 0 : client.acknowledged) }
  }

  public let settings: ForwardSettings
  public let listen: S
  public let probeSocket: S
  public var chooser: PathChooser
  public private(set) var senders: [Sender?]
  public var counters = ForwardCounters()
  /// Amounts signed by, and bytes carried for, senders already closed.
  public private(set) var spentClosed: UInt64 = 0
  public private(set) var carriedClosed: UInt64 = 0
  public private(set) var capReached = false
  /// The payer key receipts are signed with (nil: no receipts; the peers' keys name the hops).
  public let signer: P256Signer?
  /// Where the spending cap's line goes besides the status (stderr).
  public var alert: (String) -> Void = { Console.err($0) }
  /// Pinning: whether a first hop without a key in the peer list is accepted (warned).
  public let makeSocket: () -> S?
  public var log: (String) -> Void = { Console.out($0) }
  let buf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
  var random = KernelRandom()
  var probeNonce: UInt64 = 0
  var probeRound: UInt64 = 0
  var lastProbeNs: UInt64 = 0
  var lastAnswerNs: [UInt64]
  var probeSentNs: [UInt64]
  /// When the oldest probe a peer has not answered was sent (0: it answered every probe).
  var silentSinceNs: [UInt64]
  var lastOversizeLogNs: UInt64 = 0
  var newSendersSecond: UInt64 = 0
  var newSendersThisSecond = 0
  let startNs: UInt64

  /// `makeSocket`: a new socket for a sender's circuit (nil: none could be opened).
  public init(settings: ForwardSettings, listen: S, probeSocket: S, chooser: PathChooser, signer: P256Signer?,
              makeSocket: @escaping () -> S?, nowNs: UInt64 = Clock.nowNs()) {
    self.settings = settings
    self.listen = listen
    self.probeSocket = probeSocket
    self.chooser = chooser
    self.signer = signer
    self.makeSocket = makeSocket
    senders = [Sender?](repeating: nil, count: max(settings.maxSenders, 1))
    lastAnswerNs = [UInt64](repeating: 0, count: chooser.peers.count)
    probeSentNs = [UInt64](repeating: 0, count: chooser.peers.count)
    silentSinceNs = [UInt64](repeating: 0, count: chooser.peers.count)
    probeNonce = UInt64(random.next32() & 0xFF_FFFF)
    startNs = nowNs
  }

  deinit {
    for i in senders.indices { close(i, why: "shutdown") }
    buf.deallocate()
  }

  public var sendersOpen: Int { senders.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }
  /// What the payer signed so far: every hop's latest amount on every circuit, summed.
  public var spent: UInt64 { senders.reduce(spentClosed) { $0 + ($1?.spent ?? 0) } }
  /// What the payer owes so far, signed or not (what the spending cap counts).
  public var owed: UInt64 { senders.reduce(spentClosed) { $0 &+ ($1?.client.owedTotal ?? 0) } }
  /// Body bytes carried both ways so far.
  public var carried: UInt64 { senders.reduce(carriedClosed) { $0 + ($1?.carried ?? 0) } }

  // MARK: - 1–4: datagrams from local senders

  /// Takes every datagram waiting on the listening socket.
  public func listenReadable(nowNs: UInt64) {
    while let (len, from) = listen.receive(into: buf, capacity: 2048) {
      carry(len, from: from, nowNs: nowNs)
    }
  }

  func carry(_ len: Int, from: Endpoint, nowNs: UInt64) {
    if len > Wire.maxForwardPayload {
      counters.oversized &+= 1
      if lastOversizeLogNs == 0 || nowNs &- lastOversizeLogNs > 10_000_000_000 {
        lastOversizeLogNs = nowNs
        log("forward: dropped a \(len)-byte datagram from \(from.text): the mesh carries at most "
            + "\(Wire.maxForwardPayload) bytes (for WireGuard: MTU = \(Wire.maxForwardPayload - 32) on both peers)")
      }
      return
    }
    if capReached { counters.capReached &+= 1; return }
    guard let s = sender(for: from, nowNs: nowNs) else { return }
    s.lastActiveNs = nowNs
    if !fitsCap(adding: 0) { reachCap(); counters.capReached &+= 1; return }
    if s.broken {
      if nowNs < s.nextBuildNs || !build(s, exclude: deadPeers(nowNs), nowNs: nowNs) { counters.noPath &+= 1; return }
    }
    // Its body at every paying hop, out and (reserved for the reply) back.
    let body = UInt64(len + (s.client.sealed ? Wire.sealOverhead : 0))
    if !fitsCap(adding: s.client.cost(bodyBytes: 2 * body)) { reachCap(); counters.capReached &+= 1; return }
    guard s.client.sendPayload(buf, length: len) else { counters.sendFailed &+= 1; return }
    s.upPackets &+= 1
    if s.unanswered == 0 { s.unansweredSinceNs = nowNs }
    s.unanswered += 1
    s.client.sendReceiptsIfDue()
    checkCap()
  }

  /// The slot of `from`, opened if new (nil: dropped and counted).
  func sender(for from: Endpoint, nowNs: UInt64) -> Sender? {
    var free = -1
    var idlest = -1
    for i in senders.indices {
      guard let s = senders[i] else { if free < 0 { free = i }; continue }
      if s.address == from { return s }
      if idlest < 0 || s.lastActiveNs < senders[idlest]!.lastActiveNs { idlest = i }
    }
    let second = nowNs / 1_000_000_000
    if second != newSendersSecond { newSendersSecond = second; newSendersThisSecond = 0 }
    guard newSendersThisSecond < settings.newSendersPerSecond else { counters.sendersRate &+= 1; return nil }
    if free < 0 {
      guard idlest >= 0, nowNs &- senders[idlest]!.lastActiveNs > 1_000_000_000 else {
        counters.sendersFull &+= 1
        return nil
      }
      close(idlest, why: "room for \(from.text)")
      free = idlest
    }
    guard let socket = makeSocket() else { counters.sendFailed &+= 1; return nil }
    newSendersThisSecond += 1
    let c = CircuitClient(socket: socket)
    c.useDTLS = settings.useDTLS
    c.carriesBothWays = true
    c.receiptEvery = settings.receiptEvery
    if let k = signer { c.enableReceipts(key: k, hops: []) }
    let s = Sender(address: from, client: c, nowNs: nowNs)
    senders[free] = s
    log("forward: new sender \(from.text) (\(sendersOpen) of \(senders.count))")
    return s
  }

  /// Builds a circuit for `s` avoiding `exclude`; false when no path works now.
  func build(_ s: Sender, exclude: [Int], nowNs: UInt64) -> Bool {
    let had = !s.path.isEmpty
    if had {
      s.client.sendReceiptsIfDue(force: true)  // settle the old circuit with whichever hops remain
      s.carriedEarlier += s.client.acknowledged
      s.path = []
    }
    guard let p = chooser.build(on: s.client, exit: settings.destination, exclude: exclude, tries: 2, waitMs: 700,
                                log: log) else {
      if let r = chooser.lastRefusal {
        counters.refused &+= 1
        log("forward: \(settings.destination.text) refused by the exit (reason \(r): \(RefusalText.of(r)))")
      } else {
        log("forward: no working path to \(settings.destination.text) now; trying again in a second")
      }
      s.broken = true
      s.nextBuildNs = Clock.nowNs() + 1_000_000_000
      return false
    }
    s.path = p
    s.broken = false
    s.unanswered = 0
    counters.circuitsBuilt &+= 1
    if had { counters.reroutes &+= 1 }
    log("forward: \(s.address.text) -> \(chooser.pathText(p)) -> \(settings.destination.text)"
        + (s.client.sealed ? " (sealed)" : "") + (had ? " (rebuilt)" : ""))
    return true
  }

  // MARK: - 4: replies

  /// Takes every frame waiting on slot `i`'s circuit socket.
  public func circuitReadable(_ i: Int, nowNs: UInt64) {
    guard i >= 0, i < senders.count, let s = senders[i] else { return }
    let c = s.client
    while let len = c.nextFrame() {
      guard case .success(let h) = Frame.decode(c.inbuf, length: len), h.circuit == c.backId, !s.broken else { continue }
      if h.type == .bind { c.takeBind(h); continue }  // the hop's binding: its first receipt goes at once
      if h.type == .destroy {
        counters.destroyed &+= 1
        s.broken = true
        log("forward: the circuit of \(s.address.text) was destroyed by a relay; rebuilding on the next datagram")
        continue
      }
      guard h.type == .data else { continue }
      var body = c.inbuf + Wire.headerSize
      var n = h.bodyLength
      if let ch = c.channel {
        guard let (off, m) = ch.open(body: body, length: n) else { counters.badSeals &+= 1; continue }
        body += off
        n = m
      }
      c.bytesReceived &+= UInt64(h.bodyLength)
      c.received &+= 1
      c.lastEchoNs = nowNs
      s.downPackets &+= 1
      s.unanswered = 0
      s.lastActiveNs = nowNs
      if !listen.send(body, n, to: s.address) { counters.sendFailed &+= 1 }
    }
    if !s.broken { c.sendReceiptsIfDue() }
    checkCap()
  }

  /// The socket of slot `i`'s circuit (to watch it), or nil.
  public func sender(at i: Int) -> Sender? { i >= 0 && i < senders.count ? senders[i] : nil }

  // MARK: - 5–8: the tick

  /// Probes, receipts, rebuilds and idle expiry; call every 100–250 ms.
  public func tick(nowNs: UInt64) {
    // Answers that waited while a build blocked the loop count before anyone is judged.
    probeReadable(nowNs: nowNs)
    if nowNs &- lastProbeNs >= settings.probeEveryNs { sendProbes(nowNs: nowNs) }
    // Peers not in use are probed every 8th round: one silent for 3 of those rounds is not
    // chosen for a new path until it answers again.
    for p in chooser.peers.indices where probeSentNs[p] != 0 && chooser.peers[p].alive {
      if nowNs &- max(lastAnswerNs[p], startNs) > settings.deadAfterNs + 24 * settings.probeEveryNs { chooser.peers[p].alive = false }
    }
    let dead = deadPeers(nowNs)
    for i in senders.indices {
      guard let s = senders[i] else { continue }
      if nowNs &- s.lastActiveNs > settings.idleNs { close(i, why: "idle"); continue }
      if s.broken { continue }
      let through = s.path.filter { dead.contains($0) }
      if !through.isEmpty {
        log("forward: \(through.map { chooser.peers[$0].name }.joined(separator: ", ")) silent for "
            + "\(settings.deadAfterNs / 1_000_000) ms; rebuilding the circuit of \(s.address.text)")
        if !build(s, exclude: dead, nowNs: nowNs) { s.broken = true }
      } else if s.unanswered >= settings.unansweredLimit && nowNs &- s.unansweredSinceNs > settings.unansweredNs {
        log("forward: \(s.unanswered) datagrams of \(s.address.text) unanswered for "
            + "\((nowNs &- s.unansweredSinceNs) / 1_000_000) ms while every relay answers; a new circuit")
        if !build(s, exclude: [], nowNs: nowNs) { s.broken = true }
      } else {
        s.client.sendReceiptsIfDue(force: true)
      }
    }
    checkCap()
  }

  /// Room under the cap for the last round of receipts and the BINDs of every open sender.
  var capReserve: UInt64 { CircuitClient<S>.capReserve(hops: Wire.maxHops) * UInt64(max(sendersOpen, 1)) }

  /// Whether `adding` more bytes owed stays under the spending cap (with the reserve).
  func fitsCap(adding: UInt64) -> Bool {
    settings.spendCap == 0 || owed &+ adding &+ capReserve <= settings.spendCap
  }

  func checkCap() {
    if settings.spendCap != 0 && !capReached && !fitsCap(adding: 0) { reachCap() }
  }

  /// Nothing more is carried: the last receipts, and one line on stderr (and the log).
  func reachCap() {
    guard !capReached else { return }
    capReached = true
    for s in senders { if let s, !s.broken { s.client.sendReceiptsIfDue(force: true) } }
    let line = "forward: spending cap reached: \(spent) bytes signed of a cap of \(settings.spendCap)"
      + " (\(carried) bytes carried); carrying nothing more"
    log(line)
    alert("wisp: " + line)
  }

  /// Peers that have left a probe unanswered for `deadAfter`: on a path in use they are
  /// rebuilt around, and no new path uses them until they answer again. A peer is judged on
  /// the probes sent to it, not on when it last answered: one not in use is probed only
  /// every 8th round, and may join a path with its latest answer seconds old.
  func deadPeers(_ nowNs: UInt64) -> [Int] {
    var out: [Int] = []
    for p in chooser.peers.indices where silentSinceNs[p] != 0 && nowNs &- silentSinceNs[p] > settings.deadAfterNs {
      out.append(p)
    }
    return out
  }

  func inUse() -> [Int] {
    var out: [Int] = []
    for s in senders { if let s, !s.broken { for p in s.path where !out.contains(p) { out.append(p) } } }
    return out
  }

  /// One probe to every peer on a path in use (all peers when none is in use, so that a
  /// new path is chosen on fresh RTTs).
  func sendProbes(nowNs: UInt64) {
    lastProbeNs = nowNs
    probeRound &+= 1
    var targets = inUse()
    if targets.isEmpty || probeRound % 8 == 0 { targets = Array(chooser.peers.indices) }
    for p in targets {
      let token = probeNonce << 24 | (probeRound & 0xFF) << 16 | UInt64(p)
      if probeSentNs[p] == 0 { lastAnswerNs[p] = max(lastAnswerNs[p], nowNs) }  // the clock starts at the first probe
      probeSentNs[p] = nowNs
      if silentSinceNs[p] == 0 { silentSinceNs[p] = nowNs }
      MeshClient<S>.sendProbe(probeSocket, buf, to: chooser.peers[p].endpoint, token: token, random: &random)
    }
  }

  /// Takes every probe answer waiting.
  public func probeReadable(nowNs: UInt64) {
    while let (len, from) = probeSocket.receive(into: buf, capacity: 2048) {
      guard let token = MeshClient<S>.probeToken(buf, length: len), token >> 24 == probeNonce else { continue }
      let p = Int(token & 0xFFFF)
      guard p < chooser.peers.count, chooser.peers[p].endpoint == from else { continue }
      lastAnswerNs[p] = nowNs
      silentSinceNs[p] = 0
      chooser.peers[p].alive = true
      if probeSentNs[p] != 0 && nowNs > probeSentNs[p] {
        let rtt = UInt32(min((nowNs - probeSentNs[p]) / 1000, UInt64(UInt32.max)))
        chooser.peers[p].rttUs = chooser.peers[p].rttUs == 0 ? rtt : (chooser.peers[p].rttUs * 7 + rtt) / 8
      }
    }
  }

  /// Before the first datagram: probe every peer for `waitMs` so that the first path is
  /// chosen on measured RTTs (a peer that does not answer is not used).
  public func warmUp(waitMs: UInt64) {
    let start = Clock.nowNs()
    sendProbes(nowNs: start)
    while Clock.nowNs() - start < waitMs * 1_000_000 {
      if probeSocket.wait(ms: 20) { probeReadable(nowNs: Clock.nowNs()) }
      if chooser.peers.allSatisfy({ $0.alive }) { break }
    }
  }

  /// Closes slot `i`: a last receipt for its circuit, the session ended, the socket closed.
  func close(_ i: Int, why: String) {
    guard let s = senders[i] else { return }
    if !s.broken { s.client.sendReceiptsIfDue(force: true) }
    spentClosed += s.spent
    carriedClosed += s.carried
    senders[i] = nil
    counters.sendersClosed &+= 1
    log("forward: closed sender \(s.address.text) (\(why)): \(s.upPackets) datagrams up, \(s.downPackets) down")
  }

  /// Closes every sender (SIGTERM).
  public func shutdown() { for i in senders.indices { close(i, why: "shutdown") } }

  // MARK: - Status

  public func statusText(nowNs: UInt64) -> String {
    var t = "wisp forward \(Build.version): to \(settings.destination.text), up \((nowNs &- startNs) / 1_000_000_000) s\n"
    t += "senders: \(sendersOpen) of \(senders.count); circuits built \(counters.circuitsBuilt), reroutes \(counters.reroutes)\n"
    t += "spent: \(spent) bytes signed" + (settings.spendCap == 0 ? "" : " of a cap of \(settings.spendCap)")
      + (capReached ? " (cap reached: carrying nothing)" : "") + ", \(carried) bytes carried"
      + (signer == nil ? " (no receipts: relay keys not given)" : "") + "\n"
    if let k = signer { t += "payer: \(P256Verifier().fingerprint(ofKey: k.publicKey).hex)\n" }
    t += "payload budget: \(Wire.maxForwardPayload) bytes per datagram (WireGuard MTU \(Wire.maxForwardPayload - 32))\n"
    for s in senders {
      guard let s else { continue }
      t += "  \(s.address.text): " + (s.broken ? "no circuit" : chooser.pathText(s.path))
        + ", \(s.upPackets) up / \(s.client.bytesSent) B, \(s.downPackets) down / \(s.client.bytesReceived) B, spent \(s.spent)"
        + (signer == nil || s.broken ? "" : " (signed on this circuit: \(s.client.signedText))")
        + ", idle \((nowNs &- s.lastActiveNs) / 1_000_000_000) s\n"
    }
    t += "peers:"
    for (i, p) in chooser.peers.enumerated() {
      t += " \(p.name) " + (lastAnswerNs[i] == 0 ? "unprobed" : "\(formatFixed(UInt64(p.rttUs), decimals: 3)) ms") + ";"
    }
    t += "\ndropped: oversized \(counters.oversized), senders_full \(counters.sendersFull), "
      + "senders_rate \(counters.sendersRate), no_path \(counters.noPath), "
      + "cap_reached \(counters.capReached), send_failed \(counters.sendFailed), bad_seal \(counters.badSeals), "
      + "refused \(counters.refused), destroyed \(counters.destroyed)\n"
    return t
  }
}
