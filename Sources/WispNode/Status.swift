// What a running node reports: for people (`wisp status`), for scripts (`--json`) and
// for Prometheus (the metrics endpoint). One snapshot feeds all three.
import CPosix
import WispCore
import WispOS
import WispTLS

public struct StatusSnapshot {
  public var name = ""
  public var version = Build.version
  public var listen = ""
  public var uptimeSec: UInt64 = 0
  public var shards = 1
  public var circuits = 0
  public var circuitsCreated: UInt64 = 0
  public var packets: UInt64 = 0
  public var bytes: UInt64 = 0
  public var pps: UInt64 = 0
  public var kbitPerSec: UInt64 = 0
  public var drops = DropCounters()
  /// Messages the node's mailboxes refused because they were full (shards, control plane,
  /// credit worker): each one a reload, probe or receipt that did not arrive.
  public var mailboxRefused: UInt64 = 0
  public var quotaUsed: UInt64 = 0
  public var quotaLimit: UInt64 = 0
  public var quotaReached = false
  public var quotaResetDay = 1
  public var poolFree = 0
  public var poolSize = 0
  public var ledState = "console"
  public var recentErrors: [String] = []
  public var identity: String? = nil
  /// `lab_addresses = yes`: extends and exits to special-purpose addresses (AddressPolicy).
  public var labAddresses = false
  /// The wall clock: synced, unsynced (time checks wait) or assumed (`clock_sync = assume`).
  public var clock = ClockState.unsynced
  /// The exit policy's rules as written, in order (empty: no exit).
  public var exitPolicy: [String] = []
  public init() {}
  public struct PeerLine {
    public var name: String
    public var endpoint: String
    public var srttUs: UInt64
    public var lastRttUs: UInt64
    public var sent: UInt64
    public var answered: UInt64
    public var lastSeenSec: UInt64?
    public init(name: String, endpoint: String, srttUs: UInt64, lastRttUs: UInt64, sent: UInt64, answered: UInt64,
                lastSeenSec: UInt64?) {
      self.name = name
      self.endpoint = endpoint
      self.srttUs = srttUs
      self.lastRttUs = lastRttUs
      self.sent = sent
      self.answered = answered
      self.lastSeenSec = lastSeenSec
    }
  }
  public var peers: [PeerLine] = []
  /// DTLS sessions (nil: sessions off).
  public var sessions: SessionCounters? = nil
  public var sessionsEstablished = 0
  public var sessionsHalfOpen = 0
  public var sessionsCapacity = 0
  public struct SessionLine {
    public var peer: String
    public var kind: String
    public var suite: String
    public var key: String
    public var ageSec: UInt64
    public var bytesIn: UInt64
    public var bytesOut: UInt64
    public init(peer: String, kind: String, suite: String, key: String, ageSec: UInt64, bytesIn: UInt64, bytesOut: UInt64) {
      self.peer = peer
      self.kind = kind
      self.suite = suite
      self.key = key
      self.ageSec = ageSec
      self.bytesIn = bytesIn
      self.bytesOut = bytesOut
    }
  }
  public var sessionLines: [SessionLine] = []
  public var creditKnown = false
  public var creditReceipted: UInt64 = 0
  public var creditReceipts = 0
  public var creditCommitted: UInt64 = 0
  public var creditPending: UInt64 = 0
  public var creditPaused = 0
  public var creditWindow: UInt64 = 0
  public var creditError: String? = nil
  /// Exit circuits' sockets open, and the node's budget for them.
  public var exitSocketsOpen = 0
  public var exitSocketBudget = 0
  /// Refused by the per-source shares: circuits (and exits), pending circuits, expensive work.
  public var sourceRefusedCircuits: UInt64 = 0
  public var sourceRefusedPending: UInt64 = 0
  public var sourceRefusedExpensive: UInt64 = 0
  public var sourceRefusedUnbound: UInt64 = 0
  /// Sealed exits' key agreements done on the worker, and refused points.
  public var keyAgreements: UInt64 = 0
  public var keyAgreementsFailed: UInt64 = 0
  /// The credit worker's bounded tables (payers, closed debts, held receipts) and counters.
  public var creditTables = CreditTables()
  /// Open circuits no receipt has bound yet; circuits closed for it; BINDs sent.
  public var unboundOpen = 0
  public var unboundClosed: UInt64 = 0
  public var bindsSent: UInt64 = 0
  /// The payer list in force (nil: none, payers unverified): version, age, payers, and
  /// whether receipts of unlisted payers are refused.
  public var payersVersion: UInt64? = nil
  public var payersAgeSec: UInt64 = 0
  public var payersCount = 0
  public var payersRequired = false
  /// Whether the node's clock is synchronised (receipt epoch checks wait while not).
  public var clockSynced = true
  /// Status and metrics connections closed at once (every slot taken) or at their deadline.
  public var connectionsRefused: UInt64 = 0
  public var connectionsExpired: UInt64 = 0

