// The exit policy (ExitPolicy.swift, CONFIG.md "Exit policy"): its grammar, good and bad
// rules, first-match-wins matching, the address policy over broad accepts, the config and
// command line, and the forwarder's use of it at CREATE, on DATA and on reload.
import Testing
@testable import WispCore

func rule(_ text: String) -> ExitRule { try! ExitRule.parse(text) }
func policy(_ text: String) -> ExitPolicy { try! ExitPolicy(rules: ExitPolicy.parseList(text)) }
func ep(_ text: String) -> Endpoint { Endpoint(text)! }

@Suite struct ExitPolicyTests {
  let me = Endpoint("93.184.216.34:7400")!

  @Test(arguments: [
    "accept 198.51.100.0/24:53", "accept *:51820", "accept 203.0.113.7:1000-2000", "reject *:*",
    "accept 10.0.0.0/8:1-1024", "accept 0.0.0.0/0:53", "reject 8.8.8.8:53", "accept 192.0.2.1:1-65535",
    "accept [2001:db8::]/32:443", "reject [::1]:*", "accept [2606:4700::1111]:53", "accept [::]/0:*",
  ])
  func goodRulesReadBackAsWritten(text: String) throws {
    let r = try ExitRule.parse(text)
    // A port range of every port is written "*".
    #expect(r.text == (text.is("accept 192.0.2.1:1-65535") ? "accept 192.0.2.1:*" : text))
    #expect(try ExitRule.parse(r.text) == r)
  }

  @Test func spacingAndFamilies() throws {
    #expect(try ExitRule.parse("accept   1.2.3.4:5") == rule("accept 1.2.3.4:5"))
    #expect(rule("accept 1.2.3.4:5").family == .ipv4 && rule("accept 1.2.3.4:5").bits == 128)
    #expect(rule("accept 1.2.3.0/24:5").bits == 120)
    #expect(rule("accept [2001:db8::]/32:443").family == .ipv6 && rule("accept [2001:db8::]/32:443").bits == 32)
    #expect(rule("reject *:*").family == .any && rule("reject *:*").bits == 0)
    #expect(rule("accept 1.2.3.4:5") == ExitRule(accepting: ep("1.2.3.4:5")))
  }

  @Test(arguments: [
    ("allow *:53", "'allow *:53': a rule starts with accept or reject, not 'allow'"),
    ("accept", "'accept': a rule is 'accept ADDRESS:PORTS' or 'reject ADDRESS:PORTS'"),
    ("Accept *:53", "'Accept *:53': a rule starts with accept or reject, not 'Accept'"),
    ("accept 1.2.3.4", "'accept 1.2.3.4': the address needs ':PORTS' (a port, LOW-HIGH or *), e.g. 192.0.2.1:53"),
    ("accept 1.2.3.4:0", "'accept 1.2.3.4:0': the port must be 1-65535, LOW-HIGH or *"),
    ("accept 1.2.3.4:70000", "'accept 1.2.3.4:70000': the port must be 1-65535, LOW-HIGH or *"),
    ("accept 1.2.3.4:2000-1000", "'accept 1.2.3.4:2000-1000': an empty port range (LOW must not exceed HIGH)"),
    ("accept 1.2.3.4:1-", "'accept 1.2.3.4:1-': a port range is LOW-HIGH, each 1-65535"),
    ("accept 1.2.3.4/33:1", "'accept 1.2.3.4/33:1': an IPv4 prefix length is 0-32"),
    ("accept 1.2.3.4/:1", "'accept 1.2.3.4/:1': the prefix length after '/' must be a number"),
    ("accept 10.0.0.1/8:53", "'accept 10.0.0.1/8:53': address bits beyond the prefix length are set (write the network's first address, e.g. 10.0.0.0/8)"),
    ("accept [2001:db8::1]/32:443", "'accept [2001:db8::1]/32:443': address bits beyond the prefix length are set (write the network's first address, e.g. 10.0.0.0/8)"),
    ("accept 2001:db8::1:443", "'accept 2001:db8::1:443': the address must be *, IPv4 (a.b.c.d or a.b.c.d/N) or [IPv6] (optionally /N)"),
    ("accept [2001:db8::1:443", "'accept [2001:db8::1:443': an IPv6 address is written in brackets, e.g. [2001:db8::]/32:443"),
    ("accept [::ffff:102:304]:53", "'accept [::ffff:102:304]:53': write an IPv4-mapped address as IPv4"),
    ("accept 1.2.3.4:5 6", "'accept 1.2.3.4:5 6': one ADDRESS:PORTS per rule (rules are separated by commas)"),
    ("accept host.example:53", "'accept host.example:53': the address must be *, IPv4 (a.b.c.d or a.b.c.d/N) or [IPv6] (optionally /N)"),
  ] as [(String, String)])
  func badRulesSayWhy(text: String, message: String) {
    do {
      _ = try ExitRule.parse(text)
      Issue.record("'\(text)' parsed")
    } catch {
      #expect(error.message == message)
    }
  }

