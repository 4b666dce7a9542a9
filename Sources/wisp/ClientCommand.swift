// `wisp client`: send traffic through a circuit of 1–3 relays to a UDP service behind the
// last one, sign receipts for every hop, and report throughput, RTT and loss.
//
//   wisp client --via A:PORT[,B:PORT[,C:PORT]] --exit SERVICE:PORT [--keys FP_A,FP_B,FP_C]
//               [--dtls on|off] [--trust-first-hop] [--seconds N] [--size BYTES] [--rate-kbit K]
//               [--payer-key FILE] [--max-spend BYTES]
//   wisp client --peers NAME=ADDR:PORT[=FP],...|FILE [--hops N] [--exit-via NAME] [--silence-ms MS]
//               --exit SERVICE:PORT [--seconds N] [--size BYTES] [--rate-kbit K]
//               [--payer-key FILE] [--max-spend BYTES]
//
// With --peers the client chooses the path itself and fails over (MeshClient.swift).
//
// Receipts (v2, CircuitClient.swift): every relay whose key is given gets receipts signed
// with the payer key (`--payer-key`; without it a key made for this run, with a warning
// naming it), each on the binding that relay drew for the circuit (its BIND). With
// `--max-spend` the client stops sending before what it signed, summed over every hop
// and circuit (what settlement counts against the payer's budget), would pass the cap,
// and says so on stderr and in its summary.
//
// Frames to the first relay travel in a DTLS session (default; `--dtls off`: plain), pinned
// to the first relay's key from --keys or --peers. A first relay without a pinned key is an
// error unless `--trust-first-hop` accepts its key on first use, with a warning on stderr.
// RTT probes (--peers) need no session: a PING and a DTLS ClientHello the node answers
// statelessly with a HelloVerifyRequest, also with `links = required` (HelloProbe.swift).
//
// The service must echo (the client measures RTT and loss from the echoes, and signs
// for twice the echoed bytes: each crossed every hop out and back).
import CPosix
import WispCore
import WispNode
import WispClient
import WispOS
import WispTLS

enum ClientCommand {
  static func main(_ inv: Invocation) -> Int32 {
    func usage(_ m: String) -> Int32 {
      Console.err("wisp: \(m)")
      Console.err(Arguments.usage(.client))
      return 2
    }
    if inv.value("--peers") != nil {
      if inv.value("--via") != nil || inv.value("--keys") != nil {
        return usage("'--peers' replaces '--via' and '--keys' (give fingerprints as NAME=ADDR:PORT=FP)")
      }
      return mesh(inv, usage)
    }
    for o: StaticString in ["--hops", "--exit-via", "--silence-ms"] where inv.value(o) != nil {
      return usage("'\(o)' needs '--peers'")
    }
    guard let viaText = inv.value("--via") else { return usage("'wisp client' needs --via ADDR:PORT[,ADDR:PORT...] or --peers") }
    var relays: [Endpoint] = []
    for part in viaText.utf8.split(separator: 44) {
      guard let e = Endpoint(String(part)!) else { return usage("'--via' takes ADDR:PORT[,ADDR:PORT...], not '\(viaText)'") }
      relays.append(e)
    }
    if relays.isEmpty || relays.count > Wire.maxHops { return usage("'--via' takes 1 to \(Wire.maxHops) relays") }
    guard let exitText = inv.value("--exit"), let exit = Endpoint(exitText) else {
      return usage("'wisp client' needs --exit ADDR:PORT (the UDP service behind the last relay)")
    }
    var keys: [Fingerprint] = []
    if let k = inv.value("--keys") {
      for part in k.utf8.split(separator: 44) {
        guard let fp = Fingerprint(hex: String(part)!) else { return usage("'--keys' takes 64-hex-digit fingerprints") }
        keys.append(fp)
      }
      if keys.count != relays.count { return usage("'--keys' needs one fingerprint per relay in '--via'") }
    }
    let (traffic, sigfd, client): (TrafficOptions, Int32, UDPCircuitClient)
    switch ClientCommand.start(inv) {
    case .success(let r): (traffic, sigfd, client) = r
    case .failure(let e): return e.exitCode == 2 ? usage(e.message) : { Console.err("wisp: \(e.message)"); return 1 }()
    }
    let (seconds, size, kbit) = (traffic.seconds, traffic.size, traffic.kbit)
    if client.useDTLS && keys.isEmpty {
      if !inv.has("--trust-first-hop") { return usage(unpinned(relays[0].text)) }
      warnTrust(relays[0].text)
    }
    if keys.isEmpty {
      for o: StaticString in ["--payer-key", "--max-spend"] where inv.value(o) != nil {
        return usage("'\(o)' needs '--keys': receipts name each relay by its key, without them none is signed")
      }
    } else {
      switch PayerKey.load(inv) {
      case .success(let key): client.enableReceipts(key: key, hops: keys)
      case .failure(let e): Console.err("wisp: \(e.message)"); return e.exitCode
      }
    }
    // With the relays' keys the payload is sealed end to end with the exit (its key is the last).
    for (i, k) in keys.enumerated() where i < relays.count { client.pins.append((relays[i], k)) }
    do { try client.build(relays: relays, exit: exit, exitKey: keys.last) } catch {
      switch error {
      case .refused(let r): Console.err("wisp: the circuit was refused (reason \(r): \(refuseText(r)))")
      case .noAnswer: Console.err("wisp: no answer from \(relays[0].text) while building the circuit")
      case .exitKeyMismatch: Console.err("wisp: the exit's key does not match the fingerprint given in --keys")
      case .session(let why): Console.err("wisp: no DTLS session with \(relays[0].text): \(why)")
      }
      return 1
    }
    Console.out("client: circuit through \(relays.map { $0.text }.joined(separator: " -> ")) to \(exit.text),"
                + " \(size)-byte messages at \(kbit) kbit/s"
                + (keys.isEmpty ? "" : ", signing receipts" + payerText(client, traffic) + ", sealed end to end with the exit"))
    let r = TrafficRun.run(client: client, seconds: seconds, size: Int(size), kbit: kbit, sigfd: sigfd,
                           spendCap: traffic.maxSpend) { _ in "" }
    Console.out(r.summary)
    return 0
  }

