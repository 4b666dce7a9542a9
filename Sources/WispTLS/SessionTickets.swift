// Session tickets (RFC 5077) for resumption, server side. Runs on host and device.
//
// The server seals the session state under an AES-256-GCM key it rotates every
// `lifetime` seconds, so it keeps nothing per client; a client that kept its session
// (`DTLSSession.savedSession`) skips the ECDHE and signature work on reconnect.
//
// With a `seed` (32 secret bytes kept in the state directory, `ticket.seed`, mode 0600)
// the first key and its name are derived from the seed — SHA-256(seed ‖ "wisp ticket key"
// ‖ counter) — so tickets issued before a restart still open after it: a peer reconnecting
// to a restarted node resumes in one round trip. Everything after set-up (the per-ticket
// GCM nonces, later rotations) comes from the DRBG, never from the seed.
import CMbedTLS

final class SessionTickets {
  let context: UnsafeMutablePointer<mbedtls_ssl_ticket_context>
  let source: TicketRandom

  init(random: RandomGenerator, lifetimeSeconds: UInt32, seed: [UInt8]? = nil) throws(TLSError) {
    source = TicketRandom(random: random, seed: seed)
    context = .allocate(capacity: 1)
    mbedtls_ssl_ticket_init(context)
    let ctx = Unmanaged.passUnretained(source).toOpaque()
    // Only the key made during set-up comes from the seed.
    source.seeding = seed != nil
    let r = mbedtls_ssl_ticket_setup(context, TicketRandom.callback, ctx, MBEDTLS_CIPHER_AES_256_GCM, lifetimeSeconds)
    source.seeding = false
    try check("mbedtls_ssl_ticket_setup", r)
  }

  deinit {
    mbedtls_ssl_ticket_free(context)
    context.deallocate()
  }

  func install(on conf: UnsafeMutablePointer<mbedtls_ssl_config>) {
    mbedtls_ssl_conf_session_tickets_cb(conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, context)
  }
}

/// The random source handed to mbedTLS's ticket context: the seed's stream while
/// `seeding`, the DRBG otherwise.
final class TicketRandom {
  let random: RandomGenerator
  let seed: [UInt8]?
  var seeding = false
  var counter: UInt32 = 0

  init(random: RandomGenerator, seed: [UInt8]?) {
    self.random = random
    self.seed = seed
  }

  static let callback: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int) -> Int32 = {
    ctx, out, len in
    let me = Unmanaged<TicketRandom>.fromOpaque(ctx!).takeUnretainedValue()
    guard me.seeding, let seed = me.seed, let out else {
      return mbedtls_ctr_drbg_random(me.random.context, out, len)
    }
    var done = 0
    var block = [UInt8](repeating: 0, count: 32)
    while done < len {
      var input = seed
      input.append(contentsOf: Array("wisp ticket key".utf8))
      input.append(contentsOf: [UInt8(me.counter >> 24), UInt8(me.counter >> 16 & 0xFF), UInt8(me.counter >> 8 & 0xFF),
                                UInt8(me.counter & 0xFF)])
      me.counter += 1
      _ = input.withUnsafeBufferPointer { i in block.withUnsafeMutableBufferPointer { wisp_sha256(i.baseAddress, i.count, $0.baseAddress) } }
      let n = min(32, len - done)
      for k in 0..<n { out[done + k] = block[k] }
      done += n
    }
    return 0
  }
}
