// Options of `wisp run`, from the command line over board defaults. Runs on host and device.

public struct RunConfig {
  public var listen = Endpoint(ip: 0x7F00_0001, port: Defaults.port)
  public var name = "wisp"
  public var poolPackets = Defaults.poolPackets
  public var circuits = Defaults.circuits
  public var batch = Defaults.batch
  /// Event loops; nil = one per core (or 1 when the node is an exit).
  public var shards: Int? = nil
  public var gso = true
  public var limits = Limits()
  /// Exact exit destinations (`exits`, `--exit`): accept rules ahead of `exitRules`.
  public var exits: [Endpoint] = []
  /// Exit policy rules (`exit_policy`, `--exit-policy`; ExitPolicy.swift).
  public var exitRules: [ExitRule] = []
  public var statsIntervalSec: UInt64 = 0
  /// Board named by the config file (the command line's --board wins).
  public var boardName: String? = nil
  public var stateDir = "/var/lib/wisp"
  /// UNIX socket for `wisp status`; nil = none.
  public var statusSocket: String? = nil
  /// Prometheus endpoint (loopback only); nil = off.
  public var metrics: Endpoint? = nil
  /// Send WATCHDOG=1 to systemd when it asks for it (WATCHDOG_USEC).
  public var watchdog = true
  public var leds = LEDLines()
  /// Unpaid bytes a payer's circuits may carry together, W (0: relay without requiring receipts).
  public var creditWindow: UInt64 = Credits.defaultWindow
  /// Bytes a circuit may relay before a receipt binds it to a payer.
  public var unboundAllowance: UInt64 = Credits.defaultUnboundAllowance
  /// Seconds within which a receipt must bind a new circuit, or it is closed.
  public var bindTimeoutSec: UInt32 = Credits.defaultBindTimeout
  /// The signed payer list (PAYER-LIST.md); nil: none, payers unverified.
  public var payersPath: String? = nil
  /// Settlement keys whose signatures a payer list needs (`settlement_threshold` distinct ones).
  public var settlementKeys: [Fingerprint] = []
  public var settlementThreshold = 1
  /// Refuse receipts of unlisted payers; nil: yes when a payer list is configured.
  public var requirePayers: Bool? = nil
  /// Whether receipts of unlisted payers earn nothing (and bind nothing).
  public var payersRequired: Bool { payersPath != nil && (requirePayers ?? true) }
  /// Exit circuits (one UDP socket each) the node may hold at once (THREAT-MODEL.md).
  public var exitSockets = Defaults.exitSockets
  /// Per-source shares of circuits and of expensive work (SourceLimits.swift).
  public var sourceLimits = SourceLimitSettings()
  /// Seconds between group commits of the credit journal (0: commit every receipt).
  public var commitIntervalSec: UInt64 = Credits.defaultCommitInterval
  /// Neighbour nodes this node probes (PING/PONG RTT, shown in status).
  /// With a key (`NAME=ADDR:PORT=FINGERPRINT`, PeerEntry.swift) a peer gets a DTLS session
  /// (node link); without one it is only probed.
  public var peers: [PeerEntry] = []
  /// Each peer's pinned key, in `peers` order.
  public var peerKeys: [Fingerprint?] { peers.map { $0.key } }
  /// DTLS session table capacity (0: no sessions; DTLS datagrams are dropped).
  public var sessions = 64
  /// Server handshakes in progress at once, and new ones per second node-wide.
  public var halfOpen = 16
  /// DTLS sessions one IPv4 address may hold at once (configured peers exempt).
  public var sessionsPerSource = 16
  public var handshakeRate: UInt64 = 50
  /// Rekey initiated sessions after this many MiB either way, or this many seconds.
  public var rekeyMiB: UInt64 = 16 * 1024
  public var rekeySeconds: UInt64 = 3600
  /// Plain frames only from exits: clients and nodes must use sessions.
  public var linksRequired = true
  /// ChaCha20-Poly1305 first (boards without AES instructions).
  public var prefersChaCha = true
  /// Whether the wall clock is trusted by the kernel's word or assumed (ClockSyncMode.swift).
  public var clockSync = ClockSyncMode.kernel
  /// The config file in use, for SIGHUP.
  public var configPath: String? = nil
  public var durationSec: UInt64 = 0

