// The clock in a node's status (text, JSON parsed back, Prometheus) and NodeClock: the
// control plane's reading, published for the credit side, and the LED state it raises.
import Foundation
import Testing
import WispCore
import WispNode

@Suite struct ClockStatusTests {
  @Test(arguments: [(ClockState.synced, "synced", true, false), (.unsynced, "unsynced", false, false),
                    (.assumed, "assumed", true, true)])
  func everyFormatSaysIt(clock: ClockState, word: String, synced: Bool, assumed: Bool) throws {
    var s = StatusSnapshot()
    s.clock = clock
    let line = try #require(s.text().split(separator: "\n").first { $0.hasPrefix("clock:") })
    #expect(line.hasPrefix("clock:     " + (clock == .assumed ? "assumed synced" : word)))
    let j = try #require(try JSONSerialization.jsonObject(with: Data(s.json().utf8)) as? [String: Any])
    let c = try #require(j["clock"] as? [String: Any])
    #expect(c["state"] as? String == word && c["synced"] as? Bool == synced && c["assumed"] as? Bool == assumed)
    let p = s.prometheus()
    #expect(p.contains("\nwisp_clock_synced \(synced ? 1 : 0)\n"))
    #expect(p.contains("\nwisp_clock_sync_assumed \(assumed ? 1 : 0)\n"))
  }

  @Test func theUnsyncedLineSaysWhatWaits() {
    var s = StatusSnapshot()
    s.clock = .unsynced
    #expect(s.text().contains("clock:     unsynced (the kernel's clock is not synchronised: receipt epochs and payer validity wait)\n"))
  }

  @Test func nodeClockFollowsTheKernelOncePerRefresh() {
    var reading = KernelClockReading(state: 5, status: 0x40)
    var reads = 0
    let clock = NodeClock(mode: .kernel, read: { reads += 1; return reading })
    let synced = clock.clockSynced  // what the credit side is given
    #expect(reads == 1 && clock.state == .unsynced && !synced())
    reading = KernelClockReading(state: 0, status: 0x1)  // a time client synchronised the clock
    #expect(!synced(), "the reading changes only at a refresh (once a tick)")
    clock.refresh()
    #expect(reads == 2 && clock.state == .synced && synced())
    reading = KernelClockReading(state: 5, status: 0x40)  // it lost its servers
    clock.refresh()
    #expect(clock.state == .unsynced && !synced())
    // Reloaded to assume: the kernel is no longer asked.
    clock.mode = .assume
    clock.refresh()
    #expect(reads == 3 && clock.state == .assumed && synced())
  }

  @Test func assumeNeverAsksTheKernel() {
    var reads = 0
    let clock = NodeClock(mode: .assume, read: { reads += 1; return KernelClockReading(state: 5, status: 0x40) })
    clock.refresh()
    #expect(reads == 0 && clock.state == .assumed && clock.synced && clock.kernel == nil)
  }

  @Test func anUnsyncedClockIsShownOnTheLEDs() {
    let leds = NodeLEDs(lines: LEDLines())  // the console stand-in
    leds.set(.ready, true)
    leds.set(.clockUnsynced, true)
    _ = leds.update(nowNs: 1_000_000_000, packets: 0)
    #expect(leds.summary.hasPrefix("clock-unsynced "))
    leds.set(.clockUnsynced, false)
    _ = leds.update(nowNs: 1_100_000_000, packets: 0)
    #expect(leds.summary.hasPrefix("ready "))
  }
}
