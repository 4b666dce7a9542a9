// Receipts and the credit ledger: encoding, the acceptance rules, tampering, the epoch window.
import Testing
import WispTestSupport
import WispCore

@Suite struct ReceiptLedgerTests {
  @Test func canonicalMessageLayout() {
    let r = receipt(1, serial: 0x0102_0304_0506_0708, bytes: 5, epoch: 9)
    let m = r.signedMessage
    #expect(m.count == Receipt.messageSize && m.count == 112)
    #expect(Array(m[0..<16]) == Array("wisp-receipt-v2".utf8) + [0])
    #expect(Array(m[16..<48]) == r.node.bytes)
    #expect(Array(m[48..<80]) == r.payer.bytes)
    #expect(Array(m[80..<96]) == [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    #expect(m[103] == 5 && m[111] == 9)
    #expect(r.encoded.count == 96 + 2 + 65 + r.signature.count)
    // v1 keeps its own layout (old journals).
    let v1 = receiptV1(1, serial: 0x0102_0304_0506_0708, bytes: 5, epoch: 9).signedMessage
    #expect(v1.count == ReceiptV1.messageSize && Array(v1[0..<16]) == Array("wisp-receipt-v1".utf8) + [0])
  }

  @Test func encodeDecodeRoundTrip() {
    let r = receipt(3, serial: 77, bytes: 123_456, epoch: 1_700_000_123)
    let e = r.encoded
    let d = e.withUnsafeBytes { buf -> Receipt? in
      var rr = ByteReader(buf)
      let x = Receipt.decode(&rr)
      return rr.remaining == 0 ? x : nil
    }
    #expect(d == r)
    // Every shorter prefix fails to decode.
    for n in 0..<e.count {
      let p = Array(e[0..<n])
      #expect(p.withUnsafeBytes { b -> Receipt? in var rr = ByteReader(b); return Receipt.decode(&rr) } == nil)
    }
  }

  @Test func acceptanceRules() {
    var l = CreditLedger(node: testNode)
    let v = FakeVerifier()
    #expect(l.accept(receipt(1, serial: 1, bytes: 100), verifier: v) == .accepted(added: 100))
    #expect(l.accept(receipt(1, serial: 1, bytes: 100), verifier: v) == .rejected(.replay))
    #expect(l.accept(receipt(1, serial: 1, bytes: 50), verifier: v) == .rejected(.notHigher))
    #expect(l.accept(receipt(1, serial: 1, bytes: 250), verifier: v) == .accepted(added: 150))
    #expect(l.accept(receipt(2, serial: 1, bytes: 10), verifier: v) == .accepted(added: 10))
    #expect(l.accept(receipt(1, serial: 2, bytes: 5, node: clientFP(9)), verifier: v) == .rejected(.wrongNode))
    // A 0-byte receipt binds a live circuit but is never kept.
    #expect(l.accept(receipt(1, serial: 5, bytes: 0), verifier: v) == .rejected(.replay))
    var bad = receipt(1, serial: 3, bytes: 5)
    bad.signature[0] ^= 1
    #expect(l.accept(bad, verifier: v) == .rejected(.badSignature))
    var swapped = receipt(1, serial: 3, bytes: 5)
    swapped.payerKey = FakeSigner(4).publicKey
    #expect(l.accept(swapped, verifier: v) == .rejected(.keyMismatch))
    // A v1 receipt with the same numbers is another key: both are kept.
    #expect(l.accept(v1: receiptV1(1, serial: 1, bytes: 40), verifier: v) == .accepted(added: 40))
    #expect(l.receiptedTotal == 300 && l.receiptedV1 == 40 && l.v1Count == 1)
    #expect(l.receiptCount == 3 && l.latestReceipts.count == 2 && l.latestV1Receipts.count == 1)
    #expect(l.rejections.total == 6)
    #expect(l.rejections[.replay] == 2 && l.rejections[.notHigher] == 1 && l.rejections[.wrongNode] == 1)
    #expect(l.receipted(payer: clientFP(1), binding: Binding(hi: 0, lo: 1)) == 250)
    // Up to an eighth plus 64 KiB beyond what was relayed (bytes lost before this hop).
    #expect(Receipt.acceptable(relayed: 300) == 300 + 37 + 65_536)
    #expect(Receipt.acceptable(relayed: UInt64.max - 10) == UInt64.max)
  }

  @Test func epochWindow() {
    let now: UInt64 = 1_800_000_000
    #expect(Receipt.epochAcceptable(now - 600, now: now) && Receipt.epochAcceptable(now + 600, now: now))
    #expect(!Receipt.epochAcceptable(now - 601, now: now) && !Receipt.epochAcceptable(now + 601, now: now))
    #expect(!Receipt.epochAcceptable(0, now: now) && !Receipt.epochAcceptable(UInt64.max, now: now))
  }

  /// 10,000 tampered receipts: raised amounts, reused bindings, wrong node, spliced
  /// circuits, bad signatures. None adds credit.
  @Test func tenThousandTamperedReceiptsRejected() {
    var l = CreditLedger(node: testNode)
    let v = FakeVerifier()
    var genuine: [Receipt] = []
    for i in 0..<8 {
      let r = receipt(UInt8(i % 4), serial: UInt64(100 + i), bytes: UInt64(1000 * (i + 1)))
      #expect(l.accept(r, verifier: v) == .accepted(added: r.bytes))
      genuine.append(r)
    }
    let total = l.receiptedTotal
    var rng = SplitMix(42)
    var rejected = 0
    for n in 0..<10_000 {
      let base = genuine[Int(rng.next() % 8)]
      var t = base
      switch n % 6 {
      case 0: t.bytes += 1 + rng.next() % 1_000_000               // raised amount, old signature
      case 1: t = genuine[Int(rng.next() % 8)]                     // replay of a genuine receipt
      case 2: t.node = clientFP(UInt8(rng.next() % 200))           // wrong node, old signature
      case 3:                                                      // spliced: binding of another circuit
        let other = genuine[Int(rng.next() % 8)]
        t.binding = other.binding == base.binding ? Binding(hi: 0, lo: base.binding.lo + 1) : other.binding
        t.bytes += 1
      case 4:                                                      // flipped signature bit
        let i = Int(rng.next() % UInt64(t.signature.count))
        t.signature[i] ^= UInt8(1 << (rng.next() % 8))
        t.bytes += 1
      default:                                                     // correctly signed for another node
        t = receipt(UInt8(rng.next() % 4), serial: base.binding.lo, bytes: base.bytes + 1 + rng.next() % 99,
                    node: clientFP(250))
      }
      if case .rejected = l.accept(t, verifier: v) { rejected += 1 }
    }
    #expect(rejected == 10_000)
    #expect(l.receiptedTotal == total)
    #expect(l.rejections.total == 10_000)
    #expect(l.rejections[.replay] > 0 && l.rejections[.badSignature] > 0 && l.rejections[.wrongNode] > 0)
  }
}
