// `wisp tls-bench`: what DTLS sessions cost this CPU, single-threaded, in one process.
// A developer tool: in the host build only (DeveloperTools.swift), not in the device binary.
//
//   handshakes   a server and a client session wired through in-memory datagram queues
//                (cookies on, mutual authentication with pinned P-256 keys), full and
//                ticket-resumed; CPU of both sides, and of the server alone
//                (CLOCK_THREAD_CPUTIME_ID around every server call);
//   AEAD         one seal + one open of a 1400-byte payload with mbedTLS's cipher layer
//                (counter nonces, 13-byte AAD like a DTLS record): the crypto ceiling;
//   records      one 1400-byte application record client → server through established
//                sessions (mbedtls_ssl_write + mbedtls_ssl_read via DTLSSession).
//
// Rates are per second of this thread's CPU time (the machine may be shared), so they are
// the capacity of one core. Every loop is bounded by a count and by --seconds of wall time.
// Output: a short table, then `bench NAME VALUE UNIT` lines (Tests/Bench/bench.sh).
#if !hasFeature(Embedded)
import WispCore
import WispNode
import WispClient
import WispOS
import WispTLS

/// In-memory datagram queues between the two sessions of a pair.
final class BenchWire {
  var toServer: [[UInt8]] = []
  var toClient: [[UInt8]] = []
  /// When set, the client's datagrams go straight into this session's inbox (record loop).
  var directToServer: DTLSSession? = nil
  var deliveredBytes = 0
  var deliveredRecords = 0
}

/// A server and a client session of one handshake; the server's CPU time is accounted.
final class BenchPair {
  let wire = BenchWire()
  var server: DTLSSession?
  let client: DTLSSession
  var serverCPUNs: UInt64 = 0
  /// ECDHE group the server chose (from its ServerKeyExchange), when asked to look.
  var group: UInt16 = 0
  var watchGroup = false

  init(server sc: DTLSConfig, client cc: DTLSConfig, resume saved: SavedSession?) throws(TLSError) {
    let wire = self.wire
    let t = Clock.threadCPUNs()
    server = try DTLSSession(config: sc, peerIP: 0x7f00_0001, peerPort: 40000, now: { Clock.nowNs() },
                             send: { d in wire.toClient.append(Array(d)); return true },
                             deliver: { d in wire.deliveredBytes += d.count; wire.deliveredRecords += 1 })
    serverCPUNs += Clock.threadCPUNs() &- t
    client = try DTLSSession(config: cc, peerIP: 0x7f00_0001, peerPort: 7400, now: { Clock.nowNs() },
                             send: { d in
                               if let s = wire.directToServer { s.receive(d) } else { wire.toServer.append(Array(d)) }
                               return true
                             },
                             deliver: { _ in })
    if let saved { try client.resume(saved) }
  }

  /// Moves datagrams both ways until none is left (at most `rounds` exchanges).
  func pump(rounds: Int = 32) {
    guard let server else { return }
    client.step()
    for _ in 0..<rounds {
      if wire.toServer.isEmpty && wire.toClient.isEmpty { return }
      let a = wire.toServer
      wire.toServer = []
      let t = Clock.threadCPUNs()
      for d in a { d.withUnsafeBytes { server.receive($0) } }
      server.step()
      serverCPUNs += Clock.threadCPUNs() &- t
      let b = wire.toClient
      wire.toClient = []
      for d in b {
        if watchGroup { TLSBench.findGroup(d, &group) }
        d.withUnsafeBytes { client.receive($0) }
      }
      client.step()
    }
  }

  var established: Bool { server?.state == .established && client.state == .established }

  var failure: String {
    if let e = client.failure { return "client: " + e.description }
    if let e = server?.failure { return "server: " + e.description }
    return "handshake did not complete"
  }

  /// Frees the server session, counting the cost as server CPU.
  func dropServer() {
    wire.directToServer = nil
    let t = Clock.threadCPUNs()
    server = nil
    serverCPUNs += Clock.threadCPUNs() &- t
  }
}

/// Why the benchmark stopped.
enum BenchError: Error {
  case tls(TLSError)
  case failed(String)

  var description: String {
    switch self {
    case .tls(let e): return e.description
    case .failed(let why): return why
    }
  }
}

