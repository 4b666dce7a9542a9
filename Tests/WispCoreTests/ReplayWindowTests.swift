// The 64-wide anti-replay window for sealed-exit counters (WIRE-PROTOCOL.md, "Sealed exits").
import Testing
import WispTestSupport
@testable import WispCore

/// The window's rules written as plainly as possible: every accepted counter in a set.
struct ReferenceReplayModel {
  var accepted: Set<UInt64> = []
  var highest: UInt64 = 0
  func check(_ c: UInt64) -> Bool {
    c != 0 && !accepted.contains(c) && (c > highest || highest - c < 64)
  }
  mutating func accept(_ c: UInt64) {
    accepted.insert(c)
    highest = max(highest, c)
  }
}

@Suite struct ReplayWindowTests {
  /// Checks and, if fresh, accepts: what a receiver does with a packet whose tag verifies.
  func admit(_ w: inout ReplayWindow, _ c: UInt64) -> Bool {
    guard w.check(c) else { return false }
    w.accept(c)
    return true
  }

  @Test func inOrderCountersAreAccepted() {
    var w = ReplayWindow()
    for c: UInt64 in 1...1000 { #expect(admit(&w, c), "counter \(c)") }
    #expect(w.highest == 1000)
  }

  @Test func anExactDuplicateIsRefused() {
    var w = ReplayWindow()
    #expect(admit(&w, 1))
    #expect(!admit(&w, 1))
    #expect(admit(&w, 2))
    #expect(!admit(&w, 2))
    #expect(!admit(&w, 1))
  }

  @Test func outOfOrderWithinTheWindowIsAcceptedOnce() {
    var w = ReplayWindow()
    #expect(admit(&w, 10))
    for c: UInt64 in [3, 9, 1, 7] {
      #expect(admit(&w, c), "first \(c)")
      #expect(!admit(&w, c), "again \(c)")
    }
    for c: UInt64 in [2, 4, 5, 6, 8] { #expect(admit(&w, c), "first \(c)") }
    for c: UInt64 in 1...10 { #expect(!w.check(c), "all of 1...10 seen: \(c)") }
    #expect(w.highest == 10)
  }

  @Test func sixtyFourBelowTheHighestIsRefusedSixtyThreeAccepted() {
    var w = ReplayWindow()
    #expect(admit(&w, 1000))
    #expect(!w.check(1000 - 64))
    #expect(!w.check(1000 - 100))
    #expect(w.check(1000 - 63))
    #expect(admit(&w, 1000 - 63))
    #expect(!admit(&w, 1000 - 63))
    #expect(!admit(&w, 1000 - 64))
  }

  @Test func aJumpOfMoreThanTheWidthClearsTheBitmap() {
    var w = ReplayWindow()
    for c: UInt64 in 1...64 { #expect(admit(&w, c)) }
    #expect(admit(&w, 64 + 65))                         // highest 129, every old bit shifted out
    #expect(!w.check(129 - 64))                          // 65: unseen, but below the window
    for c: UInt64 in (129 - 63)...128 { #expect(w.check(c), "unseen \(c)") }
    #expect(!w.check(129))
  }

  @Test func aJumpOfExactlyTheWidthClearsTheBitmap() {
    var w = ReplayWindow()
    for c: UInt64 in 1...64 { #expect(admit(&w, c)) }
    #expect(admit(&w, 128))
    #expect(!w.check(64))
    for c: UInt64 in 65...127 { #expect(w.check(c), "unseen \(c)") }
  }

  @Test func aJumpWithinTheWidthKeepsTheBitsStillInside() {
    var w = ReplayWindow()
    for c: UInt64 in 1...64 { #expect(admit(&w, c)) }
    #expect(admit(&w, 127))                              // shift by 63: counter 64 now 63 below
    #expect(!w.check(64))                                // seen, and still inside
    #expect(!w.check(63))                                // 64 below: outside
    for c: UInt64 in 65...126 { #expect(w.check(c), "unseen \(c)") }
    #expect(admit(&w, 100))
    #expect(!w.check(100))
  }

  @Test func counterZeroIsRefused() {
    var w = ReplayWindow()
    #expect(!w.check(0))
    w.accept(0)
    #expect(w == ReplayWindow())                         // recording 0 changes nothing
    #expect(admit(&w, 5))
    #expect(!w.check(0))
  }

  @Test func nearTheTopOfTheCounterSpaceNothingTraps() {
    var w = ReplayWindow()
    #expect(w.check(.max))
    #expect(admit(&w, 1))
    #expect(admit(&w, .max - 1))                        // a jump of almost 2^64
    #expect(admit(&w, .max))
    #expect(!w.check(.max))
    #expect(!w.check(.max - 1))
    #expect(w.check(.max - 63))
    #expect(!w.check(.max - 64))
    #expect(!w.check(1))
    #expect(admit(&w, .max - 2))
    #expect(w.highest == .max)

    var v = ReplayWindow()
    #expect(admit(&v, .max))                            // first counter already the largest
    #expect(!v.check(.max))
    #expect(v.check(.max - 63))
    #expect(!v.check(.max - 64))
  }

  @Test func aCheckWithoutAcceptRecordsNothing() {
    var w = ReplayWindow()
    #expect(admit(&w, 10))
    let before = w
    // A forged packet: its counter passes the test but its tag does not verify.
    #expect(w.check(11))
    #expect(w.check(1_000_000))                          // would move the window far up
    #expect(w.check(5))
    #expect(w == before)
    // The genuine packets with those counters still get through, once.
    #expect(admit(&w, 5))
    #expect(admit(&w, 11))
    #expect(!admit(&w, 5))
    #expect(w.highest == 11)
  }

  @Test func acceptingARefusedCounterChangesNothing() {
    var w = ReplayWindow()
    #expect(admit(&w, 200))
    #expect(admit(&w, 190))
    let before = w
    w.accept(200)                                        // duplicate
    w.accept(190)
    w.accept(100)                                        // below the window
    w.accept(0)
    #expect(w == before)
    #expect(w.check(199))
    #expect(w.check(137))
  }

  /// 10,000 counters from a seeded generator, mostly near the highest (in order, late,
  /// duplicate, too old), sometimes far ahead; about one in eight fails its tag and is
  /// only checked. The window must agree with the set-based model on every one.
  /// A number in `0..<bound` from `rng` (modulo bias is irrelevant here).
  func below(_ bound: UInt64, _ rng: inout SplitMix) -> UInt64 { rng.next() % bound }

  @Test(arguments: [(UInt64(0x5EED), UInt64(0)), (UInt64(0xC0FFEE), UInt64.max - 2_000_000)])
  func agreesWithASetBasedModel(seed: UInt64, start: UInt64) {
    var rng = SplitMix(seed)                             // WispCore's seeded SplitMix64
    var w = ReplayWindow()
    var model = ReferenceReplayModel()
    var base = start
    var accepted = 0, refused = 0
    for step in 0..<10_000 {
      let counter: UInt64
      switch below(20, &rng) {
      case 0:  // far ahead, possibly past the width; saturates at the top
        let jump = 1 + below(1000, &rng)
        counter = base > .max - jump ? .max : base + jump
      case 1:  // a replay of something recently accepted, or 0
        counter = below(4, &rng) == 0 ? 0 : (model.highest > 2 ? model.highest - below(3, &rng) : model.highest)
      default:  // around the highest: -80 ... +8
        let back = below(89, &rng)
        if back >= 80 {
          let up = back - 79
          counter = base > .max - up ? .max : base + up
        } else {
          counter = base >= back ? base - back : 0
        }
      }
      let fresh = w.check(counter)
      #expect(fresh == model.check(counter), "step \(step) counter \(counter) highest \(w.highest)")
      let tagVerifies = below(8, &rng) != 0
      if fresh && tagVerifies {
        w.accept(counter)
        model.accept(counter)
        accepted += 1
      } else {
        refused += 1
      }
      #expect(w.highest == model.highest, "step \(step)")
      base = max(base, model.highest)
    }
    // The mix really exercised both outcomes.
    #expect(accepted > 1000)
    #expect(refused > 1000)
  }
}
