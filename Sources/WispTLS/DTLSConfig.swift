// One DTLS 1.2 configuration shared by every session of a role. Runs on host and device.
//
// Fixed choices (SESSIONS.md explains each):
//  - DTLS 1.2 only (minimum = maximum): DTLS 1.0 and its CBC-only suites are refused.
//  - Cipher suites exactly ECDHE-ECDSA with CHACHA20-POLY1305 or AES-128-GCM (AEAD, forward
//    secret), ChaCha first on boards without AES instructions (`prefersChaCha`).
//  - Key exchange on X25519 or P-256; signatures ECDSA P-256 with SHA-256.
//  - Mutual authentication is required; a peer is accepted only by the pinned fingerprint of
//    its public key (PeerVerification.swift), never by a CA or a name.
//  - Server: HelloVerifyRequest cookies always on; session tickets for resumption.
import CMbedTLS
import WispCore

public enum DTLSRole {
  case server, client
}

/// What a configuration is built from.
public struct DTLSOptions {
  public var role: DTLSRole
  /// Fingerprints of the peers this node accepts.
  public var pinned: [Fingerprint]
  /// Client only: accept any validly self-signed P-256 peer and report its fingerprint
  /// (`DTLSSession.peerFingerprint`) for the caller to pin. Trust on first use.
  public var learn: Bool = false
  /// Server only: accept any client with a validly self-signed P-256 key (clients of the
  /// mesh are not known in advance); `DTLSSession.peerFingerprint` records who it was, and
  /// whether that key is pinned tells a node link from a client.
  public var acceptClients: Bool = false
  /// Remember certificates whose self-signature verified (VerifiedCertificates.swift), so a
  /// known peer's next full handshake costs one ECDSA verification less. Off only to measure.
  public var cacheVerifiedPeers: Bool = true
  /// ChaCha20-Poly1305 before AES-128-GCM (boards without AES instructions).
  public var prefersChaCha: Bool = true
  /// Handshake retransmission: first timeout and the cap after doubling (RFC 6347 §4.2.4.1).
  public var handshakeTimeoutMinMs: UInt32 = 1000
  public var handshakeTimeoutMaxMs: UInt32 = 16_000
  /// After the handshake, a session with no record for this long fails with `.idleTimeout`.
  public var readTimeoutMs: UInt32 = 60_000
  /// Largest datagram a session sends (IPv4 + UDP headers excluded).
  public var mtu: UInt16 = 1400
  /// Server: issue session tickets (client: accept them).
  public var sessionTickets: Bool = true
  /// Server: 32 secret bytes the first ticket key is derived from, so tickets survive a
  /// restart (SessionTickets.swift); nil: a random key per process.
  public var ticketSeed: [UInt8]? = nil

  public init(role: DTLSRole, pinned: [Fingerprint]) {
    self.role = role
    self.pinned = pinned
  }
}

public final class DTLSConfig {
  let conf: UnsafeMutablePointer<mbedtls_ssl_config>
  public let options: DTLSOptions
  let identity: Identity
  let random: RandomGenerator
  // Lists mbedTLS keeps pointers to for the life of `conf`.
  let suites: UnsafeMutablePointer<Int32>
  let cookies: Cookies?
  let tickets: SessionTickets?
  /// Certificates already verified as validly self-signed (shared by this role's sessions).
  let verified = VerifiedCertificates()

  /// The suites in the order offered/chosen.
  public static func suiteIDs(prefersChaCha: Bool) -> [Int32] {
    let chacha = Int32(MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
    let gcm = Int32(MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
    return prefersChaCha ? [chacha, gcm] : [gcm, chacha]
  }

  public convenience init(options: DTLSOptions, identity: Identity, random: RandomGenerator) throws(TLSError) {
    try self.init(options: options, identity: identity, random: random, cookies: nil)
  }

  /// `cookies`: the server's cookie context (nil: a new secret).
  init(options: DTLSOptions, identity: Identity, random: RandomGenerator, cookies given: Cookies?) throws(TLSError) {
    let server = options.role == .server
    // Made first: a throw here leaves nothing allocated.
    var cookies: Cookies? = nil
    if server {
      if let given { cookies = given } else { cookies = try Cookies(random: random, lifetimeSeconds: DTLSConfig.cookieLifetimeSeconds) }
    }
    let tickets = server && options.sessionTickets ? try SessionTickets(random: random, lifetimeSeconds: 3600, seed: options.ticketSeed) : nil
    self.cookies = cookies
    self.tickets = tickets
    self.options = options
    self.identity = identity
    self.random = random
    conf = .allocate(capacity: 1)
    mbedtls_ssl_config_init(conf)

    let ids = DTLSConfig.suiteIDs(prefersChaCha: options.prefersChaCha)
    suites = .allocate(capacity: ids.count + 1)
    for i in 0..<ids.count { suites[i] = ids[i] }
    suites[ids.count] = 0

    // Every property is set from here on: a throw below runs deinit, which frees `conf`.
    try check("mbedtls_ssl_config_defaults",
              mbedtls_ssl_config_defaults(conf, server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                          MBEDTLS_SSL_TRANSPORT_DATAGRAM, MBEDTLS_SSL_PRESET_DEFAULT))
    mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, random.context)
    wisp_ssl_conf_dtls12_only(conf)
    mbedtls_ssl_conf_ciphersuites(conf, suites)
    wisp_ssl_conf_groups_and_sigs(conf)  // X25519, P-256; ECDSA with SHA-256
    // An mbedTLS server (2.28 and 3.6) picks by its own list's order, so `prefersChaCha` decides there.
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED)
    // mbedTLS refuses VERIFY_REQUIRED without a CA chain; our own certificate serves as a
    // placeholder. Trust is decided in the verify callback by pinned fingerprint.
    mbedtls_ssl_conf_ca_chain(conf, identity.certificate, nil)
    try check("mbedtls_ssl_conf_own_cert", mbedtls_ssl_conf_own_cert(conf, identity.certificate, identity.key))
    mbedtls_ssl_conf_handshake_timeout(conf, options.handshakeTimeoutMinMs, options.handshakeTimeoutMaxMs)
    mbedtls_ssl_conf_read_timeout(conf, options.readTimeoutMs)
    mbedtls_ssl_conf_dtls_anti_replay(conf, CChar(MBEDTLS_SSL_ANTI_REPLAY_ENABLED))
    // The bad-MAC limit is DTLSSession's (`badRecordLimit`), counted outside mbedTLS so a
    // record tried on the wrong session around a rekey can be forgiven; the library's is off.
    mbedtls_ssl_conf_dtls_badmac_limit(conf, 0)
    // Renegotiation stays off (mbedTLS 3.6.3–3.6.6 corrupt the heap with it on and a bad-MAC limit).
    mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED)
    mbedtls_ssl_conf_session_tickets(conf, options.sessionTickets ? MBEDTLS_SSL_SESSION_TICKETS_ENABLED
                                                                   : MBEDTLS_SSL_SESSION_TICKETS_DISABLED)
    cookies?.install(on: conf)  // always on for servers
    tickets?.install(on: conf)
  }

  deinit {
    mbedtls_ssl_config_free(conf)
    conf.deallocate()
    suites.deallocate()
  }

  static let cookieLifetimeSeconds: UInt = 60

  /// Our own fingerprint, as peers pin it.
  public var fingerprint: Fingerprint { identity.fingerprint }
}
