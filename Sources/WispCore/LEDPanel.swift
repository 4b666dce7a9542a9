// An LED engine wired to an output: writes only the LEDs that change.
// Runs on host and device.

/// The engine and the LEDs it drives. The event loop calls `tick` when the
/// returned deadline passes (or after raising/clearing a state, or after
/// traffic asked for it), and `darken` before it releases the LEDs.
public struct LEDPanel<Output: LEDOutput> {
  public var engine: LEDEngine
  public var output: Output
  /// What the LEDs show now (the output starts with every LED off).
  public private(set) var levels: LEDLevels = .off

  public init(engine: LEDEngine, output: Output) {
    precondition(output.count == engine.layout.count, "output has a different number of LEDs than the layout")
    self.engine = engine
    self.output = output
  }

  /// Brings the LEDs to their levels at `nowMs`; returns the next deadline.
  public mutating func tick(nowMs: UInt64) -> UInt64? {
    let (next, deadline) = engine.advance(nowMs: nowMs)
    for i in 0..<engine.layout.count where next[i] != levels[i] {
      output.set(i, on: next[i])
    }
    levels = next
    return deadline
  }

  /// Switches every LED off, whatever it is believed to show (shutdown, before release).
  public mutating func darken() {
    for i in 0..<engine.layout.count { output.set(i, on: false) }
    levels = .off
  }
}
