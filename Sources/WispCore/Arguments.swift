// The command-line grammar of `wisp`. Runs on host and device.
//
//   wisp [--version | -V | --help | -h]
//   wisp COMMAND [OPTION...] [ARG...]
//
// Options are `--name VALUE`, `--name=VALUE` or a bare `--name` for switches.
// Anything the grammar does not know is a `UsageError`: the entry point prints
// it on one line, then the usage, and exits 2.

/// The subcommands of `wisp`.
public enum Subcommand: Equatable, Sendable {
  case help, version, run, demo, selftest, boards, config, status, leds
  case keygen, id, tlsProbe, tlsBench
  case client, forward
  case credits, journal, payers
}

/// One option a command accepts.
public struct OptionSpec: Sendable {
  public let name: StaticString
  /// The value's placeholder in help (`ADDR:PORT`), or nil for a switch.
  public let value: StaticString?
  public let help: StaticString
  public init(_ name: StaticString, _ value: StaticString?, _ help: StaticString) {
    self.name = name
    self.value = value
    self.help = help
  }
}

/// One subcommand's name, options and positional arguments.
public struct CommandSpec: Sendable {
  public let command: Subcommand
  public let name: StaticString
  public let summary: StaticString
  public let options: [OptionSpec]
  public let positionals: StaticString?
  public let maxPositionals: Int
}

/// A command line the grammar rejected.
public struct UsageError: Error, Equatable {
  public let message: String
  /// The command whose usage should be printed, if known.
  public let command: Subcommand?
  public init(_ message: String, command: Subcommand? = nil) {
    self.message = message
    self.command = command
  }
}

/// A parsed command line.
public struct Invocation: Sendable {
  public var command: Subcommand
  /// Options in the order given, as (option name, value); switches have an empty value.
  public var options: [(name: String, value: String)] = []
  public var positionals: [String] = []

  public init(command: Subcommand) { self.command = command }

  /// The last value given for `name`.
  public func value(_ name: StaticString) -> String? {
    var found: String? = nil
    for o in options where o.name.is(name) { found = o.value }
    return found
  }

  /// Every value given for a repeatable option.
  public func values(_ name: StaticString) -> [String] {
    var all: [String] = []
    for o in options where o.name.is(name) { all.append(o.value) }
    return all
  }

  /// Whether a switch was given.
  public func has(_ name: StaticString) -> Bool {
    for o in options where o.name.is(name) { return true }
    return false
  }
}

