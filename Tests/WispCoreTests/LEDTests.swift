import Testing
import WispTestSupport
@testable import WispCore
import WispOS

// LED pattern engine, checked against Sources/WispCore/LED-PATTERNS.md through
// the recording fake: exact (time, line, level) traces.

typealias Call = RecordingLEDOutput.Call

/// A panel on the recording fake.
func panel(_ layout: LEDLayout, packetsPerFlash: UInt32 = 16) -> LEDPanel<RecordingLEDOutput> {
  LEDPanel(engine: LEDEngine(layout: layout, packetsPerFlash: packetsPerFlash),
           output: RecordingLEDOutput(count: layout.count))
}

/// The calls a perfect driver makes for a timeline "0:100 250:010 …" (time:levels,
/// LED 0 first) repeated every `periodMs` (0: once) until `endMs`, LEDs starting off.
func expectedCalls(_ timeline: String, periodMs: UInt64, until endMs: UInt64) -> [Call] {
  var steps: [(UInt64, [Bool])] = []
  for entry in timeline.split(separator: " ") {
    let parts = entry.split(separator: ":")
    steps.append((UInt64(parts[0])!, parts[1].map { $0 == "1" }))
  }
  var calls: [Call] = []
  var current = [Bool](repeating: false, count: steps[0].1.count)
  var base: UInt64 = 0
  outer: while true {
    for (t, levels) in steps {
      if base + t >= endMs { break outer }
      for i in 0..<levels.count where levels[i] != current[i] { calls.append(Call(base + t, i, levels[i])) }
      current = levels
    }
    if periodMs == 0 { break }
    base += periodMs
  }
  return calls
}

/// A blink code's timeline: n short blinks (250 on, 250 off), the last off 1500.
func codeTimeline(_ n: Int, led: Int, of count: Int) -> (String, UInt64) {
  func levels(_ on: Bool) -> String {
    var s = ""
    for i in 0..<count { s += (on && i == led) ? "1" : "0" }
    return s
  }
  var parts: [String] = []
  for k in 0..<n {
    parts.append("\(k * 500):\(levels(true))")
    parts.append("\(k * 500 + 250):\(levels(false))")
  }
  return (parts.joined(separator: " "), UInt64(n * 500 - 250 + 1500))
}

/// The specification's table (LED-PATTERNS.md) as timelines: (state, layout, timeline, period).
let specification: [(LEDState, LEDLayout, String, UInt64)] = {
  var rows: [(LEDState, LEDLayout, String, UInt64)] = [
    (.selfTest, .three, "0:100 250:010 500:001 750:111", 1000),
    (.selfTest, .two, "0:10 250:01 500:11 750:00", 1000),
    (.selfTest, .one, "0:1 250:0", 500),
    (.connecting, .three, "0:100 1000:000", 2000),
    (.connecting, .two, "0:10 1000:00", 2000),
    (.connecting, .one, "0:1 1000:0", 2000),
    (.ready, .three, "0:100", 0),
    (.ready, .two, "0:10", 0),
    (.ready, .one, "0:1", 0),
    (.relaying, .three, "0:100", 0),  // without traffic; flicker tested below
    (.relaying, .two, "0:10", 0),
    (.relaying, .one, "0:1", 0),
    (.shuttingDown, .three, "0:100 250:000", 2000),
    (.shuttingDown, .two, "0:10 250:00", 2000),
    (.shuttingDown, .one, "0:1 250:0", 2000),
    (.clockUnsynced, .three, "0:100 1750:000", 2000),  // without traffic; flicker tested below
    (.clockUnsynced, .two, "0:10 1750:00", 2000),
    (.clockUnsynced, .one, "0:1 1750:0", 2000),
  ]
  let codes: [(LEDState, Int)] = [(.noNetwork, 2), (.unpaid, 3), (.quotaReached, 4), (.storageError, 5),
                                  (.identityError, 6)]
  for (state, n) in codes {
    for (layout, led) in [(LEDLayout.three, 2), (.two, 0), (.one, 0)] {
      let (t, p) = codeTimeline(n, led: led, of: layout.count)
      rows.append((state, layout, t, p))
    }
  }
  return rows
}()

@Suite struct LEDPatternTests {
  @Test func everyStateHasARowForEveryLayout() {
    for s in LEDState.all {
      for l in [LEDLayout.one, .two, .three] {
        #expect(specification.contains { $0.0 == s && $0.1 == l }, "no row for \(s.name) on \(l.count) LEDs")
      }
    }
  }