  /// The `clock:` line: "synced", "unsynced (...)" or "assumed synced (...)".
  public static func clockText(_ c: ClockState) -> String {
    switch c {
    case .synced: return "synced (the kernel says so)"
    case .unsynced: return "unsynced (the kernel's clock is not synchronised: receipt epochs and payer validity wait)"
    case .assumed: return "assumed synced (clock_sync = assume: the kernel is not asked)"
    }
  }

  /// Lines for people.
  public func text() -> String {
    var s = "wisp \(version) node '\(name)' on \(listen), up \(uptimeSec) s, \(shards) shard(s)\n"
    s += "identity:  \(identity.map { "fingerprint \($0)" } ?? "none (no usable state directory)")\n"
    s += "clock:     " + StatusSnapshot.clockText(clock) + "\n"
    s += "addresses: \(labAddresses ? "LAB MODE: extends and exits to loopback and private addresses too" : "public only")\n"
    if peers.isEmpty { s += "peers:     none configured\n" }
    for (i, p) in peers.enumerated() {
      s += (i == 0 ? "peers:     " : "           ") + "\(p.name) \(p.endpoint) "
      if let seen = p.lastSeenSec {
        s += "rtt \(formatFixed(p.srttUs, decimals: 3)) ms (last \(formatFixed(p.lastRttUs, decimals: 3)) ms),"
          + " \(p.answered)/\(p.sent) pings answered, seen \(seen) s ago\n"
      } else {
        s += "no answer yet (\(p.sent) pings sent)\n"
      }
    }
    s += "circuits:  \(circuits) open, \(circuitsCreated) created since start\n"
    s += "exits:     \(exitSocketsOpen) of \(exitSocketBudget) exit sockets open; \(keyAgreements) sealed-exit key agreement(s), \(keyAgreementsFailed) refused\n"
    s += "policy:    "
    for (i, r) in exitPolicy.enumerated() { s += (i == 0 ? "" : ", ") + r }
    s += exitPolicy.isEmpty ? "none (no exit)" : " (first match wins; no match: reject)"
    s += "; \(drops[.exitPolicy]) CREATE(s) refused by it, \(drops[.forbiddenAddress]) to forbidden addresses\n"
    s += "sources:   refused \(sourceRefusedCircuits) circuit(s) and \(sourceRefusedPending) pending over a source's share, \(sourceRefusedExpensive) signature/key operation(s) over budget, \(sourceRefusedUnbound) circuit(s) opened without an unbound allowance\n"
    s += "traffic:   \(packets) packets, \(bytes) bytes relayed; now \(pps) packets/s, \(formatFixed(kbitPerSec, decimals: 3)) Mbit/s\n"
    if creditKnown {
      s += "credit:    \(creditReceipted) bytes receipted in \(creditReceipts) receipt(s), \(creditCommitted) committed to disk;"
      s += " \(creditPending) bytes pending; \(creditPaused) circuit(s) paused (window \(creditWindow == 0 ? "off" : "\(creditWindow) bytes"))\n"
      if let e = creditError { s += "           STORAGE ERROR, not crediting: \(e)\n" }
      let t = creditTables
      s += "payers:    " + (payersVersion.map { "list version \($0), \(payersAgeSec) s old, \(payersCount) payer(s), unlisted \(payersRequired ? "refused" : "taken (\(t.unlisted))")" } ?? "payers unverified (no payer list)") + "\n"
      s += "           \(t.payers) of \(t.payersCapacity) payer entries (\(t.payersFull) refused full, \(t.payersEvicted) evicted); \(t.closedDebts) of \(t.closedCapacity) closed-circuit debts, \(t.debtBytes) bytes owed (\(t.closedEvicted) evicted, \(t.debtPaid) bytes paid back)\n"
      s += "binding:   \(unboundOpen) circuit(s) unbound now, \(unboundClosed) closed unbound, \(bindsSent) BIND(s) sent; clock \(clockSynced ? "synced" : "unsynced: epoch checks wait")"
      s += ", \(t.held) of \(t.heldCapacity) receipt(s) held (\(t.heldDropped) dropped)\n"
      s += "receipts:  refused \(t.rejections.summary)"
      if t.v1Receipts > 0 { s += "; \(t.v1Receipts) v1 receipt(s) of \(t.v1Bytes) bytes from an old journal (not claimable under a payer list)" }
      s += "\n"
    } else {
      s += "credit:    off (no usable state directory: relaying without crediting)\n"
    }
    if quotaLimit > 0 {
      s += "quota:     \(quotaUsed) of \(quotaLimit) bytes this period (resets on day \(quotaResetDay))"
      s += quotaReached ? " - REACHED: refusing new circuits\n" : "\n"
    } else {
      s += "quota:     none\n"
    }
    s += "pool:      \(poolFree) of \(poolSize) packet buffers free\n"
    s += "leds:      \(ledState)\n"
    if let c = sessions {
      s += "sessions:  \(sessionsEstablished) established, \(sessionsHalfOpen) half-open of \(sessionsCapacity);"
        + " handshakes \(c.handshakesFull) full, \(c.handshakesResumed) resumed, \(c.rekeys) rekeys;"
        + " \(c.helloVerifyRequests) cookies sent (unverified bytes in \(c.unverifiedBytesIn), out \(c.unverifiedBytesOut))\n"
      for l in sessionLines {
        s += "           \(l.peer) \(l.kind) \(l.suite) up \(l.ageSec) s, in \(l.bytesIn) B, out \(l.bytesOut) B, key \(l.key)\n"
      }
      s += "refused:   \(c.refusalSummary)\n"
    } else {
      s += "sessions:  off\n"
    }
    s += "drops:     \(drops.total) [\(drops.summary)]\n"
    s += "mailboxes: \(mailboxRefused) message(s) refused (full)\n"
    s += "sockets:   \(connectionsRefused) status/metrics connection(s) refused (full), \(connectionsExpired) timed out\n"
    s += "errors:    \(recentErrors.isEmpty ? "none" : "")\n"
    for e in recentErrors { s += "  \(e)\n" }
    return s
  }

