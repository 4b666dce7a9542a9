// HelloVerifyRequest cookies for the server role (RFC 6347 §4.2.1). Runs on host and device.
//
// A server answers a first ClientHello with a cookie (an HMAC over the client's transport
// address and a timestamp, keyed by a random secret made here) and keeps no state until
// the client echoes it from the same address. This is what stops spoofed ClientHellos from
// costing the server key exchanges or making it amplify traffic to a victim.
import CMbedTLS

//
// The session table checks cookies on the forwarding thread and the handshake worker's
// server configuration checks them again inside mbedTLS, on its own thread: each thread has
// its own context (`twin()`), both keyed with the same secret, so no context is shared.
final class Cookies {
  let context: UnsafeMutablePointer<mbedtls_ssl_cookie_ctx>
  /// The HMAC secret (32 bytes), kept to key a twin.
  let key: [UInt8]
  let lifetimeSeconds: UInt

  convenience init(random: RandomGenerator, lifetimeSeconds: UInt) throws(TLSError) {
    guard let key = random.bytes(32) else { throw TLSError.mbedtls("mbedtls_ctr_drbg_random", -1) }
    try self.init(key: key, lifetimeSeconds: lifetimeSeconds)
  }

  init(key: [UInt8], lifetimeSeconds: UInt) throws(TLSError) {
    self.key = key
    self.lifetimeSeconds = lifetimeSeconds
    context = .allocate(capacity: 1)
    mbedtls_ssl_cookie_init(context)
    // mbedtls_ssl_cookie_setup draws its secret from the RNG it is given: here, `key`.
    let r = key.withUnsafeBufferPointer { k in
      mbedtls_ssl_cookie_setup(context, Cookies.fixedBytes, UnsafeMutableRawPointer(mutating: k.baseAddress))
    }
    if r != 0 { throw TLSError.mbedtls("mbedtls_ssl_cookie_setup", r) }  // deinit frees the context
    mbedtls_ssl_cookie_set_timeout(context, lifetimeSeconds)
  }

  /// Another context with the same secret, for another thread.
  func twin() throws(TLSError) -> Cookies { try Cookies(key: key, lifetimeSeconds: lifetimeSeconds) }

  /// An "RNG" that returns the first bytes of the 32-byte key it points at.
  static let fixedBytes: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int) -> Int32 = {
    ctx, out, n in
    guard let ctx, let out, n <= 32 else { return -1 }
    UnsafeMutableRawPointer(out).copyMemory(from: ctx, byteCount: n)
    return 0
  }

  deinit {
    mbedtls_ssl_cookie_free(context)
    context.deallocate()
  }

  /// Whether a ClientHello's cookie is valid for `transportID` (no state, one HMAC): lets
  /// the session table admit a handshake before anything is allocated for it.
  func valid(_ cookie: UnsafeRawBufferPointer, transportID: UnsafeRawBufferPointer) -> Bool {
    guard cookie.count > 0 else { return false }
    return mbedtls_ssl_cookie_check(context, cookie.baseAddress!.assumingMemoryBound(to: UInt8.self), cookie.count,
                                    transportID.baseAddress!.assumingMemoryBound(to: UInt8.self), transportID.count) == 0
  }

  /// Turns cookies on for a server configuration.
  func install(on conf: UnsafeMutablePointer<mbedtls_ssl_config>) {
    mbedtls_ssl_conf_dtls_cookies(conf, mbedtls_ssl_cookie_write, mbedtls_ssl_cookie_check, context)
  }

  /// The transport id mbedTLS binds a cookie to: IPv4 address and port, big-endian.
  static func transportID(ip: UInt32, port: UInt16) -> [UInt8] {
    [UInt8(ip >> 24), UInt8(ip >> 16 & 0xff), UInt8(ip >> 8 & 0xff), UInt8(ip & 0xff),
     UInt8(port >> 8), UInt8(port & 0xff)]
  }
}
