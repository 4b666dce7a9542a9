// The console stand-in for status LEDs. Runs on host and device.
//
// No hardware: the panel's levels are the LEDs, and whoever shows them prints them
// (`LEDText.dots`): `wisp status` and `wisp demo` for a node without LED lines, and
// `wisp leds --console`.

/// LEDs that exist only as the panel's levels.
public struct ConsoleLEDs: LEDOutput {
  public let count: Int
  public init(count: Int) { self.count = count }
  public mutating func set(_ index: Int, on: Bool) {}
}
