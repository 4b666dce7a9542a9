// wisp.conf: the node's configuration file. Runs on host and device.
//
// Format: `key = value` lines (KeyValueFile), `#` comments; lists are comma-separated.
// Every key, its default and meaning is in CONFIG.md beside this file; `wisp config
// check FILE` validates a file without starting. Errors name the line; unknown keys
// suggest the nearest known one. Command-line options override the file, which
// overrides the board's defaults.

public struct ConfigError: Error, Equatable {
  public let line: Int
  public let message: String
}

public enum ConfigFile {
  /// Every key wisp.conf accepts (CONFIG.md documents each).
  public static let keys: [StaticString] = [
    "name", "listen", "board", "state_dir", "status_socket", "metrics", "pool", "circuits", "batch", "shards",
    "gso", "rate_mbit", "circuit_rate_mbit", "quota_gb", "quota_reset_day", "exits", "exit_policy", "idle_timeout",
    "stats_interval", "watchdog", "led_chip", "led_status", "led_activity", "led_error", "led_active_low",
    "credit_window", "peers", "commit_interval", "sessions", "half_open", "handshake_rate", "links",
    "rekey_mib", "rekey_seconds",
    "exit_sockets", "circuits_per_source", "pending_per_source", "exits_per_source", "expensive_per_source",
    "receipts_per_second", "key_agreements_per_second",
    "sessions_per_source", "lab_addresses",
    "clock_sync",
    "unbound_allowance", "unbound_per_source", "bind_timeout", "payers", "settlement_keys", "settlement_threshold", "require_payers",
  ]

