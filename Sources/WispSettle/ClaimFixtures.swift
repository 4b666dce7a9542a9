// Signed claims made to order, for the settlement benchmark and end-to-end tests
// (`wisp credits make-claims`, a developer tool of the host build). Everything is signed
// with OpenSSL (FastP256Signer): 10^6 receipts take seconds, not the 20 minutes mbedTLS would.
//
// These claims are exactly what a node's `credits export` writes (Claim.build); only the
// receipts are made here instead of collected from clients.
#if !hasFeature(Embedded)
import CPosix
import WispCore
import WispOS

public enum ClaimFixtures {
  /// A deterministic 64-bit generator (xorshift64*), so that fixtures are reproducible.
  public struct Sequence {
    var s: UInt64
    public init(seed: UInt64) { s = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    public mutating func next() -> UInt64 {
      s ^= s >> 12; s ^= s << 25; s ^= s >> 27
      return s &* 0x2545_F491_4F6C_DD1D
    }
  }

  /// One receipt to make: which payer signs, for which binding, how much, when.
  public struct Spec {
    public var payer: Int
    public var binding: Binding
    public var bytes: UInt64
    public var epoch: UInt64
    public init(payer: Int, binding: Binding, bytes: UInt64, epoch: UInt64) {
      self.payer = payer; self.binding = binding; self.bytes = bytes; self.epoch = epoch
    }
  }

  /// A claim by `node` holding one receipt per spec, signed by `payers[spec.payer]`.
  public static func claim<N: MessageSigner, P: MessageSigner, V: SignatureVerifier>(
    node: inout N, payers: inout [P], specs: [Spec], from: UInt64, to: UInt64, previous: [UInt8]? = nil,
    payersVersion: UInt64?, verifier: V
  ) -> [UInt8]? {
    let nodeFP = verifier.fingerprint(ofKey: node.publicKey)
    var receipts: [Receipt] = []
    receipts.reserveCapacity(specs.count)
    for s in specs {
      guard let r = Receipt.make(signer: &payers[s.payer], verifier: verifier, node: nodeFP, binding: s.binding,
                                 bytes: s.bytes, epoch: s.epoch) else { return nil }
      receipts.append(r)
    }
    return Claim.build(receipts: receipts, signer: &node, from: from, to: to, previous: previous,
                       payersVersion: payersVersion)
  }

  /// The benchmark set in `dir` (made if absent): `settlement.key`, `settlement.fp`, `payers.list`
  /// (version 1, `payers` payers valid over [from, to], each budget `budget` bytes per day),
  /// and `claims/claim-NNNNN`, `claims` files of `perClaim` receipts each, every one from its own
  /// node, payers taken in turn, distinct random bindings. Claims are signed on `threads`
  /// threads. Returns an error text, or nil.
  public static func benchmark(dir: String, claims: Int, perClaim: Int, payers nPayers: Int, threads: Int,
                               from: UInt64, to: UInt64, budget: UInt64) -> String? {
    do throws(Errno) {
      if !Files.exists(dir) { try Files.makeDirectory(dir, mode: 0o755) }
      if !Files.exists(dir + "/claims") { try Files.makeDirectory(dir + "/claims", mode: 0o755) }
    } catch { return "cannot make \(dir): \(error.description)" }
    let v = FastP256Verifier()
    guard let settlement = FastP256Signer.generate() else { return "key generation failed" }
    var payerPEMs: [[UInt8]] = []
    var entries: [PayerEntry] = []
    for _ in 0..<nPayers {
      guard let p = FastP256Signer.generate() else { return "key generation failed" }
      payerPEMs.append(p.pem)
      entries.append(PayerEntry(fingerprint: v.fingerprint(ofKey: p.publicKey), validFrom: from, validUntil: to,
                                budget: budget, period: 86_400))
    }
    var signers = [settlement]
    guard let list = PayerList.build(version: 1, created: to, entries: entries, signers: &signers) else {
      return "signing the payer list failed"
    }
    do throws(Errno) {
      try Files.writeDurably(dir + "/settlement.key", settlement.pem, mode: 0o600)
      try Files.writeDurably(dir + "/settlement.fp", Array((v.fingerprint(ofKey: settlement.publicKey).hex + "\n").utf8), mode: 0o644)
      try Files.writeDurably(dir + "/payers.list", list, mode: 0o644)
    } catch { return "cannot write in \(dir): \(error.description)" }

    // Claims: thread t makes claims t, t + T, t + 2T ...; each thread loads its own payer keys.
    let t = max(1, threads)
    let fp = UnsafeMutableBufferPointer<String?>.allocate(capacity: t)  // one slot per thread
    fp.initialize(repeating: nil)
    defer { fp.deinitialize(); fp.deallocate() }
    do {
      let work: (Int) -> Void = { k in
        let v = FastP256Verifier()
        var payers: [FastP256Signer] = []
        for pem in payerPEMs {
          guard let p = FastP256Signer.load(pem: pem) else { fp[k] = "cannot load a payer key"; return }
          payers.append(p)
        }
        var c = k
        while c < claims {
          var rng = Sequence(seed: UInt64(c) &+ 1)
          guard var node = FastP256Signer.generate() else { fp[k] = "key generation failed"; return }
          var specs: [Spec] = []
          specs.reserveCapacity(perClaim)
          for j in 0..<perClaim {
            let b = Binding(hi: rng.next(), lo: rng.next())
            specs.append(Spec(payer: (c &* 7 &+ j) % payers.count, binding: b, bytes: 1 + rng.next() % 1_000_000,
                              epoch: from + rng.next() % (to - from + 1)))
          }
          guard let file = claim(node: &node, payers: &payers, specs: specs, from: from, to: to,
                                 payersVersion: 1, verifier: v) else { fp[k] = "signing a claim failed"; return }
          var name = "\(c)"
          while name.utf8.count < 5 { name = "0" + name }
          do throws(Errno) { try Files.writeDurably(dir + "/claims/claim-" + name, file, mode: 0o644) } catch {
            fp[k] = "cannot write a claim: \(error.description)"
            return
          }
          c += t
        }
      }
      var handles: [UInt] = []
      for k in 1..<t {
        switch Threads.spawn({ work(k) }) {
        case .success(let h): handles.append(h)
        case .failure(let e): fp[k] = "cannot start a thread: \(e.description)"
        }
      }
      work(0)
      for h in handles { Threads.join(h) }
    }
    for f in fp { if let f { return f } }
    return nil
  }
}
#endif
