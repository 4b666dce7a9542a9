// The node's credit: its key, its journal, and the receipts its circuits earn.
//
// Receipts arrive as RECEIPT frames on a circuit (Forwarder.receipt). The first valid
// receipt binds the circuit to the client's serial; every receipt is verified (ECDSA
// P-256), recorded in the journal and raises the circuit's credit, which lets it relay
// `credit_window` bytes more. The journal group-commits on the 1 s tick (at most every
// commit interval), early past a credit threshold, and on shutdown.
//
// Storage errors never stop relaying: the node stops crediting, shows `storage-error`
// (LEDs and status), and reopens the journal every 10 s until the storage is back — a
// reopen counts only once a commit marker has been written and synced (a probe: opening
// alone writes nothing and would succeed on a full or read-only disk). Meanwhile a
// valid receipt still moves its circuit's window (paying clients keep flowing) but
// credits nothing; after the reopen the next cumulative receipt of each circuit credits
// everything it covers, since circuits are re-opened in the recovered ledger.
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
  /// The totals as last seen with a working journal (what status shows while failed).
  public var lastTotals: (receipted: UInt64, receipts: Int, committed: UInt64) = (0, 0, 0)

  private init(directory: String, window: UInt64, policy: CommitPolicy, key: P256Signer, fingerprint: Fingerprint) {
    self.key = key
    self.directory = directory
    self.window = window
    self.policy = policy
    self.fingerprint = fingerprint
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
                           policy: policy, window: window)
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

  /// A receipt for the circuit `slot` describes, which has relayed `total` bytes so far.
  /// Runs on the credit worker's thread (CreditWorker): the ECDSA check and the journal's
  /// writes never run where packets are forwarded. The lock only keeps the status readers
  /// of the control plane out while the journal changes.
  public func take(_ r: ReceiptV1, slot: inout CreditSlot, relayed total: UInt64) {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    guard var j = journal else {
      // Storage failing: credit nothing, but a valid receipt still opens the window.
      if (slot.serial == 0 || slot.serial == r.serial) && r.bytes > slot.receipted && r.bytes <= ReceiptV1.acceptable(relayed: total)
        && r.check(node: fingerprint, verifier: P256Verifier()) == nil {
        slot.serial = r.serial
        slot.receipted = r.bytes
        uncredited += 1
      } else {
        rejected += 1
      }
      return
    }
    journal = nil  // exclusive while mutated (the value is written back below)
    defer { if !isFailed { journal = j } }
    // A ledger entry only for a valid receipt: the cheap checks first (the serial's
    // binding, the amount against what was relayed, the node it names), then the
    // signature, and only then an entry (bounded: CreditLedger rule 5).
    if slot.serial != 0 && slot.serial != r.serial { rejected += 1; j.countRejection(.wrongCircuit); return }
    if r.bytes > ReceiptV1.acceptable(relayed: total) { rejected += 1; j.countRejection(.exceedsRelayed); return }
    var checked = false
    if j.ledger.index(openSerial: r.serial) == nil {
      if let why = r.check(node: fingerprint, verifier: j.verifier) { rejected += 1; j.countRejection(why); return }
      checked = true
      // slot.serial == 0: the first receipt binds the circuit. Otherwise the circuit was
      // bound before the journal was reopened: open it in the recovered ledger, which
      // counts what this process relayed on it from the start.
      guard j.openCircuit(client: r.client, serial: r.serial) else {
        rejected += 1  // the ledger is full (counted there), or the serial is another circuit's
        return
      }
      if slot.serial == 0 {
        slot.serial = r.serial
        slot.reported = 0
      } else {
        slot.reported = j.ledger.index(openSerial: r.serial).map { j.ledger.circuits[$0].relayed } ?? 0
      }
    } else if slot.serial == 0 {
      rejected += 1  // serial in use by another circuit
      j.countRejection(.wrongCircuit)
      return
    }
    if total > slot.reported {
      j.relayed(serial: r.serial, bytes: total - slot.reported)
      slot.reported = total
    }
    do {
      if case .accepted = try j.record(r, now: NodeCredit.now(), live: true, signatureChecked: checked) {
        slot.receipted = r.bytes
        accepted += 1
      } else {
        rejected += 1
      }
    } catch {
      // Accepted (the ledger took it) but its commit failed: the window still moves.
      slot.receipted = max(slot.receipted, min(r.bytes, total))
      accepted += 1
      fail("receipt write: \(NodeCredit.describe(error))", closing: j)
    }
  }

  /// A circuit ended (idle, destroyed, refused): its credit stays, it stops being pending.
  public func closed(serial: UInt64) {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    journal?.closeCircuit(serial: serial)
  }

  /// Once a second: group commit, compaction, or a retry after a storage error.
  public func tick() {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
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

  /// The ledger's occupancy: open-circuit entries, the most it holds, receipts refused
  /// because it was full (the last working journal's while the storage fails).
  public func ledgerOccupancy() -> (open: Int, capacity: Int, full: UInt64) {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    if let j = journal { lastOccupancy = (j.ledger.openCount, j.ledger.maxOpen, j.ledger.full) }
    return lastOccupancy
  }
  var lastOccupancy: (open: Int, capacity: Int, full: UInt64) = (0, Credits.maxOpenCircuits, 0)

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
