// `wisp client --peers …`: path choice and failover over a set of known relays.
//
// The client probes every peer (a few bounded rounds of a plain PING and a DTLS ClientHello
// the node answers statelessly, HelloProbe.swift), keeps each one's lowest RTT, and
// builds the cheapest circuit of `hops` relays whose last hop may exit to the service:
// the `--exit-via` peer, or else any peer (a REFUSED 3, exit not allowed, rules that peer
// out as a last hop and the next path is tried). A path's cost is the sum of its relays'
// RTTs from the client: the client cannot measure relay-to-relay links, and by the
// triangle inequality that sum bounds them on a network where they meet near the client.
// The non-exit relays go lowest RTT first.
//
// While traffic runs, `watch` looks for silence: no echo for `silenceNs` after one was
// due means a relay of the circuit died (or lost the circuit). The client then signs a
// last receipt on the old circuit (hops before the dead one still get it), probes every
// peer again, leaves out the ones that stay silent, builds the next cheapest path and
// carries on; when the first echo comes back it prints how long the outage lasted.
// Runs on host and device.
import CPosix
import WispCore
import WispOS
import WispTLS

public struct MeshPeer {
  public init(name: String, endpoint: Endpoint, key: Fingerprint?) {
    self.name = name
    self.endpoint = endpoint
    self.key = key
  }

  public var name: String
  public var endpoint: Endpoint
  public var key: Fingerprint?
  public var rttUs: UInt32 = 0
  public var alive = false
  /// Refused as an exit for the service (REFUSED 3): never the last hop again.
  public var noExit = false
}

/// Path choice and failover on UDP sockets.
public typealias UDPMeshClient = MeshClient<UDPSocket>

public final class MeshClient<S: DatagramSocket> {
  /// The peers and the rules of choosing a path among them.
  public var chooser: PathChooser
  public var peers: [MeshPeer] {
    get { chooser.peers }
    set { chooser.peers = newValue }
  }
  public var hops: Int { chooser.hops }
  public var exitVia: Int? { chooser.exitVia }
  public let exit: Endpoint
  public let client: CircuitClient<S>
  public let probeSocket: S
  public let silenceNs: UInt64
  public var path: [Int] = []
  public var random = KernelRandom()
  public let buf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
  // Failover bookkeeping.
  public var reroutes = 0
  /// From the silence's detection to the first echo on a new circuit.
  public var inOutage = false
  public var outageFromNs: UInt64 = 0
  public var detectedNs: UInt64 = 0
  public var silentText = ""
  public var lastRerouteMs: UInt64 = 0
  public var nextAttemptNs: UInt64 = 0
  /// Only peers with a pinned key may be the first hop (DTLS without --trust-first-hop).
  public var firstHopNeedsKey: Bool {
    get { chooser.firstHopNeedsKey }
    set { chooser.firstHopNeedsKey = newValue }
  }

  /// `probeSocket`: where the PINGs go from (a socket of their own, closed with the client).
  public init(peers: [MeshPeer], hops: Int, exitVia: Int?, exit: Endpoint, client: CircuitClient<S>, probeSocket: S,
              silenceMs: UInt64) {
    self.chooser = PathChooser(peers: peers, hops: hops, exitVia: exitVia)
    self.exit = exit
    self.client = client
    self.silenceNs = silenceMs * 1_000_000
    self.probeSocket = probeSocket
  }

  public convenience init(peers: [MeshPeer], hops: Int, exitVia: Int?, exit: Endpoint, client: CircuitClient<S>,
                          silenceMs: UInt64) throws(Errno) where S == UDPSocket {
    self.init(peers: peers, hops: hops, exitVia: exitVia, exit: exit, client: client,
              probeSocket: try UDPSocket(bind: Endpoint(ip: 0, port: 0), bufferBytes: 1 << 20), silenceMs: silenceMs)
  }

  deinit {
    buf.deallocate()
    probeSocket.close()
  }

