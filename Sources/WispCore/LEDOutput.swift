// The small interface between the LED engine and the hardware (or a fake).
// Runs on host and device.

/// A set of LEDs that can be switched one at a time.
///
/// Contract: LED indices run from 0 to `count - 1` in the layout's order
/// (status/ACT, activity, error); every LED is off when the output is handed
/// over; `set` takes effect at once and cannot fail (a driver that loses its
/// hardware mid-run stays silent: the LEDs are advisory).
public protocol LEDOutput {
  /// Number of LEDs.
  var count: Int { get }
  /// Lights (`on: true`) or darkens LED `index`. `on` is the light, not the line
  /// level: active-low wiring is the driver's business.
  mutating func set(_ index: Int, on: Bool)
}
