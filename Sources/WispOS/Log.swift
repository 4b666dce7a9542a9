// Logging to stderr as `level=… msg=… key=value`, with repeats rate-limited. Runs on host and device.
// Safe from any thread: the suppression table and the recent lines are kept under one lock,
// and each line is written whole.
import CPosix
import WispCore

public enum Log {
  nonisolated(unsafe) static var prefix = "wisp"  // under the log lock
  /// The name every line starts with (`wisp[NAME]`).
  public static var name: String {
    get { wisp_log_lock(); defer { wisp_log_unlock() }; return prefix }
    set { wisp_log_lock(); prefix = newValue; wisp_log_unlock() }
  }
  /// Per-message-kind suppression: at most `burst` lines per 10 s for one key.
  nonisolated(unsafe) static var keys: [(key: StaticString, windowStart: UInt64, count: Int, suppressed: Int)] = []
  static let burst = 5

  /// The latest warnings and errors (for status), oldest first.
  nonisolated(unsafe) static var recentLines: [String] = []

  /// A copy of the latest warnings and errors, oldest first.
  public static var recent: [String] {
    wisp_log_lock()
    defer { wisp_log_unlock() }
    return recentLines
  }

  public static func info(_ msg: StaticString, _ fields: String = "") { emit("info", msg, fields) }
  public static func warn(_ msg: StaticString, _ fields: String = "") { emit("warn", msg, fields) }
  public static func error(_ msg: StaticString, _ fields: String = "") { emit("error", msg, fields) }

  /// Escapes a value for `key="value"` and JSON strings.
  public static func quote(_ s: String) -> String {
    var out = [UInt8]()
    for b in s.utf8 {
      if b == 34 || b == 92 { out.append(92); out.append(b) }
      else if b < 32 { out.append(32) }
      else { out.append(b) }
    }
    return String(decoding: out, as: UTF8.self)
  }

  static func emit(_ level: String, _ msg: StaticString, _ fields: String) {
    wisp_log_lock()
    defer { wisp_log_unlock() }
    let now = wisp_monotonic_ns()
    var extra = ""
    var found = false
    for i in 0..<keys.count where keys[i].key.utf8Start == msg.utf8Start {
      found = true
      if now - keys[i].windowStart > 10_000_000_000 {
        if keys[i].suppressed > 0 { extra = " suppressed=\(keys[i].suppressed)" }
        keys[i] = (msg, now, 0, 0)
      }
      keys[i].count += 1
      if keys[i].count > burst { keys[i].suppressed += 1; return }
    }
    if !found && keys.count < 64 { keys.append((msg, now, 1, 0)) }
    let line = "level=\(level) msg=\"\(msg)\"\(fields.isEmpty ? "" : " ")\(fields)\(extra)"
    if !level.is("info") {
      if recentLines.count == 8 { recentLines.removeFirst() }
      recentLines.append(line)
    }
    Console.err("\(prefix): \(line)")
  }
}