  /// Parses `NAME=ADDR:PORT[=FP],…`, or a file with one such peer a line (`#` comments),
  /// by the rules of PeerEntry.
  public static func parsePeers(_ text: String) -> Result<[MeshPeer], UsageError> {
    var source = text
    if !text.utf8.contains(61) {  // no '=': a file name
      guard let t = try? Files.readText(text) else { return .failure(UsageError("cannot read the peer file '\(text)'")) }
      source = t
    }
    let entries: [PeerEntry]
    do { entries = try PeerEntry.parseList(source) } catch { return .failure(UsageError("'--peers': \(error.message)")) }
    if entries.isEmpty { return .failure(UsageError("'--peers' lists no peer")) }
    if entries.count > 64 { return .failure(UsageError("'--peers' takes at most 64 peers")) }
    return .success(entries.map { MeshPeer(name: $0.name, endpoint: $0.endpoint, key: $0.key) })
  }

  /// Probes every peer `rounds` times (100 ms apart) and waits at most `waitMs` after the
  /// last round; a peer is alive if any answer came back, its RTT the lowest seen. Each
  /// round sends two probes: a plain PING (answered by nodes with `links = optional`) and a
  /// DTLS ClientHello, answered by every node with sessions by a stateless
  /// HelloVerifyRequest, also with `links = required` (HelloProbe.swift).
  public func probe(rounds: Int, waitMs: UInt64) {
    let nonce = UInt64(random.next32() & 0xFF_FFFF)
    var answers = [Int](repeating: 0, count: peers.count)
    var best = [UInt64](repeating: UInt64.max, count: peers.count)
    var sentNs = [UInt64](repeating: 0, count: max(rounds, 0) * peers.count)
    let start = Clock.nowNs()
    var sentRounds = 0
    while true {
      let now = Clock.nowNs()
      if sentRounds < rounds && now >= start + UInt64(sentRounds) * 100_000_000 {
        for i in peers.indices {
          let token = nonce << 24 | UInt64(sentRounds & 0xFF) << 16 | UInt64(i)
          sentNs[sentRounds * peers.count + i] = Clock.nowNs()
          MeshClient.sendProbe(probeSocket, buf, to: peers[i].endpoint, token: token, random: &random)
        }
        sentRounds += 1
      }
      if sentRounds == rounds && !answers.contains(where: { $0 < rounds }) { break }
      let lastRound = start + UInt64(rounds - 1) * 100_000_000
      if now >= lastRound + waitMs * 1_000_000 { break }
      if !probeSocket.wait(ms: 20) { continue }
      let at = Clock.nowNs()
      while let (len, from) = probeSocket.receive(into: buf, capacity: 2048) {
        guard let token = MeshClient.probeToken(buf, length: len) else { continue }
        let i = Int(token & 0xFFFF)
        let round = Int(token >> 16 & 0xFF)
        guard token >> 24 == nonce, i < peers.count, round < sentRounds, peers[i].endpoint == from else { continue }
        let t0 = sentNs[round * peers.count + i]
        guard at >= t0 else { continue }
        // The first answer of a round counts (PONG or HelloVerifyRequest, whichever came first).
        sentNs[round * peers.count + i] = UInt64.max
        answers[i] += 1
        best[i] = min(best[i], (at - t0) / 1000)
      }
    }
    for i in peers.indices {
      peers[i].alive = answers[i] > 0
      peers[i].rttUs = answers[i] > 0 ? UInt32(min(best[i], UInt64(UInt32.max))) : 0
    }
  }

  /// Sends one probe to `to`: a PING carrying `token` (and the send time), and a DTLS
  /// ClientHello carrying it, which a node with sessions answers statelessly (HelloProbe).
  public static func sendProbe(_ socket: S, _ buf: UnsafeMutableRawPointer, to: Endpoint, token: UInt64,
                               random: inout KernelRandom) {
    let body = buf + Wire.headerSize
    body.storeBytes(of: (token << 16).bigEndian, as: UInt64.self)
    body.storeBytes(of: Clock.nowNs().bigEndian, toByteOffset: 8, as: UInt64.self)
    let n = Frame.encodeHeader(buf, type: .ping, bodyLength: 16, circuit: 0)
    socket.send(buf, n, to: to)
    var r = random
    let h = HelloProbe.write(buf, token: token) { _ in UInt8(truncatingIfNeeded: r.next32()) }
    random = r
    socket.send(buf, h, to: to)
  }

