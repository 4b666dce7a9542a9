// The credit ledger is bounded and indexed (CreditLedger rule 5, issue 14 finding 4):
// at most `maxOpen` open circuits, entries without a receipt go when their circuit
// closes, and the O(1) indexes agree with a plain scan after any sequence of operations.
import Testing
import WispTestSupport
@testable import WispCore

@Suite struct LedgerBoundsTests {
  @Test func openCircuitsAreBoundedAndCounted() {
    var l = CreditLedger(node: testNode, maxOpen: 4)
    for s in 1...4 as ClosedRange<UInt64> {
      let ok = l.open(client: clientFP(1), serial: s)
      #expect(ok)
    }
    let fifth = l.open(client: clientFP(1), serial: 5)
    #expect(!fifth && l.full == 1 && l.openCount == 4)
    l.close(serial: 2)  // no receipt: the entry goes
    #expect(l.circuits.count == 3 && l.index(openSerial: 2) == nil && l.index(client: clientFP(1), serial: 2) == nil)
    let again = l.open(client: clientFP(1), serial: 5)
    #expect(again && l.openCount == 4)
    // Another client cannot open a serial that is open.
    let stolen = l.open(client: clientFP(2), serial: 5)
    #expect(!stolen)
  }

  @Test func closedEntriesKeepTheirReceipts() {
    var l = CreditLedger(node: testNode, maxOpen: 4)
    l.open(client: clientFP(1), serial: 7)
    l.relayed(serial: 7, bytes: 5000)
    let v = l.accept(receipt(1, serial: 7, bytes: 4000), verifier: FakeVerifier(), requireOpen: true)
    #expect(v == .accepted(added: 4000))
    l.close(serial: 7)
    #expect(l.circuits.count == 1 && l.receiptCount == 1 && l.openCount == 0 && l.receiptedTotal == 4000)
    // Reopened (a restart): the same entry, open again.
    l.open(client: clientFP(1), serial: 7)
    #expect(l.circuits.count == 1 && l.index(openSerial: 7) == 0)
  }

  /// Random opens, closes, traffic and receipts: the indexes always agree with a scan.
  @Test func indexesAgreeWithAScan() {
    var rng = SplitMix(14)
    var l = CreditLedger(node: testNode, maxOpen: 32)
    for _ in 0..<20_000 {
      let client = UInt8(1 + rng.next() % 4)
      let serial = 1 + rng.next() % 64
      switch rng.next() % 4 {
      case 0: l.open(client: clientFP(client), serial: serial)
      case 1: l.close(serial: serial)
      case 2: l.relayed(serial: serial, bytes: rng.next() % 10_000)
      default:
        if let i = l.index(openSerial: serial) {
          let c = l.circuits[i]
          _ = l.accept(receipt(client, serial: serial, bytes: c.receipted + 1 + rng.next() % 100),
                       verifier: FakeVerifier(), requireOpen: true)
        }
      }
      #expect(l.openCount <= 32)
    }
    var open = 0
    for (i, c) in l.circuits.enumerated() {
      #expect(l.index(client: c.client, serial: c.serial) == i)
      #expect(c.open || c.latest != nil)  // no entry without an open circuit or a receipt
      if c.open { open += 1; #expect(l.index(openSerial: c.serial) == i) }
    }
    #expect(open == l.openCount)
    for s in 1...64 as ClosedRange<UInt64> {
      if let i = l.index(openSerial: s) { #expect(l.circuits[i].serial == s && l.circuits[i].open) }
    }
  }
}