  @Test(arguments: specification.indices)
  func traceMatchesSpecification(row: Int) {
    let (state, layout, timeline, period) = specification[row]
    var p = panel(layout)
    p.engine.showOnly(state)
    let end = 1000 + 2 * max(period, 1000)  // two full cycles and a bit, from t = 1000
    let got = p.simulate(from: 1000, to: end)
    let want = expectedCalls(timeline, periodMs: period, until: end - 1000).map { Call($0.timeMs + 1000, $0.line, $0.on) }
    #expect(got == want, "\(state.name) on \(layout.count) LEDs")
    #expect(LEDPattern.of(state, on: layout).periodMs == period)
  }

  @Test func lampTestOnThreeLEDsLiteral() {
    var p = panel(.three)
    p.engine.showOnly(.selfTest)
    #expect(p.simulate(from: 0, to: 1001) == [
      Call(0, 0, true),
      Call(250, 0, false), Call(250, 1, true),
      Call(500, 1, false), Call(500, 2, true),
      Call(750, 0, true), Call(750, 1, true),
      Call(1000, 1, false), Call(1000, 2, false),
    ])
  }

  @Test func unpaidOnTheACTLEDLiteral() {
    var p = panel(.one)
    p.engine.showOnly(.unpaid)
    #expect(p.simulate(from: 0, to: 2751) == [
      Call(0, 0, true), Call(250, 0, false), Call(500, 0, true), Call(750, 0, false),
      Call(1000, 0, true), Call(1250, 0, false), Call(2750, 0, true),
    ])
  }

  @Test func blinksAreReadableAcrossTheRoom() {
    // Every timed frame lasts at least 250 ms; codes differ by blink count; pause >= 1 s.
    var codes: [Int] = []
    for s in LEDState.all {
      if let n = s.blinkCode { codes.append(n) }
      for l in [LEDLayout.one, .two, .three] {
        for f in LEDPattern.of(s, on: l).frames where f.ms != 0 { #expect(f.ms >= 250, "\(s.name)") }
      }
    }
    #expect(Set(codes).count == codes.count)
    #expect(LEDTiming.codePauseMs >= 1000)
  }

  @Test func namesRoundTrip() {
    for s in LEDState.all { #expect(LEDState(name: "\(s.name)") == s) }
    #expect(LEDState(name: "nope") == nil)
    #expect(LEDState(name: "quota") == .quotaReached)
  }

  @Test func specificationFileNamesEveryState() throws {
    var parts = Array(#filePath.utf8.split(separator: 47).map { String(decoding: $0, as: UTF8.self) })
    parts.removeLast(3)
    let text = try Files.readText("/" + parts.joined(separator: "/") + "/Sources/WispCore/LED-PATTERNS.md")
    for s in LEDState.all {
      #expect(text.contains("| `\(s.name)` |"), "LED-PATTERNS.md has no row for \(s.name)")
      if let n = s.blinkCode {
        #expect(text.contains("| `\(s.name)` |") && text.contains("code \(n) "), "code \(n)")
      }
    }
  }
}

@Suite struct LEDPrecedenceTests {
  @Test func precedenceIsATotalOrder() {
    #expect(Set(LEDState.all.map(\.precedence)).count == LEDState.all.count)
  }

  @Test func highestRaisedStateIsShown() {
    var e = LEDEngine(layout: .three)
    for s in LEDState.all { e.raise(s) }
    // Clearing the shown state each time reveals the next one down.
    var seen: [LEDState] = []
    while let s = e.shown {
      seen.append(s)
      e.clear(s)
    }
    #expect(seen == [.shuttingDown, .identityError, .storageError, .unpaid, .quotaReached, .selfTest,
                     .noNetwork, .clockUnsynced, .connecting, .relaying, .ready])
  }

  @Test func errorsHideNormalStatesAndGiveThemBack() {
    var p = panel(.three)
    p.engine.raise(.ready)
    #expect(p.simulate(from: 0, to: 100) == [Call(0, 0, true)])
    p.engine.raise(.storageError)
    #expect(p.engine.shown == .storageError)
    #expect(p.engine.isRaised(.ready))
    // The code starts at the change (t = 100): status off, error blinking.
    #expect(p.simulate(from: 100, to: 700) == [Call(100, 0, false), Call(100, 2, true), Call(350, 2, false),
                                               Call(600, 2, true)])
    p.engine.raise(.connecting)  // lower than the error: nothing changes on show
    #expect(p.engine.shown == .storageError)
    p.engine.clear(.storageError)
    #expect(p.engine.shown == .connecting)  // connecting beats ready
    #expect(p.simulate(from: 700, to: 1800) == [Call(700, 0, true), Call(700, 2, false), Call(1700, 0, false)])
  }

  @Test func raisingTheShownStateAgainDoesNotRestartIt() {
    var p = panel(.one)
    p.engine.raise(.connecting)
    _ = p.simulate(from: 0, to: 500)
    p.engine.raise(.connecting)
    p.engine.raise(.ready)
    #expect(p.simulate(from: 500, to: 2001) == [Call(1000, 0, false), Call(2000, 0, true)])
  }
}

