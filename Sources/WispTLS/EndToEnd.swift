// End-to-end sealing of circuit payloads between a client and its exit. Runs on host and device.
//
// The client sends a fresh ephemeral P-256 point in every CREATE it sends (hop kind 3,
// retries included); the exit answers with its identity point and 32 fresh random bytes
// in CREATED. The client checks the point against the exit's pinned fingerprint, so a
// middle node can neither read payloads nor substitute a key. Both sides compute
// ECDH(ephemeral, identity) and derive with HKDF-SHA256 (no salt; info "wisp-e2e-v2" ||
// client point || exit point || exit nonce) 64 bytes: the client→exit key, then the
// exit→client key. The exit's nonce makes every circuit's keys its own, so a replayed
// CREATE makes a circuit whose keys nobody else has, and replayed DATA opens nowhere.
// A sealed payload is counter (u64, big-endian) || ChaCha20-Poly1305 ciphertext || tag;
// the nonce is 4 zero bytes and the counter. The receiver keeps a 64-wide ReplayWindow,
// checked before opening and recorded only after the tag verifies.
// WIRE-PROTOCOL.md ("Sealed exits") is the specification.
import CMbedTLS
import WispCore

/// The key schedule of a sealed circuit.
public enum SealedKeys {
  /// 64 bytes of keys from the ECDH secret and both points and the exit's nonce.
  public static func derive(shared: [UInt8], clientPoint: UnsafeRawBufferPointer, exitPoint: UnsafeRawBufferPointer,
                            exitNonce: UnsafeRawBufferPointer) -> [UInt8]? {
    guard shared.count == 32, clientPoint.count == Wire.pointSize, exitPoint.count == Wire.pointSize,
          exitNonce.count == Wire.exitNonceSize else { return nil }
    var info = Array("wisp-e2e-v2".utf8)
    info += Array(clientPoint)
    info += Array(exitPoint)
    info += Array(exitNonce)
    var okm = [UInt8](repeating: 0, count: 64)
    let h = shared.withUnsafeBufferPointer { s in
      info.withUnsafeBufferPointer { i in
        okm.withUnsafeMutableBufferPointer { wisp_hkdf_sha256(s.baseAddress!, 32, i.baseAddress!, i.count, $0.baseAddress!, 64) }
      }
    }
    return h == 0 ? okm : nil
  }
}

/// The exit's side of the key agreement, made once from the node's key (parsed once, with
/// its own DRBG): runs on the worker, never on a forwarding thread.
public final class ExitKeyAgreement {
  let key: UnsafeMutablePointer<wisp_ecdh_key>
  public let point: [UInt8]

  /// `keyPEM`: the node's identity key (NUL-terminated PEM or DER); `point` its public point.
  public init?(keyPEM: [UInt8], point: [UInt8]) {
    guard point.count == Wire.pointSize,
          let k = keyPEM.withUnsafeBufferPointer({ wisp_ecdh_key_new($0.baseAddress!, $0.count) }) else { return nil }
    key = k
    self.point = point
  }

  deinit { wisp_ecdh_key_free(key) }

  /// Keys (64 bytes) and the CREATED tail (the exit's point, then a fresh 32-byte nonce)
  /// for a client's point; nil when the point is not a valid P-256 point.
  public func agree(clientPoint: UnsafeRawBufferPointer) -> (keys: [UInt8], created: [UInt8])? {
    guard clientPoint.count == Wire.pointSize else { return nil }
    var shared = [UInt8](repeating: 0, count: 32)
    let r = shared.withUnsafeMutableBufferPointer {
      wisp_ecdh_key_compute(key, clientPoint.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.baseAddress!)
    }
    guard r == 0 else { return nil }
    var nonce = [UInt8](repeating: 0, count: Wire.exitNonceSize)
    guard nonce.withUnsafeMutableBytes({ wisp_ecdh_key_random(key, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count) }) == 0
    else { return nil }
    let keys = point.withUnsafeBytes { p in
      nonce.withUnsafeBytes { n in SealedKeys.derive(shared: shared, clientPoint: clientPoint, exitPoint: p, exitNonce: n) }
    }
    for i in 0..<shared.count { shared[i] = 0 }
    guard let keys else { return nil }
    return (keys, point + nonce)
  }
}

