// Claim files v2 and settlement with real ECDSA P-256: claims signed and checked with
// mbedTLS (what a node and `credits verify` use) and settled with OpenSSL (WispSettle), the
// two libraries agreeing on every signature; minted receipts, ranges, v1 lines, dedup across
// claims, budgets.
import Testing
import WispCore
import WispSettle
import WispTLS

private let v = P256Verifier()
private let t0: UInt64 = 1_700_000_000

private func key() -> P256Signer { P256Signer.generate()! }
private func fp(_ k: P256Signer) -> Fingerprint { v.fingerprint(ofKey: k.publicKey) }

private func receipt(_ payer: inout P256Signer, node: Fingerprint, _ b: UInt64, bytes: UInt64, epoch: UInt64 = t0) -> Receipt {
  Receipt.make(signer: &payer, verifier: v, node: node, binding: Binding(hi: 1, lo: b), bytes: bytes, epoch: epoch)!
}

private func list(_ payers: [(P256Signer, from: UInt64, until: UInt64, budget: UInt64)], settlement: inout P256Signer,
                  version: UInt64 = 1) -> PayerList {
  let entries = payers.map {
    PayerEntry(fingerprint: fp($0.0), validFrom: $0.from, validUntil: $0.until, budget: $0.budget, period: 86_400)
  }
  var s = [settlement]
  let file = PayerList.build(version: version, created: t0, entries: entries, signers: &s)!
  return try! PayerList.parse(file)
}

