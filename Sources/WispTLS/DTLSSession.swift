// One DTLS 1.2 session with one peer, over datagrams the caller carries. Runs on host and device.
//
// The node's single UDP socket is shared with wisp frames, so mbedTLS owns no socket:
//   1. the event loop hands each DTLS datagram from this peer to `receive(_:)` (queued,
//      at most `inboxLimit`; more are dropped and counted, as the network would);
//   2. it calls `step()`, which drives the handshake and then reads records, passing each
//      record's plaintext to `deliver`;
//   3. every datagram mbedTLS writes goes out through `send` (a datagram lost there is
//      recovered by DTLS retransmission like any other loss);
//   4. mbedTLS's timers run on the caller's monotonic clock: the loop wakes at `deadlineNs`
//      and calls `handleTimeout()` (retransmit a flight, or fail an idle session).
// No threads, no sleeping, no blocking. A session may move between threads once: the
// session table's handshake worker runs the handshake (`phase = .handshakeOnly`) and hands
// the established session to the forwarding thread, which `adopt`s it (`.recordsOnly`).
// One thread at a time: mbedTLS contexts are not thread-bound, but never shared.
import CMbedTLS
import WispCore

public final class DTLSSession {
  public enum State: Equatable {
    case handshaking, established, closed, failed
  }

  /// Datagrams queued before `step()` consumes them.
  public static let inboxLimit = 16
  /// Plaintext bytes read per call; a larger record arrives in several `deliver` calls.
  static let readChunk = 2048

  let config: DTLSConfig
  let ssl: UnsafeMutablePointer<mbedtls_ssl_context>
  let transportID: [UInt8]
  var now: () -> UInt64
  var send: (UnsafeRawBufferPointer) -> Bool
  var deliver: (UnsafeRawBufferPointer) -> Void

  /// Which part of a session's life `step()` runs (SessionTable's handshake worker).
  public enum Phase {
    /// Handshake and records (a session owned by one thread for its whole life).
    case whole
    /// The handshake only: `step()` stops once established, records stay unread.
    case handshakeOnly
    /// Records only: a handshake the peer starts inside the session (a reconnection from
    /// the same port) ends it instead of running here.
    case recordsOnly
  }
  public var phase = Phase.whole
  let readBuffer: UnsafeMutableRawBufferPointer
  var inbox: [[UInt8]] = []
  /// A datagram lent by `input(_:)` for the duration of one `step()`: no copy, no queue.
  var lent: UnsafeRawBufferPointer? = nil

  // mbedTLS's timer: started at `timerStartNs`, intermediate and final delays in ms (0 = off).
  var timerStartNs: UInt64 = 0
  var timerIntermediateMs: UInt32 = 0
  var timerFinalMs: UInt32 = 0

  public private(set) var state: State = .handshaking
  /// Why the session failed (`state == .failed`).
  public private(set) var failure: TLSError?
  /// The peer's key fingerprint, once its certificate was seen.
  public private(set) var peerFingerprint: Fingerprint?
  /// The description of the last unencrypted alert record (epoch 0) the peer sent: the alert
  /// named in errors when the library does not expose the one it received (mbedTLS 3).
  var lastPlainAlert: UInt8? = nil
  /// Set by the verify callback when it refuses the peer.
  var verifyRefusal: TLSError?
  /// Whether the peer ended the session with close_notify.
  public private(set) var closedByPeer = false
  /// Whether the handshake resumed an earlier session (ticket) instead of a full key exchange.
  public private(set) var resumed = false
  /// Counters for status and tests.
  public private(set) var helloVerifyRequests = 0
  public private(set) var droppedInbound = 0
  public private(set) var sendFailures = 0
  /// Application bytes carried each way (plaintext), for rekeying and status.
  public private(set) var bytesIn: UInt64 = 0
  public private(set) var bytesOut: UInt64 = 0
  /// When the session was created and when it became established (monotonic ns).
  public let createdNs: UInt64
  public private(set) var establishedNs: UInt64 = 0

