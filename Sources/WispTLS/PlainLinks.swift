// The link rules of a shard that holds no DTLS sessions. Runs on host and device.
//
// Every DTLS record reaches the session shard (the kernel's steering program sends
// anything that is not a plain wisp frame to shard 0, which holds the session table).
// The other shards see plain frames only, and must apply the same rules the session
// table applies, or a node configured with `links = required` would forward a stranger's
// plain frames on every shard but the first:
//   - with `links = required`, a plain frame is handled only when it comes from a
//     permitted exit destination (or is a PING, as on the session shard);
//   - a configured node link (a peer with a pinned key) always talks in its session, so
//     a plain frame from its address is refused in either mode;
//   - a frame this shard would send to a node link, or (required) to anyone but an exit,
//     cannot be sealed here: it is dropped and counted.
// Refusals are counted like the session table's (`SessionCounters`), and status sums them.
import WispCore
import WispOS

public final class PlainLinks: LinkLayer {
  public private(set) var counters = SessionCounters()
  public private(set) var required: Bool
  /// Addresses of the configured node links.
  public private(set) var nodeLinks: [Endpoint]
  var isExit: (Endpoint) -> Bool = { _ in false }

  public init(required: Bool, nodeLinks: [Endpoint]) {
    self.required = required
    self.nodeLinks = nodeLinks
  }

  /// Wires the rules to a relay loop (exits are the loop's forwarder's).
  public func attach<IO: DatagramIO>(to loop: RelayLoop<IO>) {
    let fwd = loop.forwarder
    loop.attach(link: self)
    gate = loop.linkGate
    updateGate()
  }

  /// New node links (SIGHUP).
  public func update(nodeLinks: [Endpoint]) {
    self.nodeLinks = nodeLinks
    updateGate()
  }

  /// The attached loop's gate: cleared while `admitsPlain` and `seal` pass every frame.
  var gate: LinkGate? = nil
  func updateGate() { gate?.judges = !nodeLinks.isEmpty || required }

  public func receive(_ datagram: UnsafeRawBufferPointer, from: Endpoint, nowNs: UInt64) {
    counters.refuse(.noSession)  // records are steered to the session shard; a stray one is dropped
  }

  public func admitsPlain(from: Endpoint, type: UInt8) -> Bool {
    if nodeLinks.isEmpty && !required { return true }
    if type == FrameType.ping.rawValue { return true }
    if isNodeLink(from) { counters.refuse(.plainOnSession); return false }
    if required && !isExit(from) { counters.refuse(.plainRefused); return false }
    return true
  }

  public func seal(_ frame: UnsafeRawBufferPointer, to: Endpoint) -> Bool {
    if nodeLinks.isEmpty && !required { return false }
    if isNodeLink(to) || (required && !isExit(to)) {
      counters.refuse(.plainRefused)
      return true
    }
    return false
  }

  public func poll(nowNs: UInt64) {}
  public func shutdown() {}

  func isNodeLink(_ e: Endpoint) -> Bool {
    for n in nodeLinks where n == e { return true }
    return false
  }
}
