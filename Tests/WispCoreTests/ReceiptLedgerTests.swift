// Receipts and the credit ledger: encoding, the acceptance rules, tampering, the window.
import Testing
import WispTestSupport
import WispCore

@Suite struct ReceiptLedgerTests {
  @Test func canonicalMessageLayout() {
    let r = receipt(1, serial: 0x0102_0304_0506_0708, bytes: 5, epoch: 9)
    let m = r.signedMessage
    #expect(m.count == ReceiptV1.messageSize)
    #expect(Array(m[0..<16]) == Array("wisp-receipt-v1".utf8) + [0])
    #expect(Array(m[16..<48]) == r.node.bytes)
    #expect(Array(m[48..<80]) == r.client.bytes)
    #expect(Array(m[80..<88]) == [1, 2, 3, 4, 5, 6, 7, 8])
    #expect(m[95] == 5 && m[103] == 9)
  }

  @Test func encodeDecodeRoundTrip() {
    let r = receipt(3, serial: 77, bytes: 123_456, epoch: 1_700_000_123)
    let e = r.encoded
    var rd = e.withUnsafeBytes { ByteReader($0) }
    let d = e.withUnsafeBytes { buf -> ReceiptV1? in
      var rr = ByteReader(buf)
      let x = ReceiptV1.decode(&rr)
      return rr.remaining == 0 ? x : nil
    }
    _ = rd.u8()
    #expect(d == r)
    // Every shorter prefix fails to decode.
    for n in 0..<e.count {
      let p = Array(e[0..<n])
      #expect(p.withUnsafeBytes { b -> ReceiptV1? in var rr = ByteReader(b); return ReceiptV1.decode(&rr) } == nil)
    }
  }

