// A neighbour node as configured: `NAME=ADDR:PORT[=FINGERPRINT]`. Runs on host and device.
//
// The one parser of peer entries, for `wisp run --peer` (repeatable), the config file's
// `peers` (comma-separated) and `wisp client --peers` (comma-separated, or one a line in
// a file with `#` comments). Rules:
//  - NAME: 1 to 32 of A-Z a-z 0-9 _ . - ; unique within a list (byte for byte);
//  - ADDR:PORT: an IPv4 address in dotted decimal, a port from 1 to 65535;
//  - FINGERPRINT (optional): 64 hex digits (':' separators allowed), `wisp id` of that
//    node. With one the peer is pinned (a DTLS node link, or a client's pinned first hop).
// Errors quote the entry and say which part is wrong; the caller prefixes the option or key.

public struct PeerEntry: Equatable {
  public var name: String
  public var endpoint: Endpoint
  public var key: Fingerprint?

  public init(name: String, endpoint: Endpoint, key: Fingerprint? = nil) {
    self.name = name
    self.endpoint = endpoint
    self.key = key
  }

  public static let maxNameLength = 32
}

/// A peer entry or list the rules refuse; `message` says which part and why.
public struct PeerEntryError: Error, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
}

extension PeerEntry {
  /// One `NAME=ADDR:PORT[=FINGERPRINT]` entry.
  public static func parse(_ text: String) throws(PeerEntryError) -> PeerEntry {
    let b = Array(text.utf8)
    var eq: [Int] = []
    for i in b.indices where b[i] == 61 { eq.append(i) }  // '='
    guard eq.count == 1 || eq.count == 2 else {
      throw PeerEntryError("'" + text + "' is not NAME=ADDR:PORT[=FINGERPRINT]")
    }
    let name = b[..<eq[0]]
    guard name.count >= 1, name.count <= maxNameLength, name.allSatisfy(isNameByte) else {
      throw bad(text, "name", name, "must be 1 to 32 letters, digits, '_', '.' or '-'")
    }
    let address = b[(eq[0] + 1)..<(eq.count == 2 ? eq[1] : b.count)]
    guard let colon = address.lastIndex(of: 58) else { throw bad(text, "address", address, "is not ADDR:PORT") }  // ':'
    guard var endpoint = Endpoint(String(decoding: address[..<colon], as: UTF8.self) + ":1") else {
      throw bad(text, "address", address[..<colon], "is not an IPv4 address (a.b.c.d)")
    }
    let portText = address[(colon + 1)...]
    guard let port = parseDecimal(String(decoding: portText, as: UTF8.self)), port >= 1, port <= 65535 else {
      throw bad(text, "port", portText, "is not 1 to 65535")
    }
    endpoint.port = UInt16(port)
    var key: Fingerprint? = nil
    if eq.count == 2 {
      let hex = b[(eq[1] + 1)...]
      guard let k = Fingerprint(hex: String(decoding: hex, as: UTF8.self)) else {
        throw bad(text, "fingerprint", hex, "is not 64 hex digits ('wisp id' of that node)")
      }
      key = k
    }
    return PeerEntry(name: String(decoding: name, as: UTF8.self), endpoint: endpoint, key: key)
  }

  /// Entries one by one (a repeated option); names must be unique.
  public static func parse(_ entries: [String]) throws(PeerEntryError) -> [PeerEntry] {
    var out: [PeerEntry] = []
    for e in entries {
      let p = try parse(e)
      if out.contains(where: { $0.name.same(p.name) }) { throw PeerEntryError("the name '" + p.name + "' is given twice") }
      out.append(p)
    }
    return out
  }

  /// Entries separated by commas or line breaks; blanks around them, empty items and lines
  /// starting with '#' are skipped. Names must be unique; an empty list is allowed.
  public static func parseList(_ text: String) throws(PeerEntryError) -> [PeerEntry] {
    var items: [String] = []
    var item: [UInt8] = []
    var lineStart = true
    var comment = false
    for c in text.utf8 + [10] {
      if comment {
        if c == 10 { comment = false; lineStart = true }
      } else if c == 10 || c == 44 {  // '\n', ','
        let t = trimmed(item[...])
        if !t.isEmpty { items.append(String(decoding: t, as: UTF8.self)) }
        item.removeAll(keepingCapacity: true)
        lineStart = c == 10
      } else if c == 35 && lineStart {  // '#'
        comment = true
      } else {
        if c != 32 && c != 9 && c != 13 { lineStart = false }
        item.append(c)
      }
    }
    return try parse(items)
  }

  /// "'ENTRY': the PART 'VALUE' RULE" (one place, so each check costs a call, not a message).
  @inline(never)
  static func bad(_ entry: String, _ part: StaticString, _ value: ArraySlice<UInt8>, _ rule: StaticString) -> PeerEntryError {
    PeerEntryError("'\(entry)': the \(part) '\(String(decoding: value, as: UTF8.self))' \(rule)")
  }

  static func isNameByte(_ b: UInt8) -> Bool {
    (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 || b == 45 || b == 46
  }

  static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    var s = bytes
    while let b = s.first, b == 32 || b == 9 || b == 13 { s = s.dropFirst() }
    while let b = s.last, b == 32 || b == 9 || b == 13 { s = s.dropLast() }
    return s
  }
}