@Suite struct ClaimCryptoTests {
  @Test func claimVerifiesAloneAndRejectsTampering() throws {
    var node = key()
    let nfp = fp(node)
    var p = key()
    let rs = (1...3).map { receipt(&p, node: nfp, UInt64($0), bytes: UInt64(1000 * $0)) }
    let claim = try #require(Claim.build(receipts: rs, signer: &node, from: t0 - 10, to: t0 + 10, previous: nil,
                                         payersVersion: nil))
    guard case .success(let r) = Claim.verify(claim, verifier: v) else { Issue.record("claim invalid"); return }
    #expect(r.node == nfp && r.receipts == 3 && r.total == 6000 && r.accepted == 3 && r.rejected.isEmpty)
    #expect(r.payersVersion == nil && r.previous == nil)
    // A raised amount with the total fixed up: that receipt's signature fails, the rest stand.
    let text = String(decoding: claim, as: UTF8.self)
    let raised = text.replacing(" 2000 ", with: " 2001 ").replacing("total 6000", with: "total 6001")
    // ... and the node signature no longer covers the file.
    #expect(Claim.verify(Array(raised.utf8), verifier: v) == .failure(.badSignature))
    // Flip each byte: never a valid claim with the same receipts and total.
    for i in 0..<claim.count {
      var bad = claim
      bad[i] ^= 0x01
      if case .success(let x) = Claim.verify(bad, verifier: v), x.rejected.isEmpty, x.total == 6000, x.node == nfp {
        Issue.record("flip at \(i) accepted")
      }
    }
    #expect(Claim.verify(claim + [10], verifier: v) == .failure(.trailingData))
    #expect(Claim.verify(Array("wisp-claim-v1\n".utf8), verifier: v) == .failure(.oldFormat))
  }

  @Test func receiptRulesUnderAPayerList() throws {
    var node = key(), settlement = key()
    let nfp = fp(node)
    var listed = key(), expired = key(), minted = key(), early = key()
    let payers = list([(listed, t0 - 100, t0 + 100, 1 << 30), (expired, t0 - 100, t0 - 1, 1 << 30),
                       (early, t0 + 1, t0 + 100, 1 << 30)], settlement: &settlement)
    #expect(payers.verify(pinned: [fp(settlement)], threshold: 1, verifier: v) == nil)
    var forged = receipt(&listed, node: nfp, 9, bytes: 10)
    forged.bytes = 11  // signature no longer matches
    let rs = [receipt(&listed, node: nfp, 1, bytes: 500),     // line 7: paid
              receipt(&minted, node: nfp, 2, bytes: 1 << 40), // 8: unlisted (self-made key)
              receipt(&expired, node: nfp, 3, bytes: 10),     // 9: expired
              receipt(&early, node: nfp, 4, bytes: 10),       // 10: not yet valid
              receipt(&listed, node: nfp, 5, bytes: 10, epoch: t0 + 11),  // 11: outside the range
              forged,                                         // 12: bad signature
              receipt(&listed, node: nfp, 1, bytes: 400)]     // 13: duplicate of line 7
    var old = key()
    let v1 = ReceiptV1.make(signer: &old, verifier: v, node: nfp, serial: 4, bytes: 77, epoch: t0)!
    let claim = try #require(Claim.build(receipts: rs, v1: [v1], signer: &node, from: t0 - 10, to: t0 + 10,
                                         previous: [UInt8](repeating: 7, count: 32), payersVersion: 1))
    guard case .success(let r) = Claim.verify(claim, payers: payers, verifier: v) else { Issue.record("invalid"); return }
    #expect(r.accepted == 1 && r.acceptedBytes == 500)
    #expect(r.rejected.map { $0.line } == [8, 9, 10, 11, 12, 13, 14])
    #expect(r.rejected.map { $0.reason } == [.unlistedPayer, .payerExpired, .payerNotYetValid, .epochOutsideRange,
                                             .badSignature, .duplicate, .v1NotClaimable])
    #expect(r.previous == [UInt8](repeating: 7, count: 32) && r.payersVersion == 1)
    // Without a list, only the file's own checks apply: the v1 line is accepted (and said to be v1).
    guard case .success(let u) = Claim.verify(claim, verifier: v) else { Issue.record("invalid"); return }
    #expect(u.rejected.map { $0.reason } == [.epochOutsideRange, .badSignature, .duplicate])
    #expect(u.acceptedV1 == 1)
  }

  @Test func opensslAndMbedTLSAgree() throws {
    let fast = FastP256Verifier()
    var k = key()
    let msg = Array("wisp settle".utf8)
    let signedByK = k.sign(msg)
    let sig = try #require(signedByK)
    #expect(fast.fingerprint(ofKey: k.publicKey) == fp(k))
    #expect(fast.verify(key: k.publicKey, message: msg, signature: sig))
    for bit in 0..<(sig.count * 8) {
      var s = sig
      s[bit / 8] ^= UInt8(1 << (bit % 8))
      #expect(fast.verify(key: k.publicKey, message: msg, signature: s) == v.verify(key: k.publicKey, message: msg, signature: s))
    }
    var ossl = try #require(FastP256Signer.generate())
    let back = try #require(P256Signer(key: ossl.pem))  // OpenSSL's PEM reads as a `wisp keygen` key
    #expect(back.publicKey == ossl.publicKey)
    let signed = ossl.sign(msg)
    let s2 = try #require(signed)
    #expect(v.verify(key: ossl.publicKey, message: msg, signature: s2))
    #expect(!fast.verify(key: [UInt8](repeating: 4, count: 65), message: msg, signature: s2))  // not a point
  }

  @Test func settlementCountsEachReceiptOnceAndFlags() throws {
    var settlement = key()
    var a = key(), b = key(), c = key()
    var payer = key(), small = key(), minted = key()
    let payers = list([(payer, t0 - 100, t0 + 100, 1 << 30), (small, t0 - 100, t0 + 100, 1000)], settlement: &settlement)
    func claim(_ node: inout P256Signer, _ rs: [Receipt]) -> [UInt8] {
      Claim.build(receipts: rs, signer: &node, from: t0 - 10, to: t0 + 10, previous: nil, payersVersion: 1)!
    }
    let fa = fp(a), fb = fp(b), fc = fp(c)
    let a1 = claim(&a, [receipt(&payer, node: fa, 1, bytes: 100), receipt(&payer, node: fa, 2, bytes: 50)])
    // A's next export: binding 1 went on to 300 (cumulative), binding 2 unchanged.
    let a2 = claim(&a, [receipt(&payer, node: fa, 1, bytes: 300, epoch: t0 + 1), receipt(&payer, node: fa, 2, bytes: 50)])
    // The small payer spends 400 at each of three nodes: 1200 > 1000 in one day.
    let sa = claim(&a, [receipt(&small, node: fa, 7, bytes: 400)])
    let sb = claim(&b, [receipt(&small, node: fb, 7, bytes: 400), receipt(&minted, node: fb, 8, bytes: 1 << 40)])
    let sc = claim(&c, [receipt(&small, node: fc, 7, bytes: 400)])
    var broken = claim(&c, [receipt(&payer, node: fc, 9, bytes: 5)])
    broken[broken.count - 3] ^= 1  // the node signature
    let s = Settlement(payers: payers, threads: 2)
    for (i, f) in [a1, a2, a1, sa, sb, sc, broken].enumerated() { s.add(file: f, name: "claim\(i)") }
    s.add(file: Array("not a claim\n".utf8), name: "junk")
    let r = s.finish()
    #expect(r.claims == 8)
    let p = try #require(r.payers.first { $0.payer == fp(payer) })
    #expect(p.bytes == 350 && p.keys == 2 && !p.flagged)  // a1 twice and a2: 300 + 50, once each
    let sm = try #require(r.payers.first { $0.payer == fp(small) })
    #expect(sm.bytes == 1200 && sm.nodes == 3 && sm.flagged && sm.overBudget.first?.bytes == 1200)
    #expect(r.payers.count == 2)  // the minted payer is never paid
    let na = try #require(r.nodes.first { $0.node == fa })
    let nb = try #require(r.nodes.first { $0.node == fb })
    let nc = try #require(r.nodes.first { $0.node == fc })
    #expect(na.bytes == 750 && !na.flagged)
    #expect(nb.bytes == 400 && nb.flagged && nb.rejected[ClaimRejection.unlistedPayer.rawValue] == 1)
    #expect(nc.bytes == 400 && nc.flagged && nc.invalidClaims == 1)
    #expect(r.problems.count == 2 && r.problems.contains { $0.file == "junk" && $0.node == nil })
    #expect(r.payerNodes.first { $0.payer == fp(payer) && $0.node == fa }?.bytes == 350)
    #expect(r.flagged)
    #expect(r.json.contains("\"unlisted_payer\":1") && r.csv.contains("problem,,"))
  }
}