  /// A session with the peer at `peerIP:peerPort` (host byte order). For a server the address
  /// is what HelloVerifyRequest cookies are bound to.
  public init(config: DTLSConfig, peerIP: UInt32, peerPort: UInt16,
              now: @escaping () -> UInt64,
              send: @escaping (UnsafeRawBufferPointer) -> Bool,
              deliver: @escaping (UnsafeRawBufferPointer) -> Void) throws(TLSError) {
    self.config = config
    self.transportID = Cookies.transportID(ip: peerIP, port: peerPort)
    self.now = now
    self.send = send
    self.deliver = deliver
    createdNs = now()
    ssl = .allocate(capacity: 1)
    mbedtls_ssl_init(ssl)
    readBuffer = .allocate(byteCount: DTLSSession.readChunk, alignment: 8)
    try check("mbedtls_ssl_setup", mbedtls_ssl_setup(ssl, config.conf))
    let me = Unmanaged.passUnretained(self).toOpaque()
    mbedtls_ssl_set_bio(ssl, me, DTLSSession.sendCallback, DTLSSession.receiveCallback, nil)
    mbedtls_ssl_set_timer_cb(ssl, me, DTLSSession.setTimerCallback, DTLSSession.getTimerCallback)
    mbedtls_ssl_set_verify(ssl, PeerVerification.callback, me)
    mbedtls_ssl_set_mtu(ssl, config.options.mtu)
    // The server is judged by its pinned key, never by name (mbedTLS 3.6.3+ insists on being told).
    if config.options.role == .client { try check("mbedtls_ssl_set_hostname", wisp_ssl_client_no_hostname(ssl)) }
    try bindTransportID()
  }

  deinit {
    mbedtls_ssl_free(ssl)
    ssl.deallocate()
    readBuffer.deallocate()
  }

  // MARK: - Driving

  /// Queues one datagram from the peer; `step()` consumes it.
  public func receive(_ datagram: UnsafeRawBufferPointer) {
    if inbox.count >= DTLSSession.inboxLimit { droppedInbound += 1; return }
    inbox.append(Array(datagram))
  }

  /// Hands one datagram to the session and advances it, without copying the datagram
  /// anywhere but into mbedTLS's own input buffer (the relay loop's path). Datagrams
  /// queued by `receive(_:)` are consumed first.
  public func input(_ datagram: UnsafeRawBufferPointer) {
    let before = bytesIn
    let wasEstablished = state == .established
    lent = datagram
    step()
    if lent != nil { lent = nil; if state == .established { droppedInbound += 1 } }
    // Application data that opened nothing: if its record fails authentication under this
    // session's keys, it counts against the bad-MAC limit (mbedTLS drops such records silently).
    if wasEstablished && state == .established && bytesIn == before && datagram.first == 23,
       wisp_ssl_record_bad_mac(ssl, datagram.baseAddress!.assumingMemoryBound(to: UInt8.self), datagram.count) == 1 {
      badRecords &+= 1
      if badRecords >= DTLSSession.badRecordLimit { fail(.mbedtls("mbedtls_ssl_read", MBEDTLS_ERR_SSL_INVALID_MAC)) }
    }
  }

  /// Records with a bad MAC this session was handed through `input(_:)` and mbedTLS dropped,
  /// less those forgiven. Counted here, not by mbedTLS: its counter is private in mbedTLS 3
  /// (and shares a field with handshake state from 3.6.3).
  public private(set) var badRecords: UInt32 = 0
  /// The session fails when `badRecords` reaches this (mbedTLS 2.28's `badmac_limit` before).
  public static let badRecordLimit: UInt32 = 16

  /// Forgives `n` bad records (a record tried on the wrong one of two sessions during a
  /// rekey is not an attack on this one).
  public func forgiveBadRecords(_ n: UInt32) {
    badRecords = badRecords >= n ? badRecords - n : 0
  }

  /// Advances the session as far as the queued datagrams allow.
  public func step() {
    while true {
      switch state {
      case .handshaking:
        if phase == .recordsOnly {
          fail(.mbedtls("mbedtls_ssl_read", MBEDTLS_ERR_SSL_CLIENT_RECONNECT))
          return
        }
        let r = mbedtls_ssl_handshake(ssl)
        if r == 0 {
          resumed = peerFingerprint == nil  // a full handshake always ran the verify callback
          if let refusal = checkResumedPeer() { fail(refusal); return }
          state = .established
          establishedNs = now()
          if phase == .handshakeOnly { return }
          continue
        }
        if r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE { return }
        if r == MBEDTLS_ERR_SSL_HELLO_VERIFY_REQUIRED {
          // Server: a cookie was sent; start over statelessly, keeping only the address.
          helloVerifyRequests += 1
          if mbedtls_ssl_session_reset(ssl) != 0 { fail(.mbedtls("mbedtls_ssl_session_reset", r)); return }
          do { try bindTransportID() } catch { fail(error); return }
          continue
        }
        fail(handshakeError(r))
        return
      case .established:
        let n = mbedtls_ssl_read(ssl, readBuffer.baseAddress!.assumingMemoryBound(to: UInt8.self), readBuffer.count)
        if n > 0 {
          bytesIn &+= UInt64(n)
          deliver(UnsafeRawBufferPointer(rebasing: readBuffer[0..<Int(n)]))
          continue
        }
        if n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE { return }
        if n == 0 || n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY {
          closedByPeer = true
          state = .closed
          return
        }
        if n == MBEDTLS_ERR_SSL_CLIENT_RECONNECT {
          state = .handshaking  // the peer restarted from the same port; mbedTLS reset itself
          continue
        }
        fail(n == MBEDTLS_ERR_SSL_TIMEOUT ? .idleTimeout : .mbedtls("mbedtls_ssl_read", n))
        return
      case .closed, .failed:
        return
      }
    }
  }

