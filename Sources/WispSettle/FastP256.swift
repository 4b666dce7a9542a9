// ECDSA P-256 through OpenSSL's libcrypto for settlement (host build only): the same
// `SignatureVerifier` / `MessageSigner` contracts as WispTLS's mbedTLS `P256Verifier` and
// `P256Signer`, about 20 times faster per verification on this machine (Tests/Bench/README.md,
// "Settlement"). A node keeps verifying with mbedTLS; nothing here is in the device binary.
#if !hasFeature(Embedded)
import COpenSSL
import WispCore

/// Verifies with OpenSSL. Not thread-safe: one per thread (it reuses one EC_KEY, and
/// remembers the last key and its fingerprint, since receipts of one payer come together).
public final class FastP256Verifier: SignatureVerifier {
  private let key: UnsafeMutableRawPointer
  private var loaded: [UInt8] = []
  private var loadedOK = false
  private var lastKey: [UInt8] = []
  private var lastFingerprint = Fingerprint.zero

  public init() {
    guard let k = wisp_ossl_key_new() else { fatalError("OpenSSL: out of memory for a P-256 key") }
    key = k
  }
  deinit { wisp_ossl_key_free(key) }

  public static var libraryVersion: String { String(cString: wisp_ossl_version()) }

  /// SHA-256 of the key's DER SubjectPublicKeyInfo (JOURNAL-FORMAT.md, "Fingerprints").
  public func fingerprint(ofKey k: UnsafeRawBufferPointer) -> Fingerprint {
    if k.count == lastKey.count && lastKey.withUnsafeBytes({ $0.elementsEqual(k) }) { return lastFingerprint }
    var spki = FastP256Verifier.spkiPrefix
    spki.append(contentsOf: k)
    var h = [UInt8](repeating: 0, count: 32)
    spki.withUnsafeBytes { s in h.withUnsafeMutableBufferPointer { wisp_ossl_sha256(s.baseAddress, s.count, $0.baseAddress) } }
    lastKey = [UInt8](k)
    lastFingerprint = Fingerprint(bytes: h)
    return lastFingerprint
  }

  static let spkiPrefix: [UInt8] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01,
    0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
  ]

  public func verify(key k: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer,
                     signature: UnsafeRawBufferPointer) -> Bool {
    guard k.count == Receipt.keySize, signature.count >= Receipt.minSignature,
          signature.count <= Receipt.maxSignature, let m = message.baseAddress, let s = signature.baseAddress
    else { return false }
    if !(k.count == loaded.count && loaded.withUnsafeBytes({ $0.elementsEqual(k) })) {
      loaded = [UInt8](k)
      loadedOK = wisp_ossl_key_set_public(key, k.baseAddress!.assumingMemoryBound(to: UInt8.self), k.count) == 1
    }
    guard loadedOK else { return false }
    return wisp_ossl_verify(key, m.assumingMemoryBound(to: UInt8.self), message.count,
                            s.assumingMemoryBound(to: UInt8.self), signature.count) == 1
  }
}

/// A P-256 private key held by OpenSSL (settlement tools and benchmark fixtures).
public final class FastP256Signer: MessageSigner {
  private let key: UnsafeMutableRawPointer
  public let publicKey: [UInt8]

  private init?(owning k: UnsafeMutableRawPointer) {
    var pub = [UInt8](repeating: 0, count: Receipt.keySize)
    guard pub.withUnsafeMutableBufferPointer({ wisp_ossl_key_public(k, $0.baseAddress) }) == 1 else {
      wisp_ossl_key_free(k)
      return nil
    }
    key = k
    publicKey = pub
  }
  deinit { wisp_ossl_key_free(key) }

  /// A new random key.
  public static func generate() -> FastP256Signer? {
    guard let k = wisp_ossl_key_generate() else { return nil }
    return FastP256Signer(owning: k)
  }

  /// From PEM bytes (SEC1 as `wisp keygen` writes, or PKCS#8); nil if not a P-256 private key.
  public static func load(pem: [UInt8]) -> FastP256Signer? {
    guard let k = pem.withUnsafeBufferPointer({ wisp_ossl_key_from_pem($0.baseAddress, $0.count) }) else { return nil }
    return FastP256Signer(owning: k)
  }

  /// SEC1 PEM text (what `wisp keygen` writes as node.key).
  public var pem: [UInt8] {
    var out = [UInt8](repeating: 0, count: 1024)
    let n = out.withUnsafeMutableBufferPointer { wisp_ossl_key_pem(key, $0.baseAddress, $0.count) }
    return n > 0 ? Array(out[0..<Int(n)]) : []
  }

  public func sign(_ message: UnsafeRawBufferPointer) -> [UInt8]? {
    var sig = [UInt8](repeating: 0, count: Receipt.maxSignature)
    let n = sig.withUnsafeMutableBufferPointer { s in
      wisp_ossl_sign(key, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count, s.baseAddress, s.count)
    }
    guard n > 0 else { return nil }
    return Array(sig[0..<Int(n)])
  }
}
#endif