/// Runs an mbedTLS-facing call, turning its error into a BenchError.
func tls<T>(_ body: () throws(TLSError) -> T) throws(BenchError) -> T {
  do { return try body() } catch { throw BenchError.tls(error) }
}

struct BenchFigure {
  let name: String
  let value: String
  let unit: StaticString
}

enum TLSBench {
  static let maxHandshakes = 200_000
  static let maxOperations: UInt64 = 50_000_000
  static let payloadBytes = 1400

  static func main(_ inv: Invocation) -> Int32 {
    var seconds: UInt64 = 2
    if let s = inv.value("--seconds") {
      guard let v = parseDecimal(s), v >= 1, v <= 60 else { return usage("--seconds must be 1-60") }
      seconds = v
    }
    var algorithms: [AEADAlgorithm] = [.chacha20Poly1305, .aes128GCM]
    if let s = inv.value("--suite") {
      if s.is("chacha") { algorithms = [.chacha20Poly1305] }
      else if s.is("aes") { algorithms = [.aes128GCM] }
      else if !s.is("both") { return usage("--suite must be chacha, aes or both") }
    }
    let budgetNs = seconds * 1_000_000_000
    do {
      if inv.has("--aead-only") { return try aeadOnly(algorithms: algorithms, budgetNs: budgetNs) }
      return try run(algorithms: algorithms, budgetNs: budgetNs, seconds: seconds)
    } catch {
      Console.err("wisp: tls-bench: \(error.description)")
      return 1
    }
  }

  static func usage(_ message: String) -> Int32 {
    Console.err("wisp: \(message)")
    Console.err(Arguments.usage(.tlsBench))
    return 2
  }

  static func identity(_ random: RandomGenerator) throws(BenchError) -> Identity {
    do {
      let pem = try Identity.generateKeyPEM(random: random)
      return try Identity(keyPEM: pem, certificatePEM: nil, path: "tls-bench", random: random)
    } catch {
      throw BenchError.failed("cannot make a benchmark identity: \(error.description)")
    }
  }

  static func configs(_ random: RandomGenerator, server sid: Identity, client cid: Identity,
                      chacha: Bool, mtu: UInt16, cache: Bool = true) throws(BenchError) -> (DTLSConfig, DTLSConfig) {
    // cache off = a client the node has never seen: accepted by key (acceptClients), nothing cached.
    var so = DTLSOptions(role: .server, pinned: cache ? [cid.fingerprint] : [])
    so.cacheVerifiedPeers = cache
    so.acceptClients = !cache
    var co = DTLSOptions(role: .client, pinned: [sid.fingerprint])
    so.prefersChaCha = chacha
    co.prefersChaCha = chacha
    so.mtu = mtu
    co.mtu = mtu
    let s = try tls { () throws(TLSError) in try DTLSConfig(options: so, identity: sid, random: random) }
    let c = try tls { () throws(TLSError) in try DTLSConfig(options: co, identity: cid, random: random) }
    return (s, c)
  }

  struct HandshakeRun {
    var count = 0
    var cpuNs: UInt64 = 0
    var serverCPUNs: UInt64 = 0
    var wallNs: UInt64 = 0
  }

  /// Handshakes back to back for `budgetNs` of wall time (at least one, at most maxHandshakes).
  static func handshakes(server sc: DTLSConfig, client cc: DTLSConfig, resume saved: SavedSession?,
                         budgetNs: UInt64) throws(BenchError) -> HandshakeRun {
    var run = HandshakeRun()
    let start = Clock.nowNs()
    let cpu0 = Clock.threadCPUNs()
    while run.count < maxHandshakes {
      let pair = try tls { () throws(TLSError) in try BenchPair(server: sc, client: cc, resume: saved) }
      pair.pump()
      guard pair.established else { throw BenchError.failed("handshake \(run.count + 1) failed: \(pair.failure)") }
      if saved != nil && !(pair.client.resumed && pair.server?.resumed == true) {
        throw BenchError.failed("handshake \(run.count + 1) was not resumed")
      }
      pair.dropServer()
      run.serverCPUNs += pair.serverCPUNs
      run.count += 1
      if Clock.nowNs() &- start >= budgetNs { break }
    }
    run.cpuNs = Clock.threadCPUNs() &- cpu0
    run.wallNs = Clock.nowNs() &- start
    return run
  }

