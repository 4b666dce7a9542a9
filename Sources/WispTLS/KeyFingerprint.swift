// The fingerprint of a key mbedTLS holds (the node's own key, a peer certificate's key).
// Runs on host and device. The type is WispCore's `Fingerprint`; only the hashing needs
// mbedTLS, so it lives here.
import CMbedTLS
import WispCore

/// SHA-256 of the key's DER SubjectPublicKeyInfo (`openssl pkey -pubout -outform DER | sha256sum`).
func publicKeyFingerprint(_ pk: UnsafeMutablePointer<mbedtls_pk_context>) throws(TLSError) -> Fingerprint {
  var der = [UInt8](repeating: 0, count: 256)
  // Writes at the end of the buffer and returns the length.
  let n = Int(try check("mbedtls_pk_write_pubkey_der", mbedtls_pk_write_pubkey_der(pk, &der, der.count)))
  let spki = der.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[(der.count - n)...]) }
  return Fingerprint(bytes: TLSLibrary.sha256(spki))
}