public enum Arguments {
  /// Every command with its options; `wisp help` prints this table.
  public static let commands: [CommandSpec] = [
    CommandSpec(command: .run, name: "run", summary: "run a node: relay circuits on one UDP port",
                options: [
                  OptionSpec("--config", "FILE", "configuration file (default /etc/wisp/wisp.conf if it exists)"),
                  OptionSpec("--listen", "ADDR:PORT", "UDP address to serve (default 127.0.0.1:7400)"),
                  OptionSpec("--state-dir", "DIR", "identity key and credit journal (default /var/lib/wisp)"),
                  OptionSpec("--status-socket", "PATH", "UNIX socket for 'wisp status' (default $RUNTIME_DIRECTORY/status.sock)"),
                  OptionSpec("--metrics", "ADDR:PORT|off", "Prometheus endpoint on loopback (default off)"),
                  OptionSpec("--board", "NAME|FILE", "board whose sizes to use (Board/NAME/board.conf or a file)"),
                  OptionSpec("--pool", "N", "packet buffers allocated at start"),
                  OptionSpec("--circuits", "N", "forwarding table capacity"),
                  OptionSpec("--batch", "N", "datagrams per recvmmsg/sendmmsg (1-64, default 32)"),
                  OptionSpec("--rate-mbit", "N", "node rate cap in Mbit/s (0 = none)"),
                  OptionSpec("--circuit-rate-mbit", "N", "per-circuit rate cap in Mbit/s (0 = none)"),
                  OptionSpec("--quota-gb", "N", "monthly quota in GB (0 = none)"),
                  OptionSpec("--quota-reset-day", "D", "day of month the quota resets (1-28)"),
                  OptionSpec("--exit", "ADDR:PORT", "allow exit traffic to this UDP destination (repeatable)"),
                  OptionSpec("--exit-policy", "RULE[,RULE...]", "exit policy rules, e.g. 'accept *:53, reject *:*' (repeatable; CONFIG.md)"),
                  OptionSpec("--peer", "NAME=ADDR:PORT[=FP]", "a neighbour node: probed for RTT; with its key's fingerprint, a DTLS link (repeatable)"),
                  OptionSpec("--sessions", "N", "DTLS sessions at once (default 64 or the board's; 0 = no DTLS)"),
                  OptionSpec("--half-open", "N", "DTLS handshakes in progress at once (default 16)"),
                  OptionSpec("--handshake-rate", "N", "new DTLS handshakes per second, node-wide (default 50)"),
                  OptionSpec("--rekey-mib", "N", "rekey a node link after N MiB either way (default 16384)"),
                  OptionSpec("--rekey-seconds", "S", "rekey a node link after S seconds (default 3600)"),
                  OptionSpec("--links", "optional|required", "required: plain frames only from exits (default required)"),
                  OptionSpec("--lab-addresses", "yes|no", "also extend and exit to loopback, private and other special addresses (tests; default no)"),
                  OptionSpec("--clock-sync", "kernel|assume", "trust the wall clock when the kernel says it is synchronised, or assume it (labs, tests; default kernel)"),
                  OptionSpec("--gso", "on|off", "use UDP GSO/GRO where the kernel has it (default on)"),
                  OptionSpec("--shards", "N", "event loops on SO_REUSEPORT sockets (default: one per core; 1 for an exit)"),
                  OptionSpec("--idle-timeout", "SECONDS", "remove circuits idle this long (default 120)"),
                  OptionSpec("--credit-window", "BYTES", "unpaid bytes a payer's circuits may carry together (default 4194304; 0 = no receipts needed)"),
                  OptionSpec("--unbound-allowance", "BYTES", "bytes a circuit may relay before a receipt binds it (default 32768)"),
                  OptionSpec("--bind-timeout", "SECONDS", "close a circuit no receipt bound within this long (default 5)"),
                  OptionSpec("--payers", "FILE", "the signed payer list (PAYER-LIST.md; default none: payers unverified)"),
                  OptionSpec("--settlement-keys", "FP,...", "fingerprints of the settlement keys that sign payer lists"),
                  OptionSpec("--settlement-threshold", "K", "distinct settlement keys a payer list needs (default 1)"),
                  OptionSpec("--require-payers", "yes|no", "refuse receipts of unlisted payers (default yes with --payers)"),
                  OptionSpec("--circuits-per-source", "N", "circuits one source address may hold (default 512; 0 = no limit)"),
                  OptionSpec("--pending-per-source", "N", "circuits one source may have waiting for CREATED (default 64; 0 = no limit)"),
                  OptionSpec("--unbound-per-source", "N", "unbound allowances one source may have outstanding (default 16; 0 = no limit)"),
                  OptionSpec("--exit-sockets", "N", "exit circuits (one UDP socket each) the node holds at once (default 256)"),
                  OptionSpec("--commit-interval", "SECONDS", "group-commit the credit journal at most this often (default 30; 0 = every receipt)"),
                  OptionSpec("--name", "NAME", "name shown in logs and status"),
                  OptionSpec("--stats-interval", "SECONDS", "print a status line every N seconds (0 = never)"),
                  OptionSpec("--duration", "SECONDS", "stop by itself after N seconds (0 = run until signalled)"),
                ],
                positionals: nil, maxPositionals: 0),
    CommandSpec(command: .demo, name: "demo", summary: "a local demo mesh on loopback (what `make run` starts)",
                options: [
                  OptionSpec("--seconds", "N", "how long to send traffic (default 10)"),
                  OptionSpec("--forever", nil, "keep running until Ctrl-C"),
                  OptionSpec("--base-port", "PORT", "first UDP port of the demo nodes (default 7401)"),
                ],
                positionals: nil, maxPositionals: 0),
    CommandSpec(command: .client, name: "client", summary: "send traffic through a circuit and report throughput, RTT and loss",
                options: [
                  OptionSpec("--via", "ADDR:PORT,...", "1-3 relays, first hop first"),
                  OptionSpec("--peers", "NAME=ADDR:PORT[=FP],...|FILE", "relays to choose paths from (instead of --via)"),
                  OptionSpec("--hops", "N", "with --peers: relays per circuit, 1-3 (default 3)"),
                  OptionSpec("--exit-via", "NAME", "with --peers: the peer that is the last hop (default: any that allows --exit)"),
                  OptionSpec("--silence-ms", "MS", "with --peers: rebuild after this long without an echo (default 1500)"),
                  OptionSpec("--exit", "ADDR:PORT", "UDP echo service behind the last relay"),
                  OptionSpec("--keys", "FP,...", "the relays' fingerprints (wisp id): pinned, sealed, and each gets receipts"),
                  OptionSpec("--payer-key", "FILE", "the payer's P-256 key (PEM) receipts are signed with (default: a new, unlisted key each run; warns)"),
                  OptionSpec("--max-spend", "BYTES", "stop before the receipts signed, summed over every hop and circuit, pass this (default: no cap)"),
                  OptionSpec("--dtls", "on|off", "carry frames to the first relay in a DTLS session, pinned by its key (default on)"),
                  OptionSpec("--trust-first-hop", nil, "with --dtls on: accept a first relay whose key is not given, on first use (warns)"),
                  OptionSpec("--seconds", "N", "how long to send (default 10)"),
                  OptionSpec("--size", "BYTES", "message size (default 1200)"),
                  OptionSpec("--rate-kbit", "K", "sending rate in kbit/s (default 8000)"),
                ],
                positionals: nil, maxPositionals: 0),
    CommandSpec(command: .forward, name: "forward",
                summary: "carry a local UDP port through the mesh to a destination behind an exit (WireGuard, DNS, ...)",
                options: [
                  OptionSpec("--listen", "ADDR:PORT", "local UDP address applications send to (for example 127.0.0.1:51820)"),
                  OptionSpec("--to", "ADDR:PORT", "the UDP destination behind the exit"),
                  OptionSpec("--via", "ADDR:PORT,...", "1-3 relays in order, first hop first"),
                  OptionSpec("--keys", "FP,...", "with --via: the relays' fingerprints (wisp id): pinned, sealed, receipted"),
                  OptionSpec("--peers", "NAME=ADDR:PORT[=FP],...|FILE", "relays to choose paths from and fail over between (instead of --via)"),
                  OptionSpec("--hops", "N", "with --peers: relays per circuit, 1-3 (default 3)"),
                  OptionSpec("--exit-via", "NAME", "with --peers: the peer that is the last hop (default: any that allows the destination)"),
                  OptionSpec("--dtls", "on|off", "carry frames to the first relay in a DTLS session, pinned by its key (default on)"),
                  OptionSpec("--trust-first-hop", nil, "with --dtls on: accept a first relay whose key is not given, on first use (warns)"),
                  OptionSpec("--payer-key", "FILE", "the payer's P-256 key (PEM) receipts are signed with (default: a new, unlisted key each run; warns)"),
                  OptionSpec("--key", "FILE", "older name of --payer-key"),
                  OptionSpec("--max-spend", "BYTES", "stop carrying before the receipts signed, summed over every hop and circuit, pass this (default: no cap)"),
                  OptionSpec("--senders", "N", "local senders at once, each with its own circuit (1-256, default 16)"),
                  OptionSpec("--idle-seconds", "S", "close a sender's circuit after S seconds without traffic (default 100)"),
                  OptionSpec("--status-socket", "PATH", "UNIX socket answering 'wisp status --socket PATH'"),
                ],
                positionals: nil, maxPositionals: 0),
    CommandSpec(command: .config, name: "config",
                summary: "check a configuration file, or import the boot partition's: wisp config check [FILE] | import-boot",
                options: [
                  OptionSpec("--from", "FILE", "import-boot: the file to import (default /boot/firmware/wisp.conf)"),
                  OptionSpec("--to", "FILE", "import-boot: the file to replace (default /etc/wisp/wisp.conf)"),
                ],
                positionals: "check [FILE] | import-boot", maxPositionals: 2),
    CommandSpec(command: .status, name: "status", summary: "ask a running node for its status",
                options: [
                  OptionSpec("--json", nil, "machine-readable output"),
                  OptionSpec("--socket", "PATH", "the node's status socket (default /run/wisp/status.sock)"),
                ],
                positionals: nil, maxPositionals: 0),
    CommandSpec(command: .selftest, name: "selftest", summary: "check the core types inside this very binary",
                options: [], positionals: nil, maxPositionals: 0),
    CommandSpec(command: .boards, name: "boards", summary: "list the boards this build knows",
                options: [], positionals: nil, maxPositionals: 0),
    CommandSpec(command: .leds, name: "leds", summary: "check the status LEDs: walk every pattern, or hold one state",
                options: [
                  OptionSpec("--board", "NAME|PATH", "board file giving the chip, lines and polarity"),
                  OptionSpec("--chip", "LABEL", "GPIO chip label (or name, path, number)"),
                  OptionSpec("--lines", "A,B,C", "status,activity,error lines (1-3; names or offsets)"),
                  OptionSpec("--active-low", nil, "LEDs light when the line is low"),
                  OptionSpec("--console", nil, "show the LEDs as text instead of GPIO"),
                  OptionSpec("--step-ms", "N", "test: how long each state is shown (default 5000)"),
                  OptionSpec("--seconds", "N", "show: how long to hold the state (default 10)"),
                ],
                positionals: "test | show STATE", maxPositionals: 2),
    CommandSpec(command: .keygen, name: "keygen", summary: "create the node key and certificate (kept if present)",
                options: [
                  OptionSpec("--state-dir", "DIR", "where node.key and node.crt live (default /var/lib/wisp)"),
                  OptionSpec("--force", nil, "replace an existing key, keeping it as node.key.bak-<epoch>"),
                ],
                positionals: nil, maxPositionals: 0),
    CommandSpec(command: .id, name: "id", summary: "print the node's key fingerprint and certificate",
                options: [
                  OptionSpec("--state-dir", "DIR", "where node.key and node.crt live (default /var/lib/wisp)"),
                ],
                positionals: nil, maxPositionals: 0),
    CommandSpec(command: .tlsProbe, name: "tls-probe", summary: "one DTLS 1.2 session over UDP, to test peers (developer tool: host build only)",
                options: [
                  OptionSpec("--role", "server|client", "answer one client, or connect to a server"),
                  OptionSpec("--listen", "ADDR:PORT", "UDP address to serve (server)"),
                  OptionSpec("--connect", "ADDR:PORT", "server to connect to (client)"),
                  OptionSpec("--state-dir", "DIR", "node identity (created if absent; default /var/lib/wisp)"),
                  OptionSpec("--pin", "HEX", "SHA-256 fingerprint of a peer key to accept (repeatable)"),
                  OptionSpec("--learn", nil, "client: accept an unpinned server and print its fingerprint"),
                  OptionSpec("--message", "TEXT", "line the client sends (default 'hello from wisp')"),
                  OptionSpec("--suite", "chacha|aes", "preferred cipher suite (default chacha)"),
                  OptionSpec("--timeout", "SECONDS", "give up after this long (default 10)"),
                ],
                positionals: nil, maxPositionals: 0),
    CommandSpec(command: .tlsBench, name: "tls-bench",
                summary: "measure DTLS handshakes, AEAD and record costs in-process (developer tool: host build only)",
                options: [
                  OptionSpec("--seconds", "N", "wall time per measurement (1-60, default 2)"),
                  OptionSpec("--suite", "chacha|aes|both", "AEADs to measure; the first one sets the handshake suite (default both)"),
                  OptionSpec("--aead-only", nil, "only the raw AEAD ceiling (no handshakes, no records): Tests/Bench/enc-relay.sh"),
                ],
                positionals: nil, maxPositionals: 0),
    CommandSpec(command: .credits, name: "credits",
                summary: "credit totals; export, verify or settle signed claim files",
                options: [
                  OptionSpec("--state-dir", "DIR", "where credits.journal and node.key live (default /var/lib/wisp)"),
                  OptionSpec("--from", "EPOCH", "export: range start (default: the last export's end + 1, or 0)"),
                  OptionSpec("--to", "EPOCH", "export: range end (default: now)"),
                  OptionSpec("--out", "FILE", "export: write the claim here (default: standard output)"),
                  OptionSpec("--payers", "LIST", "export: the payer list in force (its version goes into the claim); verify, settle: judge receipts against it"),
                  OptionSpec("--settlement-keys", "FP[,FP...]", "verify, settle: settlement key fingerprints the payer list must be signed by"),
                  OptionSpec("--threshold", "K", "verify, settle: distinct settlement keys needed (default 1)"),
                  OptionSpec("--json", nil, "settle: JSON instead of the table"),
                  OptionSpec("--csv", nil, "settle: CSV instead of the table"),
                  OptionSpec("--threads", "N", "settle: verifying threads (default: one per core)"),
                  OptionSpec("--stats", nil, "settle: time, signatures per second per core and peak memory on stderr"),
                  OptionSpec("--receipts", "N", "selftest-fill, make-claims (host build only): receipts to add (default 20)"),
                  OptionSpec("--clients", "N", "selftest-fill: test clients (default 3)"),
                  OptionSpec("--loop", nil, "selftest-fill: add and commit until killed"),
                  OptionSpec("--node-key", "PEM", "make-claims: the node key that signs the claim"),
                  OptionSpec("--payer-key", "PEM", "make-claims: a payer key that signs receipts (repeatable; taken in turn)"),
                  OptionSpec("--bytes", "N", "make-claims: bytes each receipt acknowledges (default 1000)"),
                  OptionSpec("--epoch", "EPOCH", "make-claims: epoch of the receipts (default: now)"),
                  OptionSpec("--seed", "N", "make-claims: bindings come from this seed (same seed, same bindings; default 1)"),
                  OptionSpec("--bench", "DIR", "make-claims: the settlement benchmark's set (payer list, keys, claims) in DIR"),
                  OptionSpec("--claims", "N", "make-claims --bench: claim files (default 1000)"),
                  OptionSpec("--payer-count", "N", "make-claims --bench: payers (default 1000)"),
                ],
                positionals: "[export | verify CLAIM | settle CLAIM... | selftest-fill | make-claims]", maxPositionals: 1_000_000),
    CommandSpec(command: .journal, name: "journal", summary: "health report of the credit journal",
                options: [
                  OptionSpec("--state-dir", "DIR", "where credits.journal lives (default /var/lib/wisp)"),
                ],
                positionals: "check", maxPositionals: 1),
    CommandSpec(command: .payers, name: "payers",
                summary: "sign or check a payer list (settlement tools: host build only)",
                options: [
                  OptionSpec("--key", "PEM", "sign: a settlement key (repeatable: one signature each)"),
                  OptionSpec("--version", "N", "sign: the list's version (strictly increasing)"),
                  OptionSpec("--created", "EPOCH", "sign: creation time (default: now)"),
                  OptionSpec("--out", "FILE", "sign: write the list here (default: standard output)"),
                  OptionSpec("--settlement-keys", "FP[,FP...]", "check: pinned settlement key fingerprints"),
                  OptionSpec("--threshold", "K", "check: distinct pinned keys needed (default 1)"),
                ],
                positionals: "sign INPUT | check LIST", maxPositionals: 2),
    CommandSpec(command: .version, name: "version", summary: "print version, target triple and build flavour",
                options: [], positionals: nil, maxPositionals: 0),
    CommandSpec(command: .help, name: "help", summary: "show help for wisp or one command",
                options: [], positionals: "[COMMAND]", maxPositionals: 1),
  ]

