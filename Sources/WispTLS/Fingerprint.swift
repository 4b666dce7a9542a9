// A peer identity as pinned: SHA-256 of the DER SubjectPublicKeyInfo. Runs on host and device.
//
// The same value as `openssl pkey -in KEY -pubout -outform DER | sha256sum`.
import CMbedTLS
import WispCore

public struct Fingerprint: Equatable {
  /// 32 bytes.
  public let bytes: [UInt8]

  public init(bytes: [UInt8]) {
    precondition(bytes.count == 32, "a fingerprint is 32 bytes")
    self.bytes = bytes
  }

  /// Parses 64 hex digits (either case; ':' separators are skipped).
  public init?(hex: String) {
    guard let out = bytesFromHex(hex.utf8), out.count == 32 else { return nil }
    bytes = out
  }

  /// Lower-case hex, 64 digits.
  public var hex: String { bytes.withUnsafeBytes { hexString($0) } }

  /// The fingerprint of a public (or private) key held by mbedTLS.
  static func of(_ pk: UnsafeMutablePointer<mbedtls_pk_context>) throws(TLSError) -> Fingerprint {
    var der = [UInt8](repeating: 0, count: 256)
    // Writes at the end of the buffer and returns the length.
    let n = Int(try check("mbedtls_pk_write_pubkey_der", mbedtls_pk_write_pubkey_der(pk, &der, der.count)))
    let spki = der.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[(der.count - n)...]) }
    return Fingerprint(bytes: TLSLibrary.sha256(spki))
  }
}
