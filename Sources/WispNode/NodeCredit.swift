// The node's credit: its key, its journal, the payer list and the receipts its circuits earn.
//
// Receipts (v2, Receipt.swift) arrive as RECEIPT frames on a circuit (Forwarder.receipt)
// and are posted here (CreditWorker). The first valid receipt naming the circuit's binding
// binds the circuit to its payer (it may acknowledge 0 bytes); every receipt is checked
// (the binding, the amount against what was relayed, the epoch, the ECDSA signature, the
// payer list), recorded in the journal when it acknowledges bytes, and moves the circuit's
// limit: receipted + its share of the payer's credit window (PayerBook, PayerCredit.swift).
// A receipt naming a closed circuit's binding pays back that circuit's debt.
//
// Epochs: with the clock synchronised (`clockSynced`) a receipt whose epoch is more than
// Receipt.epochTolerance away is refused (`epoch`). While it is not, the check waits: a
// receipt still moves its circuit's limit, and is held (the latest per binding, at most
// Credits.maxHeldReceipts) until the clock is synchronised, then journaled or refused.
//
// Payer list: with one (`payers`), a receipt whose payer is not listed or not valid at the
// receipt's epoch earns nothing and binds nothing (`unlisted_payer`) when `requirePayers`;
// otherwise it is taken and counted `unlisted`. Without one, payers are unverified.
//
// The journal group-commits on the 1 s tick (at most every commit interval), early past a
// credit threshold, and on shutdown.
//
// Storage errors never stop relaying: the node stops crediting, shows `storage-error`
// (LEDs and status), and reopens the journal every 10 s until the storage is back — a
// reopen counts only once a commit marker has been written and synced (a probe: opening
// alone writes nothing and would succeed on a full or read-only disk). Meanwhile a
// valid receipt still moves its circuit's limit (paying clients keep flowing) but
// credits nothing; after the reopen the next cumulative receipt of each binding credits
// everything it covers.
// All of it runs on the credit worker's thread (CreditWorker); the control plane reads the
// totals for status under the lock.
import CPosix
import WispCore
import WispOS
import WispTLS

public final class NodeCredit {
  public let directory: String
  public let window: UInt64
  public let policy: CommitPolicy
  public let fingerprint: Fingerprint
  /// The node's identity key (receipts name it; sealed exits use it for ECDH).
  public let key: P256Signer
  public var journal: Journal<FileJournalStorage, P256Verifier>?
  public var lastError: String? = nil
  public var nextReopen: UInt64 = 0
  public var accepted: UInt64 = 0
  public var rejected: UInt64 = 0
  /// Valid receipts taken while the storage was failing: window only, no credit.
  public var uncredited: UInt64 = 0
  /// Live rejections by reason (the journal's ledger counts those of recovery).
  public var rejections = RejectionCounters()
  /// Credit per payer (PayerCredit.swift).
  public var book: PayerBook
  /// Whether the kernel's clock is synchronised (the epoch check waits while it is not).
  public var clockSynced: () -> Bool = { true }
  /// The payer list's check: is this payer listed and valid at this epoch (nil: no list,
  /// payers unverified). Replaced under the lock on reload.
  public var payerGate: ((Fingerprint, UInt64) -> Bool)? = nil
  /// Receipts of unlisted payers earn nothing (with a payer list).
  public var requirePayers = true
  /// Valid receipts of unlisted payers taken because `requirePayers` is off.
  public var unlisted: UInt64 = 0
  /// Receipts held while the clock is unsynchronised (journaled or refused once it is).
  public var held: [Receipt] = []
  /// Receipts not held because `Credits.maxHeldReceipts` were (their window moved).
  public var heldDropped: UInt64 = 0
  /// The totals as last seen with a working journal (what status shows while failed).
  public var lastTotals: (receipted: UInt64, receipts: Int, committed: UInt64) = (0, 0, 0)