  public init() {}

  /// Applies a board's sizes (before command-line options).
  public mutating func apply(board: Board) {
    poolPackets = board.poolPackets
    circuits = board.circuits
    cores = board.cores
    sessions = min(board.sessions, 1024)
    prefersChaCha = board.prefersChaCha
    leds.chip = board.gpioChip
    leds.status = board.ledStatus
    leds.activity = board.ledActivity
    leds.error = board.ledError
    leds.activeLow = board.ledActiveLow
  }

  /// Cores to shard over when `shards` is not given.
  public var cores = 1

  /// The shard count in effect. Exit replies carry no circuit id, so the kernel cannot
  /// steer them to the shard that owns their circuit: an exit node runs one shard.
  /// Event loops to run: one per core, or 1 for an exit or a node with DTLS node links
  /// (sessions live on shard 0: the circuits they carry are all on shard 0, so more shards
  /// would sit idle; `--shards N` may still ask for them, and every shard applies the link
  /// rules).
  /// Exits do not limit it: every exit circuit's replies arrive on its own socket, on the
  /// shard that holds the circuit. Sessions do: they live on shard 0 with the circuits they
  /// carry, so when frames arrive in sessions (`links = required`, or node links) more
  /// shards would only split the pool and the circuit table (ARCHITECTURE.md, "Steering").
  public var effectiveShards: Int { shards ?? (sessions > 0 && (linksRequired || hasNodeLinks) ? 1 : cores) }

  /// Whether a peer has a pinned key (a DTLS node link) and sessions are on.
  public var hasNodeLinks: Bool { sessions > 0 && peerKeys.contains { $0 != nil } }

  /// The exit policy in effect: the `exits` entries as exact accept rules, then the
  /// `exit_policy` rules. Valid when `exitPolicyMessage` is nil (at most
  /// `Defaults.exitPolicyRules` rules in all).
  public var exitPolicy: ExitPolicy {
    ExitPolicy(rules: exits.map { ExitRule(accepting: $0) } + exitRules)
  }

  /// The first accept rule the address policy makes useless, and why (AddressPolicy.swift):
  /// a configuration error, unless lab mode allows it.
  public var forbiddenExit: (rule: ExitRule, why: AddressPolicy.Category)? {
    exitPolicy.unusableRule(local: listen, lab: limits.labAddresses)
  }

  /// What is wrong with the exit policy (too many rules, or an accept rule that can never
  /// match), naming the key or option (`exits`, `exit_policy`, `--exit`, `--exit-policy`).
  public func exitPolicyMessage(_ key: String) -> String? {
    let count = exits.count + exitRules.count
    if count > Defaults.exitPolicyRules {
      return "'\(key)': \(count) exit rules (exits entries included); at most \(Defaults.exitPolicyRules)"
    }
    guard let (r, why) = forbiddenExit else { return nil }
    // An exact rule is named as its `exits` entry would be: ADDR:PORT.
    let exact = r.bits == 128 && r.portLow == r.portHigh
    let what = exact ? String(decoding: r.text.utf8.dropFirst(7), as: UTF8.self) : "'" + r.text + "'"
    return "'\(key)': " + what + " is \(why.name); a node exits there never"
      + (why.alwaysRefused ? "" : " unless lab_addresses = yes (or --lab-addresses yes: tests only)")
  }

  /// Reads `wisp run` options. Errors name the option and what it accepts.
  public static func from(_ inv: Invocation, board: Board? = nil, cores: Int = 1) throws(UsageError) -> RunConfig {
    var c = RunConfig()
    c.cores = cores
    if let board { c.apply(board: board) }
    return try from(inv, over: c)
  }

