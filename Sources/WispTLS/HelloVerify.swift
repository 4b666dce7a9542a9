// Stateless answers to ClientHellos from addresses not yet verified. Runs on host and device.
//
// A ClientHello's source address may be forged. Before the session table spends anything on
// one (a session, its ~35 KiB of mbedTLS buffers, a signature), the sender must prove it
// receives at that address: RFC 6347 §4.2.1's HelloVerifyRequest. This file parses just
// enough of a ClientHello to find its cookie, and writes the HelloVerifyRequest itself —
// 60 bytes, never more than the request (a ClientHello shorter than that gets nothing) —
// with the cookie mbedTLS makes and later checks (`mbedtls_ssl_cookie_write`/`_check`,
// HMAC over the address and port and a timestamp, key made at start-up).
//
//   record:    type 22 | version FE FD | epoch 0 | sequence (6) | length (2)
//   handshake: type 1 ClientHello | length (3) | message_seq (2) | fragment offset (3) | fragment length (3)
//   body:      client_version (2) | random (32) | session_id (1 + n) | cookie (1 + n) | ...
import CMbedTLS
import WispCore

enum HelloVerify {
  static let recordHeader = 13
  static let handshakeHeader = 12
  /// A HelloVerifyRequest with mbedTLS's 32-byte cookie: 13 + 12 + 2 + 1 + 32.
  static let requestSize = 60

  /// What a DTLS datagram is, from its first record's header.
  enum Kind { case clientHello, handshake, other }

  static func kind(_ d: UnsafeRawBufferPointer) -> Kind {
    guard d.count >= recordHeader else { return .other }
    if d[0] == 22 {
      // Epoch 0 and a ClientHello: a new handshake (first contact, reconnection or rekey).
      if d[3] == 0 && d[4] == 0 && d.count > recordHeader && d[recordHeader] == 1 { return .clientHello }
      return .handshake
    }
    if d[0] == 20 { return .handshake }  // ChangeCipherSpec
    return .other
  }

  /// The cookie of a ClientHello (empty when it has none), or nil when the datagram is not a
  /// well-formed first fragment of one.
  static func cookie(_ d: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
    let body = recordHeader + handshakeHeader
    guard d.count >= body + 35, d[recordHeader] == 1 else { return nil }
    let recordLength = Int(d[11]) << 8 | Int(d[12])
    guard recordLength + recordHeader <= d.count else { return nil }
    // Fragment offset must be 0: the cookie lies in the first fragment.
    guard d[19] == 0 && d[20] == 0 && d[21] == 0 else { return nil }
    guard d[25] == 0xFE else { return nil }  // DTLS 1.x
    var at = body + 2 + 32
    let sid = Int(d[at])
    at += 1 + sid
    guard at < d.count else { return nil }
    let n = Int(d[at])
    at += 1
    guard at + n <= d.count, n <= 255 else { return nil }
    return UnsafeRawBufferPointer(rebasing: d[at..<(at + n)])
  }

  /// Where a ClientHello's 32-byte random lies (record and handshake headers, client_version).
  static let randomOffset = recordHeader + handshakeHeader + 2

  /// The random of a ClientHello's first fragment, or nil when `d` is not one. A client
  /// sends the same random again with the cookie (RFC 6347 §4.2.1), so both ends of a crossed
  /// dial compare the same two values (SessionTable's tie-break).
  static func random(_ d: UnsafeRawBufferPointer) -> [UInt8]? {
    guard kind(d) == .clientHello, d.count >= randomOffset + 32,
          d[19] == 0 && d[20] == 0 && d[21] == 0 else { return nil }
    return Array(d[randomOffset..<(randomOffset + 32)])
  }

  /// Writes the HelloVerifyRequest answering `hello` into `out` (≥ `requestSize` bytes).
  /// Returns its length, or 0 when the answer would be larger than the request.
  static func write(answering hello: UnsafeRawBufferPointer, transportID: UnsafeRawBufferPointer,
                    cookies: Cookies, into out: UnsafeMutableRawPointer) -> Int {
    guard hello.count >= requestSize else { return 0 }
    let o = out.assumingMemoryBound(to: UInt8.self)
    // Cookie first, after the fixed headers.
    var p: UnsafeMutablePointer<UInt8>? = o + recordHeader + handshakeHeader + 3
    let end = o + requestSize + 32
    guard mbedtls_ssl_cookie_write(cookies.context, &p, end,
                                   transportID.baseAddress!.assumingMemoryBound(to: UInt8.self), transportID.count) == 0,
          let q = p else { return 0 }
    let cookieLength = q - (o + recordHeader + handshakeHeader + 3)
    let bodyLength = 3 + cookieLength
    let total = recordHeader + handshakeHeader + bodyLength
    guard total <= hello.count else { return 0 }
    // Record: handshake, DTLS 1.2, epoch 0, the ClientHello's sequence number (RFC 6347 §4.2.1).
    o[0] = 22; o[1] = 0xFE; o[2] = 0xFD
    for i in 3..<11 { o[i] = hello[i] }
    let recordLength = handshakeHeader + bodyLength
    o[11] = UInt8(recordLength >> 8); o[12] = UInt8(recordLength & 0xFF)
    // Handshake: hello_verify_request, its message_seq the ClientHello's, one fragment.
    let h = recordHeader
    o[h] = 3
    o[h + 1] = 0; o[h + 2] = UInt8(bodyLength >> 8); o[h + 3] = UInt8(bodyLength & 0xFF)
    o[h + 4] = hello[h + 4]; o[h + 5] = hello[h + 5]
    o[h + 6] = 0; o[h + 7] = 0; o[h + 8] = 0
    o[h + 9] = 0; o[h + 10] = UInt8(bodyLength >> 8); o[h + 11] = UInt8(bodyLength & 0xFF)
    // Body: server_version (DTLS 1.0 per RFC 6347 §4.2.1, as mbedTLS sends), the cookie.
    o[h + 12] = 0xFE; o[h + 13] = 0xFF
    o[h + 14] = UInt8(cookieLength)
    return total
  }
}
