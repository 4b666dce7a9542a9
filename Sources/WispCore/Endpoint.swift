// A UDP endpoint: an IPv4 or IPv6 address and a port. Runs on host and device.
//
// Every peer, exit, listen and source address in wisp is an `Endpoint`. The address is
// held as 128 bits; an IPv4 address is held IPv4-mapped (::ffff:a.b.c.d), so one type,
// one comparison and one hash serve both families. Wire protocol v2 and the socket layer
// carry IPv4 only today: they read `ip` (the IPv4 address) and nothing else does, so that
// adding IPv6 on the wire touches the hop codec (Frame.swift) and the sockets (WispOS),
// not the places that hold, compare or judge addresses.

public struct Endpoint: Hashable, Sendable {
  /// The address's first and last 64 bits, in network order of significance.
  public var hi: UInt64
  public var lo: UInt64
  public var port: UInt16

  /// An IPv4 endpoint; `ip` in host byte order.
  public init(ip: UInt32, port: UInt16) {
    hi = 0
    lo = 0xFFFF_0000_0000 | UInt64(ip)
    self.port = port
  }

  /// An IPv6 endpoint from the address's two 64-bit halves (an IPv4-mapped address is IPv4).
  public init(hi: UInt64, lo: UInt64, port: UInt16) {
    self.hi = hi
    self.lo = lo
    self.port = port
  }

  /// Whether the address is IPv4 (held IPv4-mapped).
  @inline(__always)
  public var isIPv4: Bool { hi == 0 && lo >> 32 == 0xFFFF }

  /// The IPv4 address in host byte order (0 for IPv6). For the IPv4 wire codec and sockets.
  @inline(__always)
  public var ip: UInt32 { isIPv4 ? UInt32(truncatingIfNeeded: lo) : 0 }

  /// What identifies a *source* for per-source limits (THREAT-MODEL.md): the IPv4 address,
  /// or the IPv6 /64 (one household's or one server's prefix).
  @inline(__always)
  public var sourceKey: UInt64 { isIPv4 ? lo : hi }

  /// 127.0.0.0/8 or ::1.
  public var isLoopback: Bool { isIPv4 ? ip >> 24 == 127 : (hi == 0 && lo == 1) }
  /// 0.0.0.0 or ::.
  public var isUnspecified: Bool { isIPv4 ? ip == 0 : (hi == 0 && lo == 0) }
  /// 224.0.0.0/4 or ff00::/8.
  public var isMulticast: Bool { isIPv4 ? ip >> 28 == 0xE : hi >> 56 == 0xFF }
  /// 255.255.255.255 (IPv6 has no broadcast).
  public var isBroadcast: Bool { isIPv4 && ip == 0xFFFF_FFFF }

  /// Parses "a.b.c.d:port" or "[IPv6]:port" (port 1–65535).
  public init?(_ text: String) {
    let u = Array(text.utf8)
    if u.first == 91 {  // '['
      guard let close = u.firstIndex(of: 93), close + 1 < u.count, u[close + 1] == 58,
            let port = Endpoint.port(u[(close + 2)...]), let (h, l) = Endpoint.ipv6(u[1..<close]) else { return nil }
      self.init(hi: h, lo: l, port: port)
      return
    }
    guard let colon = u.lastIndex(of: 58), let port = Endpoint.port(u[(colon + 1)...]),
          let ip = Endpoint.ipv4(u[0..<colon]) else { return nil }
    self.init(ip: ip, port: port)
  }

  static func port(_ s: ArraySlice<UInt8>) -> UInt16? {
    if s.isEmpty || s.count > 5 { return nil }
    var v: UInt32 = 0
    for b in s {
      guard b >= 48 && b <= 57 else { return nil }
      v = v * 10 + UInt32(b - 48)
    }
    return v >= 1 && v <= 65535 ? UInt16(v) : nil
  }

