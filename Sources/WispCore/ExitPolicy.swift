// Which UDP destinations an exit delivers to: the exit policy. Runs on host and device.
//
// An ordered list of at most `Defaults.exitPolicyRules` rules (CONFIG.md, "Exit policy",
// is the specification):
//
//   rule    = ("accept" | "reject") SP address ":" ports
//   address = "*" | IPv4 ["/" 0-32] | "[" IPv6 "]" ["/" 0-128]
//   ports   = "*" | PORT | PORT "-" PORT          (1–65535, low ≤ high)
//
// The first rule that matches a destination decides; a destination no rule matches is
// rejected. The address policy (AddressPolicy.swift) comes first and is not overridden by
// a broad rule: the always-refused ranges are refused; loopback, link-local and other
// ports of this node's address only in lab mode; private, shared, benchmarking and
// documentation addresses only through an `accept` rule whose prefix lies inside the
// address's block (it names that range: `accept 192.168.1.0/24:53`, not `accept *:53`).
// Broader accepts are passed over for such an address, rejects still apply.
//
// A CREATE is judged once, against at most 64 rules; the DATA path reads a flag the
// forwarder sets per circuit at CREATE and again when the policy or lab mode changes
// (Forwarding.swift), so the per-packet check is O(1).

/// One rule of an exit policy.
public struct ExitRule: Equatable, Sendable {
  public enum Family: UInt8, Sendable { case any, ipv4, ipv6 }
  public var accept: Bool
  public var family: Family
  /// The prefix over the 128-bit form Endpoint holds (IPv4 IPv4-mapped), and its mask.
  public var hi: UInt64
  public var lo: UInt64
  public var maskHi: UInt64
  public var maskLo: UInt64
  /// Prefix length over those 128 bits (an IPv4 /n is 96+n; `*` is 0).
  public var bits: Int
  public var portLow: UInt16
  public var portHigh: UInt16

  /// An exact `accept ADDR:PORT` (what an `exits` entry is).
  public init(accepting e: Endpoint) {
    self.init(accept: true, family: e.isIPv4 ? .ipv4 : .ipv6, hi: e.hi, lo: e.lo, bits: 128, ports: e.port...e.port)
  }

  public init(accept: Bool, family: Family, hi: UInt64, lo: UInt64, bits: Int, ports: ClosedRange<UInt16>) {
    self.accept = accept
    self.family = family
    self.bits = bits
    maskHi = bits >= 64 ? ~0 : (bits == 0 ? 0 : ~0 << UInt64(64 - bits))
    maskLo = bits <= 64 ? 0 : (bits == 128 ? ~0 : ~0 << UInt64(128 - bits))
    self.hi = hi & maskHi
    self.lo = lo & maskLo
    portLow = ports.lowerBound
    portHigh = ports.upperBound
  }

  /// Whether the rule covers `e` (address and port).
  @inline(__always)
  public func matches(_ e: Endpoint) -> Bool {
    if e.port < portLow || e.port > portHigh { return false }
    if family == .ipv6 && e.isIPv4 { return false }  // an IPv6 prefix such as ::/0 holds the mapped range
    return e.hi & maskHi == hi && e.lo & maskLo == lo
  }

  /// The rule as written in the config ("accept 198.51.100.0/24:53").
  public var text: String {
    var s = accept ? "accept " : "reject "
    if family == .any {
      s += "*"
    } else {
      s += Endpoint(hi: hi, lo: lo, port: 0).addressText
      if bits != 128 { s += "/\(family == .ipv4 ? bits - 96 : bits)" }
    }
    if portLow == 1 && portHigh == 65535 { return s + ":*" }
    s += ":\(portLow)"
    return portLow == portHigh ? s : s + "-\(portHigh)"
  }

