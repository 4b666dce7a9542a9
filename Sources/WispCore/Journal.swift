// The credit journal: an append-only, CRC-framed log of signed receipts with group
// commit and compaction (DESIGN in JOURNAL-FORMAT.md). Runs on host and device.
//
//  1. open: read the image, scan it (JournalScan), truncate the torn/invalid tail,
//     write a header if the journal is empty; the ledger is what the scan rebuilt.
//  2. record: a receipt the ledger accepts is kept in memory (nothing is written yet),
//     replacing any earlier buffered receipt of the same (payer, binding) — receipts are
//     cumulative, so only the latest one per binding needs to reach the disk — and its
//     added credit counts as un-synced.
//  3. commit: buffer + a commit marker are appended in one write, then synced.
//     It happens when `tick` sees `commitInterval` elapsed, early when un-synced
//     credit reaches `commitThreshold`, and on `close`.
//  4. compact: a new image holding header, the latest receipt per key (v2 and v1),
//     a checkpoint and a commit marker replaces the file atomically.
//  5. A journal written before issue 15 (header format 1, v1 receipts) is read as it is
//     and compacted to format 2 at once by `open` (its v1 receipts kept as they are), so
//     that v2 records never land in a file whose header says format 1.
//
// The caller drives everything with a clock in seconds since the epoch; there are
// no threads and no timers here. After any storage error the journal refuses more
// work (`failed`): the caller reopens it, which recovers from what reached the disk.

public enum JournalError: Error, Equatable {
  case storage(StorageError)
  /// The journal belongs to another node (its header names another fingerprint).
  case wrongNode
  /// An earlier storage error left the in-memory state ahead of the disk.
  case failed
}

public struct CommitPolicy {
  /// Seconds between group commits.
  public var interval: UInt64 = Credits.defaultCommitInterval
  /// Un-synced receipted bytes that force an early commit.
  public var threshold: UInt64 = Credits.defaultCommitThreshold
  /// Early (threshold) commits come at least this many seconds after the previous
  /// commit: at a high relay rate the threshold would otherwise commit every few
  /// seconds (about 4 KiB of flash each). Bounds wear at ~3600/gap commits per hour;
  /// the credit at risk on a power cut is then at most this long of traffic.
  public var earlyGap: UInt64 = Credits.defaultCommitInterval / 2
  /// Compact when the file is larger than this and more than twice its compacted size.
  /// Recovery verifies every receipt in the file (about 1 ms each on x86, several on a
  /// Pi), so this also bounds start-up time: 256 KiB is about 1,100 receipt records.
  public var compactAtBytes = 256 << 10
  public init() {}
}

public struct Journal<S: JournalStorage, V: SignatureVerifier> {
  public private(set) var storage: S
  public let verifier: V
  public private(set) var ledger: CreditLedger
  public var policy: CommitPolicy
  /// The health report of the scan done by `open`.
  public private(set) var recovery: JournalScan
  public private(set) var header: JournalHeader

  /// Accepted receipts not yet appended: the latest per (payer, binding).
  var pending: [Receipt] = []
  /// Receipts accepted since the last commit (superseded ones included).
  public private(set) var bufferedReceipts = 0
  /// Receipts a commit will write (one per circuit with a new receipt).
  public var pendingRecords: Int { pending.count }
  /// Credit accepted since the last commit.
  public private(set) var unsyncedCredit: UInt64 = 0
  public private(set) var lastCommitTime: UInt64
  public private(set) var commitSequence: UInt64
  /// The receipted total as of the last completed commit.
  public private(set) var committedTotal: UInt64
  /// Bytes in the journal file.
  public private(set) var fileLength: Int
  public private(set) var failed = false

  /// Opens (recovering) or creates the journal of `node`.
  public static func open(storage: S, node: Fingerprint, verifier: V, now: UInt64,
                          policy: CommitPolicy = CommitPolicy()) throws(JournalError) -> Journal {
    var storage = storage
    let image: [UInt8]
    do throws(StorageError) { image = try storage.readAll() } catch { throw .storage(error) }
    let scan = JournalScan.scan(image, node: node, verifier: verifier)
    if scan.stop == .invalid(.wrongNode) && scan.validLength == 0 { throw .wrongNode }
    var length = scan.validLength
    do throws(StorageError) {
      if scan.tailBytes > 0 { try storage.truncate(to: length) }
    } catch { throw .storage(error) }
    var header = scan.header ?? JournalHeader(node: node, created: now, generation: 0)
    if scan.header == nil {
      // Empty (or nothing valid): start a new file with a header and an empty commit.
      var w = ByteWriter()
      JournalRecord.append(.header, body: JournalRecord.headerBody(header), to: &w)
      do throws(StorageError) {
        try storage.append(w.bytes)
        try storage.sync()
      } catch { throw .storage(error) }
      length = w.bytes.count
      header = JournalHeader(node: node, created: now, generation: 0)
    }
    var j = Journal(storage: storage, verifier: verifier, ledger: scan.ledger, policy: policy, recovery: scan,
                    header: header, lastCommitTime: now, commitSequence: scan.lastCommit?.sequence ?? 0,
                    committedTotal: scan.ledger.receiptedTotal, fileLength: length)
    if header.format < JournalFormat.formatVersion { try j.compact(now: now) }  // rule 5
    return j
  }

  init(storage: S, verifier: V, ledger: CreditLedger, policy: CommitPolicy, recovery: JournalScan,
       header: JournalHeader, lastCommitTime: UInt64, commitSequence: UInt64, committedTotal: UInt64,
       fileLength: Int) {
    self.storage = storage; self.verifier = verifier; self.ledger = ledger; self.policy = policy
    self.recovery = recovery; self.header = header; self.lastCommitTime = lastCommitTime
    self.commitSequence = commitSequence; self.committedTotal = committedTotal; self.fileLength = fileLength
  }

