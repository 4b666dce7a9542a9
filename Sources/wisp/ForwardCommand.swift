// `wisp forward`: a local UDP port carried through the mesh to one destination behind an
// exit (UDPForward.swift does the work; this file parses, wires the loop and prints).
//
//   wisp forward --listen ADDR:PORT --to DEST:PORT
//                (--via A:PORT[,B:PORT[,C:PORT]] [--keys FP,...] | --peers NAME=ADDR:PORT[=FP],...|FILE
//                 [--hops N] [--exit-via NAME])
//                [--dtls on|off] [--trust-first-hop] [--payer-key FILE] [--max-spend BYTES]
//                [--senders N] [--idle-seconds S] [--status-socket PATH]
//
// Receipts go to every relay whose key is given, signed with the payer key (`--payer-key`,
// or its older name `--key`; without one, a key made for this run, with a warning naming
// it), each on the binding that relay drew for the circuit (UDPForward.swift, step 5).
//
// Runs until SIGTERM or SIGINT (receipts for every circuit, then exit 0). SIGUSR1 prints
// the status; `wisp status --socket PATH` asks for it through the status socket.
import CPosix
import WispCore
import WispNode
import WispClient
import WispOS
import WispTLS

enum ForwardCommand {
  static let listenTag: UInt64 = 16
  static let probeTag: UInt64 = 17
  static let statusTag: UInt64 = 18
  static let statusConnectionTags: UInt64 = 32
  static let senderTags: UInt64 = 1 << 20
  static let tickTimer = 1
  static let connectionTimer = 2