  /// Command-line options over `base` (board and config file already applied).
  public static func from(_ inv: Invocation, over base: RunConfig) throws(UsageError) -> RunConfig {
    var c = base
    func number(_ name: StaticString, _ lo: UInt64, _ hi: UInt64) throws(UsageError) -> UInt64? {
      guard let text = inv.value(name) else { return nil }
      guard let n = parseDecimal(text), n >= lo, n <= hi else {
        throw UsageError("option '\(name)' must be a whole number from \(lo) to \(hi), not '\(text)'", command: .run)
      }
      return n
    }
    if let t = inv.value("--listen") {
      guard let e = Endpoint(t) else {
        throw UsageError("option '--listen' must be IPv4 ADDR:PORT (e.g. 0.0.0.0:7400), not '\(t)'", command: .run)
      }
      c.listen = e
    }
    if let n = inv.value("--name") { c.name = n }
    if let d = inv.value("--state-dir") { c.stateDir = d }
    if let s = inv.value("--status-socket") { c.statusSocket = s.is("none") ? nil : s }
    if let m = inv.value("--metrics") {
      if m.is("off") { c.metrics = nil } else {
        guard let e = Endpoint(m), e.isLoopback else {
          throw UsageError("option '--metrics' must be off or a loopback ADDR:PORT, not '\(m)'", command: .run)
        }
        c.metrics = e
      }
    }
    if let n = try number("--pool", 64, 1 << 20) { c.poolPackets = Int(n) }
    if let n = try number("--circuits", 1, 1 << 20) { c.circuits = Int(n) }
    if let n = try number("--batch", 1, 64) { c.batch = Int(n) }
    if let n = try number("--shards", 1, 16) { c.shards = Int(n) }
    if let n = try number("--rate-mbit", 0, 100_000) { c.limits.nodeMbit = n }
    if let n = try number("--circuit-rate-mbit", 0, 100_000) { c.limits.circuitMbit = n }
    if let n = try number("--quota-gb", 0, 1_000_000) { c.limits.quotaBytes = n * 1_000_000_000 }
    if let n = try number("--quota-reset-day", 1, 28) { c.limits.quotaResetDay = Int(n) }
    if let n = try number("--idle-timeout", 1, 86_400) { c.limits.idleSeconds = UInt32(n) }
    if let n = try number("--stats-interval", 0, 86_400) { c.statsIntervalSec = n }
    if let n = try number("--credit-window", 0, 1 << 40) { c.creditWindow = n }
    if let n = try number("--unbound-allowance", 0, 1 << 30) { c.unboundAllowance = n }
    if let n = try number("--bind-timeout", 1, 3600) { c.bindTimeoutSec = UInt32(n) }
    if let p = inv.value("--payers") { c.payersPath = p.is("none") ? nil : p }
    if let k = inv.value("--settlement-keys") {
      guard let keys = RunConfig.fingerprints(k) else {
        throw UsageError("option '--settlement-keys' must be 64-hex-digit fingerprints separated by commas, not '\(k)'", command: .run)
      }
      c.settlementKeys = keys
    }
    if let n = try number("--settlement-threshold", 1, 16) { c.settlementThreshold = Int(n) }
    if let v = inv.value("--require-payers") {
      if v.is("yes") { c.requirePayers = true } else if v.is("no") { c.requirePayers = false } else {
        throw UsageError("option '--require-payers' must be yes or no, not '\(v)'", command: .run)
      }
    }
    if let n = try number("--circuits-per-source", 0, 1 << 24) { c.sourceLimits.circuitsPerSource = Int(n) }
    if let n = try number("--pending-per-source", 0, 1 << 24) { c.sourceLimits.pendingPerSource = Int(n) }
    if let n = try number("--unbound-per-source", 0, 65_536) { c.sourceLimits.unboundPerSource = Int(n) }
    if let n = try number("--exit-sockets", 0, 65_536) { c.exitSockets = Int(n) }
    if let n = try number("--commit-interval", 0, 86_400) { c.commitIntervalSec = n }
    if let n = try number("--duration", 0, 10 * 365 * 86_400) { c.durationSec = n }
    if let g = inv.value("--gso") {
      if g.is("on") { c.gso = true } else if g.is("off") { c.gso = false } else {
        throw UsageError("option '--gso' must be on or off, not '\(g)'", command: .run)
      }
    }
    if !inv.values("--peer").isEmpty {
      do { c.peers = try PeerEntry.parse(inv.values("--peer")) } catch {
        throw UsageError("option '--peer': \(error.message)", command: .run)
      }
    }
    if let n = try number("--sessions", 0, 1024) { c.sessions = Int(n) }
    if let n = try number("--half-open", 1, 1024) { c.halfOpen = Int(n) }
    if let n = try number("--handshake-rate", 0, 100_000) { c.handshakeRate = n }
    if let n = try number("--rekey-mib", 1, 1 << 30) { c.rekeyMiB = n }
    if let n = try number("--rekey-seconds", 10, 30 * 86_400) { c.rekeySeconds = n }
    if let l = inv.value("--links") {
      if l.is("required") { c.linksRequired = true } else if l.is("optional") { c.linksRequired = false } else {
        throw UsageError("option '--links' must be optional or required, not '\(l)'", command: .run)
      }
    }
    if let l = inv.value("--lab-addresses") {
      if l.is("yes") { c.limits.labAddresses = true } else if l.is("no") { c.limits.labAddresses = false } else {
        throw UsageError("option '--lab-addresses' must be yes or no, not '\(l)'", command: .run)
      }
    }
    if let m = inv.value("--clock-sync") {
      guard let mode = ClockSyncMode(name: m) else {
        throw UsageError("option '--clock-sync' must be kernel or assume, not '\(m)'", command: .run)
      }
      c.clockSync = mode
    }
    if c.linksRequired && c.sessions == 0 {
      throw UsageError("'--links required' needs sessions ('--sessions' above 0)", command: .run)
    }
    // Either option replaces the file's whole policy (exits and exit_policy).
    if !inv.values("--exit").isEmpty || !inv.values("--exit-policy").isEmpty { c.exits = []; c.exitRules = [] }
    for t in inv.values("--exit") {
      guard let e = Endpoint(t) else {
        throw UsageError("option '--exit' must be IPv4 ADDR:PORT, not '\(t)'", command: .run)
      }
      c.exits.append(e)
    }
    for t in inv.values("--exit-policy") {
      do { c.exitRules += try ExitPolicy.parseList(t) } catch {
        throw UsageError("option '--exit-policy': \(error.message)", command: .run)
      }
    }
    if c.exits.count + c.exitRules.count > Defaults.exitPolicyRules {
      throw UsageError("options '--exit' and '--exit-policy': \(c.exits.count + c.exitRules.count) rules; at most \(Defaults.exitPolicyRules)",
                       command: .run)
    }
    if c.poolPackets < c.batch * 4 {
      throw UsageError("option '--pool' must be at least 4x '--batch' (\(c.batch * 4))", command: .run)
    }
    return c
  }
}

extension RunConfig {
  /// Comma-separated fingerprints (64 hex digits each); nil when any is not one.
  public static func fingerprints(_ text: String) -> [Fingerprint]? {
    var out: [Fingerprint] = []
    for part in text.utf8.split(separator: 44) {  // ','
      var t = Array(part)
      while t.first == 32 { t.removeFirst() }
      while t.last == 32 { t.removeLast() }
      guard let raw = bytesFromHex(t), let f = Fingerprint(raw) else { return nil }
      out.append(f)
    }
    return out.isEmpty ? nil : out
  }

  /// What is wrong with the payer-list settings, or nil.
  public var payerSettingsProblem: String? {
    guard payersPath != nil else { return nil }
    if settlementKeys.isEmpty { return "'payers' needs 'settlement_keys': the fingerprints of the keys that sign the list" }
    if settlementThreshold > settlementKeys.count {
      return "'settlement_threshold' \(settlementThreshold) is more than the \(settlementKeys.count) settlement key(s) pinned"
    }
    return nil
  }
}
