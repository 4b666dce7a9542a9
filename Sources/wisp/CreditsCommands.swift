// `wisp credits` and `wisp journal check`: the credit journal from the command line.
//
//   wisp credits [--state-dir DIR]                      totals, per client, per day
//   wisp credits export [--from E] [--to E] [--payers LIST] [--out FILE]
//                                                       signed claim file (CLAIM-FORMAT.md)
//   wisp credits verify [--payers LIST --settlement-keys FP,...] CLAIM
//                                                       exit 0 valid, 3 receipts rejected, 1 invalid
//   (host build only: `credits settle` and `credits make-claims`, SettleCommands.swift;
//    `credits selftest-fill`, a developer tool, CreditsFill.swift)
//   wisp journal check [--state-dir DIR]                health report
import CPosix
import WispCore
import WispNode
import WispClient
import WispOS
import WispTLS

enum CreditsCommands {
  static let defaultStateDir = "/var/lib/wisp"
  static func stateDir(_ inv: Invocation) -> String { inv.value("--state-dir") ?? defaultStateDir }
  static func journalPath(_ dir: String) -> String { dir + "/credits.journal" }
  static func now() -> UInt64 { UInt64(max(0, wisp_realtime_s())) }

  static func credits(_ inv: Invocation) -> Int32 {
    guard let action = inv.positionals.first else { return report(inv) }
    if action.is("export") { return export(inv) }
    if action.is("verify") { return verify(inv) }
    Console.err("wisp: unknown credits action '\(action)' (export, verify CLAIM; settle, make-claims and selftest-fill in the host build)")
    return 2
  }

  static func journal(_ inv: Invocation) -> Int32 {
    guard let action = inv.positionals.first, action.is("check") else {
      Console.err("wisp: usage: wisp journal check [--state-dir DIR]")
      return 2
    }
    return check(inv)
  }

  // MARK: node key

  /// The node key at `<dir>/node.key` through the one loader (IdentityStore: owner-only
  /// permissions, never replaced); made with its certificate when `create` and missing.
  /// nil with the reason printed; a missing key is silent unless `create`.
  static func nodeKey(_ dir: String, create: Bool, quietIfMissing: Bool = false) -> P256Signer? {
    do { return try IdentityStore(directory: dir).signer(create: create) } catch {
      if quietIfMissing, case .io(_, let e) = error, e == Errno(ENOENT) { return nil }
      Console.err("wisp: \(error.description)")
      return nil
    }
  }

  /// A read-only scan of the journal (nothing is truncated or written).
  static func scan(_ dir: String) -> JournalScan? {
    let path = journalPath(dir)
    guard Files.exists(path) else { return nil }
    guard let bytes = try? Files.read(path, limit: 64 << 20) else {
      Console.err("wisp: cannot read \(path)")
      return nil
    }
    let node = nodeKey(dir, create: false, quietIfMissing: true).map { P256Verifier().fingerprint(ofKey: $0.publicKey) }
    return JournalScan.scan(bytes, node: node, verifier: P256Verifier())
  }

  // MARK: wisp credits

  static func report(_ inv: Invocation) -> Int32 {
    let dir = stateDir(inv)
    guard let s = scan(dir) else {
      Console.out("credits: no journal in \(dir)")
      return 0
    }
    let l = s.ledger
    Console.out("node        \(l.node.hex)")
    Console.out("receipted   \(l.receiptedTotal) bytes in \(l.receiptCount) circuits")
    Console.out("pending     \(l.pendingTotal) bytes (relayed, not yet receipted: known only to a running node)")
    Console.out("paused      \(l.pausedCount) circuits")
    Console.out("committed   \(s.committedTotal) bytes")
    // Per client.
    var clients: [(Fingerprint, UInt64, Int)] = []
    var days: [(Int64, UInt64)] = []
    for c in l.circuits {
      let r = c.latest
      if let i = clients.firstIndex(where: { $0.0 == c.client }) {
        clients[i].1 += r.bytes; clients[i].2 += 1
      } else {
        clients.append((c.client, r.bytes, 1))
      }
      let day = Int64(r.epoch / 86_400)
      if let i = days.firstIndex(where: { $0.0 == day }) { days[i].1 += r.bytes } else { days.append((day, r.bytes)) }
    }
    Console.out("per client:")
    for c in clients { Console.out("  \(c.0.hex)  \(c.1) bytes  \(c.2) circuits") }
    Console.out("per day (of each circuit's latest receipt):")
    days.sort { $0.0 < $1.0 }
    for d in days { Console.out("  \(date(d.0))  \(d.1) bytes") }
    return 0
  }

  static func date(_ days: Int64) -> String {
    let (y, m, d) = Quota.civil(fromDays: days)
    return "\(y)-\(m < 10 ? "0" : "")\(m)-\(d < 10 ? "0" : "")\(d)"
  }

  // MARK: export / verify

  /// Where export remembers its last claim: "to <epoch>" and "sha256 <hex>" lines.
  static func lastExportPath(_ dir: String) -> String { dir + "/claim.last" }

