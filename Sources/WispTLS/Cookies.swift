// HelloVerifyRequest cookies for the server role (RFC 6347 §4.2.1). Runs on host and device.
//
// A server answers a first ClientHello with a cookie (an HMAC over the client's transport
// address and a timestamp, keyed by a random secret made here) and keeps no state until
// the client echoes it from the same address. This is what stops spoofed ClientHellos from
// costing the server key exchanges or making it amplify traffic to a victim.
import CMbedTLS

final class Cookies {
  let context: UnsafeMutablePointer<mbedtls_ssl_cookie_ctx>

  init(random: RandomGenerator, lifetimeSeconds: UInt) throws(TLSError) {
    context = .allocate(capacity: 1)
    mbedtls_ssl_cookie_init(context)
    try check("mbedtls_ssl_cookie_setup", mbedtls_ssl_cookie_setup(context, mbedtls_ctr_drbg_random, random.context))
    mbedtls_ssl_cookie_set_timeout(context, UInt(lifetimeSeconds))
  }

  deinit {
    mbedtls_ssl_cookie_free(context)
    context.deallocate()
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
