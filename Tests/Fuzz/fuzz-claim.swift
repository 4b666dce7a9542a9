// Fuzz target: Claim.verify, the parser and checker of claim files (CLAIM-FORMAT.md),
// with and without a payer list, with the deterministic signature scheme so that
// well-formed inputs reach every check.
import WispCore

let fuzzPayers: PayerList = {
  var s = [FakeSigner(90)]
  let e = [PayerEntry(fingerprint: FakeVerifier().fingerprint(ofKey: FakeSigner(9).publicKey),
                      validFrom: 1_600_000_000, validUntil: 1_800_000_000, budget: 1 << 40, period: 86_400)]
  return try! PayerList.parse(PayerList.build(version: 1, created: 1, entries: e, signers: &s)!)
}()

func fuzzOne(_ input: UnsafeRawBufferPointer) {
  let file = [UInt8](input)
  for payers in [nil, fuzzPayers] {
    switch Claim.verify(file, payers: payers, verifier: FakeVerifier()) {
    case .success(let s):
      invariant(s.accepted + s.rejected.count == s.receipts && s.rangeFrom <= s.rangeTo, "report")
    case .failure(let e): _ = e.text
    }
  }
}

func fuzzSeeds() -> [[UInt8]] {
  var signer = fuzzNodeSigner
  let node = FakeVerifier().fingerprint(ofKey: fuzzNodeSigner.publicKey)
  var payer = FakeSigner(9), other = FakeSigner(10)
  let v = FakeVerifier()
  let receipts = [
    Receipt.make(signer: &payer, verifier: v, node: node, binding: Binding(hi: 1, lo: 2), bytes: 4096, epoch: 1_700_000_000)!,
    Receipt.make(signer: &other, verifier: v, node: node, binding: Binding(hi: 3, lo: 4), bytes: 1 << 40, epoch: 1_700_000_000)!,
  ]
  return [
    Claim.build(receipts: receipts, v1: [fuzzReceiptV1(9, serial: 3, bytes: 1)], signer: &signer, from: 1_699_999_000,
                to: 1_700_000_100, previous: [UInt8](repeating: 1, count: 32), payersVersion: 1)!,
    Claim.build(receipts: [], signer: &signer, from: 0, to: 1, previous: nil, payersVersion: nil)!,
  ]
}