  /// The last export's range end and file hash, if any.
  static func lastExport(_ dir: String) -> (to: UInt64, hash: [UInt8])? {
    guard let text = try? Files.readText(lastExportPath(dir)) else { return nil }
    var to: UInt64? = nil
    var hash: [UInt8]? = nil
    for line in text.split(separator: "\n") {
      let w = line.split(separator: " ")
      guard w.count == 2 else { continue }
      if w[0] == "to" { to = parseDecimal(String(w[1])) }
      if w[0] == "sha256" { hash = bytesFromHex(String(w[1]).utf8).flatMap { $0.count == 32 ? $0 : nil } }
    }
    guard let to, let hash else { return nil }
    return (to, hash)
  }

  /// The receipts the journal holds, latest per key: v2, and v1 from journals written before
  /// issue 15 (the ledger's `latestReceipts` / `latestV1Receipts`, CreditLedger.swift).
  static func exportable(_ s: JournalScan) -> (v2: [Receipt], v1: [ReceiptV1]) {
    (s.ledger.latestReceipts, s.ledger.latestV1Receipts)
  }

  static func export(_ inv: Invocation) -> Int32 {
    let dir = stateDir(inv)
    let last = lastExport(dir)
    var from: UInt64 = last.map { $0.to &+ 1 } ?? 0
    var to = now()
    if let v = inv.value("--from") {
      guard let x = parseDecimal(v) else { Console.err("wisp: --from needs an epoch in seconds"); return 2 }
      from = x
    }
    if let v = inv.value("--to") {
      guard let x = parseDecimal(v) else { Console.err("wisp: --to needs an epoch in seconds"); return 2 }
      to = x
    }
    if from > to {
      Console.err("wisp: the range starts after it ends (from \(from), to \(to)): nothing new since the last export"
                  + " (\(lastExportPath(dir))); give --from/--to")
      return 1
    }
    var payersVersion: UInt64? = nil
    if let path = inv.value("--payers") {
      guard let list = readPayerList(path) else { return 1 }
      payersVersion = list.version
    }
    guard var key = nodeKey(dir, create: false) else { return 1 }
    guard let s = scan(dir) else { Console.err("wisp: no journal in \(dir)"); return 1 }
    if let stop = s.stop { Console.err("wisp: journal: \(stop.text) at offset \(s.validLength); exporting the valid prefix") }
    let all = exportable(s)
    let v2 = all.v2.filter { $0.epoch >= from && $0.epoch <= to }
    let v1 = all.v1.filter { $0.epoch >= from && $0.epoch <= to }
    guard let claim = Claim.build(receipts: v2, v1: v1, signer: &key, from: from, to: to, previous: last?.hash,
                                  payersVersion: payersVersion) else {
      Console.err("wisp: signing the claim failed")
      return 1
    }
    let bytes = v2.reduce(UInt64(0)) { $0 &+ $1.bytes } &+ v1.reduce(UInt64(0)) { $0 &+ $1.bytes }
    if let out = inv.value("--out") {
      do throws(Errno) { try Files.writeDurably(out, claim, mode: 0o644) } catch {
        Console.err("wisp: cannot write \(out): \(error.description)")
        return 1
      }
    } else {
      Console.write(1, claim.withUnsafeBytes { String(bytes: $0) })
    }
    let hash = claim.withUnsafeBytes { TLSLibrary.sha256($0) }
    let state = Array("to \(to)\nsha256 \(hash.withUnsafeBytes { hexString($0) })\n".utf8)
    do throws(Errno) { try Files.writeDurably(lastExportPath(dir), state, mode: 0o600) } catch {
      Console.err("wisp: cannot write \(lastExportPath(dir)): \(error.description) (the next export's range will overlap)")
    }
    let msg = "exported \(v2.count) receipts and \(v1.count) v1 receipts, \(bytes) bytes, range \(from)..\(to)"
      + (inv.value("--out").map { " to \($0)" } ?? "")
    if inv.value("--out") != nil { Console.out(msg) } else { Console.err(msg) }
    return 0
  }

  /// Reads and parses a payer list (format only), printing why not.
  static func readPayerList(_ path: String) -> PayerList? {
    let bytes: [UInt8]
    do throws(Errno) { bytes = try Files.read(path, limit: PayerList.maxFileSize + 1) } catch {
      Console.err("wisp: cannot read the payer list \(path): \(error.description)")
      return nil
    }
    do throws(PayerListError) { return try PayerList.parse(bytes) } catch {
      Console.err("wisp: payer list \(path): \(error.text)")
      return nil
    }
  }

  /// `--settlement-keys FP[,FP...]`: nil (usage printed) when missing or malformed.
  static func settlementKeys(_ inv: Invocation) -> [Fingerprint]? {
    guard let v = inv.value("--settlement-keys") else {
      Console.err("wisp: --payers needs --settlement-keys FP[,FP...] (the fingerprints that must have signed it)")
      return nil
    }
    var out: [Fingerprint] = []
    for part in v.split(separator: ",") {
      guard let f = Fingerprint(hex: String(part)) else {
        Console.err("wisp: --settlement-keys: '\(part)' is not a 64-digit hex fingerprint")
        return nil
      }
      out.append(f)
    }
    if out.isEmpty { Console.err("wisp: --settlement-keys is empty"); return nil }
    return out
  }

