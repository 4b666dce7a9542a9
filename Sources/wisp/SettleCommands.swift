// Settlement tools, host build only (server-side, not firmware; WispSettle):
//
//   wisp credits settle --payers LIST --settlement-keys FP[,FP...] [--threshold K]
//                       [--json | --csv] [--threads N] [--stats] CLAIM|DIR...
//   wisp payers sign --key PEM [--key PEM...] --version N [--created EPOCH] [--out FILE] INPUT
//   wisp payers check --settlement-keys FP[,FP...] [--threshold K] LIST
//   wisp credits make-claims ...            (developer tool: claims made to order, ClaimFixtures)
//
// Exit codes (SETTLEMENT.md): 0 settled, nothing flagged; 3 settled, something flagged
// (a rejected receipt, a claim not valid, a payer over budget); 1 could not settle (payer
// list unreadable or not signed as required, no claim readable); 2 usage.
// The device binary answers these with "not in this build" (exit 2).
import CPosix
import WispCore
import WispOS
#if !hasFeature(Embedded)
import WispTLS
import WispSettle
#endif

enum SettleCommands {
  /// Whether `inv` asks for a host-only settlement tool.
  static func wanted(_ inv: Invocation) -> Bool {
    if inv.command == .payers { return true }
    guard inv.command == .credits, let a = inv.positionals.first else { return false }
    return a.is("settle") || a.is("make-claims")
  }

  static func main(_ inv: Invocation) -> Int32 {
    #if hasFeature(Embedded)
      let name = inv.command == .payers ? "payers" : "credits " + (inv.positionals.first ?? "")
      Console.err("wisp: '\(name)' is a settlement tool, not in this build (\(Build.flavour) \(Build.triple));"
                  + " use the host build: swift build -c release && .build/release/wisp \(name)")
      return 2
    #else
      if inv.command == .payers {
        guard let a = inv.positionals.first else { Console.err(Arguments.usage(.payers)); return 2 }
        if a.is("sign") { return sign(inv) }
        if a.is("check") { return check(inv) }
        Console.err("wisp: unknown payers action '\(a)' (sign INPUT, check LIST)")
        return 2
      }
      if inv.positionals.first?.is("settle") == true { return settle(inv) }
      return makeClaims(inv)
    #endif
  }

  #if !hasFeature(Embedded)
  // MARK: payers sign / check

