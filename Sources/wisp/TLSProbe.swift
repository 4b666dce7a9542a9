// `wisp tls-probe`: one DTLS 1.2 session over a real UDP socket, to test wisp against
// independent peers (openssl s_client / s_server). A developer tool: in the host build only
// (DeveloperTools.swift), not in the device binary.
//
//   server: answer the first DTLS datagram's sender, echo each line it sends, then close_notify
//   client: connect, send --message, print the first reply, then close_notify
//
// Exit status: 0 the exchange completed, 1 refused / failed / timed out, 2 bad command line.
#if !hasFeature(Embedded)
import WispCore
import WispNode
import WispClient
import WispOS
import WispTLS

/// Records the session hands over; drained by the probe loop.
final class ProbeInbox {
  var records: [[UInt8]] = []
}

enum TLSProbe {
  static func main(_ inv: Invocation) -> Int32 {
    // Command line.
    let role: DTLSRole
    guard let r = inv.value("--role"), r.is("server") || r.is("client") else {
      return usage("--role must be server or client")
    }
    role = r.is("server") ? .server : .client
    let addressOption: StaticString = role == .server ? "--listen" : "--connect"
    guard let text = inv.value(addressOption), let address = Endpoint(text) else {
      return usage(role == .server ? "--listen ADDR:PORT is required" : "--connect ADDR:PORT is required")
    }
    var pins: [Fingerprint] = []
    for hex in inv.values("--pin") {
      guard let fp = Fingerprint(hex: hex) else { return usage("--pin needs 64 hex digits, got '\(hex)'") }
      pins.append(fp)
    }
    let learn = inv.has("--learn")
    if learn && role == .server { return usage("--learn is for clients only") }
    if pins.isEmpty && !learn { return usage("give at least one --pin (or --learn for a client)") }
    var chacha = true
    if let s = inv.value("--suite") {
      guard s.is("chacha") || s.is("aes") else { return usage("--suite must be chacha or aes") }
      chacha = s.is("chacha")
    }
    var seconds: UInt64 = 10
    if let t = inv.value("--timeout") {
      guard let v = parseDecimal(t), v > 0, v < 3600 else { return usage("--timeout must be 1-3599 seconds") }
      seconds = v
    }
    let message = inv.value("--message") ?? "hello from wisp"

    // Identity and configuration.
    guard let random = IdentityCommands.random() else { return 1 }
    let store = IdentityCommands.store(inv)
    let identity: Identity
    do {
      let (id, created) = try store.loadOrCreate(random: random)
      identity = id
      if created { Log.info("created node identity", "key=\(store.keyPath)") }
    } catch {
      Log.error("node identity unusable", "reason=\"\(error.description)\"")
      return 1
    }
    Log.info("identity", "fingerprint=\(identity.fingerprint.hex)")
    var options = DTLSOptions(role: role, pinned: pins)
    options.learn = learn
    options.prefersChaCha = chacha
    let config: DTLSConfig
    do { config = try DTLSConfig(options: options, identity: identity, random: random) } catch {
      Log.error("DTLS configuration failed", "reason=\"\(error.description)\"")
      return 1
    }

    // Socket.
    let socket: UDPSocket
    do {
      socket = try UDPSocket(bind: role == .server ? address : Endpoint(ip: 0, port: 0), bufferBytes: 0)
    } catch {
      Log.error("cannot bind UDP socket", "reason=\"\(error.description)\"")
      return 1
    }
    defer { socket.close() }
    if role == .server { Log.info("listening", "addr=\(text)") }
    return run(role: role, config: config, socket: socket, server: role == .client ? address : nil,
               message: message, deadline: Clock.nowNs() + seconds * 1_000_000_000)
  }

  static func usage(_ message: String) -> Int32 {
    Console.err("wisp: \(message)")
    Console.err(Arguments.usage(.tlsProbe))
    return 2
  }

  static func run(role: DTLSRole, config: DTLSConfig, socket: UDPSocket, server: Endpoint?,
                  message: String, deadline: UInt64) -> Int32 {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)
    defer { buffer.deallocate() }
    let inbox = ProbeInbox()
    var session: DTLSSession? = nil
    var peer = server ?? Endpoint(ip: 0, port: 0)

