// The journal format from JOURNAL-FORMAT.md: CRC-32C, framing, round trips, bit flips.
import Testing
import WispTestSupport
import WispCore

@Suite struct JournalRecordTests {
  @Test func crc32cCheckValue() {
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    #expect(CRC32C.checksum([]) == 0)
    // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of 0xFF.
    #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
  }

  @Test func recordLayoutMatchesSpec() {
    var w = ByteWriter()
    JournalRecord.append(.commit, body: JournalRecord.commitBody(
      JournalCommit(sequence: 1, epoch: 2, total: 3, receipts: 4)), to: &w)
    let b = w.bytes
    #expect(b.count == 12 + 28)
    #expect(Array(b[0..<8]) == [0, 0, 0, 40, 0x04, 1, 0, 0])
    let crc = CRC32C.checksum(Array(b[0..<36]))
    #expect(Array(b[36..<40]) == [UInt8(crc >> 24), UInt8((crc >> 16) & 255), UInt8((crc >> 8) & 255), UInt8(crc & 255)])
  }

  static func smallJournal() throws -> (EmulatedDisk, [Receipt]) {
    let disk = EmulatedDisk()
    var j = try Journal.open(storage: EmulatedJournalStorage(disk: disk), node: testNode, verifier: FakeVerifier(), now: 100)
    let rs = [receipt(1, serial: 1, bytes: 10), receipt(2, serial: 2, bytes: 20), receipt(1, serial: 1, bytes: 30)]
    for r in rs { _ = try j.record(r, now: 101) }
    try j.close(now: 102)
    return (disk, rs)
  }

  @Test func roundTrip() throws {
    let (disk, rs) = try Self.smallJournal()
    let scan = JournalScan.scan(disk.durable, node: testNode, verifier: FakeVerifier())
    #expect(scan.stop == nil)
    // header, 2 receipts, commit: serial 1's first receipt was superseded before the
    // commit, so only its latest (30) reached the disk.
    #expect(scan.validRecords == 4)
    #expect(scan.receiptRecords == 2 && scan.commits == 1)
    #expect(scan.ledger.receiptedTotal == 50)
    #expect(scan.ledger.latestReceipts == [rs[2], rs[1]])
    #expect(scan.lastCommit == JournalCommit(sequence: 1, epoch: 102, total: 50, receipts: 2))
    #expect(scan.header == JournalHeader(node: testNode, created: 100, generation: 0))
    // Reopening gives the same ledger and writes nothing.
    let before = disk.operations
    let j = try Journal.open(storage: EmulatedJournalStorage(disk: disk), node: testNode, verifier: FakeVerifier(), now: 200)
    #expect(j.ledger.receiptedTotal == 50 && disk.operations == before)
  }