  /// Takes over an established session from the thread that ran its handshake: from now
  /// on its clock, its datagrams out and its plaintext are this thread's (`.recordsOnly`).
  /// Records left in mbedTLS's buffer after the handshake are read by the next `step()`.
  public func adopt(now: @escaping () -> UInt64, send: @escaping (UnsafeRawBufferPointer) -> Bool,
                    deliver: @escaping (UnsafeRawBufferPointer) -> Void) {
    self.now = now
    self.send = send
    self.deliver = deliver
    phase = .recordsOnly
    establishedNs = now()  // on the adopting thread's clock (rekey age, status)
  }

  /// Called by the event loop once `deadlineNs` has passed.
  public func handleTimeout() { step() }

  /// When the loop must call `handleTimeout()` (monotonic ns), or nil when no timer runs.
  public var deadlineNs: UInt64? {
    if timerFinalMs == 0 || state == .closed || state == .failed { return nil }
    return timerStartNs + UInt64(timerFinalMs) * 1_000_000
  }

  /// Sends one record of application data (at most the record payload room of the MTU).
  public func write(_ data: UnsafeRawBufferPointer) throws(TLSError) {
    precondition(state == .established, "write before the handshake completed")
    guard let base = data.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
    let r = mbedtls_ssl_write(ssl, base, data.count)
    if r < 0 { throw TLSError.mbedtls("mbedtls_ssl_write", r) }
    bytesOut &+= UInt64(data.count)
  }

  /// Sends `bytes` as one record.
  public func write(_ bytes: [UInt8]) throws(TLSError) {
    precondition(state == .established, "write before the handshake completed")
    let r = bytes.withUnsafeBufferPointer { mbedtls_ssl_write(ssl, $0.baseAddress, $0.count) }
    if r < 0 { throw TLSError.mbedtls("mbedtls_ssl_write", r) }
    bytesOut &+= UInt64(bytes.count)
  }

  /// Sends close_notify (if the session is up) and ends the session.
  public func close() {
    if state == .established { _ = mbedtls_ssl_close_notify(ssl) }
    if state != .failed { state = .closed }
  }

  /// "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256" once established.
  public var cipherSuite: String {
    guard let p = mbedtls_ssl_get_ciphersuite(ssl) else { return "none" }
    return String(cString: p)
  }

  /// "DTLSv1.2".
  public var protocolVersion: String { String(cString: mbedtls_ssl_get_version(ssl)) }

  /// Client: the established session's parameters and ticket, to resume with later
  /// (`resume(_:)` on a new session to the same server, before its first `step()`).
  public func savedSession() -> SavedSession? {
    guard state == .established, config.options.role == .client else { return nil }
    // mbedTLS 3 exports a connection's session once (a second mbedtls_ssl_get_session fails
    // with FEATURE_UNAVAILABLE), and a rekey asks again after the link was remembered: the
    // first copy is kept. Its ticket does not change while the session lives (no renegotiation).
    if let exported { return exported }
    let saved = SavedSession()
    guard mbedtls_ssl_get_session(ssl, saved.session) == 0 else { return nil }
    exported = saved
    return saved
  }
  var exported: SavedSession? = nil

  /// Client: offers `saved` (its ticket) in the first ClientHello. The server falls back to a
  /// full handshake if it cannot use it; the peer is judged against the pins either way.
  public func resume(_ saved: SavedSession) throws(TLSError) {
    precondition(config.options.role == .client, "only clients resume")
    try check("mbedtls_ssl_set_session", mbedtls_ssl_set_session(ssl, saved.session))
  }

  // MARK: - Internals

  func bindTransportID() throws(TLSError) {
    guard config.options.role == .server else { return }
    try check("mbedtls_ssl_set_client_transport_id",
              transportID.withUnsafeBufferPointer { mbedtls_ssl_set_client_transport_id(ssl, $0.baseAddress, $0.count) })
  }

  /// Ends a handshake that took too long (the table's half-open limit).
  func failByTimeout() { if state == .handshaking { fail(.handshakeTimeout) } }

  func fail(_ error: TLSError) {
    failure = error
    state = .failed
  }

  /// Called from the verify callback for the peer's leaf certificate (and for the
  /// remembered one after a resumption, `resumed`).
  func judgePeer(_ crt: UnsafeMutablePointer<mbedtls_x509_crt>, resumed: Bool = false) -> PeerVerification.Verdict {
    let (verdict, fp) = PeerVerification.judge(crt, options: config.options,
                                               cache: config.options.cacheVerifiedPeers ? config.verified : nil,
                                               resumed: resumed)
    peerFingerprint = fp
    return verdict
  }

