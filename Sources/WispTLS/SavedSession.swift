// A client's copy of an established session (master secret, peer certificate, ticket), for
// resumption. Runs on host and device. Holds secrets: in memory, or in a 0600 file of the
// state directory (`serialized`, mbedtls_ssl_session_save's format) for a node link to
// resume after a restart.
import CMbedTLS

public final class SavedSession {
  let session: UnsafeMutablePointer<mbedtls_ssl_session>

  init() {
    session = .allocate(capacity: 1)
    mbedtls_ssl_session_init(session)
  }

  /// Restores a session written by `serialized` (nil if mbedTLS refuses the bytes).
  public convenience init?(serialized bytes: [UInt8]) {
    self.init()
    let r = bytes.withUnsafeBufferPointer { mbedtls_ssl_session_load(session, $0.baseAddress, $0.count) }
    if r != 0 { return nil }
  }

  /// The session in mbedTLS's own serialization (version-checked on load).
  public func serialized() -> [UInt8]? {
    var n = 0
    _ = mbedtls_ssl_session_save(session, nil, 0, &n)
    guard n > 0, n < 1 << 16 else { return nil }
    var out = [UInt8](repeating: 0, count: n)
    let r = out.withUnsafeMutableBufferPointer { mbedtls_ssl_session_save(session, $0.baseAddress, n, &n) }
    return r == 0 ? Array(out[0..<n]) : nil
  }

  deinit {
    mbedtls_ssl_session_free(session)  // zeroises the master secret
    session.deallocate()
  }
}
