// The status formats read back: JSON parsed by a JSON parser, Prometheus text parsed line
// by line (every sample has HELP and TYPE, names and labels are well-formed, the values are
// the snapshot's).
import Foundation
import Testing
import WispCore
import WispTLS
import WispNode

@Suite struct StatusFormatTests {
  func sample() -> StatusSnapshot {
    var s = StatusSnapshot()
    s.name = "attic \"pi\""
    s.listen = "127.0.0.1:7400"
    s.uptimeSec = 42
    s.shards = 2
    s.circuits = 3
    s.circuitsCreated = 9
    s.packets = 1234
    s.bytes = 987_654
    s.drops.count(DropReason.unpaid, 5)
    s.drops.count(DropReason.badSeal, 2)
    s.quotaUsed = 100
    s.quotaLimit = 1000
    s.identity = String(repeating: "ab", count: 32)
    s.peers = [.init(name: "b", endpoint: "127.0.0.1:7401", srttUs: 350, lastRttUs: 400, sent: 10, answered: 9, lastSeenSec: 1),
               .init(name: "c", endpoint: "127.0.0.1:7402", srttUs: 0, lastRttUs: 0, sent: 3, answered: 0, lastSeenSec: nil)]
    var c = SessionCounters()
    c.handshakesFull = 4
    c.recordsSealed = 77
    c.refuse(.plainRefused)
    c.refuse(.plainRefused)
    s.sessions = c
    s.sessionsEstablished = 2
    s.sessionsCapacity = 64
    s.sessionLines = [.init(peer: "b@127.0.0.1:7401", kind: "node", suite: "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256",
                            key: "00", ageSec: 5, bytesIn: 10, bytesOut: 20)]
    s.creditKnown = true
    s.creditReceipted = 5000
    s.creditCommitted = 4000
    s.recentErrors = ["level=warn msg=\"x\" a=\"b\""]
    s.mailboxRefused = 3
    s.exitPolicy = ["accept 192.0.2.0/24:53", "reject *:*"]
    s.drops.count(DropReason.exitPolicy, 4)
    return s
  }

  @Test func jsonParsesBackWithTheSnapshotsValues() throws {
    let text = sample().json()
    let any = try JSONSerialization.jsonObject(with: Data(text.utf8))
    let j = try #require(any as? [String: Any])
    #expect(j["name"] as? String == "attic \"pi\"")
    #expect(j["shards"] as? Int == 2)
    #expect(j["uptime_s"] as? Int == 42)
    #expect(j["mailbox_refused"] as? Int == 3)
    let peers = try #require(j["peers"] as? [[String: Any]])
    #expect(peers.count == 2 && peers[0]["srtt_us"] as? Int == 350)
    #expect(peers[1]["last_seen_s"] is NSNull)
    let sessions = try #require(j["sessions"] as? [String: Any])
    #expect(sessions["established"] as? Int == 2 && sessions["records_sealed"] as? Int == 77)
    let refused = try #require(sessions["refused"] as? [String: Any])
    #expect(refused["plain_refused"] as? Int == 2)
    #expect(refused.count == SessionRefusal.allCases.count)
    let traffic = try #require(j["traffic"] as? [String: Any])
    #expect(traffic["packets"] as? Int == 1234 && traffic["bytes"] as? Int == 987_654)
    let credit = try #require(j["credit"] as? [String: Any])
    #expect(credit["receipted_bytes"] as? Int == 5000 && credit["committed_bytes"] as? Int == 4000)
    let exits = try #require(j["exits"] as? [String: Any])
    #expect(exits["policy"] as? [String] == ["accept 192.0.2.0/24:53", "reject *:*"])
    #expect(exits["policy_refused"] as? Int == 4)
  }

