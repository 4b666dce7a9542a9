// `wisp client`: send traffic through a circuit of 1–3 relays to a UDP service behind the
// last one, sign receipts for every hop, and report throughput, RTT and loss.
//
//   wisp client --via A:PORT[,B:PORT[,C:PORT]] --exit SERVICE:PORT [--keys FP_A,FP_B,FP_C]
//               [--dtls on|off] [--trust-first-hop] [--seconds N] [--size BYTES] [--rate-kbit K]
//   wisp client --peers NAME=ADDR:PORT[=FP],...|FILE [--hops N] [--exit-via NAME] [--silence-ms MS]
//               --exit SERVICE:PORT [--seconds N] [--size BYTES] [--rate-kbit K]
//
// With --peers the client chooses the path itself and fails over (MeshClient.swift).
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
    if !keys.isEmpty {
      guard let key = P256Signer.generate() else { Console.err("wisp: cannot make a client key"); return 1 }
      client.enableReceipts(key: key, hops: keys)
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
                + " \(size)-byte messages at \(kbit) kbit/s\(keys.isEmpty ? "" : ", signing receipts, sealed end to end with the exit")")
    let r = TrafficRun.run(client: client, seconds: seconds, size: Int(size), kbit: kbit, sigfd: sigfd) { _ in "" }
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
      guard let key = P256Signer.generate() else { Console.err("wisp: cannot make a client key"); return 1 }
      client.enableReceipts(key: key, hops: [])
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
                + (signing ? ", signing receipts" : "") + ", rebuilding after \(silenceMs) ms of silence")
    let r = TrafficRun.run(client: client, seconds: seconds, size: Int(size), kbit: kbit, sigfd: sigfd,
                           watch: { now in mesh.watch(now) }) { _ in "" }
    _ = mesh.watch(Clock.nowNs())  // a reroute whose first echo came during the drain
    Console.out(r.summary)
    Console.out("client: reroutes \(mesh.reroutes), final path \(mesh.pathText(mesh.path))"
                + (mesh.reroutes > 0 ? ", last reroute \(mesh.lastRerouteMs) ms" : ""))
    return 0
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

/// `--seconds`, `--size`, `--rate-kbit`: what both client modes send.
struct TrafficOptions {
  var seconds: UInt64
  var size: UInt64
  var kbit: UInt64

  struct Bad: Error { let message: String }

  static func parse(_ inv: Invocation) -> Result<TrafficOptions, Bad> {
    guard let seconds = ClientCommand.number(inv, "--seconds", 10, 1, 86_400) else { return .failure(Bad(message: "'--seconds' must be 1-86400")) }
    guard let size = ClientCommand.number(inv, "--size", 1200, 16, UInt64(Wire.maxBody)) else {
      return .failure(Bad(message: "'--size' must be 16-\(Wire.maxBody)"))
    }
    guard let kbit = ClientCommand.number(inv, "--rate-kbit", 8000, 8, 10_000_000) else {
      return .failure(Bad(message: "'--rate-kbit' must be 8-10000000"))
    }
    return .success(TrafficOptions(seconds: seconds, size: size, kbit: kbit))
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
  static func run(client: UDPCircuitClient, seconds: UInt64, size: Int, kbit: UInt64, sigfd: Int32,
                  watch: ((UInt64) -> Bool)? = nil, extra: (UInt64) -> String) -> Result {
    let start = Clock.nowNs()
    var nextReport = start + 1_000_000_000
    var seq: UInt64 = 0
    var lastReceived: UInt64 = 0
    var lastBytes: UInt64 = 0
    var interrupted = false
    // Messages every 10 ms so that the rate is kbit/s.
    let perTick = max(UInt64(1), kbit * 1000 / 8 / UInt64(size) / 100)
    var nextSend = start
    while true {
      let now = Clock.nowNs()
      if seconds > 0 && now - start >= seconds * 1_000_000_000 { break }
      if sigfd >= 0 && wisp_signalfd_read(sigfd) != 0 { interrupted = true; break }
      if now >= nextSend {
        for _ in 0..<perTick { client.send(seq: seq, size: size); seq += 1 }
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
                    + extra(now - start))
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
    let elapsed = max(sendEnd - start, 1)
    let lost = client.sent > client.received ? client.sent - client.received : 0
    let lossMilli = client.sent == 0 ? 0 : lost * 100_000 / client.sent
    let (p50, p99) = client.rttPercentiles()
    let kbitAvg = client.bytesReceived * 8 * 1_000_000 / elapsed
    var s = "client: sent \(client.sent), echoed back \(client.received), duplicates \(client.duplicates),"
    s += " loss \(formatFixed(lossMilli, decimals: 3))%, bytes sent \(client.bytesSent) echoed \(client.bytesReceived),"
    s += " \(formatFixed(kbitAvg, decimals: 3)) Mbit/s, rtt p50 \(formatFixed(UInt64(p50), decimals: 3)) ms"
    s += " p99 \(formatFixed(UInt64(p99), decimals: 3)) ms"
    if client.signer != nil { s += ", receipts sent \(client.receiptsSent) (acknowledging \(client.receiptedUpTo) bytes per hop)" }
    return Result(summary: s, interrupted: interrupted)
  }
}
