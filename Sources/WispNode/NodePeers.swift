// The node's neighbours: PING every few seconds from the event loop, round-trip time from
// the PONG (smoothed like TCP's SRTT, 7/8 old + 1/8 new), shown in status and metrics.
// Owned by the control plane: the PINGs leave through the session shard (NodeShard), whose
// PONGs come back through the control mailbox.
// The PING's token is the send time, so a PONG needs no state and a forged one can at
// worst report a wrong RTT for a peer it impersonates.
import CPosix
import WispCore
import WispOS

public final class NodePeers {
  public struct Peer {
    var name: String
    var endpoint: Endpoint
    var sent: UInt64 = 0
    var answered: UInt64 = 0
    var lastRttUs: UInt64 = 0
    var srttUs: UInt64 = 0
    var lastSeenNs: UInt64 = 0
  }

  public var peers: [Peer] = []
  public static let intervalNs: UInt64 = 5_000_000_000

  public init(_ list: [PeerEntry]) { update(list) }

  /// New peer list (SIGHUP): peers that stay keep their figures.
  public func update(_ list: [PeerEntry]) {
    var next: [Peer] = []
    for p in list {
      if let old = peers.first(where: { $0.endpoint == p.endpoint && $0.name.same(p.name) }) { next.append(old) }
      else { next.append(Peer(name: p.name, endpoint: p.endpoint)) }
    }
    peers = next
  }

  /// The peers to PING now (counted as sent). The control plane hands them to the session
  /// shard, which sends the PINGs (inside a DTLS session where there is one).
  public func probeTargets() -> [Endpoint] {
    for i in 0..<peers.count { peers[i].sent &+= 1 }
    return peers.map { $0.endpoint }
  }

  /// A PONG from `from` carrying `token` (the PING's send time).
  public func pong(from: Endpoint, token: UInt64) {
    let now = wisp_monotonic_ns()
    guard token <= now, now - token < 10_000_000_000, let i = peers.firstIndex(where: { $0.endpoint == from }) else { return }
    let rtt = (now - token) / 1000
    peers[i].answered &+= 1
    peers[i].lastRttUs = rtt
    peers[i].srttUs = peers[i].srttUs == 0 ? rtt : (7 * peers[i].srttUs + rtt) / 8
    peers[i].lastSeenNs = now
  }
}
