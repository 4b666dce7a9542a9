// The link layer a relay loop hands encrypted datagrams to. Runs on host and device.
//
// The relay loop knows nothing about DTLS: it passes every datagram whose first byte is a
// DTLS content type (RFC 7983: 20–63) to `input`, asks `admitsPlain` before it handles a
// plain wisp frame, and offers every frame it is about to send to `seal` — unless the
// link layer has cleared the loop's `LinkGate`, which says both would let the frame pass
// as it is. The session table (WispTLS/SessionTable.swift) and the rules of a shard
// without sessions (WispTLS/PlainLinks.swift) implement it; tests can plug in fakes.
import WispCore

/// Whether a relay loop must ask its link layer about each plain frame (`admitsPlain`) and
/// each frame it sends (`seal`). Set whenever a link layer is attached; a link layer that
/// keeps it current may clear it while it would let every frame pass as it is (no session
/// established and sessions optional), and must set it before it would answer otherwise.
/// The loop then reads one flag per packet instead of making two calls.
public final class LinkGate {
  public var judges = true
  public init() {}
}

public protocol LinkLayer: AnyObject {
  /// A DTLS datagram from `from`, valid only during the call. Frames it carries come back
  /// through `RelayLoop.handleFrame`, records it writes through `RelayLoop.sendCopy`.
  func receive(_ datagram: UnsafeRawBufferPointer, from: Endpoint, nowNs: UInt64)
  /// Whether a plain (unencrypted) wisp frame of `type` (its second byte) from `from` may be
  /// handled. False drops it (counted by the link layer): a peer with a session must use it.
  func admitsPlain(from: Endpoint, type: UInt8) -> Bool
  /// Takes a frame bound for `to` if it must travel in a session: true when it was sealed
  /// and queued (or dropped and counted); false to send it as it is.
  func seal(_ frame: UnsafeRawBufferPointer, to: Endpoint) -> Bool
  /// Timers: handshake retransmission, keepalive, rekeying, idle and half-open expiry.
  func poll(nowNs: UInt64)
  /// The loop is stopping: say goodbye (close_notify) to every peer.
  func shutdown()
}
