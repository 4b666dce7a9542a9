// The small `key = value` text format shared by board files and (later) wisp.conf.
// Runs on host and device.
//
//   # comment
//   key = value          (spaces around '=' optional; value runs to end of line)
//
// Keys are [a-z0-9_]+. Blank lines and lines starting with '#' are ignored.
// A line without '=', an empty key or value, a bad key character or a key
// given twice is an error naming the line.

/// A file the parser rejected, with the 1-based line.
public struct FormatError: Error, Equatable {
  public let line: Int
  public let message: String
  public init(line: Int, _ message: String) {
    self.line = line
    self.message = message
  }
}

/// One `key = value` entry and where it was.
public struct KeyValue: Equatable {
  public let key: String
  public let value: String
  public let line: Int
}

public enum KeyValueFile {
  public static func parse(_ text: String) throws(FormatError) -> [KeyValue] {
    var entries: [KeyValue] = []
    var lineNo = 0
    for rawLine in text.utf8.split(separator: 10, omittingEmptySubsequences: false) {
      lineNo += 1
      let line = trim(Array(rawLine))
      if line.isEmpty || line[0] == 35 { continue }  // '#'
      guard let eq = line.firstIndex(of: 61) else {
        throw FormatError(line: lineNo, "expected 'key = value'")
      }
      let key = trim(Array(line[..<eq]))
      let value = trim(Array(line[(eq + 1)...]))
      if key.isEmpty { throw FormatError(line: lineNo, "missing key before '='") }
      for b in key where !((b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b == 95) {
        throw FormatError(line: lineNo, "bad character in key (use a-z, 0-9, _)")
      }
      if value.isEmpty { throw FormatError(line: lineNo, "missing value after '='") }
      let k = String(decoding: key, as: UTF8.self)
      for e in entries where e.key.same(k) {
        throw FormatError(line: lineNo, "'\(k)' given twice (first on line \(e.line))")
      }
      entries.append(KeyValue(key: k, value: String(decoding: value, as: UTF8.self), line: lineNo))
    }
    return entries
  }

  static func trim(_ bytes: [UInt8]) -> [UInt8] {
    var lo = 0
    var hi = bytes.count
    while lo < hi && (bytes[lo] == 32 || bytes[lo] == 9 || bytes[lo] == 13) { lo += 1 }
    while hi > lo && (bytes[hi - 1] == 32 || bytes[hi - 1] == 9 || bytes[hi - 1] == 13) { hi -= 1 }
    return Array(bytes[lo..<hi])
  }
}
