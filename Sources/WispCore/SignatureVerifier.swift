// The signature scheme behind receipts and claim files, as two small protocols.
// Runs on host and device. WispCore never calls a crypto library: the real
// implementation (ECDSA P-256 with SHA-256, mbedTLS) is `ReceiptCrypto` in WispTLS;
// tests use a deterministic fake.

/// Checks signatures and computes key fingerprints.
public protocol SignatureVerifier {
  /// SHA-256 of a public key's encoding (its fingerprint).
  func fingerprint(ofKey key: UnsafeRawBufferPointer) -> Fingerprint
  /// Whether `signature` (DER ECDSA) is valid for `message` under `key`
  /// (a 65-byte uncompressed P-256 point). The message is hashed with SHA-256 inside.
  func verify(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer,
              signature: UnsafeRawBufferPointer) -> Bool
}

/// Holds a private key and signs with it.
public protocol MessageSigner {
  /// The public key as a 65-byte uncompressed P-256 point.
  var publicKey: [UInt8] { get }
  /// A DER signature (≤ 72 bytes) over SHA-256(message), or nil if signing failed.
  mutating func sign(_ message: UnsafeRawBufferPointer) -> [UInt8]?
}

extension SignatureVerifier {
  public func fingerprint(ofKey key: [UInt8]) -> Fingerprint {
    key.withUnsafeBytes { fingerprint(ofKey: $0) }
  }

  public func verify(key: [UInt8], message: [UInt8], signature: [UInt8]) -> Bool {
    key.withUnsafeBytes { k in
      message.withUnsafeBytes { m in signature.withUnsafeBytes { s in verify(key: k, message: m, signature: s) } }
    }
  }
}

extension MessageSigner {
  public mutating func sign(_ message: [UInt8]) -> [UInt8]? {
    message.withUnsafeBytes { sign($0) }
  }
}