  /// Reads INPUT: `payer FP FROM UNTIL BUDGET PERIOD` lines; blank lines and `#` comments skipped.
  static func readEntries(_ path: String) -> [PayerEntry]? {
    let text: String
    do throws(Errno) { text = try Files.readText(path) } catch {
      Console.err("wisp: cannot read \(path): \(error.description)")
      return nil
    }
    var out: [PayerEntry] = []
    var n = 0
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      n += 1
      let w = line.split(separator: " ")
      if w.isEmpty || w[0].hasPrefix("#") { continue }
      guard w.count == 6, w[0] == "payer", let fp = Fingerprint(hex: String(w[1])),
            let from = parseDecimal(String(w[2])), let until = parseDecimal(String(w[3])),
            let budget = parseDecimal(String(w[4])), let period = parseDecimal(String(w[5])) else {
        Console.err("wisp: \(path) line \(n): expected 'payer FINGERPRINT VALID-FROM VALID-UNTIL BUDGET PERIOD'")
        return nil
      }
      if from > until { Console.err("wisp: \(path) line \(n): valid-from is after valid-until"); return nil }
      if period == 0 { Console.err("wisp: \(path) line \(n): period must be at least 1 second"); return nil }
      out.append(PayerEntry(fingerprint: fp, validFrom: from, validUntil: until, budget: budget, period: period))
    }
    if out.count > PayerList.maxPayers { Console.err("wisp: more than \(PayerList.maxPayers) payers"); return nil }
    return out
  }

  static func loadKey(_ path: String) -> P256Signer? {
    let bytes: [UInt8]
    do throws(Errno) { bytes = try Files.read(path, limit: 64 << 10) } catch {
      Console.err("wisp: cannot read the key \(path): \(error.description)")
      return nil
    }
    switch P256Signer.parse(bytes) {
    case .success(let k): return k
    case .failure(let e):
      Console.err("wisp: \(path) is not a P-256 private key (\(e.description))")
      return nil
    }
  }

  static func sign(_ inv: Invocation) -> Int32 {
    guard inv.positionals.count == 2 else {
      Console.err("wisp: usage: wisp payers sign --key PEM [--key PEM...] --version N [--created EPOCH] [--out FILE] INPUT")
      return 2
    }
    let keyPaths = inv.values("--key")
    guard !keyPaths.isEmpty, keyPaths.count <= PayerList.maxSignatures else {
      Console.err("wisp: payers sign needs 1 to \(PayerList.maxSignatures) --key PEM (settlement keys, made by 'wisp keygen')")
      return 2
    }
    guard let vText = inv.value("--version"), let version = parseDecimal(vText) else {
      Console.err("wisp: payers sign needs --version N (greater than the list it replaces)")
      return 2
    }
    var created = UInt64(max(0, wisp_realtime_s()))
    if let c = inv.value("--created") {
      guard let x = parseDecimal(c) else { Console.err("wisp: --created needs an epoch in seconds"); return 2 }
      created = x
    }
    guard let entries = readEntries(inv.positionals[1]) else { return 1 }
    var signers: [P256Signer] = []
    for p in keyPaths {
      guard let k = loadKey(p) else { return 1 }
      signers.append(k)
    }
    guard PayerList.sorted(entries) != nil else { Console.err("wisp: a payer is listed twice"); return 1 }
    guard let list = PayerList.build(version: version, created: created, entries: entries, signers: &signers) else {
      Console.err("wisp: signing the payer list failed")
      return 1
    }
    if let out = inv.value("--out") {
      do throws(Errno) { try Files.writeDurably(out, list, mode: 0o644) } catch {
        Console.err("wisp: cannot write \(out): \(error.description)")
        return 1
      }
      Console.out("signed payer list version \(version): \(entries.count) payers, \(signers.count) signature(s), \(out)")
    } else {
      Console.write(1, list.withUnsafeBytes { String(bytes: $0) })
    }
    return 0
  }

  static func check(_ inv: Invocation) -> Int32 {
    guard inv.positionals.count == 2 else {
      Console.err("wisp: usage: wisp payers check --settlement-keys FP[,FP...] [--threshold K] LIST")
      return 2
    }
    var i = inv
    i.options.append((name: "--payers", value: inv.positionals[1]))
    switch CreditsCommands.verifiedPayers(i, verifier: P256Verifier()) {
    case .failure(let e): return e.code
    case .success(let list):
      let l = list!
      let now = UInt64(max(0, wisp_realtime_s()))
      let valid = l.entries.filter { $0.valid(at: now) }.count
      Console.out("valid payer list version \(l.version), created \(l.created) (\(now >= l.created ? now - l.created : 0) s ago):"
                  + " \(l.count) payers, \(valid) valid now; \(l.signatures.count) signature line(s)")
      return 0
    }
  }

  // MARK: settle

  /// Claim files named on the command line; a directory stands for its files, sorted.
  static func claimPaths(_ args: ArraySlice<String>) -> [String] {
    var out: [String] = []
    for a in args {
      if let names = try? Files.list(a) {
        for n in names.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) where !n.hasBytePrefix(".") {
          out.append(a + "/" + n)
        }
      } else {
        out.append(a)
      }
    }
    return out
  }

  static func settle(_ inv: Invocation) -> Int32 {
    if inv.value("--payers") == nil {
      Console.err("wisp: usage: wisp credits settle --payers LIST --settlement-keys FP[,FP...] [--json|--csv] CLAIM...")
      return 2
    }
    if inv.has("--json") && inv.has("--csv") { Console.err("wisp: --json or --csv, not both"); return 2 }
    var threads = max(1, Int(wisp_cpu_count()))
    if let t = inv.value("--threads") {
      guard let n = parseDecimal(t), n >= 1, n <= 256 else { Console.err("wisp: --threads needs 1 to 256"); return 2 }
      threads = Int(n)
    }
    let payers: PayerList
    switch CreditsCommands.verifiedPayers(inv, verifier: FastP256Verifier()) {
    case .failure(let e): return e.code
    case .success(let p): payers = p!
    }
    let paths = claimPaths(inv.positionals.dropFirst())
    if paths.isEmpty { Console.err("wisp: no claim files given"); return 2 }
    let t0 = wisp_monotonic_ns()
    let s = Settlement(payers: payers, threads: threads)
    for p in paths { s.add(path: p) }
    let report = s.finish()
    let seconds = Double(wisp_monotonic_ns() - t0) / 1e9
    if report.problems.count == paths.count && report.nodes.allSatisfy({ $0.receiptLines == 0 }) {
      for p in report.problems { Console.err("wisp: \(p.file): \(p.error)") }
      Console.err("wisp: no claim could be read")
      return 1
    }
    report.write(inv.has("--json") ? .json : inv.has("--csv") ? .csv : .table, to: ReportSink(fd: 1))
    if inv.has("--stats") {
      // Wall time counts waiting for the CPU on a shared machine; CPU time does not: both are given.
      let cpu = processCPUSeconds()
      let cores = Double(min(threads, max(1, Int(wisp_cpu_count()))))
      let perSecond = seconds > 0 ? Double(report.signaturesVerified) / seconds : 0
      Console.err("settle-stats: claims \(report.claims) receipts \(report.receiptLines) signatures \(report.signaturesVerified)"
                  + " keys \(report.payers.reduce(0) { $0 + $1.keys }) seconds \(fixed(seconds, 2)) cpu_seconds \(fixed(cpu, 2)) threads \(threads)"
                  + " verified_per_s \(Int(perSecond)) verified_per_s_per_core \(Int(perSecond / cores))"
                  + " verified_per_cpu_s \(cpu > 0 ? Int(Double(report.signaturesVerified) / cpu) : 0)"
                  + " peak_rss_kib \(ProcessInfo.peakRSSKiB()) library \"\(FastP256Verifier.libraryVersion)\"")
    }
    return report.flagged ? 3 : 0
  }

  /// User + system CPU time of this process so far (/proc/self/stat, in USER_HZ = 100 ticks).
  static func processCPUSeconds() -> Double {
    guard let text = try? Files.readText("/proc/self/stat"), let close = text.utf8.lastIndex(of: 41) else { return 0 }
    let fields = String(text.utf8[text.utf8.index(after: close)...])!.split(separator: " ")
    // After the ")": state is field 3 of the line, utime 14 and stime 15 → indices 11 and 12 here.
    guard fields.count > 12, let u = parseDecimal(String(fields[11])), let k = parseDecimal(String(fields[12])) else { return 0 }
    return Double(u + k) / 100
  }

  static func fixed(_ v: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let n = Int(v * scale + 0.5)  // v >= 0; no libm in this link
    var frac = "\(n % Int(scale))"
    while frac.utf8.count < digits { frac = "0" + frac }
    return "\(n / Int(scale)).\(frac)"
  }

  // MARK: make-claims (developer tool)

  static func makeClaims(_ inv: Invocation) -> Int32 {
    let now = UInt64(max(0, wisp_realtime_s()))
    func number(_ name: StaticString, _ fallback: UInt64) -> UInt64? {
      guard let v = inv.value(name) else { return fallback }
      guard let n = parseDecimal(v) else { Console.err("wisp: \(name) needs a number"); return nil }
      return n
    }
    if let dir = inv.value("--bench") {
      guard let claims = number("--claims", 1000), let per = number("--receipts", 1000),
            let np = number("--payer-count", 1000), claims >= 1, per >= 1, np >= 1 else { return 2 }
      guard let threads = number("--threads", UInt64(max(1, wisp_cpu_count()))) else { return 2 }
      let from = now - 86_400, to = now
      if let e = ClaimFixtures.benchmark(dir: dir, claims: Int(claims), perClaim: Int(per), payers: Int(np),
                                         threads: Int(threads), from: from, to: to, budget: UInt64.max) {
        Console.err("wisp: \(e)")
        return 1
      }
      Console.out("made \(claims) claims of \(per) receipts from \(np) payers in \(dir)")
      return 0
    }
    guard let nodePath = inv.value("--node-key"), !inv.values("--payer-key").isEmpty else {
      Console.err("wisp: usage: wisp credits make-claims --node-key PEM --payer-key PEM [--payer-key PEM...]"
                  + " [--receipts N] [--bytes N] [--epoch E] [--from E] [--to E] [--seed N] [--payers LIST] [--out FILE]"
                  + "  |  --bench DIR [--claims N] [--receipts N] [--payer-count N]")
      return 2
    }
    guard let count = number("--receipts", 1), let bytes = number("--bytes", 1000), let epoch = number("--epoch", now),
          let seed = number("--seed", 1) else { return 2 }
    guard let from = number("--from", epoch > 3600 ? epoch - 3600 : 0), let to = number("--to", epoch + 3600) else { return 2 }
    func load(_ p: String) -> FastP256Signer? {
      guard let b = try? Files.read(p, limit: 64 << 10), let k = FastP256Signer.load(pem: b) else {
        Console.err("wisp: \(p) is not a readable P-256 private key")
        return nil
      }
      return k
    }
    guard var node = load(nodePath) else { return 1 }
    var payers: [FastP256Signer] = []
    for p in inv.values("--payer-key") {
      guard let k = load(p) else { return 1 }
      payers.append(k)
    }
    var payersVersion: UInt64? = nil
    if let p = inv.value("--payers") {
      guard let l = CreditsCommands.readPayerList(p) else { return 1 }
      payersVersion = l.version
    }
    var rng = ClaimFixtures.Sequence(seed: seed)
    var specs: [ClaimFixtures.Spec] = []
    for i in 0..<Int(count) {
      specs.append(ClaimFixtures.Spec(payer: i % payers.count, binding: Binding(hi: rng.next(), lo: rng.next()),
                                      bytes: bytes, epoch: epoch))
    }
    guard let file = ClaimFixtures.claim(node: &node, payers: &payers, specs: specs, from: from, to: to,
                                         payersVersion: payersVersion, verifier: FastP256Verifier()) else {
      Console.err("wisp: building the claim failed (range from \(from) to \(to)?)")
      return 1
    }
    if let out = inv.value("--out") {
      do throws(Errno) { try Files.writeDurably(out, file, mode: 0o644) } catch {
        Console.err("wisp: cannot write \(out): \(error.description)")
        return 1
      }
    } else {
      Console.write(1, file.withUnsafeBytes { String(bytes: $0) })
    }
    return 0
  }
  #endif
}
