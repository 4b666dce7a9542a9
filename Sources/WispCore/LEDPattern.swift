// The light pattern of each LED state on each layout, as timed frames.
// Runs on host and device. LED-PATTERNS.md is the specification of this table;
// Tests/WispCoreTests/LEDTests.swift checks the two agree.

/// One step of a pattern: these LEDs lit, for `ms` milliseconds (0 = for good).
public struct LEDFrame: Equatable, Sendable {
  public let levels: LEDLevels
  public let ms: UInt32
  public init(_ bits: UInt8, _ ms: UInt32) {
    self.levels = LEDLevels(bits)
    self.ms = ms
  }
}

/// Timing constants of the patterns (implementation choices, see LED-PATTERNS.md).
public enum LEDTiming {
  /// One short blink of a blink code is lit this long, then dark this long.
  public static let blinkMs: UInt32 = 250
  /// The dark pause after the last blink of a code, before it repeats.
  public static let codePauseMs: UInt32 = 1500
  /// Each step of the lamp-test chase.
  public static let chaseMs: UInt32 = 250
  /// Half period of the slow "connecting" blink.
  public static let slowMs: UInt32 = 1000
  /// The shutdown wink: lit, then dark.
  public static let winkOnMs: UInt32 = 250
  public static let winkOffMs: UInt32 = 1750
  /// The clock-unsynced beacon: lit, then a short dark gap (the wink inverted).
  public static let beaconOnMs: UInt32 = 1750
  public static let beaconOffMs: UInt32 = 250
  /// An activity flash while relaying, and the dark time after it: at most 10 Hz.
  public static let flashMs: UInt64 = 50
  public static let flashGapMs: UInt64 = 50
  /// Packets per activity flash (default) and flashes that may queue up.
  public static let packetsPerFlash: UInt32 = 16
  public static let maxPendingFlashes: UInt32 = 2
}

/// A state's pattern on one layout: frames repeated forever, plus whether the
/// activity LED flickers with traffic on top of them.
public struct LEDPattern: Equatable, Sendable {
  public let frames: [LEDFrame]
  /// Relaying: traffic flashes the activity LED (on the one-LED layout, briefly darkens it).
  public let flickers: Bool

  public init(_ frames: [LEDFrame], flickers: Bool = false) {
    precondition(!frames.isEmpty, "a pattern needs a frame")
    self.frames = frames
    self.flickers = flickers
  }

  /// Whether the pattern never changes by itself (one frame held for good).
  public var isSteady: Bool { frames.count == 1 && frames[0].ms == 0 }

  /// Length of one cycle in milliseconds (0 when steady).
  public var periodMs: UInt64 {
    var total: UInt64 = 0
    for f in frames { total += UInt64(f.ms) }
    return total
  }

  /// The pattern of `state` on `layout`.
  public static func of(_ state: LEDState, on layout: LEDLayout) -> LEDPattern {
    // LED bits: status (or ACT) 1, activity 2, error 4.
    let status: UInt8 = 1
    let activity: UInt8 = 2
    let error: UInt8 = 4
    // Errors blink their code on the error LED, else on the status/ACT LED.
    if let n = state.blinkCode {
      return code(n, on: layout == .three ? error : status)
    }
    switch state {
    case .selfTest:
      switch layout {
      case .three:
        return LEDPattern([LEDFrame(status, LEDTiming.chaseMs), LEDFrame(activity, LEDTiming.chaseMs),
                           LEDFrame(error, LEDTiming.chaseMs), LEDFrame(status | activity | error, LEDTiming.chaseMs)])
      case .two:
        return LEDPattern([LEDFrame(status, LEDTiming.chaseMs), LEDFrame(activity, LEDTiming.chaseMs),
                           LEDFrame(status | activity, LEDTiming.chaseMs), LEDFrame(0, LEDTiming.chaseMs)])
      case .one:
        return LEDPattern([LEDFrame(status, LEDTiming.chaseMs), LEDFrame(0, LEDTiming.chaseMs)])
      }
    case .connecting:
      return LEDPattern([LEDFrame(status, LEDTiming.slowMs), LEDFrame(0, LEDTiming.slowMs)])
    case .ready:
      return LEDPattern([LEDFrame(status, 0)])
    case .relaying:
      return LEDPattern([LEDFrame(status, 0)], flickers: true)
    case .shuttingDown:
      return LEDPattern([LEDFrame(status, LEDTiming.winkOnMs), LEDFrame(0, LEDTiming.winkOffMs)])
    case .clockUnsynced:
      // Mostly on with a short dark gap every 2 s; the activity LED still flickers with
      // traffic (the node relays), except on the ACT LED, where it would hide the gap.
      return LEDPattern([LEDFrame(status, LEDTiming.beaconOnMs), LEDFrame(0, LEDTiming.beaconOffMs)],
                        flickers: layout != .one)
    default:
      fatalError("state without a pattern")  // every error state has a blink code
    }
  }

  /// `n` short blinks of `bits`, then a long pause.
  static func code(_ n: Int, on bits: UInt8) -> LEDPattern {
    var frames: [LEDFrame] = []
    for i in 0..<n {
      frames.append(LEDFrame(bits, LEDTiming.blinkMs))
      frames.append(LEDFrame(0, i == n - 1 ? LEDTiming.codePauseMs : LEDTiming.blinkMs))
    }
    return LEDPattern(frames)
  }
}
