// `wisp leds`: check the status LEDs by eye.
//
//   wisp leds test [--board B] [--chip LABEL] [--lines A,B,C] [--active-low] [--console] [--step-ms N]
//       walks through every state's pattern, printing its name (wiring check);
//   wisp leds show STATE [--seconds N] [same options]
//       holds one state's pattern for N seconds (the emulated-board test uses it).
//
// The LEDs come from --lines/--chip, else from the board file; --console shows
// them as text. This command times the engine itself (epoll on a signalfd with
// the engine's deadline as timeout); the node drives it from its event loop.
// SIGINT/SIGTERM stop it early; the LEDs are switched off and released on exit.
import CPosix
import WispCore
import WispNode
import WispClient
import WispGPIO
import WispOS

enum LedsCommand {
  /// Where the LEDs are, as resolved from the options and the board file.
  struct Wiring {
    var chip: String? = nil
    var lines: [LineRef] = []
    var labels: [String] = []
    var activeLow = false
  }

  static func run(_ inv: Invocation) -> Int32 {
    guard let verb = inv.positionals.first else { return usage("say 'test' or 'show STATE'") }
    var state: LEDState? = nil
    if verb.is("show") {
      guard inv.positionals.count == 2 else { return usage("'show' needs a state: \(stateNames())") }
      guard let s = LEDState(name: inv.positionals[1]) else {
        return usage("unknown state '\(inv.positionals[1])' (known: \(stateNames()))")
      }
      state = s
    } else if !verb.is("test") || inv.positionals.count != 1 {
      return usage("unknown 'leds' action '\(verb)' (say 'test' or 'show STATE')")
    }
    let stepMs = number(inv.value("--step-ms"), default: 5000)
    let seconds = number(inv.value("--seconds"), default: 10)
    guard let stepMs, let seconds, stepMs > 0 else { return usage("--step-ms and --seconds take a whole number") }

    let wiring: Wiring
    switch resolve(inv) {
    case .success(let w): wiring = w
    case .failure(let e): Console.err("wisp: leds: \(e.message)"); return 1
    }
    let console = inv.has("--console")
    let count = wiring.lines.isEmpty ? 3 : wiring.lines.count
    guard let layout = LEDLayout(count: count) else {
      Console.err("wisp: leds: give 1 to 3 LED lines, not \(count)")
      return 1
    }
    let engine = LEDEngine(layout: layout)

    if console || wiring.lines.isEmpty {
      if !console { Console.err("wisp: leds: no LED lines configured (use --board, --lines or --console)"); return 1 }
      var panel = LEDPanel(engine: engine, output: ConsoleLEDs(count: count))
      return walk(&panel, state: state, stepMs: stepMs, seconds: seconds, console: true)
    }
    guard let chip = wiring.chip else {
      Console.err("wisp: leds: LED lines given without a chip (use --chip or a board with gpio_chip)")
      return 1
    }
    let leds: GPIOLEDs
    do {
      leds = try GPIOLEDs(chip: chip, lines: wiring.lines, activeLow: wiring.activeLow)
    } catch {
      Console.err("wisp: leds: \(error.message)")
      return 1
    }
    Console.out("leds: \(layout.count) LED(s) on \(leds.chipDescription): \(joined(wiring.labels))"
                + (wiring.activeLow ? " (active low)" : ""))
    var panel = LEDPanel(engine: engine, output: leds)
    let rc = walk(&panel, state: state, stepMs: stepMs, seconds: seconds, console: false)
    panel.darken()
    panel.output.release()
    Console.out("leds: lines off and released")
    return rc
  }

  /// Shows every state for `stepMs` (test), or `state` for `seconds` (show).
  static func walk<O: LEDOutput>(_ panel: inout LEDPanel<O>, state: LEDState?, stepMs: UInt64, seconds: UInt64,
                                 console: Bool) -> Int32 {
    let signals = SignalWait()
    defer { signals.close() }
    let states = state.map { [$0] } ?? LEDState.all
    let holdMs = state == nil ? stepMs : seconds * 1000
    for s in states {
      let layout = panel.engine.layout
      Console.out(pad(s.name, 16) + pad("\(LEDText.pattern(s, layout))", 50) + "\(s.meaning)")
      let timeline = hold(&panel, s, forMs: holdMs, signals: signals)
      if console { Console.out("    " + timeline) }
      if signals.fired {
        Console.out("leds: stopped by signal")
        return 0
      }
    }
    return 0
  }

  /// Holds `state` for `ms`, ticking the panel at its deadlines; returns the
  /// changes seen as a timeline ("0:● ○ ○ 250:○ ● ○ …").
  static func hold<O: LEDOutput>(_ panel: inout LEDPanel<O>, _ state: LEDState, forMs ms: UInt64,
                                 signals: SignalWait) -> String {
    let start = nowMs()
    let end = start + ms
    panel.engine.showOnly(state)
    // Pretend traffic while relaying: a flash's worth of packets every 80 ms
    // (faster than the 10 Hz cap, so the cap shows).
    let trafficEveryMs: UInt64 = 80
    var nextTraffic = start
    var timeline = ""
    var entries = 0
    var last: LEDLevels? = nil
    var now = start
    while now < end {
      if state == .relaying && now >= nextTraffic {
        panel.engine.traffic(packets: LEDTiming.packetsPerFlash)
        nextTraffic += trafficEveryMs
      }
      let deadline = panel.tick(nowMs: now) ?? UInt64.max
      if panel.levels != last {
        last = panel.levels
        entries += 1
        if entries <= 12 { timeline += "\(now - start):\(LEDText.dots(panel.levels, panel.engine.layout)) " }
        else if entries == 13 { timeline += "…" }
      }
      var wake = end
      if deadline < wake { wake = deadline }
      if state == .relaying && nextTraffic < wake { wake = nextTraffic }
      if signals.wait(untilMs: wake) { break }
      now = nowMs()
    }
    return timeline
  }

