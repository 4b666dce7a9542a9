// Which addresses a node sends to on someone else's request. Runs on host and device.
//
// A CREATE names the next hop (an extend target) or the exit destination; without a rule
// a stranger could make the node send chosen bytes to its own loopback services, its LAN,
// or addresses that belong to nobody. A node therefore sends, on request, only to public
// unicast addresses (CONFIG.md `lab_addresses`, WIRE-PROTOCOL.md "Forwarding"):
//
//   always refused          this node's own endpoint (a loop), 0.0.0.0/8 ("this network"),
//                           224.0.0.0/4 (multicast), 240.0.0.0/4 (reserved, with
//                           255.255.255.255 broadcast)
//   refused unless lab mode 127.0.0.0/8 loopback, 169.254.0.0/16 link-local,
//                           10/8, 172.16/12, 192.168/16 private (RFC 1918),
//                           100.64.0.0/10 shared (RFC 6598), 198.18.0.0/15 benchmarking,
//                           192.0.2/24, 198.51.100/24, 203.0.113/24 documentation,
//                           and any port on this node's own listening address
//
// IPv6 (Endpoint holds it; the wire does not carry it yet): ::/128 unspecified, ff00::/8
// multicast are always refused; ::1 loopback, fe80::/10 link-local, fc00::/7 unique local
// (private), 2001:2::/48 benchmarking and 2001:db8::/32 documentation unless lab mode.
// An IPv4-mapped address is judged as IPv4.
//
// Lab mode (`lab_addresses = yes`) is for tests on loopback and in network namespaces.
// An exit destination is judged by the exit policy (ExitPolicy.swift), which applies this
// rule first: there a private, shared, benchmarking or documentation address is also
// allowed when an accept rule lying inside its block names it (`block(_:)`).

public enum AddressPolicy {
  /// Why an address is refused: the range it lies in.
  public enum Category: Equatable, Sendable {
    case thisNode, unspecified, multicast, reserved, broadcast
    case loopback, linkLocal, privateNetwork, shared, benchmarking, documentation

    /// Refused even in lab mode: nothing useful lies there.
    public var alwaysRefused: Bool {
      switch self {
      case .thisNode, .unspecified, .multicast, .reserved, .broadcast: return true
      default: return false
      }
    }

    /// An exit may deliver into it when an `accept` rule of the exit policy lies inside
    /// the block (names it: `accept 10.1.2.3:53`, `accept 192.168.0.0/16:*`; not `*`), lab
    /// mode or not (ExitPolicy.swift). Loopback, link-local and this node's address stay
    /// lab-only; the always-refused ranges stay refused.
    public var openedByRule: Bool {
      switch self {
      case .privateNetwork, .shared, .benchmarking, .documentation: return true
      default: return false
      }
    }

    /// Name in errors and logs.
    public var name: StaticString {
      switch self {
      case .thisNode: return "this node's own address"
      case .unspecified: return "unspecified (0.0.0.0/8, ::)"
      case .multicast: return "multicast (224.0.0.0/4, ff00::/8)"
      case .reserved: return "reserved (240.0.0.0/4)"
      case .broadcast: return "broadcast (255.255.255.255)"
      case .loopback: return "loopback (127.0.0.0/8, ::1)"
      case .linkLocal: return "link-local (169.254.0.0/16, fe80::/10)"
      case .privateNetwork: return "private (RFC 1918, or IPv6 unique local fc00::/7)"
      case .shared: return "shared address space (100.64.0.0/10)"
      case .benchmarking: return "benchmarking (198.18.0.0/15, 2001:2::/48)"
      case .documentation: return "documentation (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32)"
      }
    }
  }

  /// The special range an IPv4 address lies in, or nil for a public unicast address.
  @inline(__always)
  public static func category(ipv4 a: UInt32) -> Category? { block(ipv4: a)?.category }

  /// The special range an IPv4 address lies in and that range's prefix length (0–32; a
  /// range of several blocks, such as RFC 1918, gives the block the address lies in).
  public static func block(ipv4 a: UInt32) -> (category: Category, bits: Int)? {
    @inline(__always) func within(_ net: UInt32, _ bits: UInt32) -> Bool { a >> (32 - bits) == net >> (32 - bits) }
    if a == 0xFFFF_FFFF { return (.broadcast, 32) }
    if within(0x0000_0000, 8) { return (.unspecified, 8) }
    if within(0xE000_0000, 4) { return (.multicast, 4) }
    if within(0xF000_0000, 4) { return (.reserved, 4) }
    if within(0x7F00_0000, 8) { return (.loopback, 8) }
    if within(0xA9FE_0000, 16) { return (.linkLocal, 16) }
    if within(0x0A00_0000, 8) { return (.privateNetwork, 8) }
    if within(0xAC10_0000, 12) { return (.privateNetwork, 12) }
    if within(0xC0A8_0000, 16) { return (.privateNetwork, 16) }
    if within(0x6440_0000, 10) { return (.shared, 10) }
    if within(0xC612_0000, 15) { return (.benchmarking, 15) }
    if within(0xC000_0200, 24) || within(0xC633_6400, 24) || within(0xCB00_7100, 24) { return (.documentation, 24) }
    return nil
  }

  /// The special range an IPv6 address (two 64-bit halves) lies in, or nil for a global
  /// unicast address. IPv4-mapped addresses are for `category(ipv4:)`.
  @inline(__always)
  public static func category(ipv6 hi: UInt64, _ lo: UInt64) -> Category? { block(ipv6: hi, lo)?.category }

  /// The special range an IPv6 address lies in and that range's prefix length (0–128).
  public static func block(ipv6 hi: UInt64, _ lo: UInt64) -> (category: Category, bits: Int)? {
    if hi == 0 && lo == 0 { return (.unspecified, 128) }
    if hi == 0 && lo == 1 { return (.loopback, 128) }
    if hi >> 56 == 0xFF { return (.multicast, 8) }
    if hi >> 54 == 0xFE80 >> 6 { return (.linkLocal, 10) }
    if hi >> 57 == 0xFC00 >> 9 { return (.privateNetwork, 7) }
    if hi >> 16 == 0x2001_0002_0000 { return (.benchmarking, 48) }
    if hi >> 32 == 0x2001_0DB8 { return (.documentation, 32) }
    return nil
  }

  /// The special block an endpoint's address lies in, its prefix length counted over the
  /// 128-bit form Endpoint holds (an IPv4 /n is /96+n), or nil for a public unicast address.
  public static func block(_ e: Endpoint) -> (category: Category, bits: Int)? {
    if e.isIPv4 {
      guard let b = block(ipv4: e.ip) else { return nil }
      return (b.category, 96 + b.bits)
    }
    return block(ipv6: e.hi, e.lo)
  }

  /// The special range an endpoint's address lies in, or nil for a public unicast one.
  public static func category(_ e: Endpoint) -> Category? {
    e.isIPv4 ? category(ipv4: e.ip) : category(ipv6: e.hi, e.lo)
  }

  /// Why this node must not send to `e` on request, or nil when it may. `local` is the
  /// node's listening endpoint (its address may be unspecified: listening on every
  /// address); `lab` allows the special ranges that are not `alwaysRefused`.
  @inline(__always)
  public static func refusal(_ e: Endpoint, local: Endpoint, lab: Bool) -> Category? {
    if e == local { return .thisNode }
    if let c = category(e) { return lab && !c.alwaysRefused ? nil : c }
    if !lab && e.hi == local.hi && e.lo == local.lo { return .thisNode }
    return nil
  }
}