  /// `--peers` mode: probe, choose the path, fail over when it goes silent.
  static func mesh(_ inv: Invocation, _ usage: (String) -> Int32) -> Int32 {
    let peers: [MeshPeer]
    switch UDPMeshClient.parsePeers(inv.value("--peers")!) {
    case .success(let p): peers = p
    case .failure(let e): return usage(e.message)
    }
    guard let exitText = inv.value("--exit"), let exit = Endpoint(exitText) else {
      return usage("'wisp client' needs --exit ADDR:PORT (the UDP service behind the last relay)")
    }
    func number(_ name: StaticString, _ dflt: UInt64, _ lo: UInt64, _ hi: UInt64) -> UInt64? {
      ClientCommand.number(inv, name, dflt, lo, hi)
    }
    guard let hops = number("--hops", UInt64(min(3, peers.count)), 1, UInt64(Wire.maxHops)) else {
      return usage("'--hops' must be 1-\(Wire.maxHops)")
    }
    if Int(hops) > peers.count { return usage("'--hops \(hops)' needs at least \(hops) peers") }
    var exitVia: Int? = nil
    if let name = inv.value("--exit-via") {
      guard let i = peers.firstIndex(where: { $0.name.same(name) }) else { return usage("'--exit-via': no peer named '\(name)'") }
      exitVia = i
    }
    guard let silenceMs = number("--silence-ms", 1500, 100, 60_000) else { return usage("'--silence-ms' must be 100-60000") }
    let (traffic, sigfd, client): (TrafficOptions, Int32, UDPCircuitClient)
    switch ClientCommand.start(inv) {
    case .success(let r): (traffic, sigfd, client) = r
    case .failure(let e): return e.exitCode == 2 ? usage(e.message) : { Console.err("wisp: \(e.message)"); return 1 }()
    }
    let (seconds, size, kbit) = (traffic.seconds, traffic.size, traffic.kbit)
    if client.useDTLS && !inv.has("--trust-first-hop") && !peers.contains(where: { $0.key != nil }) {
      return usage(unpinned("any peer"))
    }
    if client.useDTLS && inv.has("--trust-first-hop") && peers.contains(where: { $0.key == nil }) {
      warnTrust("a peer listed without a fingerprint")
    }
    let signing = peers.contains { $0.key != nil }
    if signing {
      switch PayerKey.load(inv) {
      case .success(let key): client.enableReceipts(key: key, hops: [])
      case .failure(let e): Console.err("wisp: \(e.message)"); return e.exitCode
      }
    } else {
      for o: StaticString in ["--payer-key", "--max-spend"] where inv.value(o) != nil {
        return usage("'\(o)' needs the relays' keys (NAME=ADDR:PORT=FP in '--peers'): without them no receipt is signed")
      }
    }
    guard let mesh = try? UDPMeshClient(peers: peers, hops: Int(hops), exitVia: exitVia, exit: exit, client: client,
                                     silenceMs: silenceMs) else {
      Console.err("wisp: cannot open a UDP socket"); return 1
    }
    mesh.firstHopNeedsKey = client.useDTLS && !inv.has("--trust-first-hop")
    if !mesh.start() {
      Console.err("wisp: no path of \(hops) relays to \(exit.text) could be built")
      return 1
    }
    Console.out("client: circuit through \(mesh.pathText(mesh.path)) to \(exit.text), \(size)-byte messages at \(kbit) kbit/s"
                + (signing ? ", signing receipts" + payerText(client, traffic) : "") + ", rebuilding after \(silenceMs) ms of silence")
    let r = TrafficRun.run(client: client, seconds: seconds, size: Int(size), kbit: kbit, sigfd: sigfd,
                           spendCap: traffic.maxSpend, watch: { now in mesh.watch(now) }) { _ in "" }
    _ = mesh.watch(Clock.nowNs())  // a reroute whose first echo came during the drain
    Console.out(r.summary)
    Console.out("client: reroutes \(mesh.reroutes), final path \(mesh.pathText(mesh.path))"
                + (mesh.reroutes > 0 ? ", last reroute \(mesh.lastRerouteMs) ms" : ""))
    return 0
  }

