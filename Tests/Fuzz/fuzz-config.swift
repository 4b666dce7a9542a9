// Fuzz target: ConfigFile.apply, the wisp.conf parser (CONFIG.md; the same code checks a
// file dropped on the boot partition). Any bytes: invalid UTF-8 is replaced as the node
// reads it. Checked: an error names a line of the file (or 0 for the whole file).
import WispCore

func fuzzOne(_ input: UnsafeRawBufferPointer) {
  let text = String(decoding: input, as: UTF8.self)
  do {
    let c = try ConfigFile.apply(text, to: RunConfig())
    invariant(c.batch >= 1 && c.batch <= 64 && c.circuits >= 1, "a value outside its range was accepted")
    // Exit rules: bounded, and each reads back as written (ExitPolicy.swift).
    invariant(c.exitRules.count <= Defaults.exitPolicyRules, "more exit rules than the bound")
    for r in c.exitRules {
      let again = try? ExitRule.parse(r.text)
      invariant(again == r, "exit rule '\(r.text)' does not read back as itself")
    }
  } catch {
    let lines = input.reduce(1) { $0 + ($1 == 10 ? 1 : 0) }
    invariant(error.line >= 0 && error.line <= lines, "error on line \(error.line) of \(lines)")
    invariant(!error.message.isEmpty, "an error without a message")
  }
}

func fuzzSeeds() -> [[UInt8]] {
  let texts = [
    """
    # a node on a Pi
    name = attic-pi
    listen = 0.0.0.0:7400
    board = rpi4b
    rate_mbit = 50
    quota_gb = 500
    quota_reset_day = 1
    metrics = 127.0.0.1:9474

    """,
    """
    listen=10.0.0.2:7400
    exits = 10.0.0.9:9000, 10.0.0.10:53
    peers = b=10.0.0.3:7400=\(String(repeating: "3d", count: 32)), c=10.0.0.4:7400
    sessions = 128
    half_open = 8
    handshake_rate = 0
    links = required
    credit_window = 0
    commit_interval = 30
    idle_timeout = 60
    shards = 1
    gso = off
    led_chip = none
    led_status = GPIO17
    led_activity = 27
    led_error = none
    led_active_low = yes

    """,
    "pool = 64\ncircuits = 1\nbatch = 64\nshards = auto\nrekey_mib = 16384\nrekey_seconds = 3600\nstate_dir = /var/lib/wisp\nstatus_socket = /run/wisp/status.sock\nwatchdog = on\nstats_interval = 5\n",
    "exit_policy = reject 10.9.0.0/16:*, accept 10.0.0.0/8:53, accept [2001:db8::]/32:443, accept *:1000-2000, reject *:*\n",
    "exit_policy = accept 10.0.0.1/8:53, accept *:0, accept [::ffff:102:304]:5,,\n",
    "name = x\nname = y\n",
    "listne = 1.2.3.4:5\n",
  ]
  return texts.map { Array($0.utf8) }
}
