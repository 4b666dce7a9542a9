// The node's neighbours: PING every few seconds from the event loop, round-trip time from
// the PONG (smoothed like TCP's SRTT, 7/8 old + 1/8 new), shown in status and metrics.
// The PING's token is the send time, so a PONG needs no state and a forged one can at
// worst report a wrong RTT for a peer it impersonates.
import CPosix
import WispCore
import WispOS

final class NodePeers {
  struct Peer {
    var name: String
    var endpoint: Endpoint
    var sent: UInt64 = 0
    var answered: UInt64 = 0
    var lastRttUs: UInt64 = 0
    var srttUs: UInt64 = 0
    var lastSeenNs: UInt64 = 0
  }

  var peers: [Peer] = []
  let packet = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
  static let intervalNs: UInt64 = 5_000_000_000

  init(_ list: [PeerEntry]) { update(list) }
  deinit { packet.deallocate() }

  /// New peer list (SIGHUP): peers that stay keep their figures.
  func update(_ list: [PeerEntry]) {
    var next: [Peer] = []
    for p in list {
      if let old = peers.first(where: { $0.endpoint == p.endpoint && $0.name.same(p.name) }) { next.append(old) }
      else { next.append(Peer(name: p.name, endpoint: p.endpoint)) }
    }
    peers = next
  }

  /// Sends one PING to every peer from the node's socket (inside its DTLS session if it has one).
  func probe(_ loop: RelayLoop) {
    let now = wisp_monotonic_ns()
    let n = Frame.encodeHeader(packet, type: .ping, bodyLength: 8, circuit: 0)
    (packet + Wire.headerSize).storeBytes(of: now.bigEndian, as: UInt64.self)
    for i in 0..<peers.count {
      loop.sendFrame(UnsafeRawBufferPointer(start: packet, count: n), to: peers[i].endpoint)
      peers[i].sent += 1
    }
  }

  /// A PONG from `from` carrying `token` (the PING's send time).
  func pong(from: Endpoint, token: UInt64) {
    let now = wisp_monotonic_ns()
    guard token <= now, now - token < 10_000_000_000, let i = peers.firstIndex(where: { $0.endpoint == from }) else { return }
    let rtt = (now - token) / 1000
    peers[i].answered += 1
    peers[i].lastRttUs = rtt
    peers[i].srttUs = peers[i].srttUs == 0 ? rtt : (7 * peers[i].srttUs + rtt) / 8
    peers[i].lastSeenNs = now
  }
}
