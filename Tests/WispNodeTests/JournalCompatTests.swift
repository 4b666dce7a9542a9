// Journals written before issue 15 (format 1, v1 receipts) open with today's code and keep
// their credit: the state of commit 8f350f7 (issue 13's start) and of commit df78dbf (issue
// 15's start), both in Tests/e2e/fixtures. Opening one compacts it to format 2 with its v1
// receipts as they were; a node's new v2 receipts go beside them.
import Testing
import CPosix
import WispCore
import WispOS
import WispTLS
@testable import WispNode

@Suite struct JournalCompatTests {
  static let fixtures: String = {
    var path = Array(#filePath.utf8)
    for _ in 0..<2 { while let last = path.popLast(), last != UInt8(ascii: "/") {} }  // Tests/WispNodeTests/x.swift → Tests
    return String(decoding: path, as: UTF8.self) + "/e2e/fixtures"
  }()

  func copy(_ fixture: String, node: String) throws -> String {
    var template = Array("/tmp/wisp-journal-compat-XXXXXX".utf8CString)
    let dir = String(cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
    for f in ["node.key", "node.crt", "credits.journal"] {
      let bytes = try Files.read("\(JournalCompatTests.fixtures)/\(fixture)/\(node)/\(f)")
      let fd = open("\(dir)/\(f)", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
      #expect(fd >= 0)
      #expect(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count)
      close(fd)
    }
    return dir
  }

  @Test(arguments: [("state-8f350f7", "A", UInt64(2_048_000)), ("state-8f350f7", "B", 2_048_000),
                    ("state-df78dbf", "A", 3_072_000), ("state-df78dbf", "B", 3_072_000)])
  func oldJournalsOpenAndKeepTheirCredit(fixture: String, node: String, credit: UInt64) throws {
    let dir = try copy(fixture, node: node)
    let image = try Files.read("\(dir)/credits.journal")
    // As it is: format 1, v1 receipts, every one verified with mbedTLS.
    let scan = JournalScan.scan(image, node: nil, verifier: P256Verifier())
    #expect(scan.stop == nil && scan.header?.format == 1)
    #expect(scan.ledger.receiptedTotal == credit && scan.ledger.receiptedV1 == credit && scan.committedTotal == credit)
    #expect(scan.ledger.latestReceipts.isEmpty && scan.ledger.latestV1Receipts.count == scan.ledger.receiptCount)
    // A node opens it: same credit, the file compacted to format 2 keeping its v1 receipts.
    let c = try #require(NodeCredit.open(directory: dir, window: 1 << 20, commitInterval: 0))
    #expect(c.report().totals.receipted == credit && c.report().totals.committed == credit)
    #expect(c.tables().v1Bytes == credit && c.tables().v1Receipts == scan.ledger.v1Count)
    let after = JournalScan.scan(try Files.read("\(dir)/credits.journal"), node: c.fingerprint, verifier: P256Verifier())
    #expect(after.stop == nil && after.header?.format == 2 && after.ledger.receiptedTotal == credit)
    #expect(after.ledger.latestV1Receipts == scan.ledger.latestV1Receipts)
    // A v2 receipt joins them, and everything survives a reopen.
    var payer = try #require(P256Signer.generate())
    let r = try #require(Receipt.make(signer: &payer, verifier: P256Verifier(), node: c.fingerprint, binding: Binding(hi: 5, lo: 6),
                                      bytes: 1000, epoch: UInt64(wisp_realtime_s())))
    var slot = CreditSlot()
    c.take(r, slot: &slot, relayed: 1000, binding: r.binding)
    #expect(slot.bound && c.report().totals.receipted == credit + 1000)
    c.close()
    let again = try #require(NodeCredit.open(directory: dir, window: 1 << 20, commitInterval: 0))
    #expect(again.report().totals.receipted == credit + 1000 && again.tables().v1Bytes == credit)
    #expect(again.journal?.ledger.latestReceipts == [r])
  }
}
