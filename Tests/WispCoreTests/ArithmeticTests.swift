// Arithmetic on counters and clocks that cannot trap (issue 14, finding 6): every case
// here trapped before the saturating helpers (Saturating.swift).
import Testing
@testable import WispCore

@Suite struct ArithmeticTests {
  @Test func scaledIsExactOrSaturates() {
    #expect(UInt64(10).scaled(by: 3, over: 4) == 7)
    #expect(UInt64.max.scaled(by: 1, over: 1) == .max)
    #expect(UInt64.max.scaled(by: 2, over: 2) == .max)        // 128-bit intermediate: exact
    #expect(UInt64.max.scaled(by: 1_000_000_000, over: 1) == .max)  // saturates
    #expect(UInt64(5).scaled(by: 7, over: 0) == 0)
    #expect(UInt64(3).since(5) == 0)
    #expect(UInt64.max.saturatingAdd(1) == .max)
    #expect(UInt64(1 << 40).saturatingMultiply(1 << 40) == .max)
  }

  /// The status and metrics rates: 2.3 TB between two queries used to trap.
  @Test func ratesOfHugeCounters() {
    let tb: UInt64 = 3_000_000_000_000  // 3 TB in one second
    #expect(Rate.kbitPerSecond(bytes: tb, overNs: 1_000_000_000) == 24_000_000_000)
    #expect(Rate.kbitPerSecond(bytes: .max, overNs: 1_000_000_000) == UInt64.max.scaled(by: 8, over: 1000))
    #expect(Rate.kbitPerSecond(bytes: .max, overNs: 1) == .max)
    #expect(Rate.perSecond(.max, overNs: 1_000_000_000) == .max)
    #expect(Rate.perSecond(.max, overNs: 0) == 0)
    #expect(Rate.perSecond(1000, overNs: 2_000_000_000) == 500)
  }

  /// Token buckets at the largest rates and bursts, with the clock at its ends.
  @Test func tokenBucketAtExtremes() {
    let rate = TokenRate(perSecond: .max, burst: .max)
    var level = BucketLevel()
    let r1 = level.take(1000, nowNs: 0, rate: rate)
    #expect(r1)
    let r2 = level.take(Int.max, nowNs: UInt64.max - 1, rate: rate)
    #expect(r2)
    let r3 = level.take(1, nowNs: UInt64.max, rate: rate)
    #expect(r3)
    let back = level.take(1, nowNs: 5, rate: rate)  // the clock went back: no trap
    #expect(back)
    let fast = TokenRate(mbit: .max)
    #expect(fast.rate == .max)
    var l2 = BucketLevel()
    let r4 = l2.take(1500, nowNs: 1, rate: fast)
    #expect(r4)
    let r5 = l2.take(1500, nowNs: 1 << 62, rate: fast)
    #expect(r5)
  }

  /// Timers armed near the end of the clock or with huge periods.
  @Test func timersAtTheEndOfTime() {
    var q = TimerQueue(capacity: 4)
    q.schedule(1, at: UInt64.max - 10, every: UInt64.max)
    q.schedule(2, at: 0, every: UInt64.max / 2 + 1)
    #expect(q.timeoutMs(now: 0) == 0)
    let r6 = q.popDue(now: UInt64.max - 5)
    #expect(r6 != nil)
    let r7 = q.popDue(now: UInt64.max - 5)
    #expect(r7 != nil)
    #expect(q.popDue(now: UInt64.max - 5) == nil)  // both re-armed at UInt64.max, not wrapped into the past
    #expect(q.timeoutMs(now: UInt64.max - 1) == 1)
  }

  /// A wall clock set far off either way (the quota's period).
  @Test func quotaPeriodsWithTheClockFarOff() {
    for t in [Int64.min, -1, Int64.max, Int64.max - 86_400] {
      let start = Quota.periodStart(containing: t, resetDay: 28)
      #expect(start >= -31 * 86_400 && start <= Quota.latest)  // the period around 1970 or 9999
      _ = Quota.nextPeriod(after: start, resetDay: 28)
      var q = Quota(limitBytes: 10, resetDay: 1, nowEpoch: t)
      q.add(Int.max)
      q.add(Int.max)
      q.add(Int.max)
      #expect(q.reached)
      _ = q.rollover(nowEpoch: Int64.max)
      _ = q.rollover(nowEpoch: Int64.min)
    }
  }

  /// Receipts whose amounts add past UInt64.max (recovery takes any signed amount).
  @Test func ledgerTotalsOfHugeReceipts() {
    var ledger = CreditLedger(node: testNode)
    let a = receipt(1, serial: 1, bytes: .max)
    let b = receipt(2, serial: 2, bytes: .max)
    let r8 = ledger.accept(a, verifier: FakeVerifier())
    #expect(r8 == .accepted(added: .max))
    let r9 = ledger.accept(b, verifier: FakeVerifier())
    #expect(r9 == .accepted(added: .max))
    #expect(ledger.receiptedTotal == UInt64.max &+ UInt64.max)
    // A payer's grants near UInt64.max saturate instead of wrapping.
    var book = PayerBook(window: .max)
    #expect(opened(&book, clientFP(3)))
    #expect(book.grant(clientFP(3), headroom: 0, receipted: .max - 1) == .max)
  }
}
