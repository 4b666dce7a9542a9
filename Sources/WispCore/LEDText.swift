// LED levels and patterns as short text, for machines without GPIO (the local
// demo, `wisp leds test --console`) and for logs. Runs on host and device.

public enum LEDText {
  /// The levels as dots, one per LED: "● ○ ○".
  public static func dots(_ levels: LEDLevels, _ layout: LEDLayout) -> String {
    var out = ""
    for i in 0..<layout.count {
      if i > 0 { out += " " }
      out += levels[i] ? "●" : "○"
    }
    return out
  }

  /// The levels with LED roles: "[status:on activity:off error:off]".
  public static func levels(_ levels: LEDLevels, _ layout: LEDLayout) -> String {
    var out = "["
    for i in 0..<layout.count {
      if i > 0 { out += " " }
      out += "\(layout.role(i)):" + (levels[i] ? "on" : "off")
    }
    return out + "]"
  }

  /// What each LED does in a state's pattern: "[status:off activity:off error:code-3]".
  /// Words: on, off, blink, chase (lamp test), code-N, wink, beacon, flicker, on+flicker.
  public static func pattern(_ state: LEDState, _ layout: LEDLayout) -> String {
    let p = LEDPattern.of(state, on: layout)
    var out = "["
    for i in 0..<layout.count {
      if i > 0 { out += " " }
      var lit = 0
      for f in p.frames where f.levels[i] { lit += 1 }
      let word: String
      if p.flickers && i == layout.activityIndex {
        word = layout == .one ? "on+flicker" : "flicker"
      } else if lit == 0 {
        word = "off"
      } else if lit == p.frames.count {
        word = "on"
      } else if let n = state.blinkCode {
        word = "code-\(n)"
      } else if state == .selfTest && layout != .one {
        word = "chase"
      } else if state == .shuttingDown {
        word = "wink"
      } else if state == .clockUnsynced {
        word = "beacon"
      } else {
        word = "blink"
      }
      out += "\(layout.role(i)):" + word
    }
    return out + "]"
  }
}