  @Test func textShowsTheExitPolicy() {
    let text = sample().text()
    #expect(text.contains("policy:    accept 192.0.2.0/24:53, reject *:* (first match wins; no match: reject); 4 CREATE(s) refused by it, 0 to forbidden addresses\n"))
    var none = StatusSnapshot()
    none.exitPolicy = []
    #expect(none.text().contains("policy:    none (no exit); 0 CREATE(s) refused by it"))
  }

  @Test func prometheusLinesAreWellFormedAndCarryTheValues() throws {
    let text = sample().prometheus()
    var helped = Set<String>(), typed = Set<String>(), samples: [String: Double] = [:]
    for line in text.split(separator: "\n").map(String.init) {
      if line.hasPrefix("# HELP ") { helped.insert(String(line.split(separator: " ")[2])); continue }
      if line.hasPrefix("# TYPE ") {
        let parts = line.split(separator: " ")
        #expect(parts.count == 4 && ["gauge", "counter"].contains(String(parts[3])), "bad TYPE line: \(line)")
        typed.insert(String(parts[2]))
        continue
      }
      // name{label="value",...} number
      let sp = try #require(line.lastIndex(of: " "), "no value: \(line)")
      let key = String(line[..<sp])
      let value = try #require(Double(line[line.index(after: sp)...]), "value not a number: \(line)")
      let name = key.split(separator: "{").first.map(String.init) ?? key
      #expect(name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } && name.hasPrefix("wisp_"), "bad name: \(line)")
      if let open = key.firstIndex(of: "{") {
        #expect(key.hasSuffix("}"), "unclosed labels: \(line)")
        let labels = key[key.index(after: open)..<key.index(before: key.endIndex)]
        for l in labels.split(separator: ",") { #expect(l.contains("=\"") && l.hasSuffix("\""), "bad label: \(line)") }
      }
      #expect(helped.contains(name) && typed.contains(name), "sample before its HELP/TYPE: \(line)")
      samples[key] = value
    }
    #expect(samples["wisp_forwarded_packets_total"] == 1234)
    #expect(samples["wisp_forwarded_bytes_total"] == 987_654)
    #expect(samples["wisp_dropped_packets_total{reason=\"unpaid\"}"] == 5)
    #expect(samples["wisp_dropped_packets_total{reason=\"bad_seal\"}"] == 2)
    #expect(samples["wisp_session_refusals_total{reason=\"plain_refused\"}"] == 2)
    #expect(samples["wisp_peer_rtt_microseconds{peer=\"b\"}"] == 350)
    #expect(samples["wisp_peer_rtt_microseconds{peer=\"c\"}"] == nil)  // never answered: no sample
    #expect(samples["wisp_credit_receipted_bytes"] == 5000)
    #expect(samples["wisp_mailbox_refused_total"] == 3)
    #expect(samples["wisp_exit_policy_rules"] == 2)
    #expect(samples["wisp_exit_policy_refused_total"] == 4)
    #expect(samples["wisp_dropped_packets_total{reason=\"exit_policy\"}"] == 4)
  }
}

@Suite struct WatchdogTests {
  @Test func aSilentShardStopsTheWatchdog() {
    let s: UInt64 = 1_000_000_000
    // Every shard heard within 3 s: answered.
    #expect(Node.stalledShard(heardNs: [100 * s, 99 * s], nowNs: 101 * s, watchdogUsec: 0) == nil)
    // Shard 1 silent for 4 s: not answered, and it is named.
    #expect(Node.stalledShard(heardNs: [100 * s, 96 * s], nowNs: 100 * s, watchdogUsec: 0) == 1)
    // A longer watchdog interval (10 s) waits longer.
    #expect(Node.stalledShard(heardNs: [100 * s, 96 * s], nowNs: 100 * s, watchdogUsec: 10_000_000) == nil)
    // A clock reading behind the last beat (never negative) and a huge interval do not trap.
    #expect(Node.stalledShard(heardNs: [100 * s], nowNs: 1, watchdogUsec: UInt64.max) == nil)
  }
}