  /// One JSON object for scripts.
  public func json() -> String {
    var s = "{\"name\":\"\(Log.quote(name))\",\"version\":\"\(version)\",\"listen\":\"\(listen)\",\"uptime_s\":\(uptimeSec)"
    s += ",\"clock\":{\"state\":\"\(clock.name)\",\"synced\":\(clock.trusted),\"assumed\":\(clock == .assumed)}"
    s += ",\"lab_addresses\":\(labAddresses),\"shards\":\(shards),\"mailbox_refused\":\(mailboxRefused),\"identity\":" + (identity.map { "\"\($0)\"" } ?? "null") + ",\"peers\":["
    for (i, p) in peers.enumerated() {
      s += (i == 0 ? "" : ",") + "{\"name\":\"\(Log.quote(p.name))\",\"address\":\"\(p.endpoint)\",\"srtt_us\":\(p.srttUs)"
        + ",\"last_rtt_us\":\(p.lastRttUs),\"pings_sent\":\(p.sent),\"pongs\":\(p.answered)"
        + ",\"last_seen_s\":" + (p.lastSeenSec.map { "\($0)" } ?? "null") + "}"
    }
    s += "]"
    if let c = sessions {
      s += ",\"sessions\":{\"established\":\(sessionsEstablished),\"half_open\":\(sessionsHalfOpen),\"capacity\":\(sessionsCapacity)"
        + ",\"handshakes_full\":\(c.handshakesFull),\"handshakes_resumed\":\(c.handshakesResumed),\"rekeys\":\(c.rekeys)"
        + ",\"hello_verify_requests\":\(c.helloVerifyRequests),\"unverified_bytes_in\":\(c.unverifiedBytesIn)"
        + ",\"unverified_bytes_out\":\(c.unverifiedBytesOut),\"records_sealed\":\(c.recordsSealed),\"records_opened\":\(c.recordsOpened)"
        + ",\"close_notify_sent\":\(c.closeNotifySent),\"refused\":{"
      for r in SessionRefusal.allCases { s += (r.rawValue == 0 ? "" : ",") + "\"\(r.name)\":\(c[r])" }
      s += "},\"links\":["
      for (i, l) in sessionLines.enumerated() {
        s += (i == 0 ? "" : ",") + "{\"peer\":\"\(l.peer)\",\"kind\":\"\(l.kind)\",\"suite\":\"\(l.suite)\",\"key\":\"\(l.key)\""
          + ",\"age_s\":\(l.ageSec),\"bytes_in\":\(l.bytesIn),\"bytes_out\":\(l.bytesOut)}"
      }
      s += "]}"
    } else {
      s += ",\"sessions\":null"
    }
    s += ",\"circuits\":{\"open\":\(circuits),\"created\":\(circuitsCreated)}"
    s += ",\"exits\":{\"sockets_open\":\(exitSocketsOpen),\"sockets_budget\":\(exitSocketBudget),\"key_agreements\":\(keyAgreements),\"key_agreements_refused\":\(keyAgreementsFailed)"
    s += ",\"policy\":["
    for (i, r) in exitPolicy.enumerated() { s += (i == 0 ? "" : ",") + "\"\(Log.quote(r))\"" }
    s += "],\"policy_refused\":\(drops[.exitPolicy])}"
    s += ",\"sources\":{\"refused_circuits\":\(sourceRefusedCircuits),\"refused_pending\":\(sourceRefusedPending),\"refused_expensive\":\(sourceRefusedExpensive),\"refused_unbound\":\(sourceRefusedUnbound)}"
    s += ",\"traffic\":{\"packets\":\(packets),\"bytes\":\(bytes),\"packets_per_s\":\(pps),\"kbit_per_s\":\(kbitPerSec)}"
    if creditKnown {
      s += ",\"credit\":{\"receipted_bytes\":\(creditReceipted),\"receipts\":\(creditReceipts),\"committed_bytes\":\(creditCommitted)"
      s += ",\"pending_bytes\":\(creditPending),\"paused_circuits\":\(creditPaused),\"window_bytes\":\(creditWindow)"
      let t = creditTables
      s += ",\"payers\":{\"verified\":\(payersVersion != nil),\"version\":" + (payersVersion.map { "\($0)" } ?? "null")
      s += ",\"age_s\":\(payersAgeSec),\"listed\":\(payersCount),\"required\":\(payersRequired),\"unlisted_taken\":\(t.unlisted)"
      s += ",\"entries\":\(t.payers),\"capacity\":\(t.payersCapacity),\"full\":\(t.payersFull),\"evicted\":\(t.payersEvicted)}"
      s += ",\"debts\":{\"entries\":\(t.closedDebts),\"capacity\":\(t.closedCapacity),\"evicted\":\(t.closedEvicted),\"owed_bytes\":\(t.debtBytes),\"paid_bytes\":\(t.debtPaid)}"
      s += ",\"held\":{\"receipts\":\(t.held),\"capacity\":\(t.heldCapacity),\"dropped\":\(t.heldDropped)}"
      s += ",\"unbound_open\":\(unboundOpen),\"unbound_closed\":\(unboundClosed),\"binds_sent\":\(bindsSent),\"clock_synced\":\(clockSynced)"
      s += ",\"v1_receipts\":\(t.v1Receipts),\"v1_bytes\":\(t.v1Bytes),\"rejected\":{"
      var firstReason = true
      for r in ReceiptRejection.allCases {
        s += (firstReason ? "" : ",") + "\"\(r.name)\":\(t.rejections[r])"
        firstReason = false
      }
      s += "}"
      s += ",\"storage_error\":" + (creditError.map { "\"\(Log.quote($0))\"" } ?? "null") + "}"
    } else {
      s += ",\"credit\":null"
    }
    s += ",\"quota\":{\"used_bytes\":\(quotaUsed),\"limit_bytes\":\(quotaLimit),\"reached\":\(quotaReached),\"reset_day\":\(quotaResetDay)}"
    s += ",\"connections\":{\"refused\":\(connectionsRefused),\"timed_out\":\(connectionsExpired)}"
    s += ",\"pool\":{\"free\":\(poolFree),\"size\":\(poolSize)},\"leds\":\"\(Log.quote(ledState))\",\"drops\":{"
    var first = true
    for r in DropReason.allCases {
      s += (first ? "" : ",") + "\"\(r.name)\":\(drops[r])"
      first = false
    }
    s += "},\"last_errors\":["
    for (i, e) in recentErrors.enumerated() { s += (i == 0 ? "" : ",") + "\"\(Log.quote(e))\"" }
    return s + "]}\n"
  }