@Suite struct LEDFlickerTests {
  @Test func flashesFollowPacketsOnePerN() {
    var e = LEDEngine(layout: .three, packetsPerFlash: 16)
    e.showOnly(.relaying)
    #expect(e.advance(nowMs: 0) == (LEDLevels(0b001), nil))
    #expect(e.traffic(packets: 15) == false)  // not yet a flash
    #expect(e.advance(nowMs: 10).nextDeadlineMs == nil)
    #expect(e.traffic(packets: 1) == true)  // the 16th packet: advance now
    let (levels, deadline) = e.advance(nowMs: 20)
    #expect(levels == LEDLevels(0b011))
    #expect(deadline == 70)
    #expect(e.advance(nowMs: 70) == (LEDLevels(0b001), nil))
  }

  @Test func flickerIsCappedAtTenHertz() {
    var p = panel(.three)
    p.engine.showOnly(.relaying)
    // A flood: 1000 packets every 10 ms for one second.
    let calls = p.simulate(from: 0, to: 1000, everyMs: 10) { _ in 1000 }
    let flashes = calls.filter { $0.line == 1 && $0.on }
    #expect(flashes.map(\.timeMs) == [0, 100, 200, 300, 400, 500, 600, 700, 800, 900])
    #expect(calls.filter { $0.line == 1 && !$0.on }.map(\.timeMs) == [50, 150, 250, 350, 450, 550, 650, 750, 850, 950])
    #expect(!calls.contains { $0.line != 1 && $0.timeMs > 0 })  // status stays on, error off
  }

  @Test func flickerStopsSoonAfterTrafficStops() {
    var p = panel(.two)
    p.engine.showOnly(.relaying)
    let calls = p.simulate(from: 0, to: 2000, everyMs: 10) { t in t < 500 ? 1000 : 0 }
    let last = calls.filter { $0.line == 1 && $0.on }.last!.timeMs
    #expect(last < 500 + UInt64(LEDTiming.maxPendingFlashes) * 100)
    #expect(calls.last == Call(last + 50, 1, false))
  }

  @Test func oneLEDFlickerDarkensTheACTLED() {
    var p = panel(.one)
    p.engine.showOnly(.relaying)
    let calls = p.simulate(from: 0, to: 300, everyMs: 10) { t in t == 100 ? 16 : 0 }
    #expect(calls == [Call(0, 0, true), Call(100, 0, false), Call(150, 0, true)])
  }

  @Test func anUnsyncedClockHidesRelayingButKeepsTheActivityFlicker() {
    // A relaying node whose clock is not synchronised: the status LED beacons (1750 on,
    // 250 off), the activity LED still flashes with the packets.
    var p = panel(.three)
    p.engine.raise(.ready)
    p.engine.raise(.relaying)
    p.engine.raise(.clockUnsynced)
    #expect(p.engine.shown == .clockUnsynced)
    let calls = p.simulate(from: 0, to: 2100, everyMs: 10) { t in t == 100 ? 16 : 0 }
    #expect(calls == [Call(0, 0, true), Call(100, 1, true), Call(150, 1, false), Call(1750, 0, false), Call(2000, 0, true)])
    // Synchronised: back to relaying (steady status), from that moment.
    p.engine.clear(.clockUnsynced)
    #expect(p.engine.shown == .relaying)
  }

  @Test func anUnsyncedClockOnTheACTLEDIgnoresTraffic() {
    // One LED: the dark gap must stay readable, so traffic does not darken it further.
    var p = panel(.one)
    p.engine.showOnly(.clockUnsynced)
    let calls = p.simulate(from: 0, to: 2100, everyMs: 10) { _ in 1000 }
    #expect(calls == [Call(0, 0, true), Call(1750, 0, false), Call(2000, 0, true)])
  }