  /// ns per seal + open of one payload (CPU time), and the iterations run.
  static func aead(_ algorithm: AEADAlgorithm, budgetNs: UInt64) throws(BenchError) -> (ns: UInt64, count: UInt64) {
    var key = [UInt8](repeating: 0, count: algorithm.keyBytes)
    for i in 0..<key.count { key[i] = UInt8(truncatingIfNeeded: i &* 37 &+ 11) }
    let sealer = try tls { () throws(TLSError) in try AEADCipher(algorithm, key: key, salt: 0x7769_7370, sealing: true) }
    let opener = try tls { () throws(TLSError) in try AEADCipher(algorithm, key: key, salt: 0x7769_7370, sealing: false) }
    var plain = [UInt8](repeating: 0, count: payloadBytes)
    for i in 0..<plain.count { plain[i] = UInt8(truncatingIfNeeded: i) }
    var sealed = [UInt8](repeating: 0, count: payloadBytes + AEADCipher.tagBytes)
    var opened = [UInt8](repeating: 0, count: payloadBytes)
    var aad = [UInt8](repeating: 0, count: 13)  // the size of a DTLS record's additional data
    var n: UInt64 = 0
    var failed = false
    let start = Clock.nowNs()
    let cpu0 = Clock.threadCPUNs()
    plain.withUnsafeBytes { p in
      sealed.withUnsafeMutableBytes { s in
        opened.withUnsafeMutableBytes { o in
          aad.withUnsafeMutableBytes { a in
            while n < maxOperations {
              for _ in 0..<32 {
                a.storeBytes(of: n.bigEndian, toByteOffset: 0, as: UInt64.self)
                let sl = sealer.seal(counter: n, aad: UnsafeRawBufferPointer(a), plaintext: p, into: s)
                let ol = opener.open(counter: n, aad: UnsafeRawBufferPointer(a),
                                     sealed: UnsafeRawBufferPointer(rebasing: s[0..<max(sl, 0)]), into: o)
                if sl != payloadBytes + AEADCipher.tagBytes || ol != payloadBytes { failed = true }
                n += 1
              }
              if failed || Clock.nowNs() &- start >= budgetNs { break }
            }
          }
        }
      }
    }
    let cpu = Clock.threadCPUNs() &- cpu0
    if failed || opened != plain { throw BenchError.failed("\(algorithm.name) seal/open round trip failed") }
    return (cpu / max(n, 1), n)
  }

  /// ns per 1400-byte record client → server through established sessions (CPU time).
  static func records(server sc: DTLSConfig, client cc: DTLSConfig, budgetNs: UInt64) throws(BenchError)
    -> (ns: UInt64, count: UInt64, expansion: Int, suite: String)
  {
    let pair = try tls { () throws(TLSError) in try BenchPair(server: sc, client: cc, resume: nil) }
    pair.pump()
    guard pair.established, let server = pair.server else { throw BenchError.failed("handshake failed: \(pair.failure)") }
    defer { pair.dropServer() }
    pair.wire.directToServer = server
    var payload = [UInt8](repeating: 0, count: payloadBytes)
    for i in 0..<payload.count { payload[i] = UInt8(truncatingIfNeeded: i &* 7) }
    var n: UInt64 = 0
    let start = Clock.nowNs()
    let cpu0 = Clock.threadCPUNs()
    var writeError: TLSError? = nil
    payload.withUnsafeBytes { p in
      while n < maxOperations && writeError == nil {
        for _ in 0..<32 {
          do throws(TLSError) { try pair.client.write(p) } catch { writeError = error; break }
          server.step()
          n += 1
        }
        if Clock.nowNs() &- start >= budgetNs { break }
      }
    }
    let cpu = Clock.threadCPUNs() &- cpu0
    if let e = writeError { throw BenchError.tls(e) }
    guard pair.wire.deliveredRecords == Int(n), pair.wire.deliveredBytes == Int(n) * payloadBytes,
          server.state == .established else {
      throw BenchError.failed("records lost: \(pair.wire.deliveredRecords) of \(n) delivered")
    }
    return (cpu / max(n, 1), n, pair.client.recordExpansion, pair.client.cipherSuite)
  }