  @Test func acceptanceRules() {
    var l = CreditLedger(node: testNode)
    let v = FakeVerifier()
    #expect(l.accept(receipt(1, serial: 1, bytes: 100), verifier: v, requireOpen: false) == .accepted(added: 100))
    #expect(l.accept(receipt(1, serial: 1, bytes: 100), verifier: v, requireOpen: false) == .rejected(.replay))
    #expect(l.accept(receipt(1, serial: 1, bytes: 50), verifier: v, requireOpen: false) == .rejected(.notHigher))
    #expect(l.accept(receipt(1, serial: 1, bytes: 250), verifier: v, requireOpen: false) == .accepted(added: 150))
    #expect(l.accept(receipt(2, serial: 1, bytes: 10), verifier: v, requireOpen: false) == .accepted(added: 10))
    #expect(l.accept(receipt(1, serial: 2, bytes: 5, node: clientFP(9)), verifier: v, requireOpen: false)
            == .rejected(.wrongNode))
    var bad = receipt(1, serial: 3, bytes: 5)
    bad.signature[0] ^= 1
    #expect(l.accept(bad, verifier: v, requireOpen: false) == .rejected(.badSignature))
    var swapped = receipt(1, serial: 3, bytes: 5)
    swapped.clientKey = FakeSigner(4).publicKey
    #expect(l.accept(swapped, verifier: v, requireOpen: false) == .rejected(.keyMismatch))
    #expect(l.receiptedTotal == 260)
    #expect(l.receiptCount == 2)
    #expect(l.rejections.total == 5)
    #expect(l.rejections[.replay] == 1 && l.rejections[.notHigher] == 1 && l.rejections[.wrongNode] == 1)
  }

  @Test func liveBindingRules() {
    var l = CreditLedger(node: testNode, window: 1000)
    let v = FakeVerifier()
    l.open(client: clientFP(1), serial: 10)
    #expect(l.accept(receipt(1, serial: 11, bytes: 1), verifier: v, requireOpen: true) == .rejected(.unknownCircuit))
    #expect(l.accept(receipt(2, serial: 10, bytes: 1), verifier: v, requireOpen: true) == .rejected(.wrongCircuit))
    l.relayed(serial: 10, bytes: 300)
    // Up to an eighth plus 64 KiB beyond what was relayed (bytes lost before this hop), not more.
    let most = ReceiptV1.acceptable(relayed: 300)
    #expect(most == 300 + 37 + 65_536)
    #expect(l.accept(receipt(1, serial: 10, bytes: most + 1), verifier: v, requireOpen: true) == .rejected(.exceedsRelayed))
    #expect(l.accept(receipt(1, serial: 10, bytes: 300), verifier: v, requireOpen: true) == .accepted(added: 300))
    #expect(ReceiptV1.acceptable(relayed: UInt64.max - 10) == UInt64.max)
  }

  @Test func creditWindowArithmetic() {
    let w: UInt64 = 4 << 20
    var l = CreditLedger(node: testNode, window: w)
    let v = FakeVerifier()
    l.open(client: clientFP(1), serial: 7)
    #expect(l.allowance(serial: 7) == w)
    #expect(l.relayed(serial: 7, bytes: w - 1) == false)
    #expect(l.allowance(serial: 7) == 1)
    #expect(l.pendingTotal == w - 1)
    #expect(l.relayed(serial: 7, bytes: 1) == true)       // exactly W beyond receipt 0: pause
    #expect(l.shouldPause(serial: 7) && l.pausedCount == 1)
    #expect(l.allowance(serial: 7) == 0)
    // A receipt for less than relayed resumes only if relayed < receipted + W.
    #expect(l.accept(receipt(1, serial: 7, bytes: 1), verifier: v, requireOpen: true) == .accepted(added: 1))
    #expect(!l.shouldPause(serial: 7))
    #expect(l.allowance(serial: 7) == 1)
    #expect(l.pendingTotal == w - 1)
    // A bad receipt does not resume.
    l.relayed(serial: 7, bytes: 10)
    #expect(l.shouldPause(serial: 7))
    var forged = receipt(1, serial: 7, bytes: w)
    forged.bytes = w + 5
    #expect(l.accept(forged, verifier: v, requireOpen: true) == .rejected(.badSignature))
    #expect(l.shouldPause(serial: 7))
    #expect(l.accept(receipt(1, serial: 7, bytes: w + 9), verifier: v, requireOpen: true) == .accepted(added: w + 8))
    #expect(!l.shouldPause(serial: 7))
    #expect(l.pendingTotal == 1)                      // relayed w+10, receipted w+9
    #expect(l.allowance(serial: 7) == w - 1)
    l.close(serial: 7)
    #expect(l.pausedCount == 0 && l.pendingTotal == 0 && !l.shouldPause(serial: 7))
  }

  @Test func windowNearUInt64MaxDoesNotOverflow() {
    var l = CreditLedger(node: testNode, window: UInt64.max)
    l.open(client: clientFP(1), serial: 1)
    #expect(l.relayed(serial: 1, bytes: UInt64.max - 1) == false)
  }

  /// 10,000 tampered receipts: raised amounts, reused serials, wrong node, spliced
  /// circuits, bad signatures. None adds credit.
  @Test func tenThousandTamperedReceiptsRejected() {
    var l = CreditLedger(node: testNode)
    let v = FakeVerifier()
    var genuine: [ReceiptV1] = []
    for i in 0..<8 {
      let r = receipt(UInt8(i % 4), serial: UInt64(100 + i), bytes: UInt64(1000 * (i + 1)))
      #expect(l.accept(r, verifier: v, requireOpen: false) == .accepted(added: r.bytes))
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
      case 3:                                                      // spliced: serial of another circuit
        let other = genuine[Int(rng.next() % 8)]
        t.serial = other.serial == base.serial ? base.serial + 1 : other.serial
        t.bytes += 1
      case 4:                                                      // flipped signature bit
        let i = Int(rng.next() % UInt64(t.signature.count))
        t.signature[i] ^= UInt8(1 << (rng.next() % 8))
        t.bytes += 1
      default:                                                     // correctly signed for another node
        t = receipt(UInt8(rng.next() % 4), serial: base.serial, bytes: base.bytes + 1 + rng.next() % 99,
                    node: clientFP(250))
      }
      if case .rejected = l.accept(t, verifier: v, requireOpen: false) { rejected += 1 }
    }
    #expect(rejected == 10_000)
    #expect(l.receiptedTotal == total)
    #expect(l.rejections.total == 10_000)
    #expect(l.rejections[.replay] > 0 && l.rejections[.badSignature] > 0 && l.rejections[.wrongNode] > 0)
  }
}
