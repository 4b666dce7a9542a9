// Packet pool, circuit table, token bucket, quota and timer queue.
import Testing
@testable import WispCore

/// A deterministic RandomSource for tests (the node uses the kernel's).
struct CountingRandom: RandomSource {
  var state: UInt32 = 0x9E37_79B9
  mutating func next32() -> UInt32 {
    state ^= state << 13; state ^= state >> 17; state ^= state << 5
    return state
  }
}

let a = Endpoint(ip: 0x7F00_0001, port: 1000)
let b = Endpoint(ip: 0x7F00_0001, port: 2000)
let c = Endpoint(ip: 0x7F00_0001, port: 3000)

@Suite struct PoolTests {
  @Test func exhaustionIsCountedNeverGrows() {
    let pool = PacketPool(capacity: 4)
    var taken: [Int32] = []
    for _ in 0..<4 { taken.append(pool.take()!) }
    #expect(Set(taken).count == 4)
    #expect(pool.take() == nil)
    #expect(pool.take() == nil)
    #expect(pool.exhausted == 2)
    #expect(pool.available == 0)
    pool.give(taken[2])
    #expect(pool.take() == taken[2])
  }

  @Test func buffersDoNotOverlap() {
    let pool = PacketPool(capacity: 3)
    #expect(pool.buffer(1) - pool.buffer(0) == pool.bufferSize)
    #expect(pool.bufferSize >= Defaults.headroom + Wire.maxDatagram)
  }
}

@Suite struct CircuitTableTests {
  /// A half stays 144 bytes (CircuitTable.swift): the table's resident memory is its size
  /// times the halves in use, and a field added must fit the padding or be weighed.
  @Test func halfSize() {
    #expect(MemoryLayout<Half>.stride == 160)
  }

