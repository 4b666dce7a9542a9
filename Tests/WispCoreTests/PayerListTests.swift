// Payer lists (PAYER-LIST.md): format, canonical re-encoding, threshold signatures,
// lookup. Signatures through the deterministic FakeVerifier (the P-256 case is in
// WispTLSTests and Tests/e2e/settle.sh).
import Testing
import WispCore

private func entry(_ n: UInt8, from: UInt64 = 100, until: UInt64 = 1_000, budget: UInt64 = 5_000,
                   period: UInt64 = 86_400) -> PayerEntry {
  PayerEntry(fingerprint: clientFP(n), validFrom: from, validUntil: until, budget: budget, period: period)
}

private func signedList(_ entries: [PayerEntry], version: UInt64 = 7, keys: [UInt8] = [90]) -> [UInt8] {
  var signers = keys.map { FakeSigner($0) }
  return PayerList.build(version: version, created: 1_700_000_000, entries: entries, signers: &signers)!
}

private func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }
private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct PayerListTests {
  let pin90 = clientFP(90), pin91 = clientFP(91), pin92 = clientFP(92)

  @Test func roundTripAndLookup() throws {
    let es = (1...50).map { entry(UInt8($0), from: UInt64($0), until: UInt64($0) + 10) }
    let file = signedList(es.reversed())
    let l = try PayerList.parse(file)
    #expect(l.version == 7 && l.created == 1_700_000_000 && l.count == 50)
    #expect(l.fileBytes == file)  // one spelling per value
    #expect(l.verify(pinned: [pin90], threshold: 1, verifier: FakeVerifier()) == nil)
    for n in 1...50 {
      let e = try #require(l.entry(clientFP(UInt8(n))))
      #expect(e.validFrom == UInt64(n))
      #expect(l.valid(clientFP(UInt8(n)), at: UInt64(n)))
      #expect(l.valid(clientFP(UInt8(n)), at: UInt64(n) + 10))
      #expect(!l.valid(clientFP(UInt8(n)), at: UInt64(n) + 11))
      #expect(!l.valid(clientFP(UInt8(n)), at: UInt64(n) - 1))
    }
    #expect(l.entry(clientFP(51)) == nil)
    #expect(!l.valid(clientFP(51), at: 5))
  }

  @Test func emptyListIsValid() throws {
    let l = try PayerList.parse(signedList([]))
    #expect(l.count == 0 && l.entry(clientFP(1)) == nil)
    #expect(l.verify(pinned: [pin90], threshold: 1, verifier: FakeVerifier()) == nil)
  }

  @Test func thresholdCountsDistinctPinnedKeys() throws {
    let es = [entry(1), entry(2)]
    let two = try PayerList.parse(signedList(es, keys: [90, 91]))
    let v = FakeVerifier()
    #expect(two.verify(pinned: [pin90, pin91], threshold: 2, verifier: v) == nil)
    #expect(two.verify(pinned: [pin90, pin92], threshold: 2, verifier: v) == .notEnoughSignatures(valid: 1, needed: 2))
    #expect(two.verify(pinned: [pin92], threshold: 1, verifier: v) == .notEnoughSignatures(valid: 0, needed: 1))
    #expect(two.verify(pinned: [pin90], threshold: 2, verifier: v) == .badThreshold)
    #expect(two.verify(pinned: [pin90, pin90], threshold: 2, verifier: v) == .badThreshold)
    #expect(two.verify(pinned: [pin90], threshold: 0, verifier: v) == .badThreshold)
    // One key signing twice counts once.
    let once = signedList(es, keys: [90])
    let sigLine = text(once).split(separator: "\n").last!
    let doubled = try PayerList.parse(once + bytes(sigLine + "\n"))
    #expect(doubled.verify(pinned: [pin90, pin91], threshold: 2, verifier: v) == .notEnoughSignatures(valid: 1, needed: 2))
  }

  @Test func anyChangedByteBreaksTheSignature() throws {
    let file = signedList([entry(1), entry(2, budget: 9_999)])
    let s = text(file)
    let forged = s.replacing(" 9999 ", with: " 99999 ")
    #expect(forged != s)
    let l = try PayerList.parse(bytes(forged))
    #expect(l.verify(pinned: [pin90], threshold: 1, verifier: FakeVerifier()) == .notEnoughSignatures(valid: 0, needed: 1))
    let v2 = try PayerList.parse(bytes(s.replacing("version 7\n", with: "version 8\n")))
    #expect(v2.verify(pinned: [pin90], threshold: 1, verifier: FakeVerifier()) != nil)
  }

  @Test func formatErrorsNameTheirLine() {
    let good = text(signedList([entry(1), entry(2)]))
    var lines = good.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    lines.removeLast()  // the empty piece after the final '\n'
    func file(_ ls: [String]) -> [UInt8] { bytes(ls.joined(separator: "\n") + "\n") }
    func err(_ b: [UInt8]) -> PayerListError? {
      do { _ = try PayerList.parse(b); return nil } catch { return error }
    }
    #expect(err(file(lines)) == nil)
    #expect(err(bytes("wisp-payers-v2\n")) == .badHeader)
    #expect(err([]) == .badHeader)
    #expect(err(Array(bytes(good).dropLast())) == .trailingData)
    var l = lines; l[1] = "version 07"
    #expect(err(file(l)) == .badLine(2))
    l = lines; l[3] = l[3].uppercased().replacing("PAYER", with: "payer")
    #expect(err(file(l)) == .badLine(4))
    l = lines; l.swapAt(3, 4)
    #expect(err(file(l)) == .unsorted(5))
    l = lines; l[4] = l[3]
    #expect(err(file(l)) == .unsorted(5))
    l = lines; l[5] = "payers 3"
    #expect(err(file(l)) == .countMismatch)
    l = lines; l.removeLast()
    #expect(err(file(l)) == .noSignature)
    l = lines; l.append("extra")
    #expect(err(file(l)) == .trailingData)
    l = lines; l[3] = "payer " + clientFP(1).hex + " 5 4 1 1"
    #expect(err(file(l)) == .badValidity(4))
    l = lines; l[3] = "payer " + clientFP(1).hex + " 4 5 1 0"
    #expect(err(file(l)) == .badPeriod(4))
    l = lines; l[3] += " "
    #expect(err(file(l)) == .badLine(4))
    l = lines; l[6] = "signature 04 00"
    #expect(err(file(l)) == .badLine(7))
    l = lines
    for _ in 0..<PayerList.maxSignatures { l.append(lines[6]) }
    #expect(err(file(l)) == .tooManySignatures)
    #expect(err([UInt8](repeating: 65, count: PayerList.maxFileSize + 1)) == .tooLarge)
  }

  @Test func buildRefusesDuplicatesAndBadEntries() {
    var s = [FakeSigner(90)]
    #expect(PayerList.build(version: 1, created: 1, entries: [entry(1), entry(1)], signers: &s) == nil)
    #expect(PayerList.build(version: 1, created: 1, entries: [entry(1, period: 0)], signers: &s) == nil)
    #expect(PayerList.build(version: 1, created: 1, entries: [entry(1, from: 9, until: 8)], signers: &s) == nil)
    var none: [FakeSigner] = []
    #expect(PayerList.build(version: 1, created: 1, entries: [entry(1)], signers: &none) == nil)
  }

  @Test func budgetWindows() {
    let e = entry(1, period: 100)
    #expect(e.window(of: 0) == 0 && e.window(of: 99) == 0 && e.window(of: 100) == 1)
  }
}
