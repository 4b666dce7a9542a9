// End-to-end sealing of circuit payloads between a client and its exit. Runs on host and device.
//
// The client sends an ephemeral P-256 point in its CREATE (hop kind 3); the exit answers
// with its identity point in CREATED, which the client checks against the exit's pinned
// fingerprint, so a middle node can neither read payloads nor substitute a key. Both
// sides compute ECDH(ephemeral, identity) and derive, with HKDF-SHA256 and the info
// "wisp-e2e-v1" || client point || exit point, 64 bytes: the client→exit key, then the
// exit→client key. A sealed payload is counter (u64, big-endian) || ChaCha20-Poly1305
// ciphertext || tag; the nonce is 4 zero bytes and the counter. The receiver keeps a
// 64-wide ReplayWindow, checked before opening and recorded only after the tag verifies.
// WIRE-PROTOCOL.md ("Sealed exits") is the specification.
import CMbedTLS
import WispCore

/// One direction pair of sealing state, on either end.
public final class SealedChannel {
  let sealer: AEADCipher
  let opener: AEADCipher
  var sendCounter: UInt64 = 0
  /// Counters already opened in the receiving direction.
  var replay = ReplayWindow()
  let scratch = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)

  /// Keys from ECDH between `privateKeyPEM` (NUL-terminated PEM or DER) and `peerPoint`;
  /// `isClient` picks which derived key seals.
  public init?(privateKeyPEM: [UInt8], ownPoint: [UInt8], peerPoint: UnsafeRawBufferPointer, isClient: Bool) {
    guard peerPoint.count == Wire.pointSize, ownPoint.count == Wire.pointSize else { return nil }
    var shared = [UInt8](repeating: 0, count: 32)
    let r = privateKeyPEM.withUnsafeBufferPointer { k in
      shared.withUnsafeMutableBufferPointer {
        wisp_p256_ecdh(k.baseAddress!, k.count, peerPoint.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.baseAddress!)
      }
    }
    guard r == 0 else { return nil }
    let clientPoint = isClient ? ownPoint : Array(peerPoint)
    let exitPoint = isClient ? Array(peerPoint) : ownPoint
    var info = Array("wisp-e2e-v1".utf8)
    info += clientPoint
    info += exitPoint
    var okm = [UInt8](repeating: 0, count: 64)
    let h = shared.withUnsafeBufferPointer { s in
      info.withUnsafeBufferPointer { i in
        okm.withUnsafeMutableBufferPointer { wisp_hkdf_sha256(s.baseAddress!, 32, i.baseAddress!, i.count, $0.baseAddress!, 64) }
      }
    }
    guard h == 0 else { return nil }
    let c2e = Array(okm[0..<32])
    let e2c = Array(okm[32..<64])
    guard let s = try? AEADCipher(.chacha20Poly1305, key: isClient ? c2e : e2c, salt: 0, sealing: true),
          let o = try? AEADCipher(.chacha20Poly1305, key: isClient ? e2c : c2e, salt: 0, sealing: false) else { return nil }
    sealer = s
    opener = o
    for i in 0..<okm.count { okm[i] = 0 }
    for i in 0..<shared.count { shared[i] = 0 }
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

/// The exit side: one channel per permitted exit destination (the Forwarder's exit slots).
public final class ExitSealer: ExitCipher {
  let keyPEM: [UInt8]
  let point: [UInt8]
  var channels: [SealedChannel?]

  /// `keyPEM`: the node's identity key; `point` its 65-byte public point.
  public init(keyPEM: [UInt8], point: [UInt8], slots: Int) {
    self.keyPEM = keyPEM
    self.point = point
    channels = [SealedChannel?](repeating: nil, count: slots)
  }

  public func accept(slot: Int, clientKey: UnsafeRawPointer, exitKeyOut: UnsafeMutableRawPointer) -> Bool {
    guard slot < channels.count,
          let ch = SealedChannel(privateKeyPEM: keyPEM, ownPoint: point,
                                 peerPoint: UnsafeRawBufferPointer(start: clientKey, count: Wire.pointSize), isClient: false)
    else { return false }
    channels[slot] = ch
    point.withUnsafeBytes { exitKeyOut.copyMemory(from: $0.baseAddress!, byteCount: Wire.pointSize) }
    return true
  }

  public func open(slot: Int, body: UnsafeMutableRawPointer, length: Int) -> (offset: Int, length: Int)? {
    guard slot < channels.count, let ch = channels[slot] else { return nil }
    return ch.open(body: body, length: length)
  }

  public func seal(slot: Int, payload: UnsafeMutableRawPointer, length: Int) -> Int {
    channels[slot]!.seal(payload: payload, length: length)
  }
}
