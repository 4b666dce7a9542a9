// Credit per payer (PayerCredit.swift) and the bounds of its tables (issue 15): the
// invariant Σ (limit − receipted) + closed debt ≤ W (+ one unbound-allowance floor) per payer after any sequence of
// binds, grants, closes and payments; the payer table and the closed-debt entries are
// bounded and counted; the ledger index agrees with a plain scan.
import Testing
import WispTestSupport
@testable import WispCore

/// `b.open(p)` outside the #expect macro (which cannot call a mutating method).
func opened(_ b: inout PayerBook, _ p: Fingerprint) -> Bool { b.open(p) }

@Suite struct LedgerBoundsTests {
  @Test func aPayersWindowIsSharedAcrossItsCircuitsNeverMultiplied() {
    let w: UInt64 = 1000
    var b = PayerBook(window: w)
    let p = clientFP(1)
    #expect(opened(&b, p))
    #expect(b.grant(p, headroom: 0, receipted: 0) == 1000)      // alone: the whole window
    #expect(opened(&b, p))
    #expect(b.grant(p, headroom: 0, receipted: 0) == 0)         // nothing left for a second
    // The first pays 400: its share is now W / 2, and what it gave back goes to the second.
    #expect(b.grant(p, headroom: 1000, receipted: 400) == 400 + 500)
    #expect(b.grant(p, headroom: 0, receipted: 0) == 500)
    #expect(b.state(p) == PayerState(open: 2, granted: 1000, debt: 0))
    // Another payer has a window of its own.
    #expect(opened(&b, clientFP(2)) && b.grant(clientFP(2), headroom: 0, receipted: 7) == 1007)
  }

  @Test func aNewCircuitGetsOneFloorBeyondAHeldWindowNotOnePerCircuit() {
    let w: UInt64 = 1000, floor: UInt64 = 100
    var b = PayerBook(window: w)
    let p = clientFP(1)
    #expect(opened(&b, p) && b.grant(p, headroom: 0, receipted: 0, floor: floor) == 1000)
    // The first circuit holds the window: the second carries the floor at once (its first
    // datagram is not lost while the first is lowered), a third nothing.
    #expect(opened(&b, p) && b.grant(p, headroom: 0, receipted: 0, floor: floor) == 100)
    #expect(opened(&b, p) && b.grant(p, headroom: 0, receipted: 0, floor: floor) == 0)
    #expect(b.state(p)?.granted == w + floor)
    // A payer whose closed circuits owe the window gets that one floor, then nothing.
    var c = PayerBook(window: w)
    let q = clientFP(2)
    #expect(opened(&c, q))
    c.close(q, binding: Binding(hi: 1, lo: 1), headroom: 0, receipted: 0, relayed: w)
    #expect(opened(&c, q) && c.grant(q, headroom: 0, receipted: 0, floor: floor) == floor)
    c.close(q, binding: Binding(hi: 1, lo: 2), headroom: floor, receipted: 0, relayed: floor)
    #expect(opened(&c, q) && c.grant(q, headroom: 0, receipted: 0, floor: floor) == 0)
  }

