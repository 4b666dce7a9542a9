// The node's identity: an ECDSA P-256 key and a self-signed X.509 certificate for it.
// Runs on host and device.
//
// Peers trust a node by pinning the SHA-256 of its public key (`fingerprint`), not by a
// CA and not by names, so the certificate carries no meaning beyond "this key, signed by
// itself": it is derived from the key and re-made whenever it is missing or does not
// match. Validity dates are wide (2024–2099) and ignored by wisp peers, because boards
// without a real-time clock boot in 1970.
import CMbedTLS
import WispCore
import WispOS

/// Why the node identity could not be loaded, created or replaced.
public enum IdentityError: Error {
  /// A file could not be read or written.
  case io(String, Errno)
  /// The key file is readable or writable by group or others (path, mode).
  case permissions(String, UInt32)
  /// The key file is not a PEM/DER private key mbedTLS can parse (path, mbedTLS code).
  case corruptKey(String, Int32)
  /// The key parses but is not ECDSA on P-256.
  case notP256(String)
  /// `keygen` without `--force` and a key already exists.
  case exists(String)
  /// Key generation or signing failed inside mbedTLS.
  case crypto(TLSError)

  public var description: String {
    switch self {
    case .io(let path, let e): return "\(path): \(e.description)"
    case .permissions(let path, let mode):
      return "\(path): permissions \(octal(mode)) let others read the key; run 'chmod 600 \(path)'"
    case .corruptKey(let path, let code):
      return "\(path): not a usable private key (\(TLSError.explain(code)), \(TLSError.hexCode(code)))"
    case .notP256(let path): return "\(path): the key is not ECDSA P-256"
    case .exists(let path): return "\(path) exists: keeping it (use --force to replace it; a backup is kept)"
    case .crypto(let e): return e.description
    }
  }
}

func octal(_ v: UInt32) -> String {
  var digits: [UInt8] = []
  var v = v
  repeat { digits.append(UInt8(48 + v % 8)); v /= 8 } while v > 0
  while digits.count < 4 { digits.append(48) }
  return String(decoding: digits.reversed(), as: UTF8.self)
}

public final class Identity {
  let key: UnsafeMutablePointer<mbedtls_pk_context>
  /// Our certificate, parsed, for `mbedtls_ssl_conf_own_cert`.
  let certificate: UnsafeMutablePointer<mbedtls_x509_crt>
  /// SHA-256 of the DER public key: what peers pin.
  public let fingerprint: Fingerprint
  /// The certificate in PEM (no trailing NUL).
  public let certificatePEM: [UInt8]
  /// Whether `certificatePEM` was made now (missing or not matching the key) and should be stored.
  public let certificateIsNew: Bool

  /// Loads a private key (PEM or DER) and its certificate; makes a new certificate
  /// when `certificatePEM` is nil, unparsable, or for another key. `path` names the key in errors.
  public init(keyPEM: [UInt8], certificatePEM: [UInt8]?, path: String, random: RandomGenerator) throws(IdentityError) {
    let key = UnsafeMutablePointer<mbedtls_pk_context>.allocate(capacity: 1)
    let crt = UnsafeMutablePointer<mbedtls_x509_crt>.allocate(capacity: 1)
    mbedtls_pk_init(key)
    mbedtls_x509_crt_init(crt)
    var done = false
    defer {
      if !done {
        mbedtls_x509_crt_free(crt); mbedtls_pk_free(key)
        crt.deallocate(); key.deallocate()
      }
    }
    // mbedTLS wants PEM NUL-terminated, with the NUL counted.
    var input = keyPEM
    if input.last != 0 && input.first == 45 { input.append(0) }  // '-': PEM
    let r = input.withUnsafeBufferPointer { wisp_pk_parse_key(key, $0.baseAddress, $0.count, mbedtls_ctr_drbg_random, random.context) }
    for i in 0..<input.count { input[i] = 0 }
    if r != 0 { throw IdentityError.corruptKey(path, r) }
    guard wisp_pk_is_p256(key) != 0 else {
      throw IdentityError.notP256(path)
    }
    let fp: Fingerprint
    do { fp = try publicKeyFingerprint(key) } catch { throw IdentityError.crypto(error) }

    var pem: [UInt8] = []
    var isNew = false
    if let given = certificatePEM, Identity.parse(given, into: crt), Identity.certificate(crt, matches: fp) {
      pem = given
    } else {
      mbedtls_x509_crt_free(crt)
      mbedtls_x509_crt_init(crt)
      pem = try Identity.makeCertificatePEM(key: key, fingerprint: fp, random: random)
      guard Identity.parse(pem, into: crt) else {
        throw IdentityError.crypto(.peerCertificateInvalid("own certificate does not parse"))
      }
      isNew = true
    }
    self.key = key
    self.certificate = crt
    self.fingerprint = fp
    self.certificatePEM = pem
    self.certificateIsNew = isNew
    done = true
  }

