// Addresses a node sends to on request: the ranges of AddressPolicy.swift, their edges,
// lab mode, and the forwarder's and the config's use of the rule.
import Testing
@testable import WispCore

@Suite struct AddressPolicyTests {
  func ip(_ text: String) -> UInt32 { Endpoint(text + ":1")!.ip }

  @Test func everyRangeAndItsEdges() {
    let cases: [(String, AddressPolicy.Category?)] = [
      ("0.0.0.0", .unspecified), ("0.255.255.255", .unspecified), ("1.0.0.0", nil),
      ("9.255.255.255", nil), ("10.0.0.0", .privateNetwork), ("10.255.255.255", .privateNetwork), ("11.0.0.0", nil),
      ("100.63.255.255", nil), ("100.64.0.0", .shared), ("100.127.255.255", .shared), ("100.128.0.0", nil),
      ("126.255.255.255", nil), ("127.0.0.1", .loopback), ("127.255.255.255", .loopback), ("128.0.0.0", nil),
      ("169.253.255.255", nil), ("169.254.0.1", .linkLocal), ("169.254.255.255", .linkLocal), ("169.255.0.0", nil),
      ("172.15.255.255", nil), ("172.16.0.0", .privateNetwork), ("172.31.255.255", .privateNetwork), ("172.32.0.0", nil),
      ("192.0.1.255", nil), ("192.0.2.0", .documentation), ("192.0.2.255", .documentation), ("192.0.3.0", nil),
      ("192.167.255.255", nil), ("192.168.0.0", .privateNetwork), ("192.168.255.255", .privateNetwork), ("192.169.0.0", nil),
      ("198.17.255.255", nil), ("198.18.0.0", .benchmarking), ("198.19.255.255", .benchmarking), ("198.20.0.0", nil),
      ("198.51.99.255", nil), ("198.51.100.7", .documentation), ("198.51.101.0", nil),
      ("203.0.112.255", nil), ("203.0.113.9", .documentation), ("203.0.114.0", nil),
      ("223.255.255.255", nil), ("224.0.0.1", .multicast), ("239.255.255.255", .multicast),
      ("240.0.0.0", .reserved), ("255.255.255.254", .reserved), ("255.255.255.255", .broadcast),
      ("8.8.8.8", nil), ("93.184.216.34", nil),
    ]
    for (text, want) in cases {
      #expect(AddressPolicy.category(ipv4: ip(text)) == want, "\(text)")
    }
  }

  /// IPv6 (the endpoint type holds it ahead of the wire): the same rule by range.
  @Test func ipv6Ranges() {
    let cases: [(String, AddressPolicy.Category?)] = [
      ("[::]:1", .unspecified), ("[::1]:1", .loopback), ("[ff02::1]:1", .multicast), ("[fe80::1]:1", .linkLocal),
      ("[febf::1]:1", .linkLocal), ("[fec0::1]:1", nil), ("[fc00::1]:1", .privateNetwork), ("[fdff::1]:1", .privateNetwork),
      ("[fe00::1]:1", nil), ("[2001:db8::1]:1", .documentation), ("[2001:db9::1]:1", nil),
      ("[2001:2::1]:1", .benchmarking), ("[2001:2:1::1]:1", nil), ("[2606:4700::1111]:1", nil),
      ("[::ffff:a00:1]:1", .privateNetwork), ("[::ffff:808:808]:1", nil),  // IPv4-mapped: judged as IPv4
    ]
    for (text, want) in cases {
      guard let e = Endpoint(text) else { Issue.record("\(text) does not parse"); continue }
      #expect(AddressPolicy.category(e) == want, "\(text)")
    }
    let me = Endpoint("[2606:4700::1]:7400")!
    #expect(AddressPolicy.refusal(Endpoint("[2606:4700::1]:22")!, local: me, lab: false) == .thisNode)
    #expect(AddressPolicy.refusal(Endpoint("[fd00::5]:9")!, local: me, lab: true) == nil)
    #expect(AddressPolicy.refusal(Endpoint("[ff02::1]:9")!, local: me, lab: true) == .multicast)
  }