  @Test func noNetworkHidesAnUnsyncedClock() {
    // Without a network no time server can be reached: the cause is shown.
    var e = LEDEngine(layout: .three)
    e.raise(.clockUnsynced)
    e.raise(.noNetwork)
    #expect(e.shown == .noNetwork)
    e.clear(.noNetwork)
    #expect(e.shown == .clockUnsynced)
    e.raise(.connecting)
    #expect(e.shown == .clockUnsynced)
  }

  @Test func trafficOutsideRelayingIsIgnored() {
    var e = LEDEngine(layout: .three)
    e.showOnly(.ready)
    #expect(e.traffic(packets: 1000) == false)
    #expect(e.advance(nowMs: 0) == (LEDLevels(0b001), nil))
  }
}

@Suite struct LEDDeadlineTests {
  @Test func deadlinesAreFrameBoundaries() {
    var e = LEDEngine(layout: .three)
    e.showOnly(.unpaid)
    #expect(e.advance(nowMs: 5000).nextDeadlineMs == 5250)
    #expect(e.advance(nowMs: 5250).nextDeadlineMs == 5500)
    #expect(e.advance(nowMs: 6250) == (LEDLevels(0), 7750))  // the pause after the third blink
    #expect(e.advance(nowMs: 7750) == (LEDLevels(0b100), 8000))  // next cycle
  }

  @Test func aLateTickShowsTheRightFrameWithoutDrift() {
    var e = LEDEngine(layout: .two)
    e.showOnly(.selfTest)
    #expect(e.advance(nowMs: 0).nextDeadlineMs == 250)
    // Woken 9 ms late (inside the ±10 ms tolerance): frame 2, deadline still on the grid.
    #expect(e.advance(nowMs: 259) == (LEDLevels(0b10), 500))
    // Asleep for many cycles: still on the grid.
    #expect(e.advance(nowMs: 100_510) == (LEDLevels(0b11), 100_750))
  }

  @Test func steadyPatternsHaveNoDeadline() {
    for s in [LEDState.ready, .relaying] {
      var e = LEDEngine(layout: .three)
      e.showOnly(s)
      #expect(e.advance(nowMs: 123).nextDeadlineMs == nil)
    }
  }

  @Test func nothingRaisedIsDark() {
    var e = LEDEngine(layout: .three)
    #expect(e.advance(nowMs: 0) == (LEDLevels.off, nil))
  }
}

@Suite struct LEDShutdownTests {
  @Test func darkenSwitchesEveryLineOff() {
    var p = panel(.three)
    p.engine.showOnly(.selfTest)
    _ = p.simulate(from: 0, to: 800)  // all three lit at 750
    p.output.reset()
    p.output.nowMs = 800
    p.darken()
    #expect(p.output.calls == [Call(800, 0, false), Call(800, 1, false), Call(800, 2, false)])
    #expect(p.levels == .off)
  }

  @Test func shutdownWinkThenDark() {
    var p = panel(.three)
    p.engine.raise(.relaying)
    _ = p.simulate(from: 0, to: 10)
    p.engine.raise(.shuttingDown)
    #expect(p.simulate(from: 10, to: 300) == [Call(260, 0, false)])  // status already on: the wink ends at 260
    p.engine.showOnly(nil)
    p.output.nowMs = 300
    #expect(p.tick(nowMs: 300) == nil)
    p.output.nowMs = 300
    p.darken()
    #expect(p.output.calls == [Call(260, 0, false), Call(300, 0, false), Call(300, 1, false), Call(300, 2, false)])
  }
}

@Suite struct LEDTextTests {
  @Test func rendering() {
    #expect(LEDText.dots(LEDLevels(0b101), .three) == "● ○ ●")
    #expect(LEDText.levels(LEDLevels(0b001), .two) == "[status:on activity:off]")
    #expect(LEDText.levels(LEDLevels(0b1), .one) == "[act:on]")
    #expect(LEDText.pattern(.unpaid, .three) == "[status:off activity:off error:code-3]")
    #expect(LEDText.pattern(.relaying, .three) == "[status:on activity:flicker error:off]")
    #expect(LEDText.pattern(.connecting, .one) == "[act:blink]")
    #expect(LEDText.pattern(.relaying, .one) == "[act:on+flicker]")
    #expect(LEDText.pattern(.selfTest, .two) == "[status:chase activity:chase]")
    #expect(LEDText.pattern(.clockUnsynced, .three) == "[status:beacon activity:flicker error:off]")
    #expect(LEDText.pattern(.clockUnsynced, .one) == "[act:beacon]")
  }
}