  /// `--aead-only`: the raw AEAD figures alone, so that a benchmark can measure the ceiling
  /// several times, between its other runs (Tests/Bench/enc-relay.sh).
  static func aeadOnly(algorithms: [AEADAlgorithm], budgetNs: UInt64) throws(BenchError) -> Int32 {
    for alg in algorithms {
      let tag = alg == .chacha20Poly1305 ? "chacha" : "aes"
      let a = try aead(alg, budgetNs: budgetNs)
      Console.out("bench aead_seal_open_1400_\(tag)_ns \(a.ns) ns")
      Console.out("bench aead_ceiling_pps_1400_\(tag) \(1_000_000_000 / max(a.ns, 1)) pps")
    }
    return 0
  }

  static func run(algorithms: [AEADAlgorithm], budgetNs: UInt64, seconds: UInt64) throws(BenchError) -> Int32 {
    let random = try tls { () throws(TLSError) in try RandomGenerator() }
    let sid = try identity(random)
    let cid = try identity(random)
    let chacha = algorithms[0] == .chacha20Poly1305
    var figures: [BenchFigure] = []
    var table: [String] = []
    func put(_ name: String, _ value: String, _ unit: StaticString) { figures.append(BenchFigure(name: name, value: value, unit: unit)) }
    func perSecond(_ count: Int, _ ns: UInt64) -> UInt64 { UInt64(count) * 1_000_000_000 / max(ns, 1) }

    Console.err("tls-bench: \(TLSLibrary.version), \(seconds) s per measurement, single thread")
    // Handshakes: the first one also tells which ECDHE group the server picks and gives the
    // client the session it resumes with.
    let (sc, cc) = try configs(random, server: sid, client: cid, chacha: chacha, mtu: 1400)
    let first = try tls { () throws(TLSError) in try BenchPair(server: sc, client: cc, resume: nil) }
    first.watchGroup = true
    first.pump()
    guard first.established, let saved = first.client.savedSession() else {
      throw BenchError.failed("first handshake failed: \(first.failure)")
    }
    let groupName: StaticString = first.group == 0x001d ? "X25519" : first.group == 0x0017 ? "P-256" : "unknown"
    let suiteName = first.client.cipherSuite
    first.dropServer()

    Console.err("tls-bench: full handshakes ...")
    let full = try handshakes(server: sc, client: cc, resume: nil, budgetNs: budgetNs)
    Console.err("tls-bench: full handshakes, first contact (no verified-certificate cache) ...")
    let (nsc, ncc) = try configs(random, server: sid, client: cid, chacha: chacha, mtu: 1400, cache: false)
    let fresh = try handshakes(server: nsc, client: ncc, resume: nil, budgetNs: budgetNs)
    Console.err("tls-bench: resumed handshakes ...")
    let resumed = try handshakes(server: sc, client: cc, resume: saved, budgetNs: budgetNs)
    // Per server core: what a node pays (the client's half runs on the client).
    put("handshakes_full_per_s", "\(perSecond(full.count, full.serverCPUNs))", "handshakes/s")
    put("handshakes_full_new_peer_per_s", "\(perSecond(fresh.count, fresh.serverCPUNs))", "handshakes/s")
    put("handshakes_full_both_sides_per_s", "\(perSecond(full.count, full.cpuNs))", "handshakes/s")
    put("handshakes_full_server_per_s", "\(perSecond(full.count, full.serverCPUNs))", "handshakes/s")
    put("handshakes_full_server_cpu_us", "\(full.serverCPUNs / UInt64(max(full.count, 1)) / 1000)", "us")
    put("handshakes_resumed_per_s", "\(perSecond(resumed.count, resumed.serverCPUNs))", "handshakes/s")
    put("handshakes_resumed_both_sides_per_s", "\(perSecond(resumed.count, resumed.cpuNs))", "handshakes/s")
    put("handshakes_resumed_server_per_s", "\(perSecond(resumed.count, resumed.serverCPUNs))", "handshakes/s")
    table.append("handshakes (\(suiteName), ECDHE \(groupName), ECDSA P-256 mutual, cookies on)")
    for (label, r) in [("full (known peer)     ", full), ("full (first contact)  ", fresh), ("resumed (ticket)      ", resumed)] {
      let n = UInt64(max(r.count, 1))
      table.append("  \(label)  \(r.count) in \(formatFixed(r.wallNs / 10_000_000, decimals: 2)) s wall: "
                   + "\(perSecond(r.count, r.cpuNs))/s of CPU (both sides), server \(formatFixed(r.serverCPUNs / n / 10_000, decimals: 2)) ms CPU "
                   + "each = \(perSecond(r.count, r.serverCPUNs))/s per server core, client \(formatFixed((r.cpuNs &- r.serverCPUNs) / n / 10_000, decimals: 2)) ms")
    }

    table.append("1400-byte payloads: seal + open (one relay hop's crypto), ns of CPU")
    var primaryRatio = ""
    var primaryRecordNs: UInt64 = 0
    for (i, alg) in algorithms.enumerated() {
      let tag = alg == .chacha20Poly1305 ? "chacha" : "aes"
      Console.err("tls-bench: \(alg.name) AEAD ...")
      let a = try aead(alg, budgetNs: budgetNs)
      let aeadPPS = 1_000_000_000 / max(a.ns, 1)
      put("aead_seal_open_1400_\(tag)_ns", "\(a.ns)", "ns")
      put("aead_ceiling_pps_1400_\(tag)", "\(aeadPPS)", "pps")
      Console.err("tls-bench: DTLS records, \(alg.name) ...")
      // MTU 1472 (Ethernet): a 1400-byte payload plus the record's 29-37 bytes must fit.
      let (rsc, rcc) = try configs(random, server: sid, client: cid, chacha: alg == .chacha20Poly1305, mtu: 1472)
      let r = try records(server: rsc, client: rcc, budgetNs: budgetNs)
      let recordPPS = 1_000_000_000 / max(r.ns, 1)
      let ratio100 = (a.ns * 100 + r.ns / 2) / max(r.ns, 1)
      let ratio = formatFixed(ratio100, decimals: 2)
      put("dtls_record_seal_open_1400_\(tag)_ns", "\(r.ns)", "ns")
      put("dtls_record_ratio_aead_1400_\(tag)", ratio, "x")
      if i == 0 { primaryRatio = ratio; primaryRecordNs = r.ns }
      let overhead = r.ns > a.ns ? r.ns - a.ns : 0
      table.append("  \(alg.name): raw AEAD \(a.ns) ns (\(aeadPPS) pps ceiling, \(a.count) runs); "
                   + "DTLS record \(r.ns) ns (\(recordPPS) pps, \(r.count) records, +\(r.expansion) bytes on the wire); "
                   + "record layer +\(overhead) ns = ratio \(ratio)")
    }
    put("dtls_record_seal_open_1400_ns", "\(primaryRecordNs)", "ns")
    put("dtls_record_ratio_aead_1400", primaryRatio, "x")

    Console.out("wisp tls-bench (\(TLSLibrary.version), \(Build.triple), \(seconds) s per measurement, rates per second of one core's CPU)")
    for line in table { Console.out(line) }
    Console.out("note: dtls_record_ratio_aead_1400 is the in-process record-layer ratio (DTLS record path pps / raw AEAD pps, "
                + "\(algorithms[0].name)); the relay's enc_relay_ratio_aead_1400 comes from Tests/Bench/bench.sh")
    Console.out("")
    for f in figures { Console.out("bench \(f.name) \(f.value) \(f.unit)") }
    return 0
  }

  /// Reads the ECDHE named group from a server datagram's ServerKeyExchange, if it has one.
  static func findGroup(_ d: [UInt8], _ group: inout UInt16) {
    var i = 0
    while i + 13 <= d.count {
      let type = d[i]
      let epoch = Int(d[i + 3]) << 8 | Int(d[i + 4])
      let length = Int(d[i + 11]) << 8 | Int(d[i + 12])
      let body = i + 13
      guard body + length <= d.count else { return }
      if type == 22 && epoch == 0 {
        var h = body
        while h + 12 <= body + length {
          let fragLength = Int(d[h + 9]) << 16 | Int(d[h + 10]) << 8 | Int(d[h + 11])
          let offset = Int(d[h + 6]) << 16 | Int(d[h + 7]) << 8 | Int(d[h + 8])
          if d[h] == 12 && offset == 0 && fragLength >= 3 && h + 15 <= d.count && d[h + 12] == 3 {
            group = UInt16(d[h + 13]) << 8 | UInt16(d[h + 14])
          }
          h += 12 + fragLength
        }
      }
      i = body + length
    }
  }
}
#endif