  /// The payer list of `--payers`, verified against `--settlement-keys` and `--threshold`;
  /// exit code on failure (2 usage, 1 unreadable or not signed as required).
  static func verifiedPayers<V: SignatureVerifier>(_ inv: Invocation, verifier: V) -> Result<PayerList?, ExitCode> {
    guard let path = inv.value("--payers") else {
      if inv.value("--settlement-keys") != nil { Console.err("wisp: --settlement-keys needs --payers LIST"); return .failure(ExitCode(2)) }
      return .success(nil)
    }
    guard let pins = settlementKeys(inv) else { return .failure(ExitCode(2)) }
    var threshold = 1
    if let t = inv.value("--threshold") {
      guard let k = parseDecimal(t), k >= 1, k <= UInt64(pins.count) else {
        Console.err("wisp: --threshold must be between 1 and the number of settlement keys (\(pins.count))")
        return .failure(ExitCode(2))
      }
      threshold = Int(k)
    }
    guard let list = readPayerList(path) else { return .failure(ExitCode(1)) }
    if let e = list.verify(pinned: pins, threshold: threshold, verifier: verifier) {
      Console.err("wisp: payer list \(path) refused: \(e.text)")
      return .failure(ExitCode(1))
    }
    return .success(list)
  }

  struct ExitCode: Error { let code: Int32; init(_ c: Int32) { code = c } }

  static func verify(_ inv: Invocation) -> Int32 {
    guard inv.positionals.count == 2 else {
      Console.err("wisp: usage: wisp credits verify [--payers LIST --settlement-keys FP[,FP...]] CLAIM")
      return 2
    }
    let v = P256Verifier()
    let payers: PayerList?
    switch verifiedPayers(inv, verifier: v) {
    case .success(let p): payers = p
    case .failure(let e): return e.code
    }
    let path = inv.positionals[1]
    let file: [UInt8]
    do throws(Errno) { file = try Files.read(path, limit: Claim.maxFileSize + 1) } catch {
      Console.err("invalid: cannot read \(path): \(error.description)")
      return 1
    }
    switch Claim.verify(file, payers: payers, verifier: v) {
    case .success(let c):
      Console.out("valid claim: node \(c.node.hex), range \(c.rangeFrom)..\(c.rangeTo), previous "
                  + (c.previous.map { p in p.withUnsafeBytes { hexString($0) } } ?? "none") + ", payers "
                  + (c.payersVersion.map { "version \($0)" } ?? "unverified") + ", amounts cumulative")
      Console.out("receipts \(c.receipts), \(c.total) bytes: \(c.accepted) accepted (\(c.acceptedBytes) bytes"
                  + (c.acceptedV1 > 0 ? ", \(c.acceptedV1) of them v1" : "") + "), \(c.rejected.count) rejected"
                  + (payers.map { " under payer list version \($0.version)" } ?? " (no payer list given: payers unverified)"))
      for r in c.rejected {
        Console.out("rejected line \(r.line): \(r.reason.name) (payer \(r.signer.hex), \(r.bytes) bytes, epoch \(r.epoch))")
      }
      return c.rejected.isEmpty ? 0 : 3
    case .failure(let e):
      Console.err("invalid: \(e.text)")
      return 1
    }
  }

  // MARK: journal check

  static func check(_ inv: Invocation) -> Int32 {
    let dir = stateDir(inv)
    guard let s = scan(dir) else {
      Console.out("journal: none at \(journalPath(dir))")
      return 0
    }
    Console.out("journal     \(journalPath(dir))")
    if let h = s.header { Console.out("node        \(h.node.hex) (generation \(h.generation))") }
    Console.out("records     \(s.validRecords + (s.stop == nil ? 0 : 1)) read, \(s.validRecords) valid")
    Console.out("receipts    \(s.receiptRecords) records, \(s.ledger.receiptCount) circuits, \(s.ledger.receiptedTotal) bytes")
    Console.out("uncommitted \(s.uncommittedRecords) records after the last commit")
    Console.out("torn tail   \(s.tailBytes) bytes")
    if let c = s.lastCommit {
      Console.out("last commit #\(c.sequence) at \(c.epoch) (\(date(Int64(c.epoch / 86_400)))), \(c.total) bytes")
    } else {
      Console.out("last commit none")
    }
    switch s.stop {
    case nil:
      Console.out("status      ok")
      return 0
    case .torn(_)?:
      Console.out("status      ok: \(s.stop!.text) at offset \(s.validLength) (truncated on next open)")
      return 0
    case .invalid(_)?:
      Console.out("status      BAD: \(s.stop!.text) at offset \(s.validLength)")
      return 1
    }
  }
}