  /// Prometheus text exposition format 0.0.4.
  public func prometheus() -> String {
    var s = ""
    func metric(_ name: String, _ type: StaticString, _ help: StaticString, _ value: UInt64, _ labels: String = "") {
      s += "# HELP wisp_\(name) \(help)\n# TYPE wisp_\(name) \(type)\n"
      s += "wisp_\(name)\(labels.isEmpty ? "" : "{\(labels)}") \(value)\n"
    }
    metric("up_seconds", "gauge", "Seconds since the node started.", uptimeSec)
    metric("clock_synced", "gauge", "1: time checks use the wall clock (the kernel says it is synchronised, or clock_sync = assume).",
           clock.trusted ? 1 : 0)
    metric("clock_sync_assumed", "gauge", "1: clock_sync = assume, the kernel is not asked.", clock == .assumed ? 1 : 0)
    metric("lab_addresses", "gauge", "1: lab mode, the node extends and exits to special-purpose addresses.", labAddresses ? 1 : 0)
    metric("circuits_open", "gauge", "Circuits in the forwarding table.", UInt64(circuits))
    metric("circuits_created_total", "counter", "Circuits created since start.", circuitsCreated)
    metric("exit_sockets_open", "gauge", "Exit circuits' sockets open.", UInt64(exitSocketsOpen))
    metric("exit_sockets_budget", "gauge", "The most exit sockets the node holds.", UInt64(exitSocketBudget))
    metric("exit_policy_rules", "gauge", "Rules in the exit policy (0: no exit).", UInt64(exitPolicy.count))
    metric("exit_policy_refused_total", "counter", "CREATEs to an exit destination the exit policy rejects.", drops[.exitPolicy])
    metric("key_agreements_total", "counter", "Sealed-exit key agreements done on the worker.", keyAgreements)
    metric("key_agreements_refused_total", "counter", "Sealed-exit CREATEs whose client point was refused.", keyAgreementsFailed)
    metric("source_refused_circuits_total", "counter", "Circuits refused over a source's share.", sourceRefusedCircuits)
    metric("source_refused_pending_total", "counter", "Pending circuits refused over a source's share.", sourceRefusedPending)
    metric("source_refused_expensive_total", "counter", "Signature checks and key agreements refused over budget.", sourceRefusedExpensive)
    metric("source_refused_unbound_total", "counter", "Circuits opened without an unbound allowance (their source had none left): nothing carried until a receipt binds them.", sourceRefusedUnbound)
    metric("forwarded_packets_total", "counter", "Packets relayed.", packets)
    metric("forwarded_bytes_total", "counter", "Payload bytes relayed.", bytes)
    metric("quota_used_bytes", "gauge", "Bytes counted against this period's quota.", quotaUsed)
    metric("quota_limit_bytes", "gauge", "The monthly quota (0 = none).", quotaLimit)
    metric("pool_free_buffers", "gauge", "Free packet buffers.", UInt64(poolFree))
    metric("mailbox_refused_total", "counter", "Messages between the node's threads refused by a full mailbox.", mailboxRefused)
    metric("credit_receipted_bytes", "gauge", "Bytes acknowledged by valid signed receipts.", creditReceipted)
    metric("credit_committed_bytes", "gauge", "Receipted bytes synced to the journal.", creditCommitted)
    metric("credit_pending_bytes", "gauge", "Bytes relayed on open circuits beyond their receipts.", creditPending)
    metric("credit_paused_circuits", "gauge", "Circuits paused at their credit window.", UInt64(creditPaused))
    if creditKnown {
      let t = creditTables
      metric("credit_payers_verified", "gauge", "1: a payer list is in force; 0: payers unverified.", payersVersion == nil ? 0 : 1)
      metric("credit_payers_version", "gauge", "Version of the payer list in force (0: none).", payersVersion ?? 0)
      metric("credit_payers_age_seconds", "gauge", "Seconds since the payer list in force was created.", payersAgeSec)
      metric("credit_payers_listed", "gauge", "Payers on the payer list in force.", UInt64(payersCount))
      metric("credit_payer_entries", "gauge", "Payers with open circuits or debt on this node.", UInt64(t.payers))
      metric("credit_payer_capacity_entries", "gauge", "The most payer entries the node holds.", UInt64(t.payersCapacity))
      metric("credit_payers_full_total", "counter", "Receipts refused because the payer table was full.", t.payersFull)
      metric("credit_closed_debt_entries", "gauge", "Closed circuits whose unpaid bytes are kept.", UInt64(t.closedDebts))
      metric("credit_closed_debt_evicted_total", "counter", "Closed-circuit debt entries evicted (the debt stays with the payer).", t.closedEvicted)
      metric("credit_debt_bytes", "gauge", "Bytes closed circuits carried beyond their receipts.", t.debtBytes)
      metric("credit_held_receipts", "gauge", "Receipts held while the clock is unsynchronised.", UInt64(t.held))
      metric("credit_unbound_circuits", "gauge", "Open circuits no receipt has bound yet.", UInt64(unboundOpen))
      metric("credit_unbound_closed_total", "counter", "Circuits closed because no receipt bound them in time.", unboundClosed)
      metric("credit_clock_synced", "gauge", "1: the clock is synchronised; 0: receipt epoch checks wait.", clockSynced ? 1 : 0)
      for r in ReceiptRejection.allCases {
        metric("credit_receipts_rejected_total", "counter", "Receipts refused, by reason.", t.rejections[r], "reason=\"\(r.name)\"")
      }
    }
    metric("local_connections_refused_total", "counter", "Status and metrics connections closed at once: every slot taken.",
           connectionsRefused)
    metric("local_connections_timed_out_total", "counter", "Status and metrics connections closed at their deadline.",
           connectionsExpired)
    if let c = sessions {
      metric("sessions_established", "gauge", "DTLS sessions established.", UInt64(sessionsEstablished))
      metric("sessions_half_open", "gauge", "DTLS handshakes in progress (server side).", UInt64(sessionsHalfOpen))
      metric("handshakes_full_total", "counter", "Full DTLS handshakes completed.", c.handshakesFull)
      metric("handshakes_resumed_total", "counter", "Resumed DTLS handshakes completed (session tickets).", c.handshakesResumed)
      metric("session_rekeys_total", "counter", "Sessions replaced by a new handshake.", c.rekeys)
      metric("hello_verify_requests_total", "counter", "Cookies sent to unverified addresses.", c.helloVerifyRequests)
      metric("unverified_bytes_in_total", "counter", "Bytes of ClientHellos from unverified addresses.", c.unverifiedBytesIn)
      metric("unverified_bytes_out_total", "counter", "Bytes sent to unverified addresses.", c.unverifiedBytesOut)
      metric("records_sealed_total", "counter", "Frames sent as DTLS records.", c.recordsSealed)
      metric("records_opened_total", "counter", "Frames received as DTLS records.", c.recordsOpened)
      s += "# HELP wisp_session_refusals_total Handshakes refused and DTLS datagrams dropped, by reason.\n"
      s += "# TYPE wisp_session_refusals_total counter\n"
      for r in SessionRefusal.allCases { s += "wisp_session_refusals_total{reason=\"\(r.name)\"} \(c[r])\n" }
    }
    if !peers.isEmpty {
      s += "# HELP wisp_peer_rtt_microseconds Smoothed round-trip time to a neighbour node (PING/PONG).\n"
      s += "# TYPE wisp_peer_rtt_microseconds gauge\n"
      for p in peers where p.lastSeenSec != nil { s += "wisp_peer_rtt_microseconds{peer=\"\(Log.quote(p.name))\"} \(p.srttUs)\n" }
    }
    s += "# HELP wisp_dropped_packets_total Datagrams dropped, by reason.\n# TYPE wisp_dropped_packets_total counter\n"
    for r in DropReason.allCases { s += "wisp_dropped_packets_total{reason=\"\(r.name)\"} \(drops[r])\n" }
    return s
  }
}

/// `wisp status [--json] [--socket PATH]`.
public enum StatusClient {
  public static func main(_ inv: Invocation) -> Int32 {
    var path = inv.value("--socket") ?? "/run/wisp/status.sock"
    if inv.value("--socket") == nil, let rt = ProcessInfo.environment("RUNTIME_DIRECTORY") { path = rt + "/status.sock" }
    let fd = wisp_unix_connect(path)
    if fd < 0 {
      Console.err("wisp: cannot reach a running node at \(path): \(Errno(-fd).description) (is wisp running? --socket PATH)")
      return 1
    }
    defer { close(fd) }
    let req = inv.has("--json") ? "json\n" : "status\n"
    var r = req
    _ = r.withUTF8 { wisp_write_all(fd, $0.baseAddress, $0.count, 1000) }
    var out = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 4096)
    while out.count < 1 << 20 {
      let n = buf.withUnsafeMutableBytes { wisp_read_timeout(fd, $0.baseAddress, $0.count, 2000) }
      if n <= 0 { break }
      out.append(contentsOf: buf[0..<Int(n)])
    }
    if out.isEmpty { Console.err("wisp: the node at \(path) did not answer"); return 1 }
    Console.write(1, String(decoding: out, as: UTF8.self))
    return 0
  }
}