  /// Parses one rule; the error says what is wrong with it.
  public static func parse(_ text: String) throws(ExitPolicyError) -> ExitRule {
    let u = Array(text.utf8)
    func bad(_ why: String) -> ExitPolicyError { ExitPolicyError(message: "'\(text)': \(why)") }
    guard let space = u.firstIndex(where: { $0 == 32 || $0 == 9 }) else {
      throw bad("a rule is 'accept ADDRESS:PORTS' or 'reject ADDRESS:PORTS'")
    }
    let action = String(decoding: u[..<space], as: UTF8.self)
    let accept: Bool
    if action.is("accept") { accept = true } else if action.is("reject") { accept = false } else {
      throw bad("a rule starts with accept or reject, not '\(action)'")
    }
    let pattern = KeyValueFile.trim(Array(u[(space + 1)...]))
    if pattern.contains(where: { $0 == 32 || $0 == 9 }) {
      throw bad("one ADDRESS:PORTS per rule (rules are separated by commas)")
    }
    guard let colon = pattern.lastIndex(of: 58), colon > 0 else {
      throw bad("the address needs ':PORTS' (a port, LOW-HIGH or *), e.g. 192.0.2.1:53")
    }
    let ports = try parsePorts(pattern[(colon + 1)...], bad)
    let address = pattern[..<colon]
    if address.count == 1 && address[0] == 42 {  // '*'
      return ExitRule(accept: accept, family: .any, hi: 0, lo: 0, bits: 0, ports: ports)
    }
    // A prefix length after '/'; not part of an IPv6 address in brackets.
    var addr = address
    var length: Int? = nil
    if let slash = address.lastIndex(of: 47) {  // '/'
      guard let n = parseDecimal(String(decoding: address[(slash + 1)...], as: UTF8.self)), n <= 128 else {
        throw bad("the prefix length after '/' must be a number")
      }
      length = Int(n)
      addr = address[..<slash]
    }
    if addr.first == 91 {  // '['
      guard addr.last == 93, addr.count > 2, let (h, l) = Endpoint.ipv6(addr[(addr.startIndex + 1)..<(addr.endIndex - 1)]) else {
        throw bad("an IPv6 address is written in brackets, e.g. [2001:db8::]/32:443")
      }
      let bits = length ?? 128
      let r = ExitRule(accept: accept, family: .ipv6, hi: h, lo: l, bits: bits, ports: ports)
      if Endpoint(hi: h, lo: l, port: 1).isIPv4 { throw bad("write an IPv4-mapped address as IPv4") }
      if r.hi != h || r.lo != l { throw bad(hostBits) }
      return r
    }
    guard let ip = Endpoint.ipv4(addr) else {
      throw bad("the address must be *, IPv4 (a.b.c.d or a.b.c.d/N) or [IPv6] (optionally /N)")
    }
    let n = length ?? 32
    if n > 32 { throw bad("an IPv4 prefix length is 0-32") }
    let e = Endpoint(ip: ip, port: 0)
    let r = ExitRule(accept: accept, family: .ipv4, hi: e.hi, lo: e.lo, bits: 96 + n, ports: ports)
    if r.lo != e.lo { throw bad(hostBits) }
    return r
  }

  static let hostBits = "address bits beyond the prefix length are set (write the network's first address, e.g. 10.0.0.0/8)"

  static func parsePorts(_ s: ArraySlice<UInt8>, _ bad: (String) -> ExitPolicyError) throws(ExitPolicyError) -> ClosedRange<UInt16> {
    if s.count == 1 && s.first == 42 { return 1...65535 }  // '*'
    if let dash = s.firstIndex(of: 45) {  // '-'
      guard let a = Endpoint.port(s[..<dash]), let b = Endpoint.port(s[(dash + 1)...]) else {
        throw bad("a port range is LOW-HIGH, each 1-65535")
      }
      if a > b { throw bad("an empty port range (LOW must not exceed HIGH)") }
      return a...b
    }
    guard let p = Endpoint.port(s) else { throw bad("the port must be 1-65535, LOW-HIGH or *") }
    return p...p
  }
}

