// End-to-end sealing with real ECDH P-256, HKDF and ChaCha20-Poly1305.
import Testing
import WispCore
import WispTLS

@Suite struct SealedChannelTests {
  func pair() throws -> (SealedChannel, SealedChannel) {
    let exitKey = try #require(P256Signer.generate())
    let eph = try #require(P256Signer.generate())
    let agreement = try #require(ExitKeyAgreement(keyPEM: exitKey.pem, point: exitKey.publicKey))
    let made = try #require(eph.publicKey.withUnsafeBytes { agreement.agree(clientPoint: $0) })
    #expect(Array(made.created[0..<65]) == exitKey.publicKey)
    let client = try #require(made.created.withUnsafeBytes { c in
      SealedChannel(clientKeyPEM: eph.pem, ownPoint: eph.publicKey, exitPoint: UnsafeRawBufferPointer(rebasing: c[0..<65]),
                    exitNonce: UnsafeRawBufferPointer(rebasing: c[65...])) })
    let exit = try #require(made.keys.withUnsafeBytes { SealedChannel(keys: $0, isClient: false) })
    return (client, exit)
  }

  @Test func theSameClientPointNeverGivesTheSameKeys() throws {
    // A replayed CREATE: the exit's fresh nonce makes new keys, so nothing sealed for the
    // first circuit opens on the second, and the two never seal under one key and nonce.
    let exitKey = try #require(P256Signer.generate())
    let eph = try #require(P256Signer.generate())
    let agreement = try #require(ExitKeyAgreement(keyPEM: exitKey.pem, point: exitKey.publicKey))
    let one = try #require(eph.publicKey.withUnsafeBytes { agreement.agree(clientPoint: $0) })
    let two = try #require(eph.publicKey.withUnsafeBytes { agreement.agree(clientPoint: $0) })
    #expect(one.keys != two.keys && one.created[65...] != two.created[65...])
    let e1 = try #require(one.keys.withUnsafeBytes { SealedChannel(keys: $0, isClient: false) })
    let e2 = try #require(two.keys.withUnsafeBytes { SealedChannel(keys: $0, isClient: false) })
    let c1 = try #require(one.keys.withUnsafeBytes { SealedChannel(keys: $0, isClient: true) })
    let s = seal(c1, Array("captured".utf8))
    #expect(open(e1, s) == Array("captured".utf8))
    #expect(open(e2, s) == nil)
    #expect(seal(e1, Array("x".utf8)) != seal(e2, Array("x".utf8)))
    // A point that is not on the curve is refused.
    let bad = [UInt8](repeating: 4, count: 65)
    #expect(bad.withUnsafeBytes { agreement.agree(clientPoint: $0) } == nil)
  }

  /// Seals `text` as the client would: returns the body (counter, ciphertext, tag).
  func seal(_ ch: SealedChannel, _ text: [UInt8]) -> [UInt8] {
    var buf = [UInt8](repeating: 0, count: 8 + text.count + 16)
    for (i, b) in text.enumerated() { buf[8 + i] = b }
    let n = buf.withUnsafeMutableBytes { ch.seal(payload: $0.baseAddress! + 8, length: text.count) }
    return Array(buf[0..<n])
  }

  func open(_ ch: SealedChannel, _ body: [UInt8]) -> [UInt8]? {
    var b = body
    return b.withUnsafeMutableBytes { p -> [UInt8]? in
      guard let (off, n) = ch.open(body: p.baseAddress!, length: p.count) else { return nil }
      return Array(UnsafeRawBufferPointer(start: p.baseAddress! + off, count: n))
    }
  }

  @Test func bothDirectionsOpenOnlyAtTheOtherEnd() throws {
    let (c, e) = try pair()
    let msg = Array("the payload".utf8)
    let s1 = seal(c, msg)
    #expect(s1.count == msg.count + WispCore.Wire.sealOverhead)
    #expect(Array(s1[8..<(8 + msg.count)]) != msg)   // not plaintext
    #expect(open(e, s1) == msg)
    #expect(open(c, s1) == nil)                    // the client cannot open its own direction
    let s2 = seal(e, Array("reply".utf8))
    #expect(open(c, s2) == Array("reply".utf8))
  }

  @Test func tamperingAndReplayAreRejected() throws {
    let (c, e) = try pair()
    let s1 = seal(c, Array("one".utf8))
    let s2 = seal(c, Array("two".utf8))
    for i in 0..<s1.count {
      var t = s1
      t[i] ^= 0x01
      #expect(open(e, t) == nil, "flip at \(i)")
    }
    #expect(open(e, s2) == Array("two".utf8))
    #expect(open(e, s1) == Array("one".utf8))      // out of order within the window
    #expect(open(e, s1) == nil)                     // replay
    #expect(open(e, s2) == nil)
    var late: [UInt8] = []
    for i in 0..<70 { let s = seal(c, [UInt8(i)]); if i == 0 { late = s } else { _ = open(e, s) } }
    #expect(open(e, late) == nil)                   // older than the 64-wide window
  }

  @Test func aForgedBodyUsesUpNoCounter() throws {
    let (c, e) = try pair()
    let s1 = seal(c, Array("one".utf8))
    let s2 = seal(c, Array("two".utf8))
    var forged = s2
    forged[0] = 0x7F                                // counter far ahead; the tag no longer verifies
    #expect(open(e, forged) == nil)
    var badTag = s1
    badTag[badTag.count - 1] ^= 0x80                // counter 1, broken tag
    #expect(open(e, badTag) == nil)
    #expect(open(e, s1) == Array("one".utf8))       // neither forgery burned a counter or moved the window
    #expect(open(e, s2) == Array("two".utf8))
  }

  @Test func aWrongKeyCannotOpen() throws {
    let (c, _) = try pair()
    let (_, otherExit) = try pair()
    #expect(open(otherExit, seal(c, Array("x".utf8))) == nil)
  }
}