  private init(directory: String, window: UInt64, policy: CommitPolicy, key: P256Signer, fingerprint: Fingerprint) {
    self.key = key
    self.directory = directory
    self.window = window
    self.policy = policy
    self.fingerprint = fingerprint
    book = PayerBook(window: window)
  }

  public static func now() -> UInt64 { UInt64(max(0, wisp_realtime_s())) }

  /// The node key (created on first start, IdentityStore's checks) and the recovered
  /// journal; nil with a logged reason when the state directory or the key is unusable. `commitInterval` 0 commits every receipt.
  public static func open(directory: String, window: UInt64, commitInterval: UInt64 = Credits.defaultCommitInterval)
    -> NodeCredit?
  {
    let key: P256Signer
    do { key = try IdentityStore(directory: directory).signer(create: true) } catch {
      Log.error("no node key: relaying without credit", "state_dir=\(directory) error=\"\(Log.quote(error.description))\"")
      return nil
    }
    var policy = CommitPolicy()
    policy.interval = commitInterval
    policy.earlyGap = commitInterval / 2
    if commitInterval == 0 { policy.threshold = 0 }  // every accepted receipt commits
    let c = NodeCredit(directory: directory, window: window, policy: policy, key: key,
                       fingerprint: P256Verifier().fingerprint(ofKey: key.publicKey))
    c.reopen()
    if let j = c.journal {
      Log.info("journal recovered", "path=\(directory)/credits.journal receipts=\(j.ledger.receiptCount)"
                 + " receipted_bytes=\(j.ledger.receiptedTotal) torn_tail_bytes=\(j.recovery.tailBytes)")
    }
    return c
  }

  /// (Re)opens the journal after start or a storage error, and proves the storage takes
  /// writes by committing a marker.
  public func reopen() {
    var storage: FileJournalStorage
    do { storage = try FileJournalStorage(directory: directory) } catch {
      fail("cannot open the journal: \(error.description)")
      return
    }
    var j: Journal<FileJournalStorage, P256Verifier>
    do {
      j = try Journal.open(storage: storage, node: fingerprint, verifier: P256Verifier(), now: NodeCredit.now(),
                           policy: policy)
    } catch {
      storage.close()
      fail("cannot open the journal: \(NodeCredit.describe(error))")
      return
    }
    do { try j.commit(now: NodeCredit.now(), force: true) } catch {
      fail("cannot write the journal: \(NodeCredit.describe(error))", closing: j)
      return
    }
    journal = j
    lastTotals = (j.ledger.receiptedTotal, j.ledger.receiptCount, j.committedTotal)
    if lastError != nil {
      Log.info("journal storage is back, crediting again", "receipted_bytes=\(j.ledger.receiptedTotal)")
    }
    lastError = nil
  }

  /// Stops crediting: logs (once per outage), closes the journal's file, schedules a reopen.
  public func fail(_ message: String, closing j: Journal<FileJournalStorage, P256Verifier>? = nil) {
    if lastError == nil { Log.error("journal storage failed: relaying without crediting", "error=\"\(Log.quote(message))\"") }
    lastError = message
    if let j {
      var s = j.storage
      s.close()
    }
    journal = nil
    nextReopen = wisp_monotonic_ns() + 10_000_000_000
  }

  public static func describe(_ e: JournalError) -> String {
    switch e {
    case .storage(let s): return "storage error \(s.code)" + (s.code > 0 ? " (\(Errno(s.code).description))" : "")
    case .wrongNode: return "the journal belongs to another node key"
    case .failed: return "an earlier write failed"
    }
  }

  /// Puts a payer list in force (control thread; under the lock).
  public func setPayers(_ list: PayerList, required: Bool) {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    payerGate = { fp, epoch in list.valid(fp, at: epoch) }
    requirePayers = required
  }

  /// Whether the storage is failing (caller holds the lock, or is the only thread).
  public var isFailed: Bool { lastError != nil }

