// Board definitions: what a supported board is and what wisp defaults to on it.
// Runs on host and device. The files live in Board/<name>/board.conf; the
// format is specified in Board/README.md and parsed here.

/// A firmware build target in Toolchain/.
public enum Target: Equatable, Sendable {
  case aarch64, armv7, x86_64

  public init?(name: String) {
    if name.is("aarch64") { self = .aarch64 }
    else if name.is("armv7") { self = .armv7 }
    else if name.is("x86_64") { self = .x86_64 }
    else { return nil }
  }

  public var name: String {
    switch self {
    case .aarch64: return "aarch64"
    case .armv7: return "armv7"
    case .x86_64: return "x86_64"
    }
  }
}

/// A GPIO line: a name such as `GPIO17`, or a numeric offset on the chip.
public enum LineRef: Equatable {
  case name(String)
  case offset(UInt32)

  public init?(_ text: String) {
    if text.isEmpty { return nil }
    if let n = parseDecimal(text), n < 1024 { self = .offset(UInt32(n)) } else { self = .name(text) }
  }
}

/// One parsed board file.
public struct Board {
  public var name: String = ""
  public var description: String = ""
  public var target: Target = .x86_64
  /// Whether the CPU has AES instructions (decides the cipher preference).
  public var cpuAES = false
  public var cores: Int = 1
  /// Label of the GPIO chip the LEDs hang off (found by label, not number).
  public var gpioChip: String? = nil
  public var ledStatus: LineRef? = nil
  public var ledActivity: LineRef? = nil
  public var ledError: LineRef? = nil
  public var ledActiveLow = false
  public var poolPackets: Int = 4096
  public var circuits: Int = 4096
  public var sessions: Int = 256

  public init() {}

  static let keys: [StaticString] = [
    "name", "description", "target", "cpu_aes", "cores", "gpio_chip", "led_status", "led_activity",
    "led_error", "led_active_low", "pool_packets", "circuits", "sessions",
  ]

  /// Parses and validates a board file's text.
  public static func parse(_ text: String) throws(FormatError) -> Board {
    var b = Board()
    var sawName = false
    var sawTarget = false
    for kv in try KeyValueFile.parse(text) {
      let k = kv.key
      let v = kv.value
      func number(_ lo: Int, _ hi: Int) throws(FormatError) -> Int {
        guard let n = parseDecimal(v), n >= UInt64(lo), n <= UInt64(hi) else {
          throw FormatError(line: kv.line, "'\(k)' must be a whole number from \(lo) to \(hi)")
        }
        return Int(n)
      }
      func flag() throws(FormatError) -> Bool {
        if v.is("yes") { return true }
        if v.is("no") { return false }
        throw FormatError(line: kv.line, "'\(k)' must be yes or no")
      }
      func line() throws(FormatError) -> LineRef? {
        if v.is("none") { return nil }
        guard let l = LineRef(v) else { throw FormatError(line: kv.line, "'\(k)' must be a line name, offset or none") }
        return l
      }
      if k.is("name") { b.name = v; sawName = true }
      else if k.is("description") { b.description = v }
      else if k.is("target") {
        guard let t = Target(name: v) else {
          throw FormatError(line: kv.line, "unknown target '\(v)' (known: aarch64, armv7, x86_64)")
        }
        b.target = t
        sawTarget = true
      }
      else if k.is("cpu_aes") { b.cpuAES = try flag() }
      else if k.is("cores") { b.cores = try number(1, 64) }
      else if k.is("gpio_chip") { b.gpioChip = v.is("none") ? nil : v }
      else if k.is("led_status") { b.ledStatus = try line() }
      else if k.is("led_activity") { b.ledActivity = try line() }
      else if k.is("led_error") { b.ledError = try line() }
      else if k.is("led_active_low") { b.ledActiveLow = try flag() }
      else if k.is("pool_packets") { b.poolPackets = try number(64, 1 << 20) }
      else if k.is("circuits") { b.circuits = try number(16, 1 << 20) }
      else if k.is("sessions") { b.sessions = try number(4, 1 << 16) }
      else { throw FormatError(line: kv.line, "unknown key '\(k)'" + suggestion(k, among: keys)) }
    }
    if !sawName { throw FormatError(line: 0, "missing 'name'") }
    if !sawTarget { throw FormatError(line: 0, "missing 'target'") }
    // Lines must not collide: two LEDs on one line would fight.
    let lines = [b.ledStatus, b.ledActivity, b.ledError]
    for i in 0..<lines.count {
      for j in (i + 1)..<lines.count {
        if let a = lines[i], let c = lines[j], a == c {
          throw FormatError(line: 0, "two LEDs share one GPIO line")
        }
      }
    }
    if (b.ledStatus != nil || b.ledActivity != nil || b.ledError != nil) && b.gpioChip == nil {
      throw FormatError(line: 0, "LED lines given without 'gpio_chip'")
    }
    return b
  }

  /// The cipher suite wisp prefers on this board: ChaCha20 without AES instructions.
  public var prefersChaCha: Bool { !cpuAES }
}

/// ", did you mean 'x'?" for the closest known key within edit distance 2, else "".
public func suggestion(_ word: String, among known: [StaticString]) -> String {
  let w = Array(word.utf8)
  var best: (distance: Int, key: StaticString)? = nil
  for k in known {
    let kb = Array(UnsafeBufferPointer(start: k.utf8Start, count: k.utf8CodeUnitCount))
    let d = editDistance(w, kb)
    if d <= 2 && (best == nil || d < best!.distance) { best = (d, k) }
  }
  if let best { return ", did you mean '\(best.key)'?" }
  return ""
}

func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
  if a.isEmpty { return b.count }
  if b.isEmpty { return a.count }
  var prev = Array(0...b.count)
  var cur = [Int](repeating: 0, count: b.count + 1)
  for i in 1...a.count {
    cur[0] = i
    for j in 1...b.count {
      let cost = a[i - 1] == b[j - 1] ? 0 : 1
      cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    }
    swap(&prev, &cur)
  }
  return prev[b.count]
}
