// The credit ledger: the latest valid receipt per (payer, binding), and the receipted
// total they make. Runs on host and device.
//
// Rules (issues 5 and 15):
//  1. Only the latest receipt per key counts; its `bytes` is cumulative. The key of a
//     v2 receipt is (payer, binding); of a v1 receipt read from an old journal,
//     (client, serial). The two never collide (the key says its version).
//  2. A receipt adds credit only if it is well formed, names this node, its key matches
//     its signer fingerprint, its signature verifies, and its amount is higher than the
//     latest one for its key. Everything else adds nothing and is counted by reason
//     (`ReceiptRejection`). A 0-byte receipt adds nothing and is never kept (it only binds
//     a live circuit: the credit worker's business, CreditWorker.swift).
//  3. Live rules (the binding is the circuit's, the amount within what was relayed, the
//     epoch, the payer list, the per-payer window) are the credit worker's: the ledger is
//     also what recovery rebuilds from the journal, where none of them apply.
//  4. Entries exist only for receipts that acknowledged at least one byte: they grow with
//     paid traffic, and compaction writes exactly one record per entry.
//
// Entries live in a flat array (ledger order is what compaction writes), found in O(1)
// through a hash index.

/// A receipt the ledger holds: v2 (live since issue 15) or v1 (read from an old journal).
public enum StoredReceipt: Equatable {
  case v1(ReceiptV1)
  case v2(Receipt)

  public var bytes: UInt64 {
    switch self { case .v1(let r): return r.bytes; case .v2(let r): return r.bytes }
  }
  public var epoch: UInt64 {
    switch self { case .v1(let r): return r.epoch; case .v2(let r): return r.epoch }
  }
  /// The payer's (v2) or the client's (v1) fingerprint.
  public var signer: Fingerprint {
    switch self { case .v1(let r): return r.client; case .v2(let r): return r.payer }
  }
  /// The journal's RECEIPT record version for it (JOURNAL-FORMAT.md).
  public var recordVersion: UInt8 {
    switch self { case .v1: return 1; case .v2: return 2 }
  }
  public var encoded: [UInt8] {
    switch self { case .v1(let r): return r.encoded; case .v2(let r): return r.encoded }
  }
  /// `encoded.count`, without encoding.
  public var encodedSize: Int {
    switch self {
    case .v1(let r): return 88 + 2 + r.clientKey.count + r.signature.count
    case .v2(let r): return Receipt.fixedSize + 2 + r.payerKey.count + r.signature.count
    }
  }
  public var key: CreditKey {
    switch self {
    case .v1(let r): return CreditKey(signer: r.client, hi: 0, lo: r.serial, version: 1)
    case .v2(let r): return CreditKey(signer: r.payer, hi: r.binding.hi, lo: r.binding.lo, version: 2)
    }
  }
}

/// What `accept` decided.
public enum ReceiptVerdict: Equatable {
  /// Accepted; `added` is the credit it added over the previous receipt of its key.
  case accepted(added: UInt64)
  case rejected(ReceiptRejection)
}

/// A receipt's identity in the ledger: (payer, binding) for v2, (client, 0, serial) for v1.
public struct CreditKey: Hashable {
  public var signer: Fingerprint
  public var hi: UInt64
  public var lo: UInt64
  public var version: UInt8
  public init(signer: Fingerprint, hi: UInt64, lo: UInt64, version: UInt8) {
    self.signer = signer; self.hi = hi; self.lo = lo; self.version = version
  }
  public static func == (a: CreditKey, b: CreditKey) -> Bool {
    a.lo == b.lo && a.hi == b.hi && a.version == b.version && a.signer == b.signer
  }
  public func hash(into h: inout Hasher) {
    h.combine(lo); h.combine(hi); h.combine(version)
    h.combine(signer.w0); h.combine(signer.w1)
  }
}

/// One key's credit.
public struct CreditEntry {
  public var key: CreditKey
  /// Cumulative bytes of the latest valid receipt.
  public var receipted: UInt64
  /// The latest valid receipt (what compaction keeps).
  public var latest: StoredReceipt
  /// The payer's (v2) or client's (v1) fingerprint.
  public var client: Fingerprint { key.signer }
  /// Whether this is a v1 receipt (from a journal written before issue 15).
  public var isV1: Bool { key.version == 1 }
}

public struct CreditLedger {
  public let node: Fingerprint
  public private(set) var circuits: [CreditEntry] = []
  public private(set) var rejections = RejectionCounters()
  /// Sum of every entry's latest receipted amount (modulo 2^64, JOURNAL-FORMAT.md).
  public private(set) var receiptedTotal: UInt64 = 0
  /// The part of `receiptedTotal` held by v1 receipts (old journals).
  public private(set) var receiptedV1: UInt64 = 0
  public private(set) var v1Count = 0
  var index: [CreditKey: Int] = [:]