  @Test func invariantHoldsUnderRandomOperations() {
    // `floor` (the unbound allowance a share keeps): at most one beyond the window per payer.
    let w: UInt64 = 10_000, floor: UInt64 = 700
    var b = PayerBook(window: w, maxPayers: 4, maxClosed: 8)
    var rng = SplitMix(7)
    struct C { var payer: UInt8; var binding: Binding; var receipted: UInt64; var limit: UInt64; var relayed: UInt64 }
    var open: [C] = []
    var next: UInt64 = 1
    for _ in 0..<20_000 {
      switch rng.next() % 4 {
      case 0:
        let payer = UInt8(rng.next() % 3)
        if opened(&b, clientFP(payer)) {
          let limit = b.grant(clientFP(payer), headroom: 0, receipted: 0, floor: floor)
          open.append(C(payer: payer, binding: Binding(hi: 0, lo: next), receipted: 0, limit: limit, relayed: 0))
          next += 1
        }
      case 1 where !open.isEmpty:
        let i = Int(rng.next() % UInt64(open.count))
        var c = open[i]
        c.relayed = max(c.relayed, min(c.limit, c.relayed + rng.next() % 3000))
        let paid = c.receipted + rng.next() % 2000
        if paid > c.receipted && paid <= Receipt.acceptable(relayed: c.relayed) {
          c.limit = b.grant(clientFP(c.payer), headroom: c.limit - c.receipted, receipted: paid, relayed: c.relayed, floor: floor)
          c.receipted = paid
        }
        open[i] = c
      case 2 where !open.isEmpty:
        let c = open.remove(at: Int(rng.next() % UInt64(open.count)))
        b.close(clientFP(c.payer), binding: c.binding, headroom: c.limit - c.receipted, receipted: c.receipted, relayed: c.relayed)
      default:
        if let d = b.ring.compactMap({ $0 }).first {
          b.pay(d.payer, binding: d.binding, bytes: d.receipted + 1 + rng.next() % 3000)
        }
      }
      for payer in 0..<3 {
        let mine = open.filter { $0.payer == UInt8(payer) }
        let headroom = mine.reduce(UInt64(0)) { $0 + ($1.limit - $1.receipted) }
        let debt = b.state(clientFP(UInt8(payer)))?.debt ?? 0
        if let s = b.state(clientFP(UInt8(payer))) { #expect(s.granted == headroom && s.open == mine.count) }
        // Circuits carry at most their limits here (nothing before binding): the invariant exactly,
        // however many floors were granted.
        #expect(headroom + debt <= w + floor, "payer \(payer): \(headroom) granted, \(debt) owed")
      }
      #expect(b.payerCount <= 4 && b.closedCount <= 8)
    }
  }

  @Test func tablesAreBoundedAndCounted() {
    var b = PayerBook(window: 100, maxPayers: 2, maxClosed: 2)
    #expect(opened(&b, clientFP(1)) && opened(&b, clientFP(2)))
    #expect(!opened(&b, clientFP(3)) && b.payersFull == 1)                 // both have open circuits
    b.close(clientFP(2), binding: Binding(hi: 0, lo: 1), headroom: 0, receipted: 0, relayed: 10)
    #expect(b.state(clientFP(2))?.debt == 10)
    #expect(opened(&b, clientFP(3)) && b.payersEvicted == 1)               // payer 2 (no open circuit) makes room
    // Closed debts: at most 2 entries, the oldest evicted (its debt stays with the payer).
    for i in 1...3 as ClosedRange<UInt64> {
      #expect(opened(&b, clientFP(1)))
      b.close(clientFP(1), binding: Binding(hi: 9, lo: i), headroom: 0, receipted: 0, relayed: 5)
    }
    #expect(b.closedCount == 2 && b.closedEvicted == 2 && b.closedDebt(Binding(hi: 9, lo: 1)) == nil)
    #expect(b.state(clientFP(1))?.debt == 15)
    // A payment on an evicted binding pays nothing; on a kept one, what it adds.
    #expect(b.pay(clientFP(1), binding: Binding(hi: 9, lo: 1), bytes: 5) == 0)
    #expect(b.pay(clientFP(2), binding: Binding(hi: 9, lo: 2), bytes: 5) == 0)     // not that payer's
    #expect(b.pay(clientFP(1), binding: Binding(hi: 9, lo: 2), bytes: 3) == 3)
    #expect(b.pay(clientFP(1), binding: Binding(hi: 9, lo: 2), bytes: 9) == 2)     // at most what it relayed
    #expect(b.state(clientFP(1))?.debt == 10 && b.closedCount == 1 && b.debtPaid == 5)
  }

  @Test func ledgerIndexAgreesWithAScan() {
    var l = CreditLedger(node: testNode)
    var rng = SplitMix(3)
    for _ in 0..<2000 {
      let c = UInt8(rng.next() % 5), s = rng.next() % 40, n = 1 + rng.next() % 1000
      if rng.next() % 3 == 0 {
        _ = l.accept(v1: receiptV1(c, serial: s, bytes: n), verifier: FakeVerifier())
      } else {
        _ = l.accept(receipt(c, serial: s, bytes: n), verifier: FakeVerifier())
      }
    }
    var total: UInt64 = 0
    for (i, e) in l.circuits.enumerated() {
      #expect(l.index(of: e.key) == i && e.latest.key == e.key && e.receipted == e.latest.bytes)
      total &+= e.receipted
    }
    #expect(total == l.receiptedTotal && l.latestReceipts.count + l.latestV1Receipts.count == l.receiptCount)
  }
}
