import Testing
@testable import WispCore

@Suite struct ConfigTests {
  @Test func everyKeyApplies() throws {
    let text = """
      # a comment
      name = attic
      listen = 0.0.0.0:7400
      board = rpi4b
      state_dir = /data/wisp
      status_socket = /run/w.sock
      metrics = 127.0.0.1:9474
      pool = 1024
      circuits = 2000
      batch = 16
      shards = 2
      gso = off
      rate_mbit = 50
      circuit_rate_mbit = 5
      quota_gb = 500
      quota_reset_day = 15
      idle_timeout = 60
      stats_interval = 10
      watchdog = off
      led_chip = pinctrl-bcm2711
      led_status = GPIO5
      led_activity = 6
      led_error = none
      led_active_low = yes
      """
    let c = try ConfigFile.apply(text, to: RunConfig())
    #expect(c.name == "attic" && c.listen == Endpoint("0.0.0.0:7400") && c.boardName == "rpi4b")
    #expect(c.stateDir == "/data/wisp" && c.statusSocket == "/run/w.sock" && c.metrics == Endpoint("127.0.0.1:9474"))
    #expect(c.poolPackets == 1024 && c.circuits == 2000 && c.batch == 16 && c.shards == 2 && !c.gso)
    #expect(c.limits.nodeMbit == 50 && c.limits.circuitMbit == 5 && c.limits.quotaBytes == 500_000_000_000)
    #expect(c.limits.quotaResetDay == 15 && c.limits.idleSeconds == 60 && c.statsIntervalSec == 10 && !c.watchdog)
    #expect(c.leds.chip == "pinctrl-bcm2711" && c.leds.status == .name("GPIO5") && c.leds.activity == .offset(6))
    #expect(c.leds.error == nil && c.leds.activeLow && c.leds.overridden)
  }

  @Test func everyDocumentedKeyIsKnown() {
    #expect(ConfigFile.keys.count == 51)
  }

  @Test func exitsList() throws {
    let c = try ConfigFile.apply("exits = 127.0.0.1:53 , 127.0.0.1:9000\n", to: RunConfig())
    #expect(c.exits == [Endpoint("127.0.0.1:53")!, Endpoint("127.0.0.1:9000")!])
    #expect(try ConfigFile.apply("exits = none\n", to: c).exits.isEmpty)
  }

  @Test func boardDefaultsThenFileThenCommandLine() throws {
    var base = RunConfig()
    var b = Board()
    b.poolPackets = 2048
    b.circuits = 100
    b.cores = 4
    base.apply(board: b)
    // links = required (the default): frames arrive in sessions, which live on shard 0.
    #expect(try ConfigFile.apply("circuits = 300\n", to: base).effectiveShards == 1)
    let c = try ConfigFile.apply("circuits = 300\nlinks = optional\n", to: base)
    #expect(c.poolPackets == 2048 && c.circuits == 300 && c.effectiveShards == 4)
    let inv = try Arguments.parse(["run", "--circuits", "400"])
    let d = try RunConfig.from(inv, over: c)
    #expect(d.circuits == 400 && d.poolPackets == 2048)
  }

  @Test(arguments: [
    ("listen = 1.2.3:4\n", 1, "'listen' must be IPv4 ADDR:PORT, not '1.2.3:4'"),
    ("rate_mbps = 4\n", 1, "unknown key 'rate_mbps', did you mean 'rate_mbit'?"),
    ("name = a\nname = b\n", 2, "'name' given twice (first on line 1)"),
    ("pool = 10\n", 1, "'pool' must be a whole number from 64 to 1048576, not '10'"),
    ("gso = maybe\n", 1, "'gso' must be on or off, not 'maybe'"),
    ("metrics = 0.0.0.0:9474\n", 1, "'metrics' must be off or a loopback ADDR:PORT such as 127.0.0.1:9474, not '0.0.0.0:9474'"),
    ("exits = 127.0.0.1:1, nope\n", 1, "'exits' must be none or ADDR:PORT, ADDR:PORT, ...; 'nope' is not"),
    ("quota_reset_day = 31\n", 1, "'quota_reset_day' must be a whole number from 1 to 28, not '31'"),
    ("just words\n", 1, "expected 'key = value'"),
  ] as [(String, Int, String)])
  func rejects(text: String, line: Int, message: String) {
    do {
      _ = try ConfigFile.apply(text, to: RunConfig())
      Issue.record("accepted a bad config")
    } catch {
      #expect(error.line == line)
      #expect(error.message == message)
    }
  }
}

@Suite struct PeerConfigTests {
  @Test func peersFromFileAndCommandLine() throws {
    let c = try ConfigFile.apply("peers = attic=10.0.0.2:7400, shed-2=127.0.0.1:7401\n", to: RunConfig())
    #expect(c.peers.count == 2 && c.peers[0].name == "attic" && c.peers[1].endpoint == Endpoint("127.0.0.1:7401"))
    #expect(try ConfigFile.apply("peers = none\n", to: c).peers.isEmpty)
    let inv = try Arguments.parse(["run", "--peer", "x=127.0.0.1:9"])
    #expect(try RunConfig.from(inv, over: c).peers.map { $0.name } == ["x"])
  }

  @Test func peerWithAFingerprintIsANodeLink() throws {
    let fp = "76300de3a70d16afdda1dd8b66c414bd58efc493aea971338b199008ec4e9fbe"
    let c = try ConfigFile.apply("peers = a=127.0.0.1:7401=\(fp), b=127.0.0.1:7402\nsessions = 8\nlinks = required\n", to: RunConfig())
    #expect(c.peers.count == 2 && c.peerKeys.count == 2)
    #expect(c.peerKeys[0]?.bytes.first == 0x76 && c.peerKeys[1] == nil)
    #expect(c.sessions == 8 && c.linksRequired && c.hasNodeLinks && c.effectiveShards == 1)
    #expect(throws: ConfigError.self) { try ConfigFile.apply("links = sometimes\n", to: RunConfig()) }
  }

  @Test func badPeerLineNamesTheProblem() {
    do {
      _ = try ConfigFile.apply("peers = ok=127.0.0.1:1, nope\n", to: RunConfig())
      Issue.record("accepted a bad peer")
    } catch {
      #expect(error.line == 1 && error.message == "'peers': 'nope' is not NAME=ADDR:PORT[=FINGERPRINT]")
    }
    do {
      _ = try ConfigFile.apply("peers = a=127.0.0.1:1, a=127.0.0.1:2\n", to: RunConfig())
      Issue.record("accepted a duplicate peer name")
    } catch {
      #expect(error.line == 1 && error.message == "'peers': the name 'a' is given twice")
    }
  }

  @Test func badPeerOptionNamesTheProblem() throws {
    let inv = try Arguments.parse(["run", "--peer", "a=127.0.0.1:1", "--peer", "b=127.0.0.1:99999"])
    #expect(throws: UsageError("option '--peer': 'b=127.0.0.1:99999': the port '99999' is not 1 to 65535",
                               command: .run)) { try RunConfig.from(inv) }
    let twice = try Arguments.parse(["run", "--peer", "a=127.0.0.1:1", "--peer", "a=127.0.0.1:2"])
    #expect(throws: UsageError("option '--peer': the name 'a' is given twice", command: .run)) { try RunConfig.from(twice) }
  }
}
