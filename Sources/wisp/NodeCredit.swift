// The node's credit: its key, its journal, and the receipts its circuits earn.
//
// Receipts arrive as RECEIPT frames on a circuit (Forwarder.receipt). The first valid
// receipt binds the circuit to the client's serial; every receipt is verified (ECDSA
// P-256), recorded in the journal and raises the circuit's credit, which lets it relay
// `credit_window` bytes more. The journal group-commits on the 1 s tick (at most every
// commit interval), early past a credit threshold, and on shutdown.
//
// Storage errors never stop relaying: the node stops crediting, shows `storage-error`
// (LEDs and status), and reopens the journal every 10 s until the storage is back.
// Shards share the journal under one lock; receipts are rare next to packets.
import CPosix
import WispCore
import WispOS
import WispTLS

final class NodeCredit {
  let directory: String
  let window: UInt64
  let fingerprint: WispCore.Fingerprint
  var journal: Journal<FileJournalStorage, P256Verifier>?
  var lastError: String? = nil
  var nextReopen: UInt64 = 0
  var accepted: UInt64 = 0
  var rejected: UInt64 = 0

  private init(directory: String, window: UInt64, fingerprint: WispCore.Fingerprint) {
    self.directory = directory
    self.window = window
    self.fingerprint = fingerprint
  }

  static func now() -> UInt64 { UInt64(max(0, wisp_realtime_s())) }

  /// The node key (created on first start) and the recovered journal; nil with a logged
  /// reason when the state directory is unusable.
  static func open(directory: String, window: UInt64) -> NodeCredit? {
    guard let key = CreditsCommands.nodeKey(directory, create: true) else {
      Log.error("no node key: relaying without credit", "state_dir=\(directory)")
      return nil
    }
    let c = NodeCredit(directory: directory, window: window,
                       fingerprint: P256Verifier().fingerprint(ofKey: key.publicKey))
    c.reopen()
    if let j = c.journal {
      Log.info("journal recovered", "path=\(directory)/credits.journal receipts=\(j.ledger.receiptCount)"
                 + " receipted_bytes=\(j.ledger.receiptedTotal) torn_tail_bytes=\(j.recovery.tailBytes)")
    }
    return c
  }

  /// (Re)opens the journal after start or a storage error.
  func reopen() {
    let storage: FileJournalStorage
    do { storage = try FileJournalStorage(directory: directory) } catch {
      fail("cannot open the journal: \(error.description)")
      return
    }
    do {
      journal = try Journal.open(storage: storage, node: fingerprint, verifier: P256Verifier(), now: NodeCredit.now(),
                                 window: window)
    } catch {
      fail("cannot open the journal: \(NodeCredit.describe(error))")
      return
    }
    if lastError != nil { Log.info("journal storage is back, crediting again") }
    lastError = nil
  }

  func fail(_ message: String) {
    if lastError == nil { Log.error("journal storage failed: relaying without crediting", "error=\"\(Log.quote(message))\"") }
    lastError = message
    journal = nil
    nextReopen = wisp_monotonic_ns() + 10_000_000_000
  }

  static func describe(_ e: JournalError) -> String {
    switch e {
    case .storage(let s): return "storage error \(s.code)"
    case .wrongNode: return "the journal belongs to another node key"
    case .failed: return "an earlier write failed"
    }
  }

  var failed: Bool { lastError != nil }

  /// A receipt for the circuit whose forward half is `f` (`b` the backward half).
  /// Runs on the shard's thread; the journal is shared under the lock.
  func take(_ r: Receipt, _ f: UnsafeMutablePointer<Half>, _ b: UnsafeMutablePointer<Half>) {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    guard var j = journal else { rejected += 1; return }
    journal = nil  // exclusive while mutated (the value is written back below)
    defer { if !failed { journal = j } }
    if f.pointee.serial == 0 {
      if j.ledger.index(openSerial: r.serial) != nil { rejected += 1; return }  // serial in use by another circuit
      f.pointee.serial = r.serial
      j.openCircuit(client: r.client, serial: r.serial)
    } else if f.pointee.serial != r.serial {
      rejected += 1
      return
    }
    let total = f.pointee.bytes &+ b.pointee.bytes
    if total > f.pointee.reported {
      j.relayed(serial: r.serial, bytes: total - f.pointee.reported)
      f.pointee.reported = total
    }
    do {
      if case .accepted = try j.record(r, now: NodeCredit.now(), live: true) {
        f.pointee.receipted = r.bytes
        accepted += 1
      } else {
        rejected += 1
      }
    } catch {
      fail("receipt write: \(NodeCredit.describe(error))")
    }
  }

  /// A circuit ended (idle, destroyed, refused): its credit stays, it stops being pending.
  func closed(serial: UInt64) {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    journal?.closeCircuit(serial: serial)
  }

  /// Once a second: group commit, compaction, or a retry after a storage error.
  func tick() {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    if failed {
      if wisp_monotonic_ns() >= nextReopen { reopen() }
      return
    }
    guard var j = journal else { return }
    do { _ = try j.tick(now: NodeCredit.now()); journal = j } catch { fail("commit: \(NodeCredit.describe(error))") }
  }

  /// Shutdown: commit what is buffered.
  func close() {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    guard var j = journal else { return }
    do { try j.close(now: NodeCredit.now()); journal = j } catch { fail("final commit: \(NodeCredit.describe(error))") }
  }

  /// (receipted bytes, receipts held, committed bytes)
  func totals() -> (receipted: UInt64, receipts: Int, committed: UInt64) {
    wisp_credit_lock()
    defer { wisp_credit_unlock() }
    guard let j = journal else { return (0, 0, 0) }
    return (j.ledger.receiptedTotal, j.ledger.receiptCount, j.committedTotal)
  }
}
