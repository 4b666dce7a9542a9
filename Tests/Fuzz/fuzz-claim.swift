// Fuzz target: Claim.verify, the parser and checker of claim files (CLAIM-FORMAT.md),
// with the deterministic signature scheme so that well-formed inputs reach every check.
import WispCore

func fuzzOne(_ input: UnsafeRawBufferPointer) {
  let file = [UInt8](input)
  switch Claim.verify(file, verifier: FakeVerifier()) {
  case .success(let s):
    invariant(s.receipts >= 0 && s.since <= UInt64.max, "summary")
  case .failure(let e): _ = e.text
  }
}

func fuzzSeeds() -> [[UInt8]] {
  var signer = fuzzNodeSigner
  let receipts = [fuzzReceipt(9, serial: 1, bytes: 4096), fuzzReceipt(10, serial: 2, bytes: 1 << 40),
                  fuzzReceipt(9, serial: 3, bytes: 1)]
  return [
    Claim.build(receipts: receipts, signer: &signer, created: 1_700_000_100, since: 1_700_000_000)!,
    Claim.build(receipts: [], signer: &signer, created: 1, since: 0)!,
  ]
}
