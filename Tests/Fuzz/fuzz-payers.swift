// Fuzz target: PayerList.parse and verify (PAYER-LIST.md), the payer list a node loads
// and settlement reads, with the deterministic signature scheme.
import WispCore

func fuzzOne(_ input: UnsafeRawBufferPointer) {
  do throws(PayerListError) {
    let l = try PayerList.parse([UInt8](input))
    invariant(l.fileBytes == [UInt8](input), "one spelling per value")
    var i = 1
    while i < l.entries.count {
      invariant(l.entries[i - 1].fingerprint.precedes(l.entries[i].fingerprint), "sorted")
      i += 1
    }
    for e in l.entries { invariant(l.entry(e.fingerprint) == e, "lookup") }
    _ = l.verify(pinned: [FakeVerifier().fingerprint(ofKey: FakeSigner(90).publicKey)], threshold: 1, verifier: FakeVerifier())
  } catch {
    _ = error.text
  }
}

func fuzzSeeds() -> [[UInt8]] {
  var s = [FakeSigner(90), FakeSigner(91)]
  let v = FakeVerifier()
  let e = (1...3).map {
    PayerEntry(fingerprint: v.fingerprint(ofKey: FakeSigner(UInt8($0)).publicKey), validFrom: 10, validUntil: 20,
               budget: 1000, period: 86_400)
  }
  return [PayerList.build(version: 2, created: 1_700_000_000, entries: e, signers: &s)!,
          PayerList.build(version: 1, created: 0, entries: [], signers: &s)!]
}
