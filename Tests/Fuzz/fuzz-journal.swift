// Fuzz target: JournalScan.scan, the recovery of a credit journal image (JOURNAL-FORMAT.md),
// with the node given and with the node taken from the header. Checked: the valid prefix
// and the tail add up to the image, and scanning the valid prefix alone stops nowhere.
import WispCore

func fuzzOne(_ input: UnsafeRawBufferPointer) {
  let v = FakeVerifier()
  let s = JournalScan.scan(input, node: fuzzNode, verifier: v)
  invariant(s.validLength >= 0 && s.validLength + s.tailBytes == input.count, "prefix \(s.validLength) + tail \(s.tailBytes)")
  invariant((s.stop == nil) == (s.tailBytes == 0), "stop without a tail or a tail without a stop")
  let prefix = JournalScan.scan(UnsafeRawBufferPointer(rebasing: input[0..<s.validLength]), node: fuzzNode, verifier: v)
  invariant(prefix.stop == nil && prefix.validRecords == s.validRecords, "the valid prefix does not rescan cleanly")
  invariant(prefix.ledger.receiptedTotal == s.ledger.receiptedTotal, "rescan credits differ")
  _ = s.stop?.text
  _ = JournalScan.scan(input, node: nil, verifier: v)
}

func fuzzSeeds() -> [[UInt8]] {
  func journal(_ receipts: [StoredReceipt], commitEvery: Int, checkpoint: Bool = false, format: UInt16 = 2) -> [UInt8] {
    var w = ByteWriter()
    JournalRecord.append(.header, body: JournalRecord.headerBody(JournalHeader(node: fuzzNode, created: 100, generation: 1,
                                                                             format: format)), to: &w)
    var total: UInt64 = 0, count: UInt32 = 0, seq: UInt64 = 0
    if checkpoint {
      JournalRecord.append(.checkpoint, body: JournalRecord.checkpointBody(generation: 1, epoch: 100, total: 0, receipts: 0), to: &w)
    }
    for (i, r) in receipts.enumerated() {
      JournalRecord.append(.receipt, version: r.recordVersion, body: r.encoded, to: &w)
      total += r.bytes; count += 1
      if (i + 1) % commitEvery == 0 {
        seq += 1
        JournalRecord.append(.commit, body: JournalRecord.commitBody(JournalCommit(sequence: seq, epoch: 200, total: total, receipts: count)), to: &w)
      }
    }
    return w.bytes
  }
  let rs: [StoredReceipt] = [.v2(fuzzReceipt(9, serial: 1, bytes: 1000)), .v2(fuzzReceipt(9, serial: 1, bytes: 3000)),
                             .v2(fuzzReceipt(10, serial: 2, bytes: 500)), .v2(fuzzReceipt(11, serial: 3, bytes: 70))]
  let old: [StoredReceipt] = [.v1(fuzzReceiptV1(9, serial: 1, bytes: 1000)), .v1(fuzzReceiptV1(10, serial: 2, bytes: 500))]
  let full = journal(rs, commitEvery: 2)
  return [
    full,
    journal(old, commitEvery: 1, format: 1),   // written before issue 15
    journal(old + rs, commitEvery: 3),          // a format 2 file keeping v1 receipts
    journal(rs, commitEvery: 1, checkpoint: true),
    journal([], commitEvery: 1),
    Array(full[0..<(full.count - 5)]),   // torn by a power cut
  ]
}
