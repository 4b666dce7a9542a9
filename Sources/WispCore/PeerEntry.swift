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
    let parts = Array(text.utf8).split(separator: 61, omittingEmptySubsequences: false)  // '='
    guard parts.count == 2 || parts.count == 3 else {
      throw PeerEntryError("'\(text)' is not NAME=ADDR:PORT[=FINGERPRINT]")
    }
    let name = parts[0]
    guard name.count >= 1, name.count <= maxNameLength, name.allSatisfy(isNameByte) else {
      throw PeerEntryError("'\(text)': the name '\(String(decoding: name, as: UTF8.self))' must be 1 to "
                           + "\(maxNameLength) letters, digits, '_', '.' or '-'")
    }
    let endpoint = try parseEndpoint(Array(parts[1]), entry: text)
    var key: Fingerprint? = nil
    if parts.count == 3 {
      let hex = String(decoding: parts[2], as: UTF8.self)
      guard let k = Fingerprint(hex: hex) else {
        throw PeerEntryError("'\(text)': the fingerprint must be 64 hex digits ('wisp id' of that node), not '\(hex)'")
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
      if out.contains(where: { $0.name.same(p.name) }) { throw PeerEntryError("the name '\(p.name)' is given twice") }
      out.append(p)
    }
    return out
  }

  /// Entries separated by commas or line breaks; blanks around them, empty items and lines
  /// starting with '#' are skipped. Names must be unique; an empty list is allowed.
  public static func parseList(_ text: String) throws(PeerEntryError) -> [PeerEntry] {
    var items: [String] = []
    for line in Array(text.utf8).split(separator: 10) {  // '\n'
      let l = trimmed(line)
      if l.first == 35 { continue }  // '#'
      for item in l.split(separator: 44) {  // ','
        let t = trimmed(item)
        if !t.isEmpty { items.append(String(decoding: t, as: UTF8.self)) }
      }
    }
    return try parse(items)
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

  /// ADDR:PORT, with the part at fault named.
  static func parseEndpoint(_ bytes: [UInt8], entry: String) throws(PeerEntryError) -> Endpoint {
    let text = String(decoding: bytes, as: UTF8.self)
    guard let colon = bytes.lastIndex(of: 58) else {  // ':'
      throw PeerEntryError("'\(entry)': '\(text)' is not ADDR:PORT")
    }
    let address = String(decoding: bytes[..<colon], as: UTF8.self)
    let portText = String(decoding: bytes[(colon + 1)...], as: UTF8.self)
    guard var e = Endpoint(address + ":1") else {
      throw PeerEntryError("'\(entry)': '\(address)' is not an IPv4 address (a.b.c.d)")
    }
    guard let port = parseDecimal(portText), port >= 1, port <= 65535 else {
      throw PeerEntryError("'\(entry)': the port must be 1 to 65535, not '\(portText)'")
    }
    e.port = UInt16(port)
    return e
  }
}