/// A rule or policy the parser rejected.
public struct ExitPolicyError: Error, Equatable {
  public let message: String
}

/// An ordered, bounded list of exit rules: first match wins, no match rejects.
public struct ExitPolicy: Equatable, Sendable {
  public private(set) var rules: [ExitRule]

  /// What the policy says of a destination.
  public enum Verdict: Equatable, Sendable {
    case accept
    /// A `reject` rule matched, or none did (REFUSED 3, counted `exit_policy`).
    case reject
    /// The destination lies in a range the address policy keeps closed here (REFUSED 7,
    /// counted `forbidden_address`).
    case forbidden(AddressPolicy.Category)
  }

  /// No rules: every destination is rejected (a node that is no exit).
  public init() { rules = [] }

  /// Rules in order; at most `Defaults.exitPolicyRules` of them are kept (the config and
  /// the command line refuse longer lists: RunConfig.exitPolicyMessage, ConfigLoader).
  public init(rules: [ExitRule]) { self.rules = Array(rules.prefix(Defaults.exitPolicyRules)) }

  /// Exact destinations (the `exits` list), each an accept rule, in order.
  public init(exits: [Endpoint]) { self.init(rules: exits.map { ExitRule(accepting: $0) }) }

  /// Parses a comma-separated list of rules ("accept *:53, reject *:*"); "none" is no rule.
  public static func parseList(_ text: String) throws(ExitPolicyError) -> [ExitRule] {
    if text.is("none") { return [] }
    var out: [ExitRule] = []
    for part in text.utf8.split(separator: 44, omittingEmptySubsequences: false) {  // ','
      let t = String(decoding: KeyValueFile.trim(Array(part)), as: UTF8.self)
      if t.utf8.isEmpty { throw ExitPolicyError(message: "an empty rule (two commas, or one at the end)") }
      if out.count == Defaults.exitPolicyRules {
        throw ExitPolicyError(message: "more than \(Defaults.exitPolicyRules) rules")
      }
      out.append(try ExitRule.parse(t))
    }
    return out
  }

  public var isEmpty: Bool { rules.isEmpty }

  /// Whether `e` may be an exit destination of this node (`local`: its listening
  /// endpoint; `lab`: lab mode). At most one pass over the rules.
  public func verdict(_ e: Endpoint, local: Endpoint, lab: Bool) -> Verdict {
    guard let why = AddressPolicy.refusal(e, local: local, lab: lab) else {
      for r in rules where r.matches(e) { return r.accept ? .accept : .reject }
      return .reject
    }
    if !why.openedByRule { return .forbidden(why) }
    // A special block: only an accept that lies inside the block opens it.
    let inside = AddressPolicy.block(e)?.bits ?? 128
    for r in rules where r.matches(e) {
      if !r.accept { return .reject }
      if r.bits >= inside { return .accept }
    }
    return .forbidden(why)
  }

  /// The first rule that can never accept anything: one inside a range refused even in lab
  /// mode, or (without lab mode) inside loopback, link-local or this node's address. A
  /// configuration error, like an `exits` entry there.
  public func unusableRule(local: Endpoint, lab: Bool) -> (rule: ExitRule, why: AddressPolicy.Category)? {
    for r in rules where r.accept && r.family != .any {
      let first = Endpoint(hi: r.hi, lo: r.lo, port: r.portLow)
      if r.bits == 128 {
        if let why = AddressPolicy.refusal(first, local: local, lab: lab), !why.openedByRule { return (r, why) }
      } else if let b = AddressPolicy.block(first), r.bits >= b.bits,
                b.category.alwaysRefused || (!lab && !b.category.openedByRule) {
        return (r, b.category)
      }
    }
    return nil
  }

  /// The rules as written, comma-separated ("none" when there are none).
  public var text: String {
    if rules.isEmpty { return "none" }
    var s = ""
    for (i, r) in rules.enumerated() { s += (i == 0 ? "" : ", ") + r.text }
    return s
  }
}
