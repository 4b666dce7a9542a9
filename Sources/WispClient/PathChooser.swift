// Which relays a circuit goes through: the cheapest path of `hops` live peers whose last
// hop may exit to the destination, and building it on a client. Shared by `wisp client
// --peers` (MeshClient) and `wisp forward` (UDPForward), which probe the peers their own
// way and keep `alive` and `rttUs` current here. Runs on host and device.
//
// A path's cost is the sum of its relays' RTTs from the client: the client cannot
// measure relay-to-relay links, and by the triangle inequality that sum bounds them on a
// network where they meet near the client. The non-exit relays go lowest RTT first.
// With `fixedPath` (relays given in order, `--via`) that path is the only candidate.
import WispCore
import WispOS
import WispTLS

public struct PathChooser {
  public var peers: [MeshPeer]
  public let hops: Int
  /// The peer that must be the last hop (nil: any that does not refuse the exit).
  public let exitVia: Int?
  /// Only peers with a pinned key may be the first hop (DTLS without --trust-first-hop).
  public var firstHopNeedsKey = false
  /// The one path to use, first hop first (`--via`); nil: choose.
  public var fixedPath: [Int]? = nil

  public init(peers: [MeshPeer], hops: Int, exitVia: Int?) {
    self.peers = peers
    self.hops = hops
    self.exitVia = exitVia
  }

  /// Every usable path of `hops` alive peers outside `exclude`, cheapest first.
  public func candidates(exclude: [Int]) -> [(cost: UInt64, path: [Int])] {
    if let fixed = fixedPath {
      if fixed.contains(where: { exclude.contains($0) || !peers[$0].alive }) { return [] }
      return [(fixed.reduce(0) { $0 + UInt64(peers[$1].rttUs) }, fixed)]
    }
    let usable = peers.indices.filter { peers[$0].alive && !exclude.contains($0) }
    var lasts: [Int]
    if let exitVia { lasts = usable.contains(exitVia) ? [exitVia] : [] } else { lasts = usable.filter { !peers[$0].noExit } }
    var out: [(cost: UInt64, path: [Int])] = []
    for last in lasts {
      let others = usable.filter { $0 != last }.sorted { peers[$0].rttUs < peers[$1].rttUs }
      let k = hops - 1
      if others.count < k { continue }
      // Combinations of k of `others` (k <= 2), kept in RTT order.
      var combos: [[Int]] = []
      if k == 0 {
        combos = [[]]
      } else if k == 1 {
        for a in others { combos.append([a]) }
      } else {
        for x in 0..<others.count { for y in (x + 1)..<others.count { combos.append([others[x], others[y]]) } }
      }
      for c in combos {
        if firstHopNeedsKey && peers[c.first ?? last].key == nil { continue }  // its session could not be pinned
        var cost = UInt64(peers[last].rttUs)
        for i in c { cost += UInt64(peers[i].rttUs) }
        out.append((cost, c + [last]))
      }
    }
    return out.sorted { $0.cost < $1.cost || ($0.cost == $1.cost && peers[$0.path[0]].rttUs < peers[$1.path[0]].rttUs) }
  }

  public func pathText(_ p: [Int]) -> String { p.map { peers[$0].name }.joined(separator: " -> ") }

  /// Builds the cheapest path that works on `client` (at most 6 tries) to `exit`; the path
  /// built, or nil if none did. Sealed end to end when the exit relay's key is known; the
  /// first hop's session is pinned to its key when the peer list gives one. A peer that
  /// refuses the exit (REFUSED 3) is never chosen as the last hop again.
  public mutating func build<S: DatagramSocket>(on client: CircuitClient<S>, exit: Endpoint, exclude: [Int], tries: Int,
                                                waitMs: UInt64, log: (String) -> Void = { Console.out($0) }) -> [Int]? {
    var attempts = 0
    var failed: [[Int]] = []
    lastRefusal = nil
    while attempts < 6 {
      guard let next = candidates(exclude: exclude).first(where: { c in !failed.contains(where: { $0 == c.path }) }) else {
        return nil
      }
      attempts += 1
      do {
        client.pins = peers.compactMap { p in p.key.map { (p.endpoint, $0) } }
        // Receipts start afresh on the new circuit: one per hop whose key is known.
        try client.build(relays: next.path.map { peers[$0].endpoint }, exit: exit, tries: tries, waitMs: waitMs,
                         exitKey: peers[next.path[next.path.count - 1]].key, receiptHops: next.path.map { peers[$0].key })
        return next.path
      } catch {
        switch error {
        case .refused(let r):
          log("client: \(pathText(next.path)) refused (reason \(r): \(RefusalText.of(r)))")
          if r == RefuseReason.exitNotAllowed.rawValue && exitVia == nil && fixedPath == nil {
            peers[next.path[next.path.count - 1]].noExit = true
          }
        case .noAnswer:
          log("client: no answer through \(pathText(next.path))")
        case .exitKeyMismatch:
          log("client: \(pathText(next.path)): the exit's key does not match its pinned fingerprint")
        case .session(let why):
          log("client: no DTLS session with the first hop of \(pathText(next.path)): \(why)")
        }
        lastRefusal = { if case .refused(let r) = error { return r } else { return nil } }()
        failed.append(next.path)
      }
    }
    return nil
  }

  /// The reason of the latest REFUSED while building (nil: the latest failure was another).
  public var lastRefusal: UInt8? = nil
}