  /// A resumed session skips certificate verification: check the remembered peer again
  /// against the current pins. Its signature is not verified again: the certificate came
  /// out of a ticket sealed with our own ticket key, and was fully judged when issued.
  func checkResumedPeer() -> TLSError? {
    if peerFingerprint != nil { return nil }
    guard let crt = mbedtls_ssl_get_peer_cert(ssl) else { return .peerCertificateInvalid("no peer certificate") }
    switch judgePeer(UnsafeMutablePointer(mutating: crt), resumed: true) {
    case .accept: return nil
    case .refuse(let why): return why
    }
  }

  func handshakeError(_ r: Int32) -> TLSError {
    if let refusal = verifyRefusal { return refusal }
    if r == MBEDTLS_ERR_SSL_TIMEOUT { return .handshakeTimeout }
    if r == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE {
      let code = wisp_ssl_received_alert(ssl)
      if code >= 0 { return .peerAlert(DTLSSession.alertName(UInt8(truncatingIfNeeded: code))) }
      if let seen = lastPlainAlert { return .peerAlert(DTLSSession.alertName(seen)) }
      return .peerAlert(DTLSSession.alertName(0))
    }
    return .mbedtls("mbedtls_ssl_handshake", r)
  }

  static func alertName(_ code: UInt8) -> StaticString {
    switch code {
    case 40: return "alert handshake_failure (no common cipher suite or parameters)"
    case 42: return "alert bad_certificate"
    case 43: return "alert unsupported_certificate"
    case 46: return "alert certificate_unknown"
    case 47: return "alert illegal_parameter"
    case 48: return "alert unknown_ca (our certificate is not trusted)"
    case 51: return "alert decrypt_error"
    case 70: return "alert protocol_version (no common DTLS version)"
    case 71: return "alert insufficient_security"
    case 80: return "alert internal_error"
    default: return "fatal alert"
    }
  }

  // MARK: - Callbacks (capture-free; the session comes through the context pointer)

  static let sendCallback: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<UInt8>?, Int) -> Int32 = {
    ctx, buf, len in
    let s = Unmanaged<DTLSSession>.fromOpaque(ctx!).takeUnretainedValue()
    if !s.send(UnsafeRawBufferPointer(start: buf, count: len)) { s.sendFailures += 1 }
    return Int32(len)  // a datagram refused by the kernel counts as lost on the wire
  }

  static let receiveCallback: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int) -> Int32 = {
    ctx, buf, len in
    let s = Unmanaged<DTLSSession>.fromOpaque(ctx!).takeUnretainedValue()
    if s.inbox.isEmpty, let d = s.lent {
      s.lent = nil
      s.notePlainAlert(d)
      if d.count > len { s.droppedInbound += 1; return MBEDTLS_ERR_SSL_WANT_READ }
      UnsafeMutableRawPointer(buf!).copyMemory(from: d.baseAddress!, byteCount: d.count)
      return Int32(d.count)
    }
    while !s.inbox.isEmpty {
      let d = s.inbox.removeFirst()
      if d.count > len { s.droppedInbound += 1; continue }
      d.withUnsafeBytes { s.notePlainAlert($0) }
      d.withUnsafeBytes { UnsafeMutableRawPointer(buf!).copyMemory(from: $0.baseAddress!, byteCount: d.count) }
      return Int32(d.count)
    }
    return MBEDTLS_ERR_SSL_WANT_READ
  }

  /// DTLS record header: type (21 = alert), version, epoch (2 bytes), sequence (6), length
  /// (2), then level and description. Only epoch 0 (before encryption) is readable here.
  func notePlainAlert(_ d: UnsafeRawBufferPointer) {
    if state != .handshaking || d.count < 15 || d[0] != 21 || d[3] != 0 || d[4] != 0 { return }
    lastPlainAlert = d[14]
  }

  static let setTimerCallback: @convention(c) (UnsafeMutableRawPointer?, UInt32, UInt32) -> Void = {
    ctx, intermediate, final in
    let s = Unmanaged<DTLSSession>.fromOpaque(ctx!).takeUnretainedValue()
    s.timerStartNs = s.now()
    s.timerIntermediateMs = intermediate
    s.timerFinalMs = final
  }

  /// -1 cancelled, 0 running, 1 intermediate delay passed, 2 final delay passed.
  static let getTimerCallback: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { ctx in
    let s = Unmanaged<DTLSSession>.fromOpaque(ctx!).takeUnretainedValue()
    if s.timerFinalMs == 0 { return -1 }
    let elapsedMs = (s.now() &- s.timerStartNs) / 1_000_000
    if elapsedMs >= UInt64(s.timerFinalMs) { return 2 }
    if elapsedMs >= UInt64(s.timerIntermediateMs) { return 1 }
    return 0
  }
}