  /// ", payer FP[, spending cap N bytes]" for the start line.
  static func payerText(_ client: UDPCircuitClient, _ traffic: TrafficOptions) -> String {
    guard let k = client.signer else { return "" }
    return " as payer \(PayerKey.fingerprint(k).hex)" + (traffic.maxSpend > 0 ? ", spending cap \(traffic.maxSpend) bytes" : "")
  }

  /// Why a DTLS first hop without a pinned key is refused, and what to do.
  static func unpinned(_ who: String) -> String {
    "no pinned key for the first hop (\(who)): give its fingerprint ('--keys FP,...', or NAME=ADDR:PORT=FP in"
      + " '--peers'; 'wisp id' on that node prints it), or '--trust-first-hop' to accept whatever key it presents,"
      + " or '--dtls off' for a plain link"
  }

  /// The warning '--trust-first-hop' prints: the session is encrypted but not authenticated.
  static func warnTrust(_ who: String) {
    Console.err("wisp: WARNING: --trust-first-hop: the DTLS session with \(who) is NOT authenticated: the client"
                + " accepts whatever key the first hop presents, so anyone on the path can pose as it. Pin its"
                + " fingerprint instead (wisp id on that node).")
  }

  struct StartError: Error {
    let message: String
    let exitCode: Int32
  }

  /// What both modes do first: traffic options, signals through a signalfd, the socket.
  static func start(_ inv: Invocation) -> Result<(TrafficOptions, Int32, UDPCircuitClient), StartError> {
    let traffic: TrafficOptions
    switch TrafficOptions.parse(inv) {
    case .success(let t): traffic = t
    case .failure(let e): return .failure(StartError(message: e.message, exitCode: 2))
    }
    wisp_ignore_sigpipe()
    let sigfd = wisp_signalfd()
    guard let client = try? UDPCircuitClient() else { return .failure(StartError(message: "cannot open a UDP socket", exitCode: 1)) }
    client.useDTLS = true
    if let d = inv.value("--dtls") {
      if d.is("off") { client.useDTLS = false } else if !d.is("on") {
        return .failure(StartError(message: "option '--dtls' must be on or off, not '\(d)'", exitCode: 2))
      }
    }
    if !client.useDTLS && inv.has("--trust-first-hop") {
      return .failure(StartError(message: "'--trust-first-hop' needs DTLS (it is on unless '--dtls off')", exitCode: 2))
    }
    return .success((traffic, sigfd, client))
  }

  /// An option's whole-number value, `dflt` when absent, nil when out of [lo, hi].
  static func number(_ inv: Invocation, _ name: StaticString, _ dflt: UInt64, _ lo: UInt64, _ hi: UInt64) -> UInt64? {
    guard let t = inv.value(name) else { return dflt }
    guard let n = parseDecimal(t), n >= lo, n <= hi else { return nil }
    return n
  }

