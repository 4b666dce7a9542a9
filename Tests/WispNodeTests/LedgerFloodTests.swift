// Garbage receipts leave no trace in the ledger or the payer table (issue 14, finding 4):
// every check — the cheap ones first, then the signature — runs before a circuit is bound
// or a ledger entry is opened.
import Testing
import CPosix
import WispCore
import WispOS
import WispTLS
@testable import WispNode

@Suite struct LedgerFloodTests {
  @Test func aHundredThousandGarbageReceiptsLeaveTheLedgerEmpty() throws {
    var template = Array("/tmp/wisp-ledger-flood-XXXXXX".utf8CString)
    let dir = String(cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
    let credit = try #require(NodeCredit.open(directory: dir, window: 1 << 20, commitInterval: 0))
    var signer = try #require(P256Signer.generate())
    let circuit = Binding(hi: 7, lo: 1)
    let valid = try #require(Receipt.make(signer: &signer, verifier: P256Verifier(), node: credit.fingerprint, binding: circuit,
                                          bytes: 1000, epoch: UInt64(wisp_realtime_s())))
    var n = 0
    for i in 0..<100_000 {
      var r = valid
      switch i % 5 {
      case 0: r.node = Fingerprint(w0: UInt64(i), w1: 1, w2: 2, w3: 3)          // another node
      case 1: r.payer = Fingerprint(w0: UInt64(i), w1: 4, w2: 5, w3: 6)         // key mismatch
      case 2: r.signature = [UInt8](repeating: 0x30, count: 4)                   // malformed
      case 3: r.binding = Binding(hi: UInt64(i), lo: 9)                          // another binding
      default: r.bytes = 70_000                                                  // more than relayed (+1/8 +64 KiB)
      }
      if i % 1000 == 999 { r = valid; r.signature[10] ^= 1 }  // bad signature (ECDSA)
      var slot = CreditSlot()
      credit.take(r, slot: &slot, relayed: 2000, binding: circuit)
      #expect(!slot.bound && slot.receipted == 0)
      n += 1
    }
    let j = try #require(credit.journal)
    #expect(j.ledger.circuits.isEmpty && credit.tables().payers == 0 && credit.tables().closedDebts == 0)
    #expect(credit.report().rejected == UInt64(n) && credit.tables().rejections.total == UInt64(n))
    // A valid receipt still binds and credits.
    var slot = CreditSlot()
    credit.take(valid, slot: &slot, relayed: 2000, binding: circuit)
    #expect(slot.bound && slot.receipted == 1000 && credit.journal!.ledger.circuits.count == 1)
  }
}