  public static func spec(_ command: Subcommand) -> CommandSpec {
    for c in commands where c.command == command { return c }
    fatalError("no spec for command")  // programmer error: every Subcommand has a spec
  }

  static func lookup(_ name: String) -> CommandSpec? {
    for c in commands where name.is(c.name) { return c }
    return nil
  }

  /// Parses argv without the program name.
  public static func parse(_ args: [String]) throws(UsageError) -> Invocation {
    guard let first = args.first else {
      throw UsageError("no command given")
    }
    if first.is("--version") || first.is("-V") {
      if args.count > 1 { throw UsageError("'--version' takes no arguments") }
      return Invocation(command: .version)
    }
    if first.is("--help") || first.is("-h") {
      var inv = Invocation(command: .help)
      inv.positionals = Array(args.dropFirst())
      if inv.positionals.count > 1 { throw UsageError("'--help' takes at most one command name") }
      return inv
    }
    if first.hasBytePrefix("-") {
      throw UsageError("unknown option '\(first)'")
    }
    guard let spec = lookup(first) else {
      throw UsageError("unknown command '\(first)'")
    }
    var inv = Invocation(command: spec.command)
    var i = 1
    var onlyPositionals = false
    while i < args.count {
      let arg = args[i]
      i += 1
      if !onlyPositionals && arg.is("--") { onlyPositionals = true; continue }
      if !onlyPositionals && (arg.is("--help") || arg.is("-h")) {
        var help = Invocation(command: .help)
        help.positionals = [first]
        return help
      }
      if !onlyPositionals && arg.hasBytePrefix("-") && arg.utf8.count > 1 {
        // Split --name=value.
        var name = arg
        var inlineValue: String? = nil
        if let eq = arg.utf8.firstIndex(of: 61) {  // '='
          name = String(arg.utf8[arg.utf8.startIndex..<eq])!
          inlineValue = String(arg.utf8[arg.utf8.index(after: eq)...])!
        }
        guard let opt = spec.options.first(where: { name.is($0.name) }) else {
          throw UsageError("unknown option '\(name)' for 'wisp \(spec.name)'", command: spec.command)
        }
        if opt.value == nil {
          if inlineValue != nil {
            throw UsageError("option '\(name)' takes no value", command: spec.command)
          }
          inv.options.append((name: name, value: ""))
        } else if let v = inlineValue {
          if v.isEmpty { throw UsageError("option '\(name)' needs a value", command: spec.command) }
          inv.options.append((name: name, value: v))
        } else {
          guard i < args.count else {
            throw UsageError("option '\(name)' needs a value", command: spec.command)
          }
          inv.options.append((name: name, value: args[i]))
          i += 1
        }
        continue
      }
      inv.positionals.append(arg)
    }
    if inv.positionals.count > spec.maxPositionals {
      throw UsageError("unexpected argument '\(inv.positionals[spec.maxPositionals])' for 'wisp \(spec.name)'",
                       command: spec.command)
    }
    if spec.command == .help, let topic = inv.positionals.first, lookup(topic) == nil {
      throw UsageError("unknown command '\(topic)'")
    }
    return inv
  }