  static func refuseText(_ r: UInt8) -> String { RefusalText.of(r) }
}

/// `--seconds`, `--size`, `--rate-kbit`: what both client modes send; `--max-spend`: the
/// most they may sign (0: no cap).
struct TrafficOptions {
  var seconds: UInt64
  var size: UInt64
  var kbit: UInt64
  var maxSpend: UInt64 = 0

  struct Bad: Error { let message: String }

  static func parse(_ inv: Invocation) -> Result<TrafficOptions, Bad> {
    guard let seconds = ClientCommand.number(inv, "--seconds", 10, 1, 86_400) else { return .failure(Bad(message: "'--seconds' must be 1-86400")) }
    guard let size = ClientCommand.number(inv, "--size", 1200, 16, UInt64(Wire.maxBody)) else {
      return .failure(Bad(message: "'--size' must be 16-\(Wire.maxBody)"))
    }
    guard let kbit = ClientCommand.number(inv, "--rate-kbit", 8000, 8, 10_000_000) else {
      return .failure(Bad(message: "'--rate-kbit' must be 8-10000000"))
    }
    var maxSpend: UInt64 = 0
    if let m = inv.value("--max-spend") {
      guard let n = parseDecimal(m), n > 0 else { return .failure(Bad(message: "'--max-spend' must be a number of bytes above 0, not '\(m)'")) }
      maxSpend = n
    }
    return .success(TrafficOptions(seconds: seconds, size: size, kbit: kbit, maxSpend: maxSpend))
  }
}

/// Paced traffic through a built circuit, a status line a second, receipts as they fall due.
enum TrafficRun {
  struct Result {
    var summary: String
    var interrupted: Bool
  }

