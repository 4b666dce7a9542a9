// The LED pattern engine: which state to show, and which LEDs are lit when.
// Runs on host and device.
//
// The engine owns no clock, thread or timer. The caller (the node's event loop,
// or `wisp leds`) asks it for the levels at a time it chooses:
//
//   1. raise/clear conditions as they change (several may hold at once);
//   2. report forwarded packets with `traffic(packets:)` while relaying;
//   3. call `advance(nowMs:)` at start, after every change, and whenever the
//      deadline it returned has passed; arm a timer for the new deadline.
//
// Levels are a pure function of the time since the shown state began, so a
// late timer shows the right frame when it fires and drift never accumulates.

public struct LEDEngine {
  public let layout: LEDLayout
  /// Packets that make one activity flash while relaying.
  public let packetsPerFlash: UInt32

  /// Raised conditions, one bit per state (`LEDState.bit`).
  var conditions: UInt16 = 0
  /// The state on show, or nil (nothing raised: LEDs dark).
  public private(set) var shown: LEDState? = nil
  var pattern: LEDPattern? = nil
  /// When the shown pattern started; nil until the first `advance` after a change.
  var originMs: UInt64? = nil

  // Relaying flicker: packets counted towards the next flash, flashes waiting,
  // the end of the flash on show, and the earliest start of the next one.
  var packets: UInt32 = 0
  var pendingFlashes: UInt32 = 0
  var flashEndMs: UInt64 = 0
  var nextFlashMs: UInt64 = 0

  public init(layout: LEDLayout, packetsPerFlash: UInt32 = LEDTiming.packetsPerFlash) {
    precondition(packetsPerFlash > 0, "packetsPerFlash must be positive")
    self.layout = layout
    self.packetsPerFlash = packetsPerFlash
  }

  /// Whether `state` is raised (it may be hidden by a state of higher precedence).
  public func isRaised(_ state: LEDState) -> Bool { conditions & state.bit != 0 }

  /// Raises a condition.
  public mutating func raise(_ state: LEDState) {
    conditions |= state.bit
    update()
  }

  /// Clears a condition.
  public mutating func clear(_ state: LEDState) {
    conditions &= ~state.bit
    update()
  }

  /// Clears every condition and raises `state` alone (nil: all dark).
  public mutating func showOnly(_ state: LEDState?) {
    conditions = state?.bit ?? 0
    update()
  }

  /// Counts forwarded packets. Returns true when a flash is now waiting and the
  /// LEDs were idle: the caller should `advance` now rather than at its deadline.
  @discardableResult
  public mutating func traffic(packets count: UInt32) -> Bool {
    guard pattern?.flickers == true, count > 0 else { return false }
    let wasIdle = pendingFlashes == 0
    let total = UInt64(packets) + UInt64(count)
    let flashes = total / UInt64(packetsPerFlash)
    packets = UInt32(total % UInt64(packetsPerFlash))
    pendingFlashes = UInt32(min(UInt64(LEDTiming.maxPendingFlashes), UInt64(pendingFlashes) + flashes))
    return wasIdle && pendingFlashes > 0
  }

  /// The LED levels at `nowMs` and the time they next change by themselves
  /// (nil: not until a condition changes or traffic arrives).
  public mutating func advance(nowMs: UInt64) -> (levels: LEDLevels, nextDeadlineMs: UInt64?) {
    guard let pattern else { return (.off, nil) }
    let origin: UInt64
    if let o = originMs { origin = o } else { origin = nowMs; originMs = nowMs }
    var levels = pattern.frames[0].levels
    var deadline: UInt64? = nil
    if !pattern.isSteady {
      let period = pattern.periodMs
      let elapsed = nowMs >= origin ? nowMs - origin : 0
      var t = origin + (elapsed / period) * period
      for f in pattern.frames {
        let end = t + UInt64(f.ms)
        if nowMs < end { levels = f.levels; deadline = end; break }
        t = end
      }
    }
    if pattern.flickers {
      if pendingFlashes > 0 && nowMs >= nextFlashMs && nowMs >= flashEndMs {
        pendingFlashes -= 1
        flashEndMs = nowMs + LEDTiming.flashMs
        nextFlashMs = flashEndMs + LEDTiming.flashGapMs
      }
      if nowMs < flashEndMs {
        // A flash lights the activity LED; on the ACT LED (steady on) it darkens it.
        levels[layout.activityIndex] = layout != .one
        deadline = earliest(deadline, flashEndMs)
      } else if pendingFlashes > 0 {
        deadline = earliest(deadline, nextFlashMs)
      }
    }
    return (levels, deadline)
  }

  /// Re-derives the shown state after a condition changed; a new state starts
  /// its pattern from the beginning at the next `advance`.
  mutating func update() {
    var best: LEDState? = nil
    for s in LEDState.all where conditions & s.bit != 0 {
      if best == nil || s.precedence > best!.precedence { best = s }
    }
    if best == shown { return }
    shown = best
    pattern = best.map { LEDPattern.of($0, on: layout) }
    originMs = nil
    packets = 0
    pendingFlashes = 0
    flashEndMs = 0
    nextFlashMs = 0
  }
}

func earliest(_ a: UInt64?, _ b: UInt64) -> UInt64 {
  guard let a else { return b }
  return a < b ? a : b
}