  /// The wiring from --lines/--chip/--active-low over the board file.
  static func resolve(_ inv: Invocation) -> Result<Wiring, GPIOError> {
    var w = Wiring()
    if let name = inv.value("--board") {
      let path = boardPath(name)
      let text: String
      do {
        text = try Files.readText(path)
      } catch {
        return .failure(GPIOError("cannot read board file \(path): \(error.description)"))
      }
      let board: Board
      do {
        board = try Board.parse(text)
      } catch {
        return .failure(GPIOError("\(path):\(error.line): \(error.message)"))
      }
      w.chip = board.gpioChip
      for l in [board.ledStatus, board.ledActivity, board.ledError] {
        if let l { w.lines.append(l); w.labels.append(lineText(l)) }
      }
      w.activeLow = board.ledActiveLow
    }
    if let chip = inv.value("--chip") { w.chip = chip }
    if let list = inv.value("--lines") {
      w.lines = []
      w.labels = []
      for part in list.utf8.split(separator: 44) {  // ','
        let text = String(part)!
        guard let l = LineRef(text) else { return .failure(GPIOError("bad line '\(text)' in --lines")) }
        w.lines.append(l)
        w.labels.append(text)
      }
    }
    if inv.has("--active-low") { w.activeLow = true }
    return .success(w)
  }

  /// A board name means Board/NAME/board.conf (or $WISP_BOARDS/NAME/board.conf);
  /// anything with a '/' is a board.conf path or the folder holding one.
  static func boardPath(_ name: String) -> String {
    if name.utf8.contains(47) {
      return name.hasByteSuffixConf ? name : name + "/board.conf"
    }
    let root = ProcessInfo.environment("WISP_BOARDS") ?? "Board"
    return root + "/" + name + "/board.conf"
  }

  static func usage(_ message: String) -> Int32 {
    Console.err("wisp: leds: \(message)")
    Console.err(Arguments.usage(.leds))
    return 2
  }

  static func number(_ text: String?, default value: UInt64) -> UInt64? {
    guard let text else { return value }
    return parseDecimal(text)
  }

  static func stateNames() -> String {
    var out = ""
    for s in LEDState.all { out += (out.isEmpty ? "" : ", ") + "\(s.name)" }
    return out
  }

  static func lineText(_ l: LineRef) -> String {
    switch l {
    case .name(let n): return n
    case .offset(let o): return "\(o)"
    }
  }

  static func joined(_ parts: [String]) -> String {
    var out = ""
    for p in parts { out += (out.isEmpty ? "" : ",") + p }
    return out
  }

  static func pad(_ s: StaticString, _ width: Int) -> String { pad("\(s)", width) }
  static func pad(_ s: String, _ width: Int) -> String {
    var s = s
    repeat { s += " " } while s.utf8.count < width
    return s
  }

  static func nowMs() -> UInt64 { wisp_monotonic_ns() / 1_000_000 }
}

/// Sleeps until a time, waking early for SIGINT/SIGTERM (epoll on a signalfd).
final class SignalWait {
  let sfd: Int32
  let epfd: Int32
  private(set) var fired = false

  init() {
    sfd = wisp_signalfd()
    epfd = wisp_epoll_create()
    if sfd >= 0 && epfd >= 0 { _ = wisp_epoll_add(epfd, sfd, 1) }
  }

  /// Waits until `untilMs` (monotonic); true when a signal arrived.
  func wait(untilMs: UInt64) -> Bool {
    while true {
      let now = LedsCommand.nowMs()
      if now >= untilMs { return false }
      var tag: UInt64 = 0
      let n = wisp_epoll_wait(epfd, &tag, 1, Int32(min(untilMs - now, 60_000)))
      if n > 0 {
        let sig = wisp_signalfd_read(sfd)
        if sig == SIGINT || sig == SIGTERM || sig == SIGHUP { fired = true; return true }
      } else if n == 0 {
        return false
      } else if n != -EINTR {
        // No epoll (should not happen): sleep without noticing signals.
        let ms = untilMs - now
        var ts = timespec(tv_sec: Int(ms / 1000), tv_nsec: Int(ms % 1000) * 1_000_000)
        _ = nanosleep(&ts, nil)
        return false
      }
    }
  }

  func close() {
    if sfd >= 0 { _ = CPosix.close(sfd) }
    if epfd >= 0 { _ = CPosix.close(epfd) }
  }
}

extension String {
  fileprivate var hasByteSuffixConf: Bool {
    let b = Array(utf8)
    let s: [UInt8] = Array(".conf".utf8)
    return b.count >= s.count && Array(b[(b.count - s.count)...]) == s
  }
}
