// How many LEDs a board has for wisp, and what each one is for.
// Runs on host and device.

/// The LED layouts wisp drives. LED index 0 is always the first configured line.
///
///   three: 0 status (green), 1 activity (yellow/green), 2 error (red)
///   two:   0 status, 1 activity; errors are blink codes on the status LED
///   one:   0 the board's ACT LED; every state is a steady light, a blink or a blink code
public enum LEDLayout: Equatable, Sendable {
  case one, two, three

  /// The layout for `count` configured LEDs (1...3), or nil.
  public init?(count: Int) {
    switch count {
    case 1: self = .one
    case 2: self = .two
    case 3: self = .three
    default: return nil
    }
  }

  /// Number of LEDs.
  public var count: Int {
    switch self {
    case .one: return 1
    case .two: return 2
    case .three: return 3
    }
  }

  /// The role of LED `index`, as printed by the console renderer.
  public func role(_ index: Int) -> StaticString {
    switch (self, index) {
    case (.one, 0): return "act"
    case (_, 0): return "status"
    case (_, 1): return "activity"
    case (.three, 2): return "error"
    default: fatalError("LED index out of range for layout")  // programmer error
    }
  }

  /// The LED that flickers with traffic while relaying.
  var activityIndex: Int { self == .one ? 0 : 1 }
}

/// The levels of up to 8 LEDs: bit i set means LED i is lit.
public struct LEDLevels: Equatable, Sendable {
  public var bits: UInt8
  public init(_ bits: UInt8 = 0) { self.bits = bits }
  public static let off = LEDLevels(0)
  public subscript(_ index: Int) -> Bool {
    get { bits & (1 << UInt8(index)) != 0 }
    set { if newValue { bits |= 1 << UInt8(index) } else { bits &= ~(1 << UInt8(index)) } }
  }
}
