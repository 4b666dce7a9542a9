// A client's copy of an established session (master secret, peer certificate, ticket), for
// resumption. Runs on host and device. Holds secrets: keep it in memory only.
import CMbedTLS

public final class SavedSession {
  let session: UnsafeMutablePointer<mbedtls_ssl_session>

  init() {
    session = .allocate(capacity: 1)
    mbedtls_ssl_session_init(session)
  }

  deinit {
    mbedtls_ssl_session_free(session)  // zeroises the master secret
    session.deallocate()
  }
}
