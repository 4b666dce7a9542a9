// The RTT probe a node answers even with `links = required`. Runs on host and device.
//
// A node with `links = required` does not answer plain PINGs from strangers (its PONG would
// be a plain frame to an address without a session). It does answer every ClientHello
// without a valid cookie with a stateless HelloVerifyRequest (RFC 6347 §4.2.1; WispTLS/
// HelloVerify.swift): never larger than the ClientHello, one cookie HMAC, no state. So the
// client times that round trip. The probe is a well-formed DTLS 1.2 ClientHello (69 bytes)
// offering the two suites the nodes speak; the node copies the record's epoch and sequence
// number into its answer (RFC 6347 §4.2.1), and the probe's 48-bit sequence number is the
// token that ties an answer to its probe. The client never continues the handshake.
//
//   record:    22 | FE FD | epoch 0 0 | sequence = token (6) | length 56
//   handshake: 1 ClientHello | length 44 (3) | message_seq 0 (2) | offset 0 (3) | length 44 (3)
//   body:      FE FD | random (32) | session_id 0 | cookie 0 | suites 4: CCA9 C02B | compression 1: 0
import WispCore

public enum HelloProbe {
  /// Bytes of a probe.
  public static let size = 69
  static let bodyLength = 44

  /// Writes a probe carrying `token` (low 48 bits) into `p` (at least `size` bytes);
  /// `random` fills the ClientHello's random field. Returns `size`.
  public static func write(_ p: UnsafeMutableRawPointer, token: UInt64, random: (Int) -> UInt8) -> Int {
    let o = p.assumingMemoryBound(to: UInt8.self)
    o[0] = 22; o[1] = 0xFE; o[2] = 0xFD; o[3] = 0; o[4] = 0
    for i in 0..<6 { o[5 + i] = UInt8(truncatingIfNeeded: token >> (40 - 8 * UInt64(i))) }
    let recordLength = 12 + bodyLength
    o[11] = UInt8(recordLength >> 8); o[12] = UInt8(recordLength & 0xFF)
    let h = 13
    o[h] = 1
    o[h + 1] = 0; o[h + 2] = 0; o[h + 3] = UInt8(bodyLength)
    o[h + 4] = 0; o[h + 5] = 0
    o[h + 6] = 0; o[h + 7] = 0; o[h + 8] = 0
    o[h + 9] = 0; o[h + 10] = 0; o[h + 11] = UInt8(bodyLength)
    var b = h + 12
    o[b] = 0xFE; o[b + 1] = 0xFD; b += 2
    for i in 0..<32 { o[b + i] = random(i) }
    b += 32
    o[b] = 0; o[b + 1] = 0; b += 2                       // no session id, no cookie
    o[b] = 0; o[b + 1] = 4; b += 2                       // two cipher suites
    o[b] = 0xCC; o[b + 1] = 0xA9; o[b + 2] = 0xC0; o[b + 3] = 0x2B; b += 4
    o[b] = 1; o[b + 1] = 0; b += 2                       // compression: null
    return b
  }

  /// The token of a HelloVerifyRequest answering a probe, or nil when `d` is not one.
  public static func token(_ d: UnsafeRawBufferPointer) -> UInt64? {
    guard d.count >= 13 + 12 + 3, d[0] == 22, d[1] == 0xFE, d[3] == 0, d[4] == 0, d[13] == 3 else { return nil }
    var t: UInt64 = 0
    for i in 0..<6 { t = t << 8 | UInt64(d[5 + i]) }
    return t
  }
}