  static func parse(_ pem: [UInt8], into crt: UnsafeMutablePointer<mbedtls_x509_crt>) -> Bool {
    var input = pem
    if input.last != 0 { input.append(0) }
    return input.withUnsafeBufferPointer { mbedtls_x509_crt_parse(crt, $0.baseAddress, $0.count) } == 0
  }

  static func certificate(_ crt: UnsafeMutablePointer<mbedtls_x509_crt>, matches fp: Fingerprint) -> Bool {
    guard let other = try? publicKeyFingerprint(&crt.pointee.pk) else { return false }
    return other == fp
  }

  /// A self-signed X.509 v3 certificate for `key`: subject and issuer "CN=wisp-<first 16 hex
  /// digits of the fingerprint>", random 127-bit serial, SHA-256 ECDSA signature.
  static func makeCertificatePEM(key: UnsafeMutablePointer<mbedtls_pk_context>, fingerprint: Fingerprint,
                                 random: RandomGenerator) throws(IdentityError) -> [UInt8] {
    var w = mbedtls_x509write_cert()
    mbedtls_x509write_crt_init(&w)
    defer { mbedtls_x509write_crt_free(&w) }
    do {
      var serialBytes = [UInt8](repeating: 0, count: 16)
      try check("mbedtls_ctr_drbg_random", mbedtls_ctr_drbg_random(random.context, &serialBytes, serialBytes.count))
      serialBytes[0] = serialBytes[0] & 0x7f | 0x40  // positive, 16 bytes
      let name = Array(("CN=wisp-" + String(fingerprint.hex.utf8.prefix(16))!).utf8CString)
      mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3)
      mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256)
      mbedtls_x509write_crt_set_subject_key(&w, key)
      mbedtls_x509write_crt_set_issuer_key(&w, key)
      try check("mbedtls_x509write_crt_set_serial", wisp_x509write_crt_set_serial(&w, &serialBytes, serialBytes.count))
      try check("mbedtls_x509write_crt_set_subject_name", mbedtls_x509write_crt_set_subject_name(&w, name))
      try check("mbedtls_x509write_crt_set_issuer_name", mbedtls_x509write_crt_set_issuer_name(&w, name))
      let notBefore = Array("20240101000000".utf8CString)
      let notAfter = Array("20991231235959".utf8CString)
      try check("mbedtls_x509write_crt_set_validity", mbedtls_x509write_crt_set_validity(&w, notBefore, notAfter))
      try check("mbedtls_x509write_crt_set_basic_constraints", mbedtls_x509write_crt_set_basic_constraints(&w, 0, -1))
      var pem = [UInt8](repeating: 0, count: 2048)
      try check("mbedtls_x509write_crt_pem",
                mbedtls_x509write_crt_pem(&w, &pem, pem.count, mbedtls_ctr_drbg_random, random.context))
      return Array(pem[0..<(pem.firstIndex(of: 0) ?? pem.count)])
    } catch {
      throw IdentityError.crypto(error)
    }
  }

  deinit {
    mbedtls_x509_crt_free(certificate)
    mbedtls_pk_free(key)
    certificate.deallocate()
    key.deallocate()
  }

  /// A new P-256 private key, PEM encoded (no trailing NUL).
  public static func generateKeyPEM(random: RandomGenerator) throws(IdentityError) -> [UInt8] {
    var pk = mbedtls_pk_context()
    mbedtls_pk_init(&pk)
    defer { mbedtls_pk_free(&pk) }
    do {
      try check("mbedtls_pk_setup", mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)))
      try check("mbedtls_ecp_gen_key",
                mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), mbedtls_ctr_drbg_random, random.context))
      var pem = [UInt8](repeating: 0, count: 1024)
      try check("mbedtls_pk_write_key_pem", mbedtls_pk_write_key_pem(&pk, &pem, pem.count))
      let n = pem.firstIndex(of: 0) ?? pem.count
      let out = Array(pem[0..<n])
      for i in 0..<pem.count { pem[i] = 0 }  // the private key does not linger on the heap
      return out
    } catch {
      throw IdentityError.crypto(error)
    }
  }
}