  @Test func labModeAllowsOnlyTheTestRanges() {
    let local = Endpoint("203.0.113.5:7400")!  // a documentation address as the node's own
    let loop = Endpoint("127.0.0.1:9000")!
    #expect(AddressPolicy.refusal(loop, local: local, lab: false) == .loopback)
    #expect(AddressPolicy.refusal(loop, local: local, lab: true) == nil)
    #expect(AddressPolicy.refusal(Endpoint("10.77.0.14:7400")!, local: local, lab: true) == nil)
    // Never, lab or not: itself, 0/8, multicast, reserved, broadcast.
    for lab in [false, true] {
      #expect(AddressPolicy.refusal(local, local: local, lab: lab) == .thisNode)
      #expect(AddressPolicy.refusal(Endpoint("0.0.0.0:53")!, local: local, lab: lab) == .unspecified)
      #expect(AddressPolicy.refusal(Endpoint("224.0.0.251:5353")!, local: local, lab: lab) == .multicast)
      #expect(AddressPolicy.refusal(Endpoint("255.255.255.255:9")!, local: local, lab: lab) == .broadcast)
      #expect(AddressPolicy.refusal(Endpoint("250.1.2.3:9")!, local: local, lab: lab) == .reserved)
    }
    // Another port on the node's own public address: refused outside lab mode.
    let me = Endpoint("93.184.216.34:7400")!
    #expect(AddressPolicy.refusal(Endpoint("93.184.216.34:22")!, local: me, lab: false) == .thisNode)
    #expect(AddressPolicy.refusal(Endpoint("93.184.216.34:22")!, local: me, lab: true) == nil)
    #expect(AddressPolicy.refusal(Endpoint("93.184.216.35:7400")!, local: me, lab: false) == nil)
    // Listening on every address: the wildcard is nobody's address.
    #expect(AddressPolicy.refusal(Endpoint("93.184.216.35:7400")!, local: Endpoint("0.0.0.0:7400")!, lab: false) == nil)
  }

  /// Outside lab mode the forwarder refuses CREATEs to special addresses with REFUSED 7,
  /// counted `forbidden_address`, and extends to a public address.
  @Test func forwarderRefusesForbiddenNextHops() {
    let me = Endpoint("93.184.216.34:7400")!
    let from = Endpoint("93.184.216.99:5000")!
    let a = node(me, limits: Limits())
    var id: UInt32 = 0x100
    func create(_ to: Endpoint, kind: UInt8 = 1) -> [UInt8] {
      id += 1
      return Datagram(bytes(2, id, hopBytes(kind, to))).handle(a, from: from).1
    }
    for t in ["127.0.0.1:22", "10.0.0.1:53", "192.168.1.1:80", "172.20.0.1:1", "169.254.169.254:80",
              "100.64.0.1:1", "198.18.0.1:1", "192.0.2.1:1", "198.51.100.1:1", "203.0.113.1:1", "93.184.216.34:22"] {
      let out = create(Endpoint(t)!)
      #expect(out.count == 9 && out[1] == 8 && out[8] == 7, "\(t)")
    }
    // An exit named by a forbidden address is refused by the same rule.
    _ = create(Endpoint("127.0.0.1:53")!, kind: 2)
    #expect(a.drops[.forbiddenAddress] == 12)
    #expect(a.circuits.circuitsInUse == 0)
    let out = create(Endpoint("93.184.216.35:7400")!)
    #expect(out[1] == 2)  // CREATE sent on to the next node
    #expect(a.circuits.circuitsInUse == 1)
  }

  @Test func forbiddenExitsAreAConfigError() throws {
    // A private exact exit names its range (ExitPolicy.swift): allowed without lab mode.
    var c = try ConfigFile.apply("listen = 0.0.0.0:7400\nexits = 8.8.8.8:53, 192.168.1.10:53\n", to: RunConfig())
    #expect(c.forbiddenExit == nil)
    // Loopback is lab-only.
    c = try ConfigFile.apply("listen = 0.0.0.0:7400\nexits = 8.8.8.8:53, 127.0.0.1:53\n", to: RunConfig())
    #expect(c.forbiddenExit?.rule == ExitRule(accepting: Endpoint("127.0.0.1:53")!))
    #expect(c.forbiddenExit?.why == .loopback)
    let m = c.exitPolicyMessage("exits") ?? ""
    #expect(m.hasPrefix("'exits': 127.0.0.1:53 is loopback (127.0.0.0/8") && m.contains("lab_addresses = yes"), "\(m)")
    c = try ConfigFile.apply("lab_addresses = yes\n", to: c)
    #expect(c.limits.labAddresses && c.forbiddenExit == nil)
    c = try ConfigFile.apply("exits = 224.0.0.1:5\n", to: c)
    #expect(c.forbiddenExit?.why == .multicast)
    #expect(!(c.exitPolicyMessage("exits") ?? "").contains("lab_addresses"))  // lab mode does not help
    #expect(!RunConfig().limits.labAddresses && RunConfig().linksRequired)        // the defaults
    #expect(throws: ConfigError.self) { try ConfigFile.apply("lab_addresses = maybe\n", to: RunConfig()) }
  }
}