  /// What status shows, read under the lock from the control plane.
  public func report() -> (totals: (receipted: UInt64, receipts: Int, committed: UInt64), failed: Bool, lastError: String?,
                    accepted: UInt64, rejected: UInt64, uncredited: UInt64) {
    let t = totals()
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    return (t, lastError != nil, lastError, accepted, rejected, uncredited)
  }

  /// A receipt for the circuit `slot` describes (whose binding is `binding`), which has
  /// relayed `total` bytes so far. Runs on the credit worker's thread (CreditWorker): the
  /// ECDSA check and the journal's writes never run where packets are forwarded. The lock
  /// only keeps the status readers of the control plane out while the state changes.
  public func take(_ r: Receipt, slot: inout CreditSlot, relayed total: UInt64, binding: Binding) {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    let synced = clockSynced()
    if r.binding != binding {
      payClosed(r, synced: synced)
      return
    }
    if slot.bound && r.payer != slot.payer { reject(.wrongCircuit); return }
    if slot.bound && r.bytes <= slot.receipted { reject(r.bytes == slot.receipted ? .replay : .notHigher); return }
    if r.bytes > Receipt.acceptable(relayed: total) { reject(.exceedsRelayed); return }
    if synced && !Receipt.epochAcceptable(r.epoch, now: NodeCredit.now()) { reject(.epoch); return }
    if let why = r.check(node: fingerprint, verifier: P256Verifier()) { reject(why); return }
    if !payerAdmitted(r) { return }
    var headroom: UInt64 = 0
    if !slot.bound {
      guard book.open(r.payer) else { reject(.payersFull); return }
      slot.bound = true
      slot.payer = r.payer
      slot.binding = binding
    } else {
      headroom = slot.limit > slot.receipted ? slot.limit - slot.receipted : 0
    }
    slot.receipted = r.bytes
    slot.limit = book.grant(r.payer, headroom: headroom, receipted: r.bytes, relayed: total)
    accepted += 1
    if r.bytes > 0 { synced ? record(r) : hold(r) }
  }

  /// A receipt naming another binding than its circuit's: it may pay back a closed
  /// circuit's debt (PayerBook.pay), never the circuit it came on.
  func payClosed(_ r: Receipt, synced: Bool) {
    guard let d = book.closedDebt(r.binding), d.payer == r.payer else { reject(.wrongBinding); return }
    if r.bytes <= d.receipted { reject(r.bytes == d.receipted ? .replay : .notHigher); return }
    if r.bytes > Receipt.acceptable(relayed: d.relayed) { reject(.exceedsRelayed); return }
    if synced && !Receipt.epochAcceptable(r.epoch, now: NodeCredit.now()) { reject(.epoch); return }
    if let why = r.check(node: fingerprint, verifier: P256Verifier()) { reject(why); return }
    if !payerAdmitted(r) { return }
    book.pay(r.payer, binding: r.binding, bytes: r.bytes)
    accepted += 1
    synced ? record(r) : hold(r)
  }

  /// The payer list's word on a valid receipt: false (counted) when it must earn nothing.
  func payerAdmitted(_ r: Receipt) -> Bool {
    guard let gate = payerGate else { return true }
    if gate(r.payer, r.epoch) { return true }
    if requirePayers { reject(.unlistedPayer); return false }
    unlisted &+= 1
    return true
  }

  func reject(_ why: ReceiptRejection) {
    rejected += 1
    rejections.count(why)
  }

  /// Records a checked receipt in the journal (or, while the storage fails, counts it).
  func record(_ r: Receipt) {
    guard var j = journal else { uncredited += 1; return }
    journal = nil  // exclusive while mutated (the value is written back below)
    defer { if !isFailed { journal = j } }
    do {
      _ = try j.record(r, now: NodeCredit.now(), signatureChecked: true)
    } catch {
      fail("receipt write: \(NodeCredit.describe(error))", closing: j)
    }
  }

