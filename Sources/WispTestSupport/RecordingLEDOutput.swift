// A fake LED output that records every call, for tests (WispTestSupport: never in the
// product).
import WispCore

/// Records each `set` with the time the test says it is.
public struct RecordingLEDOutput: LEDOutput {
  /// One call: at `timeMs`, LED `line` was switched `on` or off.
  public struct Call: Equatable, Sendable {
    public let timeMs: UInt64
    public let line: Int
    public let on: Bool
    public init(_ timeMs: UInt64, _ line: Int, _ on: Bool) {
      self.timeMs = timeMs
      self.line = line
      self.on = on
    }
  }

  public let count: Int
  /// The time stamped on calls; the test moves it forward.
  public var nowMs: UInt64 = 0
  public private(set) var calls: [Call] = []

  public init(count: Int) { self.count = count }

  public mutating func set(_ index: Int, on: Bool) {
    precondition(index >= 0 && index < count, "LED index out of range")
    calls.append(Call(nowMs, index, on))
  }

  public mutating func reset() { calls.removeAll() }
}

extension LEDPanel where Output == RecordingLEDOutput {
  /// Runs the panel from `startMs` to `endMs` (exclusive), ticking at every
  /// deadline as a perfect event loop would, and also every `everyMs` if given
  /// (a packet batch arriving); `traffic` is asked at each tick for the packets
  /// that arrived since the last one. Returns the calls recorded.
  public mutating func simulate(from startMs: UInt64, to endMs: UInt64, everyMs: UInt64? = nil,
                                traffic: (UInt64) -> UInt32 = { _ in 0 }) -> [RecordingLEDOutput.Call] {
    output.reset()
    var now = startMs
    while now < endMs {
      output.nowMs = now
      let p = traffic(now)
      if p > 0 { engine.traffic(packets: p) }
      let deadline = tick(nowMs: now) ?? UInt64.max
      let batch = everyMs.map { now + $0 } ?? UInt64.max
      let next = deadline < batch ? deadline : batch
      if next == UInt64.max { break }
      now = next
    }
    return output.calls
  }
}
