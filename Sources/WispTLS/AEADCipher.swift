// One direction of a raw AEAD (ChaCha20-Poly1305 or AES-128-GCM) through mbedTLS's generic
// cipher layer — the same `mbedtls_cipher_auth_{en,de}crypt_ext` calls the DTLS record layer
// makes. Runs on host and device.
//
// Used by `wisp tls-bench` to measure the AEAD ceiling next to the DTLS record path, and the
// shape an "exported per-direction keys" design would take (SESSIONS.md, Measurements).
// Nonces are the caller's: 4 fixed bytes + a 64-bit big-endian counter, never repeated under
// one key.
import CMbedTLS

public enum AEADAlgorithm {
  case chacha20Poly1305, aes128GCM

  public var name: StaticString {
    switch self {
    case .chacha20Poly1305: return "ChaCha20-Poly1305"
    case .aes128GCM: return "AES-128-GCM"
    }
  }

  public var keyBytes: Int {
    switch self {
    case .chacha20Poly1305: return 32
    case .aes128GCM: return 16
    }
  }

  var cipherType: mbedtls_cipher_type_t {
    switch self {
    case .chacha20Poly1305: return MBEDTLS_CIPHER_CHACHA20_POLY1305
    case .aes128GCM: return MBEDTLS_CIPHER_AES_128_GCM
    }
  }
}

public final class AEADCipher {
  public static let nonceBytes = 12
  public static let tagBytes = 16

  public let algorithm: AEADAlgorithm
  let context: UnsafeMutablePointer<mbedtls_cipher_context_t>
  /// 4 fixed bytes then the 8-byte counter.
  let nonce: UnsafeMutablePointer<UInt8>

  /// A sealing (`sealing == true`) or opening context for `key` (`algorithm.keyBytes` long);
  /// `salt` gives the nonce's 4 fixed bytes.
  public init(_ algorithm: AEADAlgorithm, key: [UInt8], salt: UInt32, sealing: Bool) throws(TLSError) {
    precondition(key.count == algorithm.keyBytes, "AEAD key of the wrong length")
    self.algorithm = algorithm
    context = .allocate(capacity: 1)
    mbedtls_cipher_init(context)
    nonce = .allocate(capacity: AEADCipher.nonceBytes)
    for i in 0..<AEADCipher.nonceBytes { nonce[i] = 0 }
    nonce[0] = UInt8(salt >> 24); nonce[1] = UInt8(salt >> 16 & 0xff)
    nonce[2] = UInt8(salt >> 8 & 0xff); nonce[3] = UInt8(salt & 0xff)
    // Fully initialised: a throw below runs deinit.
    try check("mbedtls_cipher_setup", mbedtls_cipher_setup(context, mbedtls_cipher_info_from_type(algorithm.cipherType)))
    try check("mbedtls_cipher_setkey",
              key.withUnsafeBufferPointer {
                mbedtls_cipher_setkey(context, $0.baseAddress, Int32(key.count * 8), sealing ? MBEDTLS_ENCRYPT : MBEDTLS_DECRYPT)
              })
  }

  deinit {
    mbedtls_cipher_free(context)  // zeroises the key schedule
    context.deallocate()
    nonce.deallocate()
  }

  func setCounter(_ counter: UInt64) {
    for i in 0..<8 { nonce[4 + i] = UInt8(truncatingIfNeeded: counter >> UInt64(56 - 8 * i)) }
  }

  /// Seals `plaintext` under nonce `counter`: ciphertext then the 16-byte tag into `out`
  /// (room for `plaintext.count + tagBytes`). Returns the bytes written, or -1.
  public func seal(counter: UInt64, aad: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer,
                   into out: UnsafeMutableRawBufferPointer) -> Int {
    setCounter(counter)
    var written = 0
    let r = mbedtls_cipher_auth_encrypt_ext(
      context, nonce, AEADCipher.nonceBytes,
      aad.baseAddress?.assumingMemoryBound(to: UInt8.self), aad.count,
      plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), plaintext.count,
      out.baseAddress?.assumingMemoryBound(to: UInt8.self), out.count, &written, AEADCipher.tagBytes)
    return r == 0 ? written : -1
  }

  /// Opens ciphertext+tag sealed under nonce `counter` into `out` (room for
  /// `sealed.count - tagBytes`). Returns the plaintext length, or -1 if not authentic.
  public func open(counter: UInt64, aad: UnsafeRawBufferPointer, sealed: UnsafeRawBufferPointer,
                   into out: UnsafeMutableRawBufferPointer) -> Int {
    setCounter(counter)
    var written = 0
    let r = mbedtls_cipher_auth_decrypt_ext(
      context, nonce, AEADCipher.nonceBytes,
      aad.baseAddress?.assumingMemoryBound(to: UInt8.self), aad.count,
      sealed.baseAddress?.assumingMemoryBound(to: UInt8.self), sealed.count,
      out.baseAddress?.assumingMemoryBound(to: UInt8.self), out.count, &written, AEADCipher.tagBytes)
    return r == 0 ? written : -1
  }
}

extension DTLSSession {
  /// Bytes a record adds to its payload (header, explicit nonce, tag) with the current suite.
  public var recordExpansion: Int { Int(mbedtls_ssl_get_record_expansion(ssl)) }
}