  /// Keeps a checked receipt until the clock is synchronised (the latest per binding).
  func hold(_ r: Receipt) {
    if let i = held.firstIndex(where: { $0.binding == r.binding && $0.payer == r.payer }) {
      if r.bytes > held[i].bytes { held[i] = r }
      return
    }
    if held.count >= Credits.maxHeldReceipts {
      heldDropped &+= 1  // its window moved; its credit is lost
      return
    }
    held.append(r)
  }

  /// The clock is synchronised: held receipts are journaled, or refused (`epoch`).
  func releaseHeld() {
    let now = NodeCredit.now()
    let list = held
    held.removeAll(keepingCapacity: true)
    for r in list {
      if Receipt.epochAcceptable(r.epoch, now: now) { record(r) } else { reject(.epoch) }
    }
  }

  /// A bound circuit ended with `relayed` bytes carried: its headroom goes back to its
  /// payer, what it carried beyond its receipts stays with the payer as debt.
  public func closed(_ slot: CreditSlot, relayed: UInt64) {
    guard slot.bound else { return }
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    let headroom = slot.limit > slot.receipted ? slot.limit - slot.receipted : 0
    book.close(slot.payer, binding: slot.binding, headroom: headroom, receipted: slot.receipted, relayed: relayed)
  }

  /// Once a second: group commit, compaction, or a retry after a storage error.
  public func tick() {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    if !held.isEmpty && clockSynced() { releaseHeld() }
    if isFailed {
      if wisp_monotonic_ns() >= nextReopen { reopen() }
      return
    }
    guard var j = journal else { return }
    do { _ = try j.tick(now: NodeCredit.now()); journal = j } catch { fail("commit: \(NodeCredit.describe(error))", closing: j) }
  }

  /// Shutdown: commit what is buffered.
  public func close() {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    guard var j = journal else { return }
    do { try j.close(now: NodeCredit.now()); journal = j } catch { fail("final commit: \(NodeCredit.describe(error))", closing: j) }
  }

  /// The payer table and the other bounded tables, for status.
  public func tables() -> CreditTables {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    var t = CreditTables()
    t.payers = book.payerCount
    t.payersCapacity = book.maxPayers
    t.payersFull = book.payersFull
    t.payersEvicted = book.payersEvicted
    t.closedDebts = book.closedCount
    t.closedCapacity = book.maxClosed
    t.closedEvicted = book.closedEvicted
    t.debtBytes = book.totalDebt
    t.debtPaid = book.debtPaid
    t.held = held.count
    t.heldCapacity = Credits.maxHeldReceipts
    t.heldDropped = heldDropped
    t.unlisted = unlisted
    t.rejections = rejections
    if let j = journal { lastV1 = (j.ledger.v1Count, j.ledger.receiptedV1) }
    t.v1Receipts = lastV1.count
    t.v1Bytes = lastV1.bytes
    return t
  }
  var lastV1: (count: Int, bytes: UInt64) = (0, 0)

  /// (receipted bytes, receipts held, committed bytes); while the storage fails, the
  /// figures of the last working journal.
  public func totals() -> (receipted: UInt64, receipts: Int, committed: UInt64) {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    guard let j = journal else { return lastTotals }
    lastTotals = (j.ledger.receiptedTotal, j.ledger.receiptCount, j.committedTotal)
    return lastTotals
  }
}

/// The credit worker's bounded tables and counters, for status.
public struct CreditTables {
  public var payers = 0, payersCapacity = 0
  public var payersFull: UInt64 = 0, payersEvicted: UInt64 = 0
  public var closedDebts = 0, closedCapacity = 0
  public var closedEvicted: UInt64 = 0
  public var debtBytes: UInt64 = 0, debtPaid: UInt64 = 0
  public var held = 0, heldCapacity = 0
  public var heldDropped: UInt64 = 0
  public var unlisted: UInt64 = 0
  public var rejections = RejectionCounters()
  /// Receipts of journals written before issue 15 (v1), and the bytes they hold.
  public var v1Receipts = 0
  public var v1Bytes: UInt64 = 0
  public init() {}
}
