// `wisp credits` and `wisp journal check`: the credit journal from the command line.
//
//   wisp credits [--state-dir DIR]                      totals, per client, per day
//   wisp credits export [--since EPOCH] [--out FILE]    signed claim file (CLAIM-FORMAT.md)
//   wisp credits verify FILE                            exit 0 valid, 1 invalid
//   (wisp credits selftest-fill: a developer tool, CreditsFill.swift)
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
    Console.err("wisp: unknown credits action '\(action)' (export, verify FILE; selftest-fill in the host build)")
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

  static func export(_ inv: Invocation) -> Int32 {
    let dir = stateDir(inv)
    var since: UInt64 = 0
    if let v = inv.value("--since") {
      guard let s = parseDecimal(v) else { Console.err("wisp: --since needs an epoch in seconds"); return 2 }
      since = s
    }
    guard var key = nodeKey(dir, create: false) else { return 1 }
    guard let s = scan(dir) else { Console.err("wisp: no journal in \(dir)"); return 1 }
    if let stop = s.stop { Console.err("wisp: journal: \(stop.text) at offset \(s.validLength); exporting the valid prefix") }
    let receipts = s.ledger.latestV1Receipts.filter { $0.epoch >= since }  // claim v2: h-settle
    guard let claim = Claim.build(receipts: receipts, signer: &key, created: now(), since: since) else {
      Console.err("wisp: signing the claim failed")
      return 1
    }
    if let out = inv.value("--out") {
      do throws(Errno) { try Files.writeDurably(out, claim, mode: 0o644) } catch {
        Console.err("wisp: cannot write \(out): \(error.description)")
        return 1
      }
      Console.out("exported \(receipts.count) receipts, \(receipts.reduce(0) { $0 + $1.bytes }) bytes to \(out)")
    } else {
      Console.write(1, claim.withUnsafeBytes { String(bytes: $0) })
    }
    return 0
  }

  static func verify(_ inv: Invocation) -> Int32 {
    guard inv.positionals.count == 2 else { Console.err("wisp: usage: wisp credits verify FILE"); return 2 }
    let path = inv.positionals[1]
    guard let file = try? Files.read(path, limit: 64 << 20) else {
      Console.err("invalid: cannot read \(path)")
      return 1
    }
    switch Claim.verify(file, verifier: P256Verifier()) {
    case .success(let c):
      Console.out("valid: node \(c.node.hex), \(c.receipts) receipts, \(c.total) bytes, since \(c.since)")
      return 0
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