  /// One-line usage of all of wisp, or of one command.
  public static func usage(_ command: Subcommand?) -> String {
    guard let command else { return "usage: wisp COMMAND [OPTION...]   (wisp help lists the commands)" }
    let s = spec(command)
    var line = "usage: wisp \(s.name)"
    if !s.options.isEmpty { line += " [OPTION...]" }
    if let p = s.positionals { line += " \(p)" }
    return line
  }

  /// Full help text: every command, or one command's options.
  public static func help(_ topic: String?) -> String {
    if let topic, let s = lookup(topic) {
      var out = usage(s.command) + "\n\n\(s.summary)\n"
      if !s.options.isEmpty { out += "\noptions:\n" }
      for o in s.options {
        var left = "  \(o.name)"
        if let v = o.value { left += " \(v)" }
        out += pad(left, 30) + "\(o.help)\n"
      }
      return out
    }
    var out = "wisp \(Build.version): a relay node for a bandwidth mesh\n\nusage: wisp COMMAND [OPTION...]\n\ncommands:\n"
    for c in commands {
      out += pad("  \(c.name)", 14) + "\(c.summary)\n"
    }
    out += "\n'wisp help COMMAND' shows a command's options; '--version' prints the build.\n"
    return out
  }

  static func pad(_ s: String, _ width: Int) -> String {
    var s = s
    if s.utf8.count >= width { return s + " " }
    while s.utf8.count < width { s += " " }
    return s
  }
}