    func open(_ to: Endpoint) -> DTLSSession? {
      do {
        return try DTLSSession(config: config, peerIP: to.ip, peerPort: to.port, now: { Clock.nowNs() },
                               send: { d in socket.send(d.baseAddress!, d.count, to: to) },
                               deliver: { inbox.records.append(Array($0)) })
      } catch {
        Log.error("session setup failed", "reason=\"\(error.description)\"")
        return nil
      }
    }
    if role == .client {
      guard let s = open(peer) else { return 1 }
      session = s
      s.step()  // ClientHello
    }

    var announced = false
    while Clock.nowNs() < deadline {
      var waitMs: Int64 = 100
      if let d = session?.deadlineNs {
        let now = Clock.nowNs()
        waitMs = d > now ? min(100, Int64((d - now) / 1_000_000) + 1) : 0
      }
      _ = socket.wait(ms: Int32(waitMs))
      while let (n, from) = socket.receive(into: buffer.baseAddress!, capacity: buffer.count) {
        guard n > 0, buffer[0] >= 20, buffer[0] <= 63 else { continue }  // not DTLS (WIRE-PROTOCOL.md)
        if session == nil {
          peer = from
          Log.info("first DTLS datagram", "peer=\(describe(from))")
          guard let s = open(from) else { return 1 }
          session = s
        }
        guard let s = session, from == peer else { continue }  // one peer per probe
        s.receive(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
      }
      guard let s = session else { continue }
      if let d = s.deadlineNs, Clock.nowNs() >= d { s.handleTimeout() } else { s.step() }

      switch s.state {
      case .failed:
        let why = s.failure?.description ?? "unknown"
        Log.error("session refused", "peer=\(describe(peer)) reason=\"\(why)\"")
        return 1
      case .closed:
        // A reply and close_notify can arrive together: print the reply first.
        for record in inbox.records { Console.out("reply \(trimmed(String(decoding: record, as: UTF8.self)))") }
        Log.info("session closed", "by_peer=\(s.closedByPeer ? 1 : 0)")
        return inbox.records.isEmpty ? 1 : 0
      case .handshaking:
        continue
      case .established:
        break
      }
      if !announced {
        announced = true
        Log.info("handshake complete", "peer=\(describe(peer)) fingerprint=\(s.peerFingerprint?.hex ?? "?") "
                   + "suite=\(s.cipherSuite) version=\(s.protocolVersion) cookie_rounds=\(s.helloVerifyRequests)")
        if config.options.learn, let fp = s.peerFingerprint, !config.options.pinned.contains(fp) {
          Console.out("learned \(fp.hex)")
        }
        if role == .client {
          var line = message
          line += "\n"
          do { try s.write(Array(line.utf8)) } catch {
            Log.error("write failed", "reason=\"\(error.description)\"")
            return 1
          }
        }
      }
      while !inbox.records.isEmpty {
        let record = inbox.records.removeFirst()
        let text = String(decoding: record, as: UTF8.self)
        if role == .server {
          Console.out("received \(trimmed(text))")
          do { try s.write(record) } catch {
            Log.error("echo failed", "reason=\"\(error.description)\"")
            return 1
          }
          s.close()
          Log.info("echoed and closed", "bytes=\(record.count)")
          return 0
        } else {
          Console.out("reply \(trimmed(text))")
          s.close()
          return 0
        }
      }
    }
    Log.error("timed out", "peer=\(describe(peer)) state=\(session.map { stateName($0.state) } ?? "no peer")")
    return 1
  }

  static func describe(_ e: Endpoint) -> String {
    "\(e.ip >> 24).\(e.ip >> 16 & 0xff).\(e.ip >> 8 & 0xff).\(e.ip & 0xff):\(e.port)"
  }

  static func stateName(_ s: DTLSSession.State) -> String {
    switch s {
    case .handshaking: return "handshaking"
    case .established: return "established"
    case .closed: return "closed"
    case .failed: return "failed"
    }
  }

  /// The text without trailing newline characters.
  static func trimmed(_ text: String) -> String {
    var bytes = Array(text.utf8)
    while let last = bytes.last, last == 10 || last == 13 { bytes.removeLast() }
    return String(decoding: bytes, as: UTF8.self)
  }
}
#endif