  static func main(_ inv: Invocation) -> Int32 {
    func usage(_ m: String) -> Int32 {
      Console.err("wisp: \(m)")
      Console.err(Arguments.usage(.forward))
      return 2
    }
    guard let listenText = inv.value("--listen"), let listenAt = Endpoint(listenText) else {
      return usage("'wisp forward' needs --listen ADDR:PORT (the local UDP port applications send to)")
    }
    guard let toText = inv.value("--to"), let destination = Endpoint(toText) else {
      return usage("'wisp forward' needs --to ADDR:PORT (the destination behind the exit)")
    }
    // The relays: --via (in order, with --keys) or --peers (chosen by RTT, failover).
    var chooser: PathChooser
    if let peersText = inv.value("--peers") {
      if inv.value("--via") != nil || inv.value("--keys") != nil {
        return usage("'--peers' replaces '--via' and '--keys' (give fingerprints as NAME=ADDR:PORT=FP)")
      }
      let peers: [MeshPeer]
      switch UDPMeshClient.parsePeers(peersText) {
      case .success(let p): peers = p
      case .failure(let e): return usage(e.message)
      }
      guard let hops = ClientCommand.number(inv, "--hops", UInt64(min(3, peers.count)), 1, UInt64(Wire.maxHops)) else {
        return usage("'--hops' must be 1-\(Wire.maxHops)")
      }
      if Int(hops) > peers.count { return usage("'--hops \(hops)' needs at least \(hops) peers") }
      var exitVia: Int? = nil
      if let name = inv.value("--exit-via") {
        guard let i = peers.firstIndex(where: { $0.name.same(name) }) else { return usage("'--exit-via': no peer named '\(name)'") }
        exitVia = i
      }
      chooser = PathChooser(peers: peers, hops: Int(hops), exitVia: exitVia)
    } else {
      for o: StaticString in ["--hops", "--exit-via"] where inv.value(o) != nil { return usage("'\(o)' needs '--peers'") }
      guard let viaText = inv.value("--via") else { return usage("'wisp forward' needs --via ADDR:PORT[,...] or --peers") }
      var peers: [MeshPeer] = []
      for part in viaText.utf8.split(separator: 44) {
        guard let e = Endpoint(String(part)!) else { return usage("'--via' takes ADDR:PORT[,ADDR:PORT...], not '\(viaText)'") }
        peers.append(MeshPeer(name: e.text, endpoint: e, key: nil))
      }
      if peers.isEmpty || peers.count > Wire.maxHops { return usage("'--via' takes 1 to \(Wire.maxHops) relays") }
      if let k = inv.value("--keys") {
        let parts = k.utf8.split(separator: 44)
        if parts.count != peers.count { return usage("'--keys' needs one fingerprint per relay in '--via'") }
        for (i, part) in parts.enumerated() {
          guard let fp = Fingerprint(hex: String(part)!) else { return usage("'--keys' takes 64-hex-digit fingerprints") }
          peers[i].key = fp
        }
      }
      chooser = PathChooser(peers: peers, hops: peers.count, exitVia: peers.count - 1)
      chooser.fixedPath = Array(peers.indices)
    }
    var settings = ForwardSettings(destination: destination)
    if let d = inv.value("--dtls") {
      if d.is("off") { settings.useDTLS = false } else if !d.is("on") { return usage("option '--dtls' must be on or off, not '\(d)'") }
    }
    let trust = inv.has("--trust-first-hop")
    if !settings.useDTLS && trust { return usage("'--trust-first-hop' needs DTLS (it is on unless '--dtls off')") }
    if settings.useDTLS && !trust {
      if !chooser.peers.contains(where: { $0.key != nil }) { return usage(ClientCommand.unpinned("any relay")) }
      chooser.firstHopNeedsKey = true
    }
    if settings.useDTLS && trust && chooser.peers.contains(where: { $0.key == nil }) {
      ClientCommand.warnTrust("a first hop given without a fingerprint")
    }
    guard let senders = ClientCommand.number(inv, "--senders", 16, 1, 256) else { return usage("'--senders' must be 1-256") }
    settings.maxSenders = Int(senders)
    guard let idle = ClientCommand.number(inv, "--idle-seconds", 100, 5, 86_400) else { return usage("'--idle-seconds' must be 5-86400") }
    settings.idleNs = idle * 1_000_000_000
    // Receipts: for every hop whose key is known, signed with the payer key.
    let signing = chooser.peers.contains { $0.key != nil }
    if let m = inv.value("--max-spend") {
      guard let n = parseDecimal(m), n > 0 else { return usage("'--max-spend' must be a number of bytes above 0, not '\(m)'") }
      if !signing { return usage("'--max-spend' needs the relays' keys: without them no receipt is signed, so nothing is spent") }
      settings.spendCap = n
    }
    if inv.value("--payer-key") != nil && inv.value("--key") != nil { return usage("'--key' is the older name of '--payer-key': give one") }
    var signer: P256Signer? = nil
    if !signing {
      for o: StaticString in ["--payer-key", "--key"] where inv.value(o) != nil {
        return usage("'\(o)' needs the relays' keys (receipts name each hop by its key)")
      }
    } else {
      switch PayerKey.load(inv, alias: "--key") {
      case .success(let k): signer = k
      case .failure(let e): Console.err("wisp: \(e.message)"); return e.exitCode
      }
    }

    wisp_ignore_sigpipe()
    let control: ControlLoop
    do throws(Errno) { control = try ControlLoop(signals: true) } catch {
      Console.err("wisp: cannot start the event loop: \(error.description)")
      return 1
    }
    let listen: UDPSocket
    do throws(Errno) { listen = try UDPSocket(bind: listenAt, bufferBytes: 4 << 20) } catch {
      Console.err("wisp: cannot listen on \(listenAt.text): \(error.description)")
      return 1
    }
    let probe: UDPSocket
    do throws(Errno) { probe = try UDPSocket(bind: Endpoint(ip: 0, port: 0)) } catch {
      Console.err("wisp: cannot open a UDP socket: \(error.description)")
      listen.close()
      return 1
    }
    let fwd = UDPForwardEngine(settings: settings, listen: listen, probeSocket: probe, chooser: chooser, signer: signer,
                               makeSocket: { try? UDPSocket(bind: Endpoint(ip: 0, port: 0), bufferBytes: 4 << 20) })
    defer { listen.close(); probe.close() }
    do throws(Errno) {
      try control.watch(listen.fd, tag: listenTag)
      try control.watch(probe.fd, tag: probeTag)
    } catch {
      Console.err("wisp: cannot watch the sockets: \(error.description)")
      return 1
    }
    var statusServer: RequestServer? = nil
    var statusFd: Int32 = -1
    if let path = inv.value("--status-socket") {
      statusFd = wisp_unix_listen(path, nil)
      if statusFd < 0 {
        Console.err("wisp: cannot listen on the status socket \(path): \(Errno(-statusFd).description)")
        return 1
      }
      try? control.watch(statusFd, tag: statusTag)
      statusServer = RequestServer(listener: statusFd, listenTag: statusTag, baseTag: statusConnectionTags, control: control,
                                   isComplete: { $0.contains(10) }) { _ in fwd.statusText(nowNs: Clock.nowNs()) }
    }
    defer {
      statusServer?.closeAll()
      if statusFd >= 0 { _ = close(statusFd); if let p = inv.value("--status-socket") { _ = unlink(p) } }
    }
    // Which sender sockets are watched (a slot's client changes when a sender is replaced).
    var watched = [Int32](repeating: -1, count: settings.maxSenders)
    func rewatch() {
      for i in 0..<settings.maxSenders {
        let fd = fwd.sender(at: i)?.client.socket.fd ?? -1
        if fd == watched[i] { continue }
        // A closed socket left the epoll set with its close; only a live one is removed.
        if watched[i] >= 0 && fd >= 0 { control.unwatch(watched[i]) }
        watched[i] = -1
        if fd >= 0, (try? control.watch(fd, tag: senderTags + UInt64(i))) != nil { watched[i] = fd }
      }
    }
    Console.out("forward: \(listenAt.text) -> \(destination.text) through "
                + (chooser.fixedPath != nil ? chooser.pathText(chooser.fixedPath!) : "\(chooser.hops) of \(chooser.peers.count) peers")
                + (signer.map { ", signing receipts as payer \(PayerKey.fingerprint($0).hex)" } ?? ", no receipts (relay keys not given)")
                + (settings.spendCap > 0 ? ", spending cap \(settings.spendCap) bytes" : "")
                + "; datagrams up to \(Wire.maxForwardPayload) bytes (WireGuard: MTU \(Wire.maxForwardPayload - 32))")
    fwd.warmUp(waitMs: 600)
    _ = control.timers.schedule(tickTimer, at: Clock.nowNs() + 250_000_000, every: 250_000_000)
    control.onEvent = { ev in
      let now = Clock.nowNs()
      switch ev {
      case .readable(let tag):
        if tag == listenTag { fwd.listenReadable(nowNs: now) }
        else if tag == probeTag { fwd.probeReadable(nowNs: now) }
        else if tag >= senderTags { fwd.circuitReadable(Int(tag - senderTags), nowNs: now) }
        else if let s = statusServer, s.owns(tag) {
          s.handle(tag, now: now)
          if let d = s.nextDeadline { _ = control.timers.schedule(connectionTimer, at: d) }
        }
        rewatch()
      case .timer(let id):
        if id == tickTimer { fwd.tick(nowNs: now); rewatch() }
        if id == connectionTimer { statusServer?.expire(now: now) }
      case .signal(let s):
        if s == SIGUSR1 { Console.out(fwd.statusText(nowNs: now)) }
        else if s == SIGTERM || s == SIGINT { control.stop() }
        else if s == SIGHUP { Console.out("forward: SIGHUP ignored (restart to change the settings)") }
      }
    }
    control.run()
    fwd.shutdown()
    Console.out(fwd.statusText(nowNs: Clock.nowNs()))
    return 0
  }
}
