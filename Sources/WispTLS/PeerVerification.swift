// Deciding whether to trust a peer: by the pinned fingerprint of its public key.
// Runs on host and device.
//
// mbedTLS builds and checks the peer's chain against a CA list wisp does not have, then
// calls this for each certificate (deepest first) with the problems it found in `flags`.
// wisp ignores those (no CA, dates meaningless without an RTC) and decides on the leaf
// (depth 0) alone:
//   1. its key must be ECDSA P-256;
//   2. it must be validly self-signed (a damaged or forged certificate is refused even when
//      its key is pinned: it is not what the peer's own tooling produced) — checked for
//      pinned peers and learned servers; a server accepting any client (acceptClients)
//      skips it for unpinned clients, whose CertificateVerify already proves the key;
//   3. the SHA-256 of its DER public key must be pinned — or, for a client in learn mode,
//      it is recorded for the caller to pin.
// Possession of the private key is then proved by the handshake's own signatures.
import CMbedTLS
import WispCore

enum PeerVerification {
  /// `int (*f_vrfy)(void *, mbedtls_x509_crt *, int, uint32_t *)` for `mbedtls_ssl_set_verify`,
  /// with the session as context.
  static let callback: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<mbedtls_x509_crt>?,
                                       Int32, UnsafeMutablePointer<UInt32>?) -> Int32 = { ctx, crt, depth, flags in
    guard let ctx, let crt, let flags else { return MBEDTLS_ERR_X509_BAD_INPUT_DATA }
    let session = Unmanaged<DTLSSession>.fromOpaque(ctx).takeUnretainedValue()
    if depth > 0 {
      flags.pointee = 0  // only the leaf's key matters
      return 0
    }
    switch session.judgePeer(crt) {
    case .accept:
      flags.pointee = 0
    case .refuse(let why):
      session.verifyRefusal = why
      flags.pointee = UInt32(MBEDTLS_X509_BADCERT_NOT_TRUSTED)
    }
    return 0
  }

  enum Verdict {
    case accept
    case refuse(TLSError)
  }

  /// Steps 1–3 above for a leaf certificate. `cache` remembers certificates (by the
  /// SHA-256 of their DER) whose self-signature verified, so a known peer's next full
  /// handshake skips that ECDSA verification (≈ 1.1 ms on x86_64); a resumed session skips
  /// step 2 (its certificate came out of our own sealed ticket).
  static func judge(_ crt: UnsafeMutablePointer<mbedtls_x509_crt>, options: DTLSOptions,
                    cache: VerifiedCertificates?, resumed: Bool = false)
    -> (Verdict, Fingerprint?)
  {
    guard wisp_pk_is_p256(&crt.pointee.pk) != 0 else {
      return (.refuse(.peerCertificateInvalid("key is not ECDSA P-256")), nil)
    }
    guard let fp = try? publicKeyFingerprint(&crt.pointee.pk) else {
      return (.refuse(.peerCertificateInvalid("public key cannot be encoded")), nil)
    }
    let pinned = options.pinned.contains(fp)
    if !pinned && options.acceptClients && options.role == .server {
      // A client of the mesh, not known in advance: its key is what it is, and the handshake's
      // CertificateVerify proves it holds it; the self-signature would prove nothing more.
      return (.accept, fp)
    }
    if !resumed && !isKnownSelfSigned(crt, cache: cache) {
      return (.refuse(.peerCertificateInvalid("not validly self-signed (damaged or forged)")), fp)
    }
    if pinned { return (.accept, fp) }
    if options.learn && options.role == .client { return (.accept, fp) }
    return (.refuse(.peerNotPinned(fp)), fp)
  }

  /// Step 2 through the cache: the same certificate bytes verify the same way, so a hit
  /// needs no ECDSA verification; a certificate that verifies is remembered.
  static func isKnownSelfSigned(_ crt: UnsafeMutablePointer<mbedtls_x509_crt>, cache: VerifiedCertificates?) -> Bool {
    guard let cache else { return isValidlySelfSigned(crt) }
    let digest = VerifiedCertificates.digest(crt.pointee.raw.p, crt.pointee.raw.len)
    if cache.contains(digest) { return true }
    guard isValidlySelfSigned(crt) else { return false }
    cache.insert(digest)
    return true
  }

  /// Whether the certificate's ECDSA signature verifies under its own public key (the
  /// signature is read from the certificate's DER: mbedTLS 3 keeps its parsed fields private).
  static func isValidlySelfSigned(_ crt: UnsafeMutablePointer<mbedtls_x509_crt>) -> Bool {
    wisp_x509_crt_self_signed(crt) == 1
  }
}