  @Test func listsAndTheBound() throws {
    #expect(try ExitPolicy.parseList("none").isEmpty)
    #expect(try ExitPolicy.parseList("accept *:53 ,reject *:*").count == 2)
    #expect(throws: ExitPolicyError(message: "an empty rule (two commas, or one at the end)")) {
      try ExitPolicy.parseList("accept *:53,,reject *:*")
    }
    #expect(throws: ExitPolicyError(message: "an empty rule (two commas, or one at the end)")) { try ExitPolicy.parseList("accept *:53,") }
    let sixtyFour = (1...64).map { "accept *:\($0)" }.joined(separator: ", ")
    #expect(try ExitPolicy.parseList(sixtyFour).count == 64)
    #expect(throws: ExitPolicyError(message: "more than 64 rules")) { try ExitPolicy.parseList(sixtyFour + ", reject *:*") }
    #expect(ExitPolicy(rules: [ExitRule](repeating: rule("reject *:*"), count: 65)).rules.count == 64)
    #expect(policy("accept *:53, reject *:*").text == "accept *:53, reject *:*")
    #expect(ExitPolicy().text == "none")
  }

  @Test func firstMatchWinsAndNoMatchRejects() {
    let p = policy("reject 8.8.8.8:53, accept 8.8.8.0/24:53, accept *:1000-2000, reject 9.9.9.9:*, accept 9.0.0.0/8:*")
    func v(_ t: String) -> ExitPolicy.Verdict { p.verdict(ep(t), local: me, lab: false) }
    #expect(v("8.8.8.8:53") == .reject)      // the reject comes first
    #expect(v("8.8.8.4:53") == .accept)
    #expect(v("8.8.9.4:53") == .reject)      // outside the /24, no other rule: default
    #expect(v("8.8.8.4:54") == .reject)
    #expect(v("1.1.1.1:999") == .reject)     // port range edges
    #expect(v("1.1.1.1:1000") == .accept)
    #expect(v("1.1.1.1:2000") == .accept)
    #expect(v("1.1.1.1:2001") == .reject)
    #expect(v("9.9.9.9:1500") == .accept)    // accept *:1000-2000 comes before the reject
    #expect(v("9.9.9.9:80") == .reject)
    #expect(v("9.255.255.255:80") == .accept)  // prefix edges
    #expect(v("10.0.0.0:80") != .accept)
    #expect(v("8.255.255.255:80") == .reject)
    #expect(ExitPolicy().verdict(ep("8.8.8.8:53"), local: me, lab: false) == .reject)  // no rules: no exit
  }

  @Test func ipv6RulesMatchIPv6Only() {
    let p = policy("accept [2606:4700::]/32:443, accept [::]/0:53")
    #expect(p.verdict(ep("[2606:4700::1111]:443"), local: me, lab: false) == .accept)
    #expect(p.verdict(ep("[2606:4701::1]:443"), local: me, lab: false) == .reject)
    #expect(p.verdict(ep("[2a00::1]:53"), local: me, lab: false) == .accept)
    #expect(p.verdict(ep("8.8.8.8:53"), local: me, lab: false) == .reject)  // ::/0 holds the mapped range, but is IPv6
    #expect(policy("accept *:53").verdict(ep("[2a00::1]:53"), local: me, lab: false) == .accept)
  }

  /// An accept of `*` opens no special range; private, shared, benchmarking and
  /// documentation ranges open to a rule lying inside them; loopback, link-local and this
  /// node's address only in lab mode; the always-refused ranges never.
  @Test func addressPolicyOverridesBroadAccepts() {
    let any = policy("accept *:*")
    func v(_ p: ExitPolicy, _ t: String, lab: Bool = false) -> ExitPolicy.Verdict { p.verdict(ep(t), local: me, lab: lab) }
    #expect(v(any, "8.8.8.8:53") == .accept)
    #expect(v(any, "10.1.2.3:53") == .forbidden(.privateNetwork))
    #expect(v(any, "192.168.1.1:53") == .forbidden(.privateNetwork))
    #expect(v(any, "100.64.0.1:53") == .forbidden(.shared))
    #expect(v(any, "198.51.100.7:53") == .forbidden(.documentation))
    #expect(v(any, "127.0.0.1:53") == .forbidden(.loopback))
    #expect(v(any, "169.254.169.254:80") == .forbidden(.linkLocal))
    #expect(v(any, "93.184.216.34:22") == .forbidden(.thisNode))
    #expect(v(any, "224.0.0.251:5353") == .forbidden(.multicast))
    #expect(v(policy("accept 0.0.0.0/0:*"), "10.1.2.3:53") == .forbidden(.privateNetwork))
    #expect(v(policy("accept 0.0.0.0/1:*"), "10.1.2.3:53") == .forbidden(.privateNetwork))  // contains 10/8, not inside it
    // Named: inside the block.
    let named = policy("reject 10.9.0.0/16:*, accept 10.0.0.0/8:53, accept 192.168.1.7:5353, accept 198.51.100.0/24:53, accept *:*")
    #expect(v(named, "10.1.2.3:53") == .accept)
    #expect(v(named, "10.1.2.3:54") == .forbidden(.privateNetwork))  // only the broad accept matches
    #expect(v(named, "10.9.1.1:53") == .reject)                      // a reject applies whatever its breadth
    #expect(v(named, "192.168.1.7:5353") == .accept)
    #expect(v(named, "192.168.1.8:5353") == .forbidden(.privateNetwork))
    #expect(v(named, "198.51.100.7:53") == .accept)
    #expect(v(named, "8.8.8.8:9") == .accept)
    #expect(v(policy("accept 10.0.0.0/7:53"), "10.1.2.3:53") == .forbidden(.privateNetwork))  // wider than 10/8
    // Loopback is not opened by naming it; lab mode opens it (and every other range but
    // the always-refused ones) to any rule.
    #expect(v(policy("accept 127.0.0.1:53"), "127.0.0.1:53") == .forbidden(.loopback))
    #expect(v(policy("accept 127.0.0.1:53"), "127.0.0.1:53", lab: true) == .accept)
    #expect(v(any, "10.1.2.3:53", lab: true) == .accept)
    #expect(v(any, "93.184.216.34:22", lab: true) == .accept)
    #expect(v(any, "224.0.0.251:5353", lab: true) == .forbidden(.multicast))
    #expect(v(any, "93.184.216.34:7400", lab: true) == .forbidden(.thisNode))
    #expect(v(any, "0.0.0.0:53", lab: true) == .forbidden(.unspecified))
    // IPv6: unique local opens to a rule inside fc00::/7, loopback never without lab.
    #expect(v(any, "[fd00::1]:53") == .forbidden(.privateNetwork))
    #expect(v(policy("accept [fd00::]/8:53"), "[fd00::1]:53") == .accept)
    #expect(v(any, "[::1]:53") == .forbidden(.loopback))
  }

  @Test func rulesThatCanNeverMatchAreAConfigError() throws {
    func why(_ text: String, lab: Bool = false) -> AddressPolicy.Category? {
      policy(text).unusableRule(local: me, lab: lab)?.why
    }
    #expect(why("accept 127.0.0.0/8:*") == .loopback)
    #expect(why("accept 127.0.0.0/8:*", lab: true) == nil)
    #expect(why("accept 126.0.0.0/7:*") == nil)          // reaches public addresses too
    #expect(why("accept 224.0.0.0/4:*", lab: true) == .multicast)
    #expect(why("accept 93.184.216.34:22") == .thisNode)
    #expect(why("accept 93.184.216.34:7400", lab: true) == .thisNode)
    #expect(why("accept 10.0.0.0/8:53, accept 192.168.0.0/16:*, accept *:*") == nil)
    #expect(why("reject 127.0.0.0/8:*") == nil)           // a reject is harmless
    var c = try ConfigFile.apply("listen = 93.184.216.34:7400\nexit_policy = accept 8.8.8.8:53, accept 127.0.0.0/8:*\n", to: RunConfig())
    #expect(c.exitPolicyMessage("exit_policy")
            == "'exit_policy': 'accept 127.0.0.0/8:*' is loopback (127.0.0.0/8, ::1); a node exits there never unless lab_addresses = yes (or --lab-addresses yes: tests only)")
    c = try ConfigFile.apply("exit_policy = accept 0.0.0.0/8:53\n", to: RunConfig())
    #expect(c.exitPolicyMessage("exit_policy") == "'exit_policy': 'accept 0.0.0.0/8:53' is unspecified (0.0.0.0/8, ::); a node exits there never")
  }

  @Test func configAndCommandLine() throws {
    let c = try ConfigFile.apply("exits = 8.8.8.8:53\nexit_policy = reject 8.8.8.8:*, accept 1.1.1.0/24:53, reject *:*\n", to: RunConfig())
    // The exits entries come first, as exact accepts.
    #expect(c.exitPolicy.text == "accept 8.8.8.8:53, reject 8.8.8.8:*, accept 1.1.1.0/24:53, reject *:*")
    #expect(c.exitPolicyMessage("exit_policy") == nil)
    #expect(try ConfigFile.apply("exit_policy = none\n", to: c).exitRules.isEmpty)
    do {
      _ = try ConfigFile.apply("name = x\nexit_policy = accept *:53, accept 10.0.0.1/8:53\n", to: RunConfig())
      Issue.record("a bad rule was taken")
    } catch {
      #expect(error == ConfigError(line: 2, message: "'exit_policy': 'accept 10.0.0.1/8:53': address bits beyond the prefix length are set (write the network's first address, e.g. 10.0.0.0/8)"))
    }
    // 64 in all, exits entries included.
    let many = (1...63).map { "accept *:\($0)" }.joined(separator: ", ")
    let full = try ConfigFile.apply("exits = 8.8.8.8:53\nexit_policy = \(many)\n", to: RunConfig())
    #expect(full.exitPolicyMessage("exit_policy") == nil && full.exitPolicy.rules.count == 64)
    let over = try ConfigFile.apply("exits = 8.8.8.8:53, 8.8.4.4:53\nexit_policy = \(many)\n", to: RunConfig())
    #expect(over.exitPolicyMessage("exit_policy") == "'exit_policy': 65 exit rules (exits entries included); at most 64")
    // The command line replaces the file's whole policy; --exit-policy repeats.
    let inv = try Arguments.parse(["run", "--exit-policy", "accept 9.9.9.9:53", "--exit-policy", "accept *:443, reject *:*"])
    let d = try RunConfig.from(inv, over: c)
    #expect(d.exitPolicy.text == "accept 9.9.9.9:53, accept *:443, reject *:*")
    let e = try RunConfig.from(try Arguments.parse(["run", "--exit", "9.9.9.9:53"]), over: c)
    #expect(e.exitPolicy.text == "accept 9.9.9.9:53")
    #expect(throws: UsageError("option '--exit-policy': 'accept *:99999': the port must be 1-65535, LOW-HIGH or *", command: .run)) {
      try RunConfig.from(try Arguments.parse(["run", "--exit-policy", "accept *:99999"]), over: c)
    }
  }

  // MARK: the forwarder

  func create(_ f: Forwarder<CountingRandom>, _ id: UInt32, _ to: Endpoint, from: Endpoint) -> [UInt8] {
    Datagram(bytes(2, id, hopBytes(2, to))).handle(f, from: from).1
  }

  /// REFUSED 3 counted `exit_policy` for a destination the policy rejects, REFUSED 7
  /// counted `forbidden_address` for one in a closed range, CREATED otherwise.
  @Test func createIsJudgedByThePolicy() throws {
    let from = ep("93.184.216.99:5000")
    let f = Forwarder(circuits: 16, local: me, limits: Limits(), exitPolicy: policy("reject 8.8.8.8:*, accept 8.8.8.0/24:53, accept *:443, accept 10.0.0.0/8:53"),
                      random: CountingRandom(), nowEpoch: 1_700_000_000)
    f.exitSockets = FakeExitSockets()
    for (i, t) in ["8.8.8.8:53", "8.8.8.4:54", "1.1.1.1:80"].enumerated() {
      let out = create(f, UInt32(0x10 + i), ep(t), from: from)
      #expect(out.count == 9 && out[1] == 8 && out[8] == RefuseReason.exitNotAllowed.rawValue, "\(t)")
    }
    #expect(f.drops[.exitPolicy] == 3)
    for (i, t) in ["192.168.1.1:443", "127.0.0.1:443", "224.0.0.1:443", "10.0.0.1:443"].enumerated() {
      let out = create(f, UInt32(0x20 + i), ep(t), from: from)
      #expect(out.count == 9 && out[1] == 8 && out[8] == RefuseReason.unreachable.rawValue, "\(t)")
    }
    #expect(f.drops[.forbiddenAddress] == 4 && f.drops[.exitPolicy] == 3)
    #expect(f.circuits.circuitsInUse == 0 && f.exitSocketsOpen == 0)
    for (i, t) in ["8.8.8.4:53", "1.1.1.1:443", "10.0.0.1:53"].enumerated() {
      let out = create(f, UInt32(0x30 + i), ep(t), from: from)
      #expect(out.count == 12 && out[1] == 3, "\(t)")   // CREATED
    }
    #expect(f.circuits.circuitsInUse == 3 && f.exitSocketsOpen == 3)
    // An extend is not judged by the exit policy (only by the address policy).
    let ext = Datagram(bytes(2, 0x40, hopBytes(1, ep("1.1.1.1:80")))).handle(f, from: from).1
    #expect(ext[1] == 2)
  }

  /// A reload that drops a destination stops its circuits' DATA (`exit_not_allowed`,
  /// not charged); a later policy that takes it back lets it flow again.
  @Test func reloadRejudgesLiveCircuits() throws {
    var l = Limits()
    l.quotaBytes = 1_000_000
    let from = ep("93.184.216.99:5000")
    let f = Forwarder(circuits: 16, local: me, limits: l, exitPolicy: policy("accept *:53"),
                      random: CountingRandom(), nowEpoch: 1_700_000_000)
    f.exitSockets = FakeExitSockets()
    let out1 = create(f, 0x51, ep("8.8.8.8:53"), from: from)
    let out2 = create(f, 0x52, ep("1.1.1.1:53"), from: from)
    let fwd1 = u32(out1, 8), fwd2 = u32(out2, 8)
    func send(_ id: UInt32) -> Verdict { Datagram(bytes(1, id, [UInt8](repeating: 7, count: 100))).handle(f, from: from).0 }
    guard case .sendExit = send(fwd1), case .sendExit = send(fwd2) else { Issue.record("DATA not delivered"); return }
    #expect(f.quota.used == 200)
    f.setExitPolicy(policy("accept 1.1.1.1:53"))
    #expect(send(fwd1) == .drop(.exitNotAllowed))
    guard case .sendExit = send(fwd2) else { Issue.record("the kept destination stopped"); return }
    #expect(f.quota.used == 300 && f.traffic.forwardedBytes == 300)  // the dropped one is not charged
    #expect(f.drops[.exitNotAllowed] == 1)
    f.setExitPolicy(policy("accept 8.8.8.8:53"))
    guard case .sendExit = send(fwd1) else { Issue.record("a destination taken back stayed closed"); return }
    #expect(send(fwd2) == .drop(.exitNotAllowed))
    // Lab mode switched off closes a loopback destination opened in lab mode.
    let g = node(nodeA, exits: [service])
    let (_, o) = Datagram(bytes(2, 0x61, hopBytes(2, service))).handle(g, from: client)
    let fwd = u32(o, 8)
    guard case .sendExit = Datagram(bytes(1, fwd, [1])).handle(g, from: client).0 else { Issue.record("lab exit"); return }
    g.update(limits: Limits(), nowEpoch: 1_700_000_000)
    #expect(Datagram(bytes(1, fwd, [1])).handle(g, from: client).0 == .drop(.exitNotAllowed))
  }

  /// Exit traffic counts against the node's rate cap and quota both ways: DATA leaving on
  /// the exit socket and replies coming back on it.
  @Test func exitTrafficIsChargedBothWays() {
    var q = labLimits
    q.quotaBytes = 2500
    let a = node(nodeA, exits: [service], limits: q)
    let (_, out) = Datagram(bytes(2, 0xC1, hopBytes(2, service))).handle(a, from: client)
    let fwd = u32(out, 8)
    guard case .sendExit = Datagram(bytes(1, fwd, [UInt8](repeating: 0, count: 1000))).handle(a, from: client).0 else {
      Issue.record("DATA not delivered"); return
    }
    #expect(a.quota.used == 1000)
    guard case .send = Datagram([UInt8](repeating: 1, count: 1000)).reply(a).0 else { Issue.record("reply dropped"); return }
    #expect(a.quota.used == 2000)
    guard case .send = Datagram([UInt8](repeating: 1, count: 1000)).reply(a).0 else { Issue.record("reply dropped"); return }
    #expect(a.quota.used == 3000 && a.quota.reached)
    #expect(Datagram([UInt8](repeating: 1, count: 10)).reply(a).0 == .drop(.quotaReached))
    #expect(Datagram(bytes(1, fwd, [1])).handle(a, from: client).0 == .drop(.quotaReached))

    // Node cap 1 Mbit/s: a burst of 6250 bytes, then replies are dropped.
    var r = labLimits
    r.nodeMbit = 1
    let b = node(nodeB, exits: [service], limits: r)
    _ = Datagram(bytes(2, 0xC2, hopBytes(2, service))).handle(b, from: client)
    var sent = 0
    for _ in 0..<10 {
      if case .send = Datagram([UInt8](repeating: 1, count: 1000)).reply(b, nowNs: 5).0 { sent += 1 }
    }
    #expect(sent == 6 && b.drops[.rateLimited] == 4)
  }
}