  public init(node: Fingerprint) {
    self.node = node
  }

  // MARK: lookup

  public func index(of key: CreditKey) -> Int? { index[key] }

  /// The bytes the latest receipt of (payer, binding) acknowledges (0: none).
  public func receipted(payer: Fingerprint, binding: Binding) -> UInt64 {
    index[CreditKey(signer: payer, hi: binding.hi, lo: binding.lo, version: 2)].map { circuits[$0].receipted } ?? 0
  }

  /// Counts a receipt refused before it reached the ledger (the caller's own checks).
  public mutating func countRejection(_ why: ReceiptRejection) { rejections.count(why) }

  /// Entries (one per key with a receipt).
  public var receiptCount: Int { circuits.count }
  /// Offline the ledger knows no relayed traffic: pending and paused live in a running
  /// node's forwarding table (status). Kept for `wisp credits`.
  public var pendingTotal: UInt64 { 0 }
  public var pausedCount: Int { 0 }

  // MARK: receipts

  /// Checks a v2 receipt and, if it is the new latest for its key, takes it.
  /// `signatureChecked`: the caller has just run `r.check` on it (not run again).
  public mutating func accept<V: SignatureVerifier>(_ r: Receipt, verifier: V, signatureChecked: Bool = false) -> ReceiptVerdict {
    if !signatureChecked, let why = r.check(node: node, verifier: verifier) { rejections.count(why); return .rejected(why) }
    return judgeAndTake(.v2(r))
  }

  /// Checks a v1 receipt (recovery of an old journal) and takes it if it is the new latest.
  public mutating func accept<V: SignatureVerifier>(v1 r: ReceiptV1, verifier: V) -> ReceiptVerdict {
    if let why = r.check(node: node, verifier: verifier) { rejections.count(why); return .rejected(why) }
    return judgeAndTake(.v1(r))
  }

  mutating func judgeAndTake(_ r: StoredReceipt) -> ReceiptVerdict {
    let key = r.key
    let i = index[key]
    if let i {
      let latest = circuits[i].receipted
      if r.bytes == latest { rejections.count(.replay); return .rejected(.replay) }
      if r.bytes < latest { rejections.count(.notHigher); return .rejected(.notHigher) }
    } else if r.bytes == 0 {
      rejections.count(.replay)  // nothing to credit: indistinguishable from a replayed zero
      return .rejected(.replay)
    }
    let previous = i.map { circuits[$0].receipted } ?? 0
    take(r, at: i)
    return .accepted(added: r.bytes &- previous)
  }

  /// Takes an already checked receipt as the latest of its key.
  mutating func take(_ r: StoredReceipt, at found: Int?) {
    let i: Int
    if let found {
      i = found
    } else {
      circuits.append(CreditEntry(key: r.key, receipted: 0, latest: r))
      i = circuits.count - 1
      index[r.key] = i
      if case .v1 = r { v1Count += 1 }
    }
    // Modulo 2^64, like the journal's commit totals: signed amounts from recovery may be anything.
    receiptedTotal = receiptedTotal &- circuits[i].receipted &+ r.bytes
    if case .v1 = r { receiptedV1 = receiptedV1 &- circuits[i].receipted &+ r.bytes }
    circuits[i].receipted = r.bytes
    circuits[i].latest = r
  }

  /// Every latest v2 receipt, in ledger order.
  public var latestReceipts: [Receipt] {
    var out: [Receipt] = []
    for c in circuits { if case .v2(let r) = c.latest { out.append(r) } }
    return out
  }

  /// Every latest v1 receipt (old journals), in ledger order.
  public var latestV1Receipts: [ReceiptV1] {
    var out: [ReceiptV1] = []
    for c in circuits { if case .v1(let r) = c.latest { out.append(r) } }
    return out
  }
}

public enum Credits {
  // MARK: implementation constants (tunable)
  public static let defaultWindow: UInt64 = 4 << 20            // 4 MiB credit window per payer
  public static let defaultUnboundAllowance: UInt64 = 32 << 10 // bytes an unbound circuit may relay
  public static let defaultBindTimeout: UInt32 = 5             // seconds before an unbound circuit is closed
  public static let defaultCommitInterval: UInt64 = 30         // seconds between group commits
  public static let defaultCommitThreshold: UInt64 = 64 << 20  // un-synced receipted bytes that force a commit
  public static let maxPayers = 65_536                        // payers with open circuits the worker tracks (beyond: refused, counted)
  public static let maxClosedDebts = 65_536                   // closed circuits' unpaid debt entries kept (beyond: oldest evicted)
  public static let maxHeldReceipts = 4_096                   // receipts held while the clock is unsynchronised (beyond: oldest dropped)
}
