// The node's status LEDs: the pattern engine driven by the event loop's timers, on real
// GPIO lines (libgpiod) when the board or config names them, else on a console stand-in
// whose state `wisp status` shows. A GPIO failure is reported once and the node carries
// on headless.
import WispCore
import WispGPIO
import WispOS

/// GPIO lines or the console stand-in, behind the engine's one small interface.
public enum NodeLEDOutput: LEDOutput {
  case gpio(GPIOLEDs)
  case console(ConsoleLEDs)

  public var count: Int {
    switch self {
    case .gpio(let g): return g.count
    case .console(let c): return c.count
    }
  }

  public mutating func set(_ index: Int, on: Bool) {
    if case .gpio(var g) = self {
      g.set(index, on: on)
      self = .gpio(g)
    }
  }

  public mutating func release() {
    if case .gpio(var g) = self {
      g.release()
      self = .console(ConsoleLEDs(count: g.count))
    }
  }
}

public final class NodeLEDs {
  public var panel: LEDPanel<NodeLEDOutput>
  /// "gpio ...", "console" or "headless: reason".
  public let backend: String
  public var lastPackets: UInt64 = 0

  public init(lines: LEDLines) {
    var refs: [LineRef] = []
    for l in [lines.status, lines.activity, lines.error] { if let l { refs.append(l) } }
    var output = NodeLEDOutput.console(ConsoleLEDs(count: 3))
    var backend = "console (no LED lines configured)"
    if let chip = lines.chip, !refs.isEmpty {
      do {
        let g = try GPIOLEDs(chip: chip, lines: refs, activeLow: lines.activeLow)
        backend = "gpio \(g.chipDescription), \(refs.count) LED(s)"
        output = .gpio(g)
      } catch {
        backend = "headless: \(error.message)"
        Log.warn("LEDs unavailable, running headless", "error=\"\(Log.quote(error.message))\"")
      }
    }
    self.backend = backend
    let layout = LEDLayout(count: output.count) ?? LEDLayout(count: 3)!
    panel = LEDPanel(engine: LEDEngine(layout: layout), output: output)
  }

  /// What the LEDs show, for status: "ready ● ○ ○ (gpio ...)".
  public var summary: String {
    let name = panel.engine.shown.map { "\($0.name)" } ?? "dark"
    return "\(name) \(LEDText.dots(panel.levels, panel.engine.layout)) (\(backend))"
  }

  public func set(_ state: LEDState, _ on: Bool) {
    if on != panel.engine.isRaised(state) {
      if on { panel.engine.raise(state) } else { panel.engine.clear(state) }
    }
  }

  /// Feeds traffic and brings the LEDs up to date; returns when to call again (ns).
  public func update(nowNs: UInt64, packets: UInt64) -> UInt64 {
    let delta = packets &- lastPackets
    lastPackets = packets
    set(.relaying, delta > 0)
    _ = panel.engine.traffic(packets: UInt32(min(delta, UInt64(UInt32.max))))
    let nowMs = nowNs / 1_000_000
    let deadline = panel.tick(nowMs: nowMs)
    // Sample traffic every 50 ms while relaying or idle-ready, sooner if a pattern needs it.
    var next = nowMs + 50
    if let d = deadline, d < next { next = max(d, nowMs + 1) }
    return next * 1_000_000
  }

  /// Shutdown pattern for a moment, then every LED off and the lines released.
  public func shutdown(nowNs: UInt64) {
    set(.shuttingDown, true)
    _ = panel.tick(nowMs: nowNs / 1_000_000)
    panel.darken()
    panel.output.release()
  }
}