  @Test func wrongNodeJournalIsRefused() throws {
    let (disk, _) = try Self.smallJournal()
    #expect(throws: JournalError.wrongNode) {
      _ = try Journal.open(storage: EmulatedJournalStorage(disk: disk), node: clientFP(77), verifier: FakeVerifier(), now: 1)
    }
  }

  /// Every single-bit flip of a small journal is detected: the scan stops at or before
  /// the flipped record, and no credit the flip could have changed is accepted.
  @Test func everySingleBitFlipIsDetected() throws {
    let (disk, rs) = try Self.smallJournal()
    let image = disk.durable
    var starts: [Int] = []
    var o = 0
    while o < image.count {
      starts.append(o)
      o += Int(image[o]) << 24 | Int(image[o + 1]) << 16 | Int(image[o + 2]) << 8 | Int(image[o + 3])
    }
    var flips = 0
    for bit in 0..<(image.count * 8) {
      var bad = image
      bad[bit / 8] ^= UInt8(1 << (bit % 8))
      let recordStart = starts.last { $0 <= bit / 8 }!
      let scan = JournalScan.scan(bad, node: testNode, verifier: FakeVerifier())
      #expect(scan.stop != nil, "bit \(bit) not detected")
      #expect(scan.validLength <= recordStart, "bit \(bit): record at \(recordStart) accepted")
      for r in scan.ledger.latestReceipts { #expect(rs.contains(r)) }
      flips += 1
    }
    #expect(flips == image.count * 8)
  }

  @Test func reopeningTruncatesTornTail() throws {
    let (disk, _) = try Self.smallJournal()
    let good = disk.durable
    let torn = EmulatedDisk(image: good + Array(good[20..<60]))
    let j = try Journal.open(storage: EmulatedJournalStorage(disk: torn), node: testNode, verifier: FakeVerifier(), now: 5)
    #expect(j.recovery.tailBytes == 40)
    #expect(torn.durable == good)
  }

  @Test func groupCommitByIntervalAndThreshold() throws {
    let disk = EmulatedDisk()
    var policy = CommitPolicy()
    policy.interval = 30
    policy.threshold = 1000
    var j = try Journal.open(storage: EmulatedJournalStorage(disk: disk), node: testNode, verifier: FakeVerifier(),
                             now: 0, policy: policy)
    let syncsAtStart = disk.syncs
    _ = try j.record(receipt(1, serial: 1, bytes: 100), now: 1)
    #expect(try j.tick(now: 29) == false)
    #expect(disk.syncs == syncsAtStart && j.unsyncedCredit == 100)
    #expect(try j.tick(now: 30) == true)
    #expect(disk.syncs == syncsAtStart + 1 && j.committedTotal == 100)
    #expect(try j.tick(now: 90) == false)                    // nothing buffered: no write
    _ = try j.record(receipt(1, serial: 1, bytes: 1099), now: 91)
    #expect(disk.syncs == syncsAtStart + 1)
    _ = try j.record(receipt(1, serial: 1, bytes: 1100), now: 92)  // 1000 un-synced: commit now
    #expect(disk.syncs == syncsAtStart + 2 && j.committedTotal == 1100 && j.unsyncedCredit == 0)
    // Over the threshold again, but within earlyGap (15 s) of that commit: it waits.
    _ = try j.record(receipt(1, serial: 1, bytes: 2200), now: 93)
    #expect(disk.syncs == syncsAtStart + 2 && j.unsyncedCredit == 1100)
    #expect(try j.tick(now: 106) == false)
    #expect(try j.tick(now: 107) == true && j.committedTotal == 2200)
    _ = try j.record(receipt(2, serial: 2, bytes: 5), now: 108)
    try j.close(now: 109)
    #expect(disk.syncs == syncsAtStart + 4 && j.committedTotal == 2205)
  }

  @Test func compactionKeepsLatestPerCircuit() throws {
    let disk = EmulatedDisk()
    var j = try Journal.open(storage: EmulatedJournalStorage(disk: disk), node: testNode, verifier: FakeVerifier(), now: 0)
    for k in 1...20 {
      _ = try j.record(receipt(UInt8(k % 3), serial: UInt64(k % 3), bytes: UInt64(k * 100)), now: UInt64(k))
      try j.commit(now: UInt64(k))
    }
    let total = j.ledger.receiptedTotal
    let big = disk.durable.count
    try j.compact(now: 50)
    #expect(disk.durable.count < big / 3)
    let scan = JournalScan.scan(disk.durable, node: testNode, verifier: FakeVerifier())
    #expect(scan.stop == nil && scan.receiptRecords == 3 && scan.ledger.receiptedTotal == total)
    #expect(scan.header?.generation == 1)
    _ = try j.record(receipt(1, serial: 1, bytes: 5000), now: 60)
    try j.close(now: 61)
    let again = JournalScan.scan(disk.durable, node: testNode, verifier: FakeVerifier())
    #expect(again.stop == nil && again.ledger.receiptedTotal == total - 1900 + 5000)
  }
}