  public mutating func countRejection(_ why: ReceiptRejection) { ledger.countRejection(why) }

  // MARK: receipts and group commit

  /// Offers a v2 receipt (the live rules are the caller's: CreditLedger rule 3); an
  /// accepted receipt is buffered and may trigger an early commit. `signatureChecked`: the
  /// caller ran `r.check` just before (the ECDSA is not done twice).
  @discardableResult
  public mutating func record(_ r: Receipt, now: UInt64, signatureChecked: Bool = false) throws(JournalError) -> ReceiptVerdict {
    if failed { throw .failed }
    let verdict = ledger.accept(r, verifier: verifier, signatureChecked: signatureChecked)
    if case .accepted(let added) = verdict {
      if let i = pending.firstIndex(where: { $0.binding == r.binding && $0.payer == r.payer }) {
        pending[i] = r
      } else {
        pending.append(r)
      }
      bufferedReceipts += 1
      unsyncedCredit &+= added
      if unsyncedCredit >= policy.threshold && now &- lastCommitTime >= policy.earlyGap { try commit(now: now) }
    }
    return verdict
  }

  /// Call from the event loop; commits when the interval has passed and compacts when
  /// the file has grown. Returns whether it wrote anything.
  @discardableResult
  public mutating func tick(now: UInt64) throws(JournalError) -> Bool {
    if failed { throw .failed }
    var wrote = false
    let since = now &- lastCommitTime
    if bufferedReceipts > 0 && (since >= policy.interval || unsyncedCredit >= policy.threshold && since >= policy.earlyGap) {
      try commit(now: now)
      wrote = true
    }
    if fileLength > policy.compactAtBytes && fileLength > 2 * compactedSize {
      try compact(now: now)
      wrote = true
    }
    return wrote
  }

  /// Appends the buffered receipts and a commit marker in one write, then syncs.
  /// Does nothing when no receipt is buffered, unless `force` (which writes a bare
  /// commit marker: a write probe after a storage error).
  public mutating func commit(now: UInt64, force: Bool = false) throws(JournalError) {
    if failed { throw .failed }
    if bufferedReceipts == 0 && !force { return }
    let marker = JournalCommit(sequence: commitSequence &+ 1, epoch: now, total: ledger.receiptedTotal,
                               receipts: UInt32(ledger.receiptCount))
    var buffer = ByteWriter(capacity: pending.count * (JournalFormat.overhead + Receipt.maxEncoded) + 64)
    for r in pending { JournalRecord.append(.receipt, version: JournalFormat.receiptV2Version, body: r.encoded, to: &buffer) }
    JournalRecord.append(.commit, body: JournalRecord.commitBody(marker), to: &buffer)
    do throws(StorageError) {
      try storage.append(buffer.bytes)
      try storage.sync()
    } catch {
      failed = true
      throw .storage(error)
    }
    fileLength += buffer.bytes.count
    pending.removeAll(keepingCapacity: true)
    bufferedReceipts = 0
    unsyncedCredit = 0
    commitSequence = marker.sequence
    committedTotal = marker.total
    lastCommitTime = now
  }

  /// Commits what is buffered (shutdown).
  public mutating func close(now: UInt64) throws(JournalError) { try commit(now: now) }

  /// Size of the image `compact` would write.
  public var compactedSize: Int {
    var n = 2 * JournalFormat.overhead + JournalFormat.headerBody + 2 * JournalFormat.commitBody
    for c in ledger.circuits { n += JournalFormat.overhead + c.latest.encodedSize }
    return n
  }

  /// Replaces the journal with a format 2 header, the latest receipt per key, a
  /// checkpoint and a commit marker (which also commits anything buffered).
  public mutating func compact(now: UInt64) throws(JournalError) {
    if failed { throw .failed }
    let image = compactImage(now: now)
    do throws(StorageError) {
      try storage.replace(with: image)
    } catch {
      failed = true
      throw .storage(error)
    }
    header.generation &+= 1
    header.format = JournalFormat.formatVersion
    fileLength = image.count
    pending.removeAll(keepingCapacity: true)
    bufferedReceipts = 0
    unsyncedCredit = 0
    commitSequence &+= 1
    committedTotal = ledger.receiptedTotal
    lastCommitTime = now
  }

  func compactImage(now: UInt64) -> [UInt8] {
    var w = ByteWriter(capacity: compactedSize)
    let h = JournalHeader(node: header.node, created: header.created, generation: header.generation &+ 1)
    JournalRecord.append(.header, body: JournalRecord.headerBody(h), to: &w)
    var count: UInt32 = 0
    for c in ledger.circuits {
      JournalRecord.append(.receipt, version: c.latest.recordVersion, body: c.latest.encoded, to: &w)
      count += 1
    }
    JournalRecord.append(.checkpoint, body: JournalRecord.checkpointBody(
      generation: h.generation, epoch: now, total: ledger.receiptedTotal, receipts: count), to: &w)
    JournalRecord.append(.commit, body: JournalRecord.commitBody(JournalCommit(
      sequence: commitSequence &+ 1, epoch: now, total: ledger.receiptedTotal, receipts: count)), to: &w)
    return w.bytes
  }
}

extension JournalError {
  public var text: String {
    switch self {
    case .wrongNode: return "the journal belongs to another node"
    case .failed: return "an earlier storage error: reopen the journal"
    case .storage(let e):
      switch e.kind {
      case .io: return "storage error (errno \(e.code))"
      case .powerCut: return "power cut (emulated)"
      case .tooLarge: return "journal too large to read"
      }
    }
  }
}
