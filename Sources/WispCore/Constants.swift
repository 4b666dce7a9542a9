// Constants of wisp. Runs on host and device.
//
// Protocol constants are fixed by WIRE-PROTOCOL.md: changing one is a new protocol
// version. Implementation constants are tunable defaults.

public enum Wire {
  // MARK: protocol constants (WIRE-PROTOCOL.md)
  public static let versionByte: UInt8 = 0xD2           // first byte of every v2 frame
  public static let oldVersionByte: UInt8 = 0xD1        // v1: answered with REFUSED 8 (CREATE only)
  public static let versionRangeLow: UInt8 = 0xD0       // 0xD0–0xDF: wisp frames of some version
  public static let versionRangeHigh: UInt8 = 0xDF
  public static let dtlsLow: UInt8 = 20                 // RFC 7983: DTLS records start 20–63
  public static let dtlsHigh: UInt8 = 63
  public static let headerSize = 8                      // version, type, body length, circuit id
  public static let maxDatagram = 1472                  // 1500-byte MTU minus IPv4 and UDP headers
  public static let maxBody = maxDatagram - headerSize  // 1464
  public static let hopSize = 8                         // kind, 0, port, IPv4
  public static let maxHops = 3                         // nested hops in one CREATE
  public static let pingMin = 8                         // PING/PONG body bounds
  public static let pingMax = 64
  public static let pointSize = 65                      // uncompressed P-256 public point
  public static let sealOverhead = 8 + 16               // counter before, tag after a sealed payload
  public static let exitNonceSize = 32                  // a sealed exit's fresh randomness in CREATED
  /// CREATED body from a sealed exit: its id, its identity point, its fresh nonce.
  public static let sealedCreatedBody = 4 + pointSize + exitNonceSize
  /// BIND body: the node's fingerprint, then the binding it drew for the circuit half.
  public static let bindBody = 32 + 16
  /// The largest application datagram a sealed circuit carries on any path, whatever its
  /// links (`wisp forward` promises it): a 1500-byte MTU over IPv6 leaves 1452 bytes of
  /// UDP payload; a DTLS 1.2 record with AES-GCM takes 13 + 8 + 16 of them, the frame
  /// header 8, the end-to-end seal 24; rounded down to 1380 (WIRE-PROTOCOL.md).
  public static let maxForwardPayload = 1380
}

/// Frame types (WIRE-PROTOCOL.md, "Frame types").
public enum FrameType: UInt8 {
  case data = 0x01
  case create = 0x02
  case created = 0x03
  case destroy = 0x04
  case ping = 0x05
  case pong = 0x06
  case receipt = 0x07
  case refused = 0x08
  case bind = 0x09
}

/// Hop kinds in a CREATE body.
public enum HopKind: UInt8 {
  case extend = 1
  case exit = 2
  /// An exit whose DATA payloads are sealed end to end between client and exit:
  /// `rest` is the client's ephemeral P-256 public point (65 bytes).
  case sealedExit = 3
}

/// REFUSED reasons.
public enum RefuseReason: UInt8 {
  case tableFull = 1, quotaReached = 2, exitNotAllowed = 3, noService = 4, rateLimited = 5
  case malformed = 6, unreachable = 7, version = 8, busy = 9
}

/// DESTROY reasons.
public enum DestroyReason: UInt8 {
  case normal = 0, idle = 1, shutdown = 2, nextHopGone = 3
  /// No receipt bound the circuit within the bind timeout (issue 15).
  case unbound = 4
}

public enum Defaults {
  // MARK: implementation constants (tunable)
  public static let port: UInt16 = 7400                 // default UDP port of a node
  public static let bufferSize = 2048                   // bytes per pool buffer (≥ headroom + max datagram)
  public static let headroom = 64                       // bytes kept before a received datagram
  public static let poolPackets = 4096                  // packet buffers when no board says otherwise
  public static let circuits = 4096                     // forwarding table capacity (halves = 2x)
  public static let links = 1024                        // peer addresses the node keeps
  public static let batch = 32                          // datagrams per recvmmsg/sendmmsg
  public static let circuitIdleSeconds: UInt64 = 120    // idle circuits are removed after this
  public static let timers = 64                         // timer queue capacity
  public static let exitSockets = 256                   // exit circuits (one UDP socket each) per node
  public static let exitPolicyRules = 64                // rules in an exit policy (exits entries included)
  public static let keyAgreementsPerSecond = 200        // sealed-exit key agreements, whole node
  public static let receiptsPerSecond = 200             // receipt signatures checked, whole node
  public static let expensivePerSourcePerSecond = 100   // both of the above, per source
  public static let receiptsInFlightPerCircuit: UInt8 = 32 // receipts of one circuit waiting for the worker
}