  /// Applies the file's settings over `base` (which carries board defaults).
  public static func apply(_ text: String, to base: RunConfig) throws(ConfigError) -> RunConfig {
    var c = base
    let entries: [KeyValue]
    do { entries = try KeyValueFile.parse(text) } catch { throw ConfigError(line: error.line, message: error.message) }
    for kv in entries {
      let k = kv.key
      let v = kv.value
      func fail(_ m: String) -> ConfigError { ConfigError(line: kv.line, message: m) }
      func number(_ lo: UInt64, _ hi: UInt64) throws(ConfigError) -> UInt64 {
        guard let n = parseDecimal(v), n >= lo, n <= hi else {
          throw fail("'\(k)' must be a whole number from \(lo) to \(hi), not '\(v)'")
        }
        return n
      }
      func onOff() throws(ConfigError) -> Bool {
        if v.is("on") || v.is("yes") || v.is("true") { return true }
        if v.is("off") || v.is("no") || v.is("false") { return false }
        throw fail("'\(k)' must be on or off, not '\(v)'")
      }
      if k.is("name") { c.name = v }
      else if k.is("listen") {
        guard let e = Endpoint(v) else { throw fail("'listen' must be IPv4 ADDR:PORT, not '\(v)'") }
        c.listen = e
      }
      else if k.is("board") { c.boardName = v }
      else if k.is("state_dir") { c.stateDir = v }
      else if k.is("status_socket") { c.statusSocket = v }
      else if k.is("metrics") {
        if v.is("off") { c.metrics = nil } else {
          guard let e = Endpoint(v), e.isLoopback else {
            throw fail("'metrics' must be off or a loopback ADDR:PORT such as 127.0.0.1:9474, not '\(v)'")
          }
          c.metrics = e
        }
      }
      else if k.is("pool") { c.poolPackets = Int(try number(64, 1 << 20)) }
      else if k.is("circuits") { c.circuits = Int(try number(1, 1 << 20)) }
      else if k.is("batch") { c.batch = Int(try number(1, 64)) }
      else if k.is("shards") { c.shards = v.is("auto") ? nil : Int(try number(1, 16)) }
      else if k.is("gso") { c.gso = try onOff() }
      else if k.is("rate_mbit") { c.limits.nodeMbit = try number(0, 100_000) }
      else if k.is("circuit_rate_mbit") { c.limits.circuitMbit = try number(0, 100_000) }
      else if k.is("quota_gb") { c.limits.quotaBytes = try number(0, 1_000_000) * 1_000_000_000 }
      else if k.is("quota_reset_day") { c.limits.quotaResetDay = Int(try number(1, 28)) }
      else if k.is("idle_timeout") { c.limits.idleSeconds = UInt32(try number(1, 86_400)) }
      else if k.is("stats_interval") { c.statsIntervalSec = try number(0, 86_400) }
      else if k.is("watchdog") { c.watchdog = try onOff() }
      else if k.is("exits") {
        c.exits = []
        if !v.is("none") {
          for part in v.utf8.split(separator: 44) {  // ','
            let t = String(decoding: KeyValueFile.trim(Array(part)), as: UTF8.self)
            guard let e = Endpoint(t) else { throw fail("'exits' must be none or ADDR:PORT, ADDR:PORT, ...; '\(t)' is not") }
            c.exits.append(e)
          }
        }
      }
      else if k.is("exit_policy") {
        do { c.exitRules = try ExitPolicy.parseList(v) } catch { throw fail("'exit_policy': \(error.message)") }
      }
      else if k.is("peers") {
        c.peers = []
        if !v.is("none") {
          do { c.peers = try PeerEntry.parseList(v) } catch { throw fail("'peers': \(error.message)") }
        }
      }
      else if k.is("sessions") { c.sessions = Int(try number(0, 1024)) }
      else if k.is("half_open") { c.halfOpen = Int(try number(1, 1024)) }
      else if k.is("sessions_per_source") { c.sessionsPerSource = Int(try number(1, 1024)) }
      else if k.is("handshake_rate") { c.handshakeRate = try number(0, 100_000) }
      else if k.is("rekey_mib") { c.rekeyMiB = try number(1, 1 << 30) }
      else if k.is("rekey_seconds") { c.rekeySeconds = try number(10, 30 * 86_400) }
      else if k.is("links") {
        if v.is("required") { c.linksRequired = true } else if v.is("optional") { c.linksRequired = false } else {
          throw fail("'links' must be optional or required, not '\(v)'")
        }
      }
      else if k.is("lab_addresses") { c.limits.labAddresses = try onOff() }
      else if k.is("clock_sync") {
        guard let m = ClockSyncMode(name: v) else { throw fail("'clock_sync' must be kernel or assume, not '\(v)'") }
        c.clockSync = m
      }
      else if k.is("credit_window") { c.creditWindow = try number(0, 1 << 40) }
      else if k.is("unbound_allowance") { c.unboundAllowance = try number(0, 1 << 30) }
      else if k.is("bind_timeout") { c.bindTimeoutSec = UInt32(try number(1, 3600)) }
      else if k.is("payers") { c.payersPath = v.is("none") ? nil : v }
      else if k.is("settlement_keys") {
        guard let keys = RunConfig.fingerprints(v) else {
          throw fail("'settlement_keys' must be 64-hex-digit fingerprints separated by commas, not '\(v)'")
        }
        c.settlementKeys = keys
      }
      else if k.is("settlement_threshold") { c.settlementThreshold = Int(try number(1, 16)) }
      else if k.is("require_payers") { c.requirePayers = try onOff() }
      else if k.is("exit_sockets") { c.exitSockets = Int(try number(0, 65_536)) }
      else if k.is("circuits_per_source") { c.sourceLimits.circuitsPerSource = Int(try number(0, 1 << 24)) }
      else if k.is("exits_per_source") { c.sourceLimits.exitsPerSource = Int(try number(0, 65_536)) }
      else if k.is("unbound_per_source") { c.sourceLimits.unboundPerSource = Int(try number(0, 65_536)) }
      else if k.is("pending_per_source") { c.sourceLimits.pendingPerSource = Int(try number(0, 1 << 24)) }
      else if k.is("expensive_per_source") { c.sourceLimits.expensivePerSource = Int(try number(1, 100_000)) }
      else if k.is("receipts_per_second") { c.sourceLimits.receiptsPerSecond = Int(try number(1, 100_000)) }
      else if k.is("key_agreements_per_second") { c.sourceLimits.keyAgreementsPerSecond = Int(try number(1, 100_000)) }
      else if k.is("commit_interval") { c.commitIntervalSec = try number(0, 86_400) }
      else if k.is("led_chip") { c.leds.chip = v.is("none") ? nil : v; c.leds.overridden = true }
      else if k.is("led_status") { c.leds.status = v.is("none") ? nil : LineRef(v); c.leds.overridden = true }
      else if k.is("led_activity") { c.leds.activity = v.is("none") ? nil : LineRef(v); c.leds.overridden = true }
      else if k.is("led_error") { c.leds.error = v.is("none") ? nil : LineRef(v); c.leds.overridden = true }
      else if k.is("led_active_low") { c.leds.activeLow = try onOff(); c.leds.overridden = true }
      else { throw fail("unknown key '\(k)'" + suggestion(k, among: keys)) }
    }
    return c
  }
}

/// LED lines from the board, possibly overridden by the config.
public struct LEDLines: Equatable {
  public var chip: String? = nil
  public var status: LineRef? = nil
  public var activity: LineRef? = nil
  public var error: LineRef? = nil
  public var activeLow = false
  public var overridden = false
  public init() {}
}
