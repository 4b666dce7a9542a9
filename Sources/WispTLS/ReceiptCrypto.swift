// ECDSA P-256 with SHA-256 for credit receipts and claim files, through mbedTLS.
// Runs on host and device. The C side is a few inline helpers in CMbedTLS/shim.h
// (key generation, PEM/DER parsing, sign, verify against a raw public point).
import CMbedTLS
import WispCore

/// Verifies receipts and claim files: SHA-256 fingerprints, ECDSA P-256 signatures.
public struct P256Verifier: SignatureVerifier, Sendable {
  public init() {}

  /// SHA-256 of the key's DER SubjectPublicKeyInfo — the fingerprint `wisp id` prints, TLS
  /// pins, and `openssl pkey -pubout -outform DER | sha256sum` gives. For P-256 the SPKI is
  /// a fixed 26-byte prefix followed by the 65-byte point a receipt carries.
  public func fingerprint(ofKey key: UnsafeRawBufferPointer) -> Fingerprint {
    var spki = P256Verifier.spkiPrefix
    spki.append(contentsOf: key)
    return Fingerprint(bytes: spki.withUnsafeBytes { TLSLibrary.sha256($0) })
  }

  /// DER: SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused bits) ... }
  static let spkiPrefix: [UInt8] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01,
    0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
  ]

  public func verify(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer,
                     signature: UnsafeRawBufferPointer) -> Bool {
    guard key.count == Receipt.keySize, signature.count >= Receipt.minSignature,
          signature.count <= Receipt.maxSignature else { return false }
    let hash = TLSLibrary.sha256(message)
    let r = hash.withUnsafeBufferPointer { h in
      wisp_p256_verify(key.baseAddress!.assumingMemoryBound(to: UInt8.self), key.count, h.baseAddress!,
                       signature.baseAddress!.assumingMemoryBound(to: UInt8.self), signature.count)
    }
    return r == 0
  }
}

/// A P-256 private key (the node's, or a test client's) that signs SHA-256 digests.
public struct P256Signer: MessageSigner {
  /// The private key as PEM with its terminating NUL (mbedTLS parses it so).
  public let pem: [UInt8]
  public let publicKey: [UInt8]

  /// From a PEM file's bytes (with or without a trailing NUL) or DER.
  public init?(key: [UInt8]) {
    guard case .success(let k) = P256Signer.parse(key) else { return nil }
    self = k
  }

  private init(pem: [UInt8], publicKey: [UInt8]) {
    self.pem = pem
    self.publicKey = publicKey
  }

  /// A P-256 private key from PEM (with or without a trailing NUL) or DER, or the mbedTLS
  /// error saying why the bytes are not one.
  public static func parse(_ key: [UInt8]) -> Result<P256Signer, TLSError> {
    var k = key
    if k.first == 0x2D /* '-' */ && k.last != 0 { k.append(0) }
    var pub = [UInt8](repeating: 0, count: Receipt.keySize)
    let r = k.withUnsafeBufferPointer { kb in
      pub.withUnsafeMutableBufferPointer { wisp_p256_public(kb.baseAddress!, kb.count, $0.baseAddress!) }
    }
    guard r == 0 else { return .failure(.mbedtls("wisp_p256_public", r)) }
    return .success(P256Signer(pem: k, publicKey: pub))
  }

  /// A new random key.
  public static func generate() -> P256Signer? {
    var out = [UInt8](repeating: 0, count: 512)
    let n = out.withUnsafeMutableBufferPointer { wisp_p256_generate_pem($0.baseAddress!, $0.count) }
    guard n > 0 else { return nil }
    return P256Signer(key: Array(out[0..<Int(n)]))
  }

  /// The PEM text without the NUL, for writing to a file.
  public var pemFileBytes: [UInt8] { pem.last == 0 ? Array(pem.dropLast()) : pem }

  public mutating func sign(_ message: UnsafeRawBufferPointer) -> [UInt8]? {
    let hash = TLSLibrary.sha256(message)
    var sig = [UInt8](repeating: 0, count: Receipt.maxSignature)
    let n = pem.withUnsafeBufferPointer { k in
      hash.withUnsafeBufferPointer { h in
        sig.withUnsafeMutableBufferPointer {
          wisp_p256_sign(k.baseAddress!, k.count, h.baseAddress!, $0.baseAddress!, $0.count)
        }
      }
    }
    guard n > 0 else { return nil }
    return Array(sig[0..<Int(n)])
  }
}
