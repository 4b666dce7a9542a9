// Errors of the TLS layer, typed. Runs on host and device.
import CMbedTLS
import WispCore

/// Why an mbedTLS operation or a DTLS session failed.
public enum TLSError: Error {
  /// An mbedTLS function returned a negative code.
  case mbedtls(StaticString, Int32)
  /// The peer's key is not one we pinned.
  case peerNotPinned(Fingerprint)
  /// The peer's certificate is unusable (not P-256, not validly self-signed, absent).
  case peerCertificateInvalid(StaticString)
  /// The handshake's retransmissions ran out (mbedTLS's final timer).
  case handshakeTimeout
  /// No record arrived within the read timeout after the handshake.
  case idleTimeout
  /// The peer sent a fatal alert.
  case peerAlert(StaticString)

  /// One line for logs: plain words first, mbedTLS's own text and code after.
  public var description: String {
    switch self {
    case .mbedtls(let function, let code):
      return "\(function) failed: \(TLSError.explain(code)) (\(TLSError.hexCode(code)))"
    case .peerNotPinned(let fp):
      return "peer key is not pinned: fingerprint \(fp.hex)"
    case .peerCertificateInvalid(let why):
      return "peer certificate refused: \(why)"
    case .handshakeTimeout:
      return "handshake timed out (no answer to retransmissions)"
    case .idleTimeout:
      return "no record from the peer within the read timeout"
    case .peerAlert(let what):
      return "peer refused the handshake: \(what)"
    }
  }

  /// Plain words for the codes a peer can provoke; mbedTLS's text for the rest.
  static func explain(_ code: Int32) -> String {
    switch code {
    case WISP_ERR_SSL_BAD_PROTOCOL_VERSION:
      return "peer does not speak DTLS 1.2 (older versions are refused)"
    case WISP_ERR_SSL_NO_CIPHER_CHOSEN:
      return "no shared cipher suite (only ECDHE-ECDSA with CHACHA20-POLY1305 or AES-128-GCM)"
    case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
      return "peer sent no certificate (mutual authentication is required)"
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
      return "peer certificate not accepted"
    default:
      var buf = [CChar](repeating: 0, count: 128)
      mbedtls_strerror(code, &buf, buf.count)
      return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
  }

  /// "-0x6e80".
  static func hexCode(_ code: Int32) -> String {
    let v = UInt32(code < 0 ? -Int64(code) : Int64(code))
    let bytes: [UInt8] = [UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
    let hex = bytes.withUnsafeBytes { hexString($0) }
    return (code < 0 ? "-0x" : "0x") + hex
  }
}

/// Throws `.mbedtls(function, code)` for a negative result; returns non-negative results.
@inline(__always)
@discardableResult
func check(_ function: StaticString, _ code: Int32) throws(TLSError) -> Int32 {
  if code < 0 { throw TLSError.mbedtls(function, code) }
  return code
}
