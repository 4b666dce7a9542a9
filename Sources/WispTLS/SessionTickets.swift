// Session tickets (RFC 5077) for resumption, server side. Runs on host and device.
//
// The server seals the session state under a random AES-256-GCM key it rotates every
// `lifetime` seconds, so it keeps nothing per client; a client that kept its session
// (`DTLSSession.savedSession`) skips the ECDHE and signature work on reconnect.
import CMbedTLS

final class SessionTickets {
  let context: UnsafeMutablePointer<mbedtls_ssl_ticket_context>

  init(random: RandomGenerator, lifetimeSeconds: UInt32) throws(TLSError) {
    context = .allocate(capacity: 1)
    mbedtls_ssl_ticket_init(context)
    try check("mbedtls_ssl_ticket_setup",
              mbedtls_ssl_ticket_setup(context, mbedtls_ctr_drbg_random, random.context,
                                       MBEDTLS_CIPHER_AES_256_GCM, lifetimeSeconds))
  }

  deinit {
    mbedtls_ssl_ticket_free(context)
    context.deallocate()
  }

  func install(on conf: UnsafeMutablePointer<mbedtls_ssl_config>) {
    mbedtls_ssl_conf_session_tickets_cb(conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, context)
  }
}