  static func ipv4(_ s: ArraySlice<UInt8>) -> UInt32? {
    var parts = 0
    var cur: UInt32 = 0
    var digits = 0
    var ip: UInt32 = 0
    for b in s {
      if b >= 48 && b <= 57 {
        cur = cur * 10 + UInt32(b - 48)
        digits += 1
        if digits > 3 || cur > 255 { return nil }
      } else if b == 46 {
        if digits == 0 || parts == 3 { return nil }
        ip = ip << 8 | cur; parts += 1; cur = 0; digits = 0
      } else {
        return nil
      }
    }
    if digits == 0 || parts != 3 { return nil }
    return ip << 8 | cur
  }

  /// RFC 4291 text: eight groups of 1–4 hex digits, one "::" at most (no embedded IPv4, no zone).
  static func ipv6(_ s: ArraySlice<UInt8>) -> (UInt64, UInt64)? {
    var groups: [UInt16] = []
    var gap = -1  // index in groups where "::" stood
    var i = s.startIndex
    if s.count < 2 || s.count > 39 { return nil }
    if s[i] == 58 {
      guard s[i + 1] == 58 else { return nil }
      gap = 0
      i += 2
    }
    while i < s.endIndex {
      var v: UInt32 = 0
      var n = 0
      while i < s.endIndex, let d = Endpoint.hex(s[i]) {
        v = v << 4 | UInt32(d); n += 1; i += 1
        if n > 4 { return nil }
      }
      if n == 0 { return nil }
      groups.append(UInt16(v))
      if i == s.endIndex { break }
      guard s[i] == 58 else { return nil }
      i += 1
      if i < s.endIndex && s[i] == 58 {
        if gap >= 0 { return nil }
        gap = groups.count
        i += 1
        if i == s.endIndex { break }
      } else if i == s.endIndex {
        return nil  // a trailing single ':'
      }
    }
    if gap >= 0 {
      if groups.count > 7 { return nil }
      groups.insert(contentsOf: [UInt16](repeating: 0, count: 8 - groups.count), at: gap)
    }
    guard groups.count == 8 else { return nil }
    var h: UInt64 = 0, l: UInt64 = 0
    for k in 0..<4 { h = h << 16 | UInt64(groups[k]) }
    for k in 4..<8 { l = l << 16 | UInt64(groups[k]) }
    return (h, l)
  }

  static func hex(_ b: UInt8) -> UInt8? {
    if b >= 48 && b <= 57 { return b - 48 }
    if b >= 97 && b <= 102 { return b - 87 }
    if b >= 65 && b <= 70 { return b - 55 }
    return nil
  }

  /// "a.b.c.d:port", or "[IPv6]:port" with the longest run of zero groups shortened.
  public var text: String { addressText + ":\(port)" }

  /// The address alone: "a.b.c.d", or "[IPv6]" with the longest run of zero groups shortened.
  public var addressText: String {
    if isIPv4 {
      return "\(ip >> 24).\((ip >> 16) & 255).\((ip >> 8) & 255).\(ip & 255)"
    }
    var g = [UInt16](repeating: 0, count: 8)
    for k in 0..<4 { g[k] = UInt16(truncatingIfNeeded: hi >> UInt64(48 - 16 * k)) }
    for k in 0..<4 { g[4 + k] = UInt16(truncatingIfNeeded: lo >> UInt64(48 - 16 * k)) }
    var best = -1, bestLen = 1, k = 0
    while k < 8 {
      if g[k] == 0 {
        var e = k
        while e < 8 && g[e] == 0 { e += 1 }
        if e - k > bestLen { best = k; bestLen = e - k }
        k = e
      } else { k += 1 }
    }
    var out: [UInt8] = [91]  // '['
    func hex4(_ v: UInt16) {
      var started = false
      for shift in stride(from: 12, through: 0, by: -4) {
        let d = UInt8((v >> UInt16(shift)) & 15)
        if d != 0 || started || shift == 0 { out.append(d < 10 ? 48 + d : 87 + d); started = true }
      }
    }
    k = 0
    while k < 8 {
      if k == best {
        out.append(58); out.append(58)  // "::"
        k += bestLen
        continue
      }
      if k > 0 && out.last != 58 { out.append(58) }
      hex4(g[k])
      k += 1
    }
    out.append(93)  // ']'
    return String(decoding: out, as: UTF8.self)
  }
}