  @Test func capacityIsExact() {
    var r = CountingRandom()
    let t = CircuitTable(circuits: 3)
    for _ in 0..<3 { #expect(t.allocate(prev: a, next: b, prevId: 1, nowSec: 0, random: &r) != nil) }
    #expect(t.allocate(prev: a, next: b, prevId: 1, nowSec: 0, random: &r) == nil)
    #expect(t.circuitsInUse == 3)
  }

  @Test func fillDrainRefillRecyclesEverySlot() {
    var r = CountingRandom()
    let t = CircuitTable(circuits: 50)
    var firsts: [Int] = []
    for _ in 0..<50 { firsts.append(t.allocate(prev: a, next: b, prevId: 1, nowSec: 0, random: &r)!.0) }
    #expect(t.allocate(prev: a, next: b, prevId: 1, nowSec: 0, random: &r) == nil)
    #expect(t.circuitsFree == 0)
    for f in firsts { t.free(f) }
    #expect(t.circuitsInUse == 0 && t.circuitsFree == 50)
    var slots = Set<Int>()
    for _ in 0..<50 {
      let (f, b2) = t.allocate(prev: a, next: c, prevId: 2, nowSec: 0, random: &r)!
      slots.insert(f); slots.insert(b2)
    }
    #expect(slots.count == 100 && slots.max() == 99)   // recycled, never past capacity
    #expect(t.allocate(prev: a, next: b, prevId: 1, nowSec: 0, random: &r) == nil)
  }

  @Test func lookupChecksIdAndLink() {
    var r = CountingRandom()
    let t = CircuitTable(circuits: 8)
    let (f, bk) = t.allocate(prev: a, next: b, prevId: 42, nowSec: 0, random: &r)!
    let fid = t.half(f).pointee.localId
    let bid = t.half(bk).pointee.localId
    #expect(fid != 0 && bid != 0 && fid != bid)
    #expect(t.lookup(fid, from: a) == f)
    #expect(t.lookup(bid, from: b) == bk)
    #expect(t.lookup(fid, from: b) == nil)           // right id, wrong link
    #expect(t.lookup(fid ^ 0x8000_0000, from: a) == nil)  // wrong tag
    #expect(t.lookup(0xFFFF_FFFF, from: a) == nil)
    #expect(t.half(bk).pointee.outId == 42)
    t.free(f)
    #expect(t.lookup(fid, from: a) == nil)
    #expect(t.lookup(bid, from: b) == nil)
    #expect(t.circuitsInUse == 0)
  }

  @Test func reusedSlotGetsNewId() {
    var r = CountingRandom()
    let t = CircuitTable(circuits: 1)
    let (f, _) = t.allocate(prev: a, next: b, prevId: 1, nowSec: 0, random: &r)!
    let old = t.half(f).pointee.localId
    t.free(f)
    let (f2, _) = t.allocate(prev: a, next: b, prevId: 1, nowSec: 0, random: &r)!
    #expect(t.lookup(old, from: a) == nil || t.half(f2).pointee.localId == old)
    #expect(t.half(f2).pointee.localId != old)
  }

  @Test func shardBitsAreTheLowBits() {
    var r = CountingRandom()
    let t = CircuitTable(circuits: 16, shard: 3, shardBits: 2)
    for _ in 0..<16 {
      let (f, bk) = t.allocate(prev: a, next: b, prevId: 1, nowSec: 0, random: &r)!
      #expect(t.half(f).pointee.localId & 3 == 3)
      #expect(t.half(bk).pointee.localId & 3 == 3)
      #expect(t.lookup(t.half(f).pointee.localId, from: a) == f)
    }
  }

  @Test func idleExpiry() {
    var r = CountingRandom()
    let t = CircuitTable(circuits: 4)
    let (f1, _) = t.allocate(prev: a, next: b, prevId: 1, nowSec: 100, random: &r)!
    let (_, b2) = t.allocate(prev: a, next: c, prevId: 2, nowSec: 100, random: &r)!
    t.half(b2).pointee.lastActive = 150  // one direction active keeps the circuit
    #expect(t.expire(nowSec: 219, idleSec: 120) == 0)
    #expect(t.expire(nowSec: 220, idleSec: 120) == 1)
    #expect(t.half(f1).pointee.inUse == false)
    #expect(t.circuitsInUse == 1)
    #expect(t.expire(nowSec: 270, idleSec: 120) == 1)
    #expect(t.circuitsInUse == 0)
    #expect(t.expired == 2)
  }
}

@Suite struct LimitTests {
  @Test func tokenBucketArithmetic() {
    var t = TokenBucket(mbit: 8, burstMs: 1000, nowNs: 0)   // 1,000,000 bytes/s, burst 1 MB
    #expect(t.rate == 1_000_000)
    #expect(t.burst == 1_000_000)
    do { let r = t.take(1_000_000, nowNs: 0); #expect(r) }
    do { let r = t.take(1, nowNs: 0); #expect(!r) }
    do { let r = t.take(1000, nowNs: 1_000_000); #expect(r) }          // 1 ms refills 1000 bytes
    do { let r = t.take(1, nowNs: 1_000_000); #expect(!r) }
    do { let r = t.take(1_000_000, nowNs: 100_000_000_000); #expect(r) } // long idle refills only to burst
    do { let r = t.take(1, nowNs: 100_000_000_000); #expect(!r) }
  }

  @Test func unlimitedBucket() {
    var t = TokenBucket.unlimited
    for _ in 0..<1000 { do { let r = t.take(65_000, nowNs: 0); #expect(r) } }
  }

  @Test func minimumBurstFitsDatagrams() {
    let t = TokenBucket(mbit: 1, burstMs: 1)
    #expect(t.burst >= UInt64(Wire.maxDatagram))
  }

  @Test func calendar() {
    #expect(Quota.civil(fromDays: 0) == (1970, 1, 1))
    #expect(Quota.days(fromCivil: 2024, 2, 29) == 19782)
    #expect(Quota.civil(fromDays: 19782) == (2024, 2, 29))
    for d in stride(from: Int64(-1000), to: 40000, by: 37) {
      let (y, m, dd) = Quota.civil(fromDays: d)
      #expect(Quota.days(fromCivil: y, m, dd) == d)
    }
  }

  @Test func quotaPeriods() {
    let mar15 = Quota.days(fromCivil: 2026, 3, 15) * 86_400
    #expect(Quota.periodStart(containing: mar15 + 3600, resetDay: 1) == Quota.days(fromCivil: 2026, 3, 1) * 86_400)
    #expect(Quota.periodStart(containing: mar15, resetDay: 20) == Quota.days(fromCivil: 2026, 2, 20) * 86_400)
    let jan5 = Quota.days(fromCivil: 2026, 1, 5) * 86_400
    #expect(Quota.periodStart(containing: jan5, resetDay: 10) == Quota.days(fromCivil: 2025, 12, 10) * 86_400)
    #expect(Quota.nextPeriod(after: Quota.days(fromCivil: 2025, 12, 10) * 86_400, resetDay: 10)
            == Quota.days(fromCivil: 2026, 1, 10) * 86_400)
  }

  @Test func quotaReachAndRollover() {
    let t0 = Quota.days(fromCivil: 2026, 3, 14) * 86_400
    var q = Quota(limitBytes: 1000, resetDay: 15, nowEpoch: t0)
    q.add(999)
    #expect(!q.reached)
    q.add(1)
    #expect(q.reached)
    do { let r = q.rollover(nowEpoch: t0 + 86_399); #expect(!r) }
    #expect(q.reached)
    do { let r = q.rollover(nowEpoch: t0 + 86_400); #expect(r) }
    #expect(!q.reached && q.used == 0)
    var none = Quota(limitBytes: 0, resetDay: 1, nowEpoch: t0)
    none.add(1 << 40)
    #expect(!none.reached)
  }
}

@Suite struct TimerQueueTests {
  @Test func orderingPeriodsAndCapacity() {
    var q = TimerQueue(capacity: 3)
    do { let r = q.schedule(1, at: 100, every: 50); #expect(r) }
    do { let r = q.schedule(2, at: 80); #expect(r) }
    do { let r = q.schedule(3, at: 300); #expect(r) }
    do { let r = q.schedule(4, at: 1); #expect(!r) }                 // full
    #expect(q.nextDeadline == 80)
    #expect(q.timeoutMs(now: 0) == 1)              // rounds 80 ns up to 1 ms
    do { let r = q.popDue(now: 79); #expect(r == nil) }
    do { let r = q.popDue(now: 120); #expect(r == 2) }
    do { let r = q.popDue(now: 120); #expect(r == 1) }
    do { let r = q.popDue(now: 120); #expect(r == nil) }
    #expect(q.nextDeadline == 150)                 // periodic re-armed from its deadline
    do { let r = q.popDue(now: 1000); #expect(r == 1) }              // fell behind: skips missed periods
    #expect(q.entries.first { $0.id == 1 }!.deadline == 1050)
    q.cancel(3)
    #expect(q.entries.count == 1)
    #expect(q.timeoutMs(now: 2000) == 0)
    var empty = TimerQueue()
    #expect(empty.timeoutMs(now: 0) == -1)
    do { let r = empty.popDue(now: .max); #expect(r == nil) }
  }
}