  /// Sends `size`-byte messages at `kbit` for `seconds` (0 = until a signal). `extra` adds
  /// text to each status line (the demo shows its nodes there). `watch`, called on every
  /// turn of the loop with the time, may rebuild the circuit (mesh failover); it returns
  /// true when it did, and pacing restarts from then (no burst to catch up).
  /// `spendCap` (0: none): no message is sent whose cost (its body at every paying hop,
  /// out and back), on top of what the payer owes and a reserve for the last receipts
  /// and BINDs (CircuitClient.capReserve), would pass it; the run then drains and ends,
  /// saying so on stderr and in the summary.
  static func run(client: UDPCircuitClient, seconds: UInt64, size: Int, kbit: UInt64, sigfd: Int32, spendCap: UInt64 = 0,
                  watch: ((UInt64) -> Bool)? = nil, extra: (UInt64) -> String) -> Result {
    let start = Clock.nowNs()
    var nextReport = start + 1_000_000_000
    var seq: UInt64 = 0
    var lastReceived: UInt64 = 0
    var lastBytes: UInt64 = 0
    var interrupted = false
    var capReached = false
    client.spendCap = spendCap
    let body = UInt64(client.messageBody(size: size))
    // Messages every 10 ms so that the rate is kbit/s.
    let perTick = max(UInt64(1), kbit * 1000 / 8 / UInt64(size) / 100)
    var nextSend = start
    while true {
      let now = Clock.nowNs()
      if seconds > 0 && now - start >= seconds * 1_000_000_000 { break }
      if sigfd >= 0 && wisp_signalfd_read(sigfd) != 0 { interrupted = true; break }
      if now >= nextSend {
        for _ in 0..<perTick {
          // Its body crosses every paying hop out and back.
          if !client.fitsCap(bodyBytes: body, ways: 2) { capReached = true; break }
          client.send(seq: seq, size: size)
          seq += 1
        }
        if capReached { break }
        nextSend += 10_000_000
      }
      client.receiveEchoes(waitMs: Int32(nextSend > now ? (nextSend - now) / 1_000_000 + 1 : 0))
      client.sendReceiptsIfDue()
      if let watch, watch(Clock.nowNs()) { nextSend = Clock.nowNs() }
      if now >= nextReport {
        nextReport += 1_000_000_000
        let (p50, p99) = client.rttPercentiles()
        let rate = (client.bytesReceived - lastBytes) * 8 / 1000
        let got = client.received - lastReceived
        lastReceived = client.received
        lastBytes = client.bytesReceived
        Console.out("t=\((now - start) / 1_000_000_000)s client: \(got) echoes/s \(formatFixed(rate, decimals: 3)) Mbit/s"
                    + " rtt p50 \(formatFixed(UInt64(p50), decimals: 3)) ms p99 \(formatFixed(UInt64(p99), decimals: 3)) ms"
                    + (client.signer == nil ? "" : " signed \(client.spent) B") + extra(now - start))
      }
    }
    // Drain: wait for the echoes still on their way (slow paths take longer than 200 ms)
    // until none came for max(200 ms, 2 x p99 RTT), at most 3 s.
    let sendEnd = Clock.nowNs()
    let quietNs = min(max(UInt64(200_000_000), UInt64(client.rttPercentiles().1) * 2_000), 2_000_000_000)
    while true {
      client.receiveEchoes(waitMs: 20)
      let now = Clock.nowNs()
      if now - max(client.lastEchoNs, sendEnd) >= quietNs || now - sendEnd >= 3_000_000_000 { break }
    }
    client.sendReceiptsIfDue(force: true)
    if capReached {
      Console.err("wisp: client: spending cap reached: \(client.spent) bytes signed of a cap of \(spendCap); sending nothing more")
    }
    let elapsed = max(sendEnd - start, 1)
    let lost = client.sent > client.received ? client.sent - client.received : 0
    let lossMilli = client.sent == 0 ? 0 : lost * 100_000 / client.sent
    let (p50, p99) = client.rttPercentiles()
    let kbitAvg = client.bytesReceived * 8 * 1_000_000 / elapsed
    var s = "client: sent \(client.sent), echoed back \(client.received), duplicates \(client.duplicates),"
    s += " loss \(formatFixed(lossMilli, decimals: 3))%, bytes sent \(client.bytesSent) echoed \(client.bytesReceived),"
    s += " \(formatFixed(kbitAvg, decimals: 3)) Mbit/s, rtt p50 \(formatFixed(UInt64(p50), decimals: 3)) ms"
    s += " p99 \(formatFixed(UInt64(p99), decimals: 3)) ms"
    if client.signer != nil {
      s += ", receipts sent \(client.receiptsSent), \(client.spent) bytes signed in all"
        + (spendCap == 0 ? "" : " of a cap of \(spendCap)" + (capReached ? " (cap reached)" : ""))
        + " (this circuit: \(client.signedText))"
    }
    return Result(summary: s, interrupted: interrupted)
  }
}

/// The payer key both client commands sign receipts with.
enum PayerKey {
  /// `--payer-key FILE` (or `alias`, an older name for it), a P-256 key in PEM as
  /// `wisp keygen` writes it; without one, a key made for this run, with a warning that
  /// names its fingerprint: no payer list lists it, so nodes that require listed payers
  /// earn nothing from its receipts and close its circuits after their unbound allowance.
  static func load(_ inv: Invocation, alias: StaticString? = nil) -> Result<P256Signer, ClientCommand.StartError> {
    var path = inv.value("--payer-key")
    if path == nil, let a = alias { path = inv.value(a) }
    guard let path else {
      guard let k = P256Signer.generate() else { return .failure(.init(message: "cannot make a payer key", exitCode: 1)) }
      Console.err("wisp: WARNING: no --payer-key: receipts are signed by a key made for this run, payer "
                  + "\(P256Verifier().fingerprint(ofKey: k.publicKey).hex). No payer list lists it: a node that requires"
                  + " listed payers earns nothing from these receipts and closes the circuits after its unbound"
                  + " allowance. Give a listed payer's key (a P-256 key in PEM, as 'wisp keygen --state-dir DIR' writes"
                  + " DIR/node.key).")
      return .success(k)
    }
    let pem: [UInt8]
    do throws(Errno) { pem = try Files.read(path, limit: 16 << 10) } catch {
      return .failure(.init(message: "cannot read the payer key file '\(path)': \(error.description)", exitCode: 1))
    }
    switch P256Signer.parse(pem) {
    case .success(let k): return .success(k)
    case .failure(let e): return .failure(.init(message: "'\(path)' is not a P-256 private key: \(e.description)", exitCode: 1))
    }
  }

  static func fingerprint(_ k: P256Signer) -> Fingerprint { P256Verifier().fingerprint(ofKey: k.publicKey) }
}
