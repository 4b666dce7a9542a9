// Receipts with real ECDSA P-256 (mbedTLS): sign/verify, tampering, the journal.
import Testing
import WispTestSupport
import WispCore
import WispTLS

@Suite struct ReceiptCryptoTests {
  static let v = P256Verifier()

  @Test func keyRoundTripAndFingerprint() throws {
    let k = try #require(P256Signer.generate())
    #expect(k.publicKey.count == 65 && k.publicKey[0] == 4)
    let again = try #require(P256Signer(key: k.pemFileBytes))
    #expect(again.publicKey == k.publicKey)
    // One fingerprint everywhere: a receipt's (from the raw point) equals the TLS identity's
    // (SHA-256 of the DER SubjectPublicKeyInfo) for the same key.
    let identity = try Identity(keyPEM: k.pemFileBytes, certificatePEM: nil, path: "test", random: RandomGenerator())
    #expect(Self.v.fingerprint(ofKey: k.publicKey).bytes == identity.fingerprint.bytes)
    #expect(Self.v.fingerprint(ofKey: k.publicKey).bytes != TLSLibrary.sha256(k.publicKey.withUnsafeBytes { $0 }))
    #expect(P256Signer(key: Array("-----BEGIN EC PRIVATE KEY-----\nAAAA\n".utf8)) == nil)
  }

  @Test func signedReceiptVerifiesAndTamperingFails() throws {
    var client = try #require(P256Signer.generate())
    let node = Self.v.fingerprint(ofKey: try #require(P256Signer.generate()).publicKey)
    let r = try #require(Receipt.make(signer: &client, verifier: Self.v, node: node, binding: Binding(hi: 7, lo: 9),
                                      bytes: 1 << 20, epoch: 1_700_000_000))
    #expect(r.signature.count <= 72 && r.signature[0] == 0x30)
    #expect(r.check(node: node, verifier: Self.v) == nil)
    var raised = r; raised.bytes += 1
    #expect(raised.check(node: node, verifier: Self.v) == .badSignature)
    var spliced = r; spliced.binding = Binding(hi: 7, lo: 10)
    #expect(spliced.check(node: node, verifier: Self.v) == .badSignature)
    var late = r; late.epoch += 1
    #expect(late.check(node: node, verifier: Self.v) == .badSignature)
    #expect(r.check(node: Self.v.fingerprint(ofKey: client.publicKey), verifier: Self.v) == .wrongNode)
    var other = try #require(P256Signer.generate())
    var stolen = r; stolen.payerKey = other.publicKey
    #expect(stolen.check(node: node, verifier: Self.v) == .keyMismatch)
    // Signed by another key but claiming the client's fingerprint and key.
    var forged = r
    let otherSig = other.sign(r.signedMessage)
    forged.signature = try #require(otherSig)
    #expect(forged.check(node: node, verifier: Self.v) == .badSignature)
    // Every single-bit flip of the signature fails.
    for bit in 0..<(r.signature.count * 8) {
      var t = r
      t.signature[bit / 8] ^= UInt8(1 << (bit % 8))
      #expect(t.check(node: node, verifier: Self.v) != nil)
    }
  }

  // Claim files with real signatures: ClaimCryptoTests.swift.

  @Test func journalWithRealSignatures() throws {
    let nodeKey = try #require(P256Signer.generate())
    let node = Self.v.fingerprint(ofKey: nodeKey.publicKey)
    var c = try #require(P256Signer.generate())
    let disk = EmulatedDisk()
    var j = try Journal.open(storage: EmulatedJournalStorage(disk: disk), node: node, verifier: Self.v, now: 1)
    for k in 1...5 {
      let r = try #require(Receipt.make(signer: &c, verifier: Self.v, node: node, binding: Binding(hi: 0, lo: 1),
                                        bytes: UInt64(k * 10), epoch: 2))
      #expect(try j.record(r, now: 2) == .accepted(added: 10))
    }
    try j.close(now: 3)
    let scan = JournalScan.scan(disk.durable, node: node, verifier: Self.v)
    #expect(scan.stop == nil && scan.ledger.receiptedTotal == 50)
  }
}

extension String {
  func replacingOccurrences(_ a: String, _ b: String) -> String {
    let h = Array(utf8), n = Array(a.utf8)
    var out: [UInt8] = []
    var i = 0
    while i < h.count {
      if i + n.count <= h.count && Array(h[i..<i + n.count]) == n {
        out += Array(b.utf8); i += n.count
      } else { out.append(h[i]); i += 1 }
    }
    return String(decoding: out, as: UTF8.self)
  }
}