/// One direction pair of sealing state, on either end.
public final class SealedChannel {
  let sealer: AEADCipher
  let opener: AEADCipher
  var sendCounter: UInt64 = 0
  /// Counters already opened in the receiving direction.
  var replay = ReplayWindow()
  let scratch = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)

  /// From the 64 derived key bytes; `isClient` picks which key seals.
  public init?(keys: UnsafeRawBufferPointer, isClient: Bool) {
    guard keys.count == 64 else { return nil }
    let c2e = Array(keys[0..<32])
    let e2c = Array(keys[32..<64])
    guard let s = try? AEADCipher(.chacha20Poly1305, key: isClient ? c2e : e2c, salt: 0, sealing: true),
          let o = try? AEADCipher(.chacha20Poly1305, key: isClient ? e2c : c2e, salt: 0, sealing: false) else { return nil }
    sealer = s
    opener = o
  }

  /// The client's side: ECDH between its ephemeral key (`privateKeyPEM`, `ownPoint`) and the
  /// exit's point, with the exit's nonce from CREATED.
  public convenience init?(clientKeyPEM: [UInt8], ownPoint: [UInt8], exitPoint: UnsafeRawBufferPointer,
                           exitNonce: UnsafeRawBufferPointer) {
    guard exitPoint.count == Wire.pointSize, ownPoint.count == Wire.pointSize else { return nil }
    var shared = [UInt8](repeating: 0, count: 32)
    let r = clientKeyPEM.withUnsafeBufferPointer { k in
      shared.withUnsafeMutableBufferPointer {
        wisp_p256_ecdh(k.baseAddress!, k.count, exitPoint.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.baseAddress!)
      }
    }
    guard r == 0 else { return nil }
    let keys = ownPoint.withUnsafeBytes { cp in
      SealedKeys.derive(shared: shared, clientPoint: cp, exitPoint: exitPoint, exitNonce: exitNonce)
    }
    for i in 0..<shared.count { shared[i] = 0 }
    guard var keys else { return nil }
    defer { for i in 0..<keys.count { keys[i] = 0 } }
    let made = keys.withUnsafeBytes { k in SealedChannel(keys: k, isClient: true) }
    guard let made else { return nil }
    self.init(sealer: made.sealer, opener: made.opener)
  }

  init(sealer: AEADCipher, opener: AEADCipher) {
    self.sealer = sealer
    self.opener = opener
  }

  deinit { scratch.deallocate() }

  /// Seals `length` bytes at `payload` in place (counter before, tag after); returns the
  /// sealed length, `length + Wire.sealOverhead`.
  public func seal(payload: UnsafeMutableRawPointer, length: Int) -> Int {
    sendCounter &+= 1
    (payload - 8).storeBytes(of: sendCounter.bigEndian, as: UInt64.self)
    let out = UnsafeMutableRawBufferPointer(start: scratch, count: length + AEADCipher.tagBytes)
    let n = sealer.seal(counter: sendCounter, aad: UnsafeRawBufferPointer(start: nil, count: 0),
                        plaintext: UnsafeRawBufferPointer(start: payload, count: length), into: out)
    precondition(n == length + AEADCipher.tagBytes, "AEAD seal failed")  // only on a broken cipher context
    payload.copyMemory(from: scratch, byteCount: n)
    return n + 8
  }

  /// Opens a sealed body in place; returns the plaintext's offset and length within the
  /// body, or nil when it is not authentic or replayed.
  public func open(body: UnsafeMutableRawPointer, length: Int) -> (offset: Int, length: Int)? {
    if length < Wire.sealOverhead { return nil }
    let counter = UInt64(bigEndian: body.loadUnaligned(as: UInt64.self))
    if !replay.check(counter) { return nil }  // zero, replayed or too old: refused before the AEAD runs
    let sealed = UnsafeRawBufferPointer(start: body + 8, count: length - 8)
    let n = opener.open(counter: counter, aad: UnsafeRawBufferPointer(start: nil, count: 0), sealed: sealed,
                        into: UnsafeMutableRawBufferPointer(start: scratch, count: 2048))
    if n < 0 { return nil }                   // not authentic: the window is left as it was
    replay.accept(counter)
    (body + 8).copyMemory(from: scratch, byteCount: n)
    return (8, n)
  }
}

/// The exit side: one channel per sealed exit circuit, by its forward half. Only live
/// sealed circuits take memory (a table as large as the circuit table would be resident
/// from the start).
public final class ExitSealer: ExitCipher {
  var channels: [Int: SealedChannel] = [:]
  let halves: Int

  /// `halves`: the circuit table's capacity (the largest half index + 1).
  public init(halves: Int) {
    self.halves = halves
  }

  public func install(half: Int, keys: UnsafeRawPointer) -> Bool {
    guard half >= 0, half < halves,
          let ch = SealedChannel(keys: UnsafeRawBufferPointer(start: keys, count: 64), isClient: false) else { return false }
    channels[half] = ch
    return true
  }

  public func open(half: Int, body: UnsafeMutableRawPointer, length: Int) -> (offset: Int, length: Int)? {
    guard let ch = channels[half] else { return nil }
    return ch.open(body: body, length: length)
  }

  public func seal(half: Int, payload: UnsafeMutableRawPointer, length: Int) -> Int {
    guard let ch = channels[half] else { return -1 }
    return ch.seal(payload: payload, length: length)
  }

  public func remove(half: Int) { channels[half] = nil }

  /// Circuits with keys (status).
  public var count: Int { channels.count }
}
