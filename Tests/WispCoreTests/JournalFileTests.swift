// FileJournalStorage on a real directory: append/sync, truncate of a torn tail, and
// compaction through write-new/fsync/rename/fsync-directory.
import Testing
import WispCore
import WispOS

@Suite struct JournalFileTests {
  @Test func fileStorageRecoversAndCompacts() throws {
    let dir = "/tmp/wisp-journal-test-\(UInt32.random(in: 0...UInt32.max))"
    var j = try Journal.open(storage: FileJournalStorage(directory: dir), node: testNode, verifier: FakeVerifier(), now: 1)
    for k in 1...30 {
      _ = try j.record(receipt(UInt8(k % 2), serial: UInt64(k % 2), bytes: UInt64(k * 10)), now: UInt64(k))
      try j.commit(now: UInt64(k))
    }
    let path = dir + "/credits.journal"
    let before = try Files.read(path).count
    try j.compact(now: 40)
    let after = try Files.read(path)
    #expect(after.count < before / 5)
    #expect(!Files.exists(path + ".tmp"))
    _ = try j.record(receipt(1, serial: 1, bytes: 1000), now: 41)
    try j.close(now: 42)
    // A torn tail written behind the journal's back is cut on the next open.
    var raw = try FileJournalStorage(directory: dir)
    try raw.append([0, 0, 0, 90, 2, 1])
    raw.close()
    let k = try Journal.open(storage: FileJournalStorage(directory: dir), node: testNode, verifier: FakeVerifier(), now: 50)
    #expect(k.recovery.tailBytes == 6)
    #expect(k.ledger.receiptedTotal == 1000 + 300)
    let scan = JournalScan.scan(try Files.read(path), node: testNode, verifier: FakeVerifier())
    #expect(scan.stop == nil && scan.ledger.receiptedTotal == 1300 && scan.header?.generation == 1)
  }
}