  /// The token of an answer to `sendProbe` (a PONG or a HelloVerifyRequest), or nil.
  public static func probeToken(_ buf: UnsafeMutableRawPointer, length len: Int) -> UInt64? {
    if let t = HelloProbe.token(UnsafeRawBufferPointer(start: buf, count: len)) { return t }
    guard case .success(let h) = Frame.decode(buf, length: len), h.type == .pong, h.bodyLength >= 16 else { return nil }
    return UInt64(bigEndian: (buf + Wire.headerSize).loadUnaligned(as: UInt64.self)) >> 16
  }

  public func probeReport() -> String {
    var s = "client: probed \(peers.count) peers:"
    for p in peers {
      s += " \(p.name) " + (p.alive ? "\(formatFixed(UInt64(p.rttUs), decimals: 3)) ms" : "silent") + ";"
    }
    return s
  }

  /// Every usable path outside `exclude`, cheapest first (PathChooser).
  public func candidates(exclude: [Int]) -> [(cost: UInt64, path: [Int])] { chooser.candidates(exclude: exclude) }

  public func pathText(_ p: [Int]) -> String { chooser.pathText(p) }

  /// Builds the cheapest path that works (at most 6 tries); false if none did.
  public func connect(exclude: [Int], tries: Int, waitMs: UInt64) -> Bool {
    guard let p = chooser.build(on: client, exit: exit, exclude: exclude, tries: tries, waitMs: waitMs) else { return false }
    path = p
    return true
  }

  /// The first circuit: probe, choose, build.
  public func start() -> Bool {
    probe(rounds: 3, waitMs: 600)
    Console.out(probeReport())
    if !connect(exclude: [], tries: 3, waitMs: 1000) { return false }
    var cost: UInt64 = 0
    for i in path { cost += UInt64(peers[i].rttUs) }
    Console.out("client: path \(pathText(path)) (\(path.count) hops, sum of probe RTTs \(formatFixed(cost, decimals: 3)) ms)")
    return true
  }

  /// Called on every turn of the traffic loop: reports a finished reroute, and rebuilds
  /// when the circuit went silent. True when a new circuit was built.
  public func watch(_ now: UInt64) -> Bool {
    if inOutage && client.circuitBuiltNs > detectedNs && client.circuitEchoes > 0 {
      inOutage = false
      lastRerouteMs = (client.circuitFirstEchoNs - outageFromNs) / 1_000_000
      Console.out("client: rerouted after \(lastRerouteMs) ms via \(pathText(path)) (silent: \(silentText);"
                  + " silence detected after \((detectedNs - outageFromNs) / 1_000_000) ms,"
                  + " probe and rebuild \((client.circuitBuiltNs - detectedNs) / 1_000_000) ms)")
    }
    let quietSince = max(client.lastEchoNs, client.circuitBuiltNs)
    if now < quietSince + silenceNs || now < nextAttemptNs { return false }
    if !inOutage {
      inOutage = true
      outageFromNs = quietSince
      detectedNs = now
    }
    let old = path
    Console.out("client: no echo for \((now - quietSince) / 1_000_000) ms on \(pathText(old)); probing the peers")
    client.sendReceiptsIfDue(force: true)  // settle the old circuit with the hops still there
    // Wait for PONGs 4x the slowest RTT seen so far (150-600 ms): a dead relay costs that.
    var slowest: UInt64 = 0
    for p in peers where p.alive { slowest = max(slowest, UInt64(p.rttUs) / 1000) }
    probe(rounds: 2, waitMs: min(max(slowest * 4, 150), 600))
    let silent = old.filter { !peers[$0].alive }
    silentText = silent.isEmpty ? "none, every relay answers the probe: a new circuit" : silent.map { peers[$0].name }.joined(separator: ", ")
    Console.out(probeReport())
    if !connect(exclude: silent, tries: 2, waitMs: 800) {
      Console.out("client: no working path now; trying again in \(silenceNs / 1_000_000) ms")
      nextAttemptNs = Clock.nowNs() + silenceNs
      return false
    }
    reroutes += 1
    return true
  }
}
