// Claim files: the receipts a node exports to be paid, signed by the node, checkable
// with nothing but the file and, for payers, a payer list (CLAIM-FORMAT.md). Runs on host
// and device.
//
// Checking a claim is two layers:
//  1. the file (`parse` + `nodeSignatureValid`): format, counts, total, the node's signature;
//     any failure rejects the whole claim (`ClaimError`);
//  2. each receipt (`rejection`): its signature, the claim's range, the payer list; a failure
//     rejects that receipt only, with its reason (`ClaimRejection`).
// `verify` does both with one verifier (`wisp credits verify`); `wisp credits settle` runs
// layer 1 and the signatures of layer 2 on many threads with a faster library, then the
// same `rejection` rules.

public enum ClaimError: Error, Equatable {
  case tooLarge            // over `Claim.maxFileSize`
  case badHeader           // the first line is not "wisp-claim-v2"
  case oldFormat           // "wisp-claim-v1": written before payer-backed receipts
  case badLine(Int)        // line n is not what the format allows there
  case badNodeKey          // not a 65-byte P-256 point
  case badRange            // range from > to
  case countMismatch       // "receipts" disagrees with the receipt lines
  case totalMismatch       // "total" disagrees with the receipt lines (or above 2^64 − 1)
  case badSignature        // the node's signature does not verify
  case trailingData        // bytes after the signature line, or a last line without '\n'

  public var text: String {
    switch self {
    case .tooLarge: return "claim larger than \(Claim.maxFileSize) bytes"
    case .badHeader: return "not a wisp-claim-v2 file"
    case .oldFormat: return "a wisp-claim-v1 file (before payer-backed receipts): not claimable, export again"
    case .badLine(let n): return "line \(n) is malformed"
    case .badNodeKey: return "node-key is not a P-256 public point"
    case .badRange: return "range starts after it ends"
    case .countMismatch: return "receipt count does not match"
    case .totalMismatch: return "total does not match the receipts"
    case .badSignature: return "node signature does not verify"
    case .trailingData: return "data after the node signature"
    }
  }
}

/// Why one receipt of a valid claim is not paid.
public enum ClaimRejection: Int, CaseIterable, Equatable, Sendable {
  case badSignature = 0    // the payer's (client's) signature does not verify: forged or altered
  case duplicate           // a second line for the same (payer, binding) in one claim
  case epochOutsideRange   // the receipt's epoch is outside the claim's range
  case v1NotClaimable      // a v1 receipt (client key, no binding): never claimable under a payer list
  case unlistedPayer       // the payer is not in the payer list (minted: a self-made key)
  case payerNotYetValid    // the epoch is before the payer's valid-from
  case payerExpired        // the epoch is after the payer's valid-until

  public var name: StaticString {
    switch self {
    case .badSignature: return "bad_signature"
    case .duplicate: return "duplicate"
    case .epochOutsideRange: return "epoch_outside_range"
    case .v1NotClaimable: return "v1_not_claimable"
    case .unlistedPayer: return "unlisted_payer"
    case .payerNotYetValid: return "payer_not_yet_valid"
    case .payerExpired: return "payer_expired"
    }
  }

  public static let count = 7
}

/// One receipt line of a claim, as parsed (nothing verified yet).
public struct ClaimReceipt: Equatable, Sendable {
  /// `receipt-v1`: a version 1 receipt (client key and serial; `binding` = (0, serial)).
  public var v1: Bool
  /// The payer's (v2) or the client's (v1) public key, 65 bytes.
  public var key: [UInt8]
  public var binding: Binding
  public var bytes: UInt64
  public var epoch: UInt64
  public var signature: [UInt8]
  /// 1-based line number in the file.
  public var line: Int

  public init(v1: Bool, key: [UInt8], binding: Binding, bytes: UInt64, epoch: UInt64, signature: [UInt8], line: Int) {
    self.v1 = v1; self.key = key; self.binding = binding; self.bytes = bytes; self.epoch = epoch
    self.signature = signature; self.line = line
  }

  /// The message its signer signed, for the node `node` and signer fingerprint `signer`.
  public func signedMessage(node: Fingerprint, signer: Fingerprint) -> [UInt8] {
    if v1 {
      return ReceiptV1(node: node, client: signer, serial: binding.lo, bytes: bytes, epoch: epoch,
                       clientKey: key, signature: signature).signedMessage
    }
    return Receipt(node: node, payer: signer, binding: binding, bytes: bytes, epoch: epoch, payerKey: key,
                   signature: signature).signedMessage
  }
}

/// A claim file's content after `Claim.parse` (format checked, no signature checked).
public struct ParsedClaim: Sendable {
  public var nodeKey: [UInt8]
  public var rangeFrom: UInt64
  public var rangeTo: UInt64
  /// SHA-256 of the previous claim file this node exported, or nil ("none").
  public var previous: [UInt8]?
  /// The payer-list version the node worked under, or nil ("unverified": no list).
  public var payersVersion: UInt64?
  public var receipts: [ClaimReceipt]
  /// Sum of every receipt line's bytes (v1 included).
  public var total: UInt64
  public var nodeSignature: [UInt8]
  /// The signed part of the file is [0, signedEnd).
  public var signedEnd: Int
}

/// What `Claim.verify` found: the claim is valid; `rejected` lists the receipts not paid.
public struct ClaimReport: Equatable {
  public var node: Fingerprint
  public var rangeFrom: UInt64, rangeTo: UInt64
  public var previous: [UInt8]?
  public var payersVersion: UInt64?
  public var receipts: Int
  public var total: UInt64
  /// Accepted receipts and their bytes (v1 ones too when no payer list was given).
  public var accepted: Int
  public var acceptedBytes: UInt64
  /// Of the accepted: the v1 receipts (only without a payer list).
  public var acceptedV1: Int
  /// Each rejected receipt, in file order: its line, reason, signer (payer or v1 client), amount, epoch.
  public var rejected: [(line: Int, reason: ClaimRejection, signer: Fingerprint, bytes: UInt64, epoch: UInt64)]

  public static func == (a: ClaimReport, b: ClaimReport) -> Bool {
    a.node == b.node && a.rangeFrom == b.rangeFrom && a.rangeTo == b.rangeTo && a.previous == b.previous
      && a.payersVersion == b.payersVersion && a.receipts == b.receipts && a.total == b.total
      && a.accepted == b.accepted && a.acceptedBytes == b.acceptedBytes && a.acceptedV1 == b.acceptedV1
      && a.rejected.map { $0.line } == b.rejected.map { $0.line }
      && a.rejected.map { $0.reason } == b.rejected.map { $0.reason }
  }
}

public enum Claim {
  // MARK: protocol constants (CLAIM-FORMAT.md)
  public static let magic: StaticString = "wisp-claim-v2"
  public static let maxFileSize = 256 << 20

  /// The bytes the node signs: "wisp-claim-v2" 0x00, then the file through the "total" line.
  static func signedMessage(_ body: UnsafeRawBufferPointer) -> [UInt8] {
    var w = ByteWriter(capacity: body.count + 14)
    w.raw(magic)
    w.u8(0)
    w.bytes.append(contentsOf: body)
    return w.bytes
  }

  // MARK: writing

  /// Builds a signed claim: the v2 receipts, then the v1 ones, in the given order.
  /// `previous`: SHA-256 of the node's previous claim file (nil: none);
  /// `payersVersion`: the payer list's version (nil: unverified).
  public static func build<S: MessageSigner>(receipts: [Receipt], v1: [ReceiptV1] = [], signer: inout S,
                                             from: UInt64, to: UInt64, previous: [UInt8]?,
                                             payersVersion: UInt64?) -> [UInt8]? {
    guard from <= to, previous == nil || previous!.count == 32 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(300 + (receipts.count + v1.count) * 360)
    func put(_ s: String) { out.append(contentsOf: s.utf8) }
    put("wisp-claim-v2\nnode-key " + hex(signer.publicKey) + "\n")
    put("range \(from) \(to)\n")
    put("previous " + (previous.map(hex) ?? "none") + "\n")
    put("payers " + (payersVersion.map { "\($0)" } ?? "unverified") + "\n")
    put("amounts cumulative\n")
    var total: UInt64 = 0
    for r in receipts {
      put("receipt " + hex(r.payerKey) + " " + r.binding.hex + " \(r.bytes) \(r.epoch) " + hex(r.signature) + "\n")
      total &+= r.bytes
    }
    for r in v1 {
      put("receipt-v1 " + hex(r.clientKey) + " \(r.serial) \(r.bytes) \(r.epoch) " + hex(r.signature) + "\n")
      total &+= r.bytes
    }
    put("receipts \(receipts.count + v1.count)\ntotal \(total)\n")
    guard let sig = out.withUnsafeBytes({ b in signer.sign(signedMessage(b)) }) else { return nil }
    put("node-signature " + hex(sig) + "\n")
    return out
  }

  // MARK: reading

  /// Checks the format, the count and the total; verifies no signature.
  public static func parse(_ file: [UInt8]) throws(ClaimError) -> ParsedClaim {
    if file.count > maxFileSize { throw .tooLarge }
    let lines = splitLines(file)
    func line(_ i: Int) -> ArraySlice<UInt8> { file[lines[i].0..<lines[i].1] }
    guard !lines.isEmpty else { throw .badHeader }
    if equal(line(0), "wisp-claim-v1") { throw .oldFormat }
    guard equal(line(0), magic) else { throw .badHeader }
    if file.last != 10 { throw .trailingData }
    guard lines.count >= 10 else { throw .badLine(lines.count + 1) }
    guard let keyHex = field(line(1), "node-key"), let nodeKey = unhex(keyHex), nodeKey.count == Receipt.keySize,
          nodeKey[0] == 4 else { throw .badNodeKey }
    guard let r = field(line(2), "range").map(words), r.count == 2, let from = decimal(r[0]), let to = decimal(r[1])
    else { throw .badLine(3) }
    if from > to { throw .badRange }
    guard let p = field(line(3), "previous") else { throw .badLine(4) }
    var previous: [UInt8]? = nil
    if !equal(p, "none") {
      guard p.count == 64, let h = unhex(p) else { throw .badLine(4) }
      previous = h
    }
    guard let pv = field(line(4), "payers") else { throw .badLine(5) }
    var payersVersion: UInt64? = nil
    if !equal(pv, "unverified") {
      guard let v = decimal(pv) else { throw .badLine(5) }
      payersVersion = v
    }
    guard equal(line(5), "amounts cumulative") else { throw .badLine(6) }
    var receipts: [ClaimReceipt] = []
    var total: UInt64 = 0
    var n = 6
    while n < lines.count {
      let l = line(n)
      let v1: Bool
      let rest: ArraySlice<UInt8>
      if let x = field(l, "receipt") { v1 = false; rest = x } else if let x = field(l, "receipt-v1") { v1 = true; rest = x } else { break }
      let w = words(rest)
      guard w.count == 5, let key = unhex(w[0]), key.count == Receipt.keySize, key[0] == 4,
            let bytes = decimal(w[2]), let epoch = decimal(w[3]),
            let sig = unhex(w[4]), sig.count >= Receipt.minSignature, sig.count <= Receipt.maxSignature
      else { throw .badLine(n + 1) }
      let binding: Binding
      if v1 {
        guard let serial = decimal(w[1]) else { throw .badLine(n + 1) }
        binding = Binding(hi: 0, lo: serial)
      } else {
        guard w[1].count == 32, let b = unhex(w[1]), let bb = Binding(b) else { throw .badLine(n + 1) }
        binding = bb
      }
      let (t, o) = total.addingReportingOverflow(bytes)
      if o { throw .totalMismatch }
      total = t
      receipts.append(ClaimReceipt(v1: v1, key: key, binding: binding, bytes: bytes, epoch: epoch, signature: sig,
                                   line: n + 1))
      n += 1
    }
    guard n + 3 <= lines.count else { throw .badLine(n + 1) }
    guard let count = field(line(n), "receipts").flatMap(decimal) else { throw .badLine(n + 1) }
    guard let claimed = field(line(n + 1), "total").flatMap(decimal) else { throw .badLine(n + 2) }
    if count != UInt64(receipts.count) { throw .countMismatch }
    if claimed != total { throw .totalMismatch }
    guard let sigHex = field(line(n + 2), "node-signature"), let sig = unhex(sigHex),
          sig.count >= Receipt.minSignature, sig.count <= Receipt.maxSignature else { throw .badLine(n + 3) }
    if n + 3 != lines.count { throw .trailingData }
    return ParsedClaim(nodeKey: nodeKey, rangeFrom: from, rangeTo: to, previous: previous,
                       payersVersion: payersVersion, receipts: receipts, total: total, nodeSignature: sig,
                       signedEnd: lines[n + 1].1 + 1)
  }

  /// The node key of a file that does not parse, when its second line is a readable
  /// `node-key` line (so that settlement can flag the node), else nil.
  public static func nodeKey(ofBadFile file: [UInt8]) -> [UInt8]? {
    let head = Array(file.prefix(256))
    let lines = splitLines(head)
    guard lines.count >= 2, let h = field(head[lines[1].0..<lines[1].1], "node-key"), let k = unhex(h),
          k.count == Receipt.keySize, k[0] == 4 else { return nil }
    return k
  }

  /// Whether the node's signature covers the file as parsed.
  public static func nodeSignatureValid<V: SignatureVerifier>(_ file: [UInt8], _ c: ParsedClaim, verifier: V) -> Bool {
    file.withUnsafeBytes { b in
      verifier.verify(key: c.nodeKey, message: signedMessage(UnsafeRawBufferPointer(rebasing: b[0..<c.signedEnd])),
                      signature: c.nodeSignature)
    }
  }

  /// The rules for one receipt of a valid claim, in order (CLAIM-FORMAT.md, "Receipts"):
  /// signature, duplicate, range, v1 (under a payer list), payer listed, payer valid.
  /// nil: paid. `signer`: the fingerprint of `r.key`; `signatureValid`: its signature check.
  public static func rejection(_ r: ClaimReceipt, signer: Fingerprint, signatureValid: Bool, duplicate: Bool,
                               from: UInt64, to: UInt64, payers: PayerList?) -> ClaimRejection? {
    if !signatureValid { return .badSignature }
    if duplicate { return .duplicate }
    if r.epoch < from || r.epoch > to { return .epochOutsideRange }
    guard let payers else { return nil }
    if r.v1 { return .v1NotClaimable }
    guard let e = payers.entry(signer) else { return .unlistedPayer }
    if r.epoch < e.validFrom { return .payerNotYetValid }
    if r.epoch > e.validUntil { return .payerExpired }
    return nil
  }

  /// For each receipt, whether an earlier line has the same (v1, signer, binding):
  /// O(n log n) by sorting indices.
  public static func duplicates(_ receipts: [ClaimReceipt], signers: [Fingerprint]) -> [Bool] {
    var out = [Bool](repeating: false, count: receipts.count)
    if receipts.count < 2 { return out }
    func less(_ a: Int, _ b: Int) -> Bool {
      let x = receipts[a], y = receipts[b]
      if x.v1 != y.v1 { return !x.v1 }
      if signers[a] != signers[b] { return signers[a].precedes(signers[b]) }
      if x.binding.hi != y.binding.hi { return x.binding.hi < y.binding.hi }
      if x.binding.lo != y.binding.lo { return x.binding.lo < y.binding.lo }
      return a < b
    }
    let order = Array(0..<receipts.count).sorted(by: less)
    for i in 1..<order.count {
      let a = order[i - 1], b = order[i]
      if receipts[a].v1 == receipts[b].v1 && signers[a] == signers[b] && receipts[a].binding == receipts[b].binding {
        out[b] = true
      }
    }
    return out
  }

  /// Verifies a claim completely: the file, then every receipt (against `payers` when given;
  /// the caller has verified the list). A file failure is `.failure`; receipt failures are
  /// listed in the report.
  public static func verify<V: SignatureVerifier>(_ file: [UInt8], payers: PayerList? = nil,
                                                  verifier: V) -> Result<ClaimReport, ClaimError> {
    let c: ParsedClaim
    do throws(ClaimError) { c = try parse(file) } catch { return .failure(error) }
    if !nodeSignatureValid(file, c, verifier: verifier) { return .failure(.badSignature) }
    let node = verifier.fingerprint(ofKey: c.nodeKey)
    let signers = c.receipts.map { verifier.fingerprint(ofKey: $0.key) }
    let dup = duplicates(c.receipts, signers: signers)
    var report = ClaimReport(node: node, rangeFrom: c.rangeFrom, rangeTo: c.rangeTo, previous: c.previous,
                             payersVersion: c.payersVersion, receipts: c.receipts.count, total: c.total,
                             accepted: 0, acceptedBytes: 0, acceptedV1: 0, rejected: [])
    for (i, r) in c.receipts.enumerated() {
      let ok = verifier.verify(key: r.key, message: r.signedMessage(node: node, signer: signers[i]),
                               signature: r.signature)
      if let why = rejection(r, signer: signers[i], signatureValid: ok, duplicate: dup[i], from: c.rangeFrom,
                             to: c.rangeTo, payers: payers) {
        report.rejected.append((line: r.line, reason: why, signer: signers[i], bytes: r.bytes, epoch: r.epoch))
      } else {
        report.accepted += 1
        report.acceptedBytes &+= r.bytes
        if r.v1 { report.acceptedV1 += 1 }
      }
    }
    return .success(report)
  }

  // MARK: text helpers (bytes only: no Unicode tables)

  static func hex(_ b: [UInt8]) -> String { b.withUnsafeBytes { hexString($0) } }

  /// Line ranges [start, end) without the '\n'; every line must end with '\n'.
  static func splitLines(_ f: [UInt8]) -> [(Int, Int)] {
    var out: [(Int, Int)] = []
    var start = 0
    for i in 0..<f.count where f[i] == 10 {
      out.append((start, i))
      start = i + 1
    }
    if start < f.count { out.append((start, f.count)) }  // unterminated last line
    return out
  }

  static func equal(_ s: ArraySlice<UInt8>, _ lit: StaticString) -> Bool {
    guard s.count == lit.utf8CodeUnitCount else { return false }
    var i = 0
    for b in s { if b != lit.utf8Start[i] { return false }; i += 1 }
    return true
  }

  /// The rest of the line after "name ", or nil.
  static func field(_ s: ArraySlice<UInt8>, _ name: StaticString) -> ArraySlice<UInt8>? {
    let n = name.utf8CodeUnitCount
    guard s.count > n + 1, equal(s.prefix(n), name), s[s.startIndex + n] == 32 else { return nil }
    return s.dropFirst(n + 1)
  }

  static func words(_ s: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
    s.split(separator: 32, omittingEmptySubsequences: false)
  }

  static func decimal(_ s: ArraySlice<UInt8>) -> UInt64? {
    guard !s.isEmpty, s.count <= 20, !(s.count > 1 && s.first == 48) else { return nil }
    var v: UInt64 = 0
    for b in s {
      guard b >= 48, b <= 57 else { return nil }
      let (m, o1) = v.multipliedReportingOverflow(by: 10)
      let (a, o2) = m.addingReportingOverflow(UInt64(b - 48))
      if o1 || o2 { return nil }
      v = a
    }
    return v
  }

  /// Lower-case hex only (one spelling per value).
  static func unhex(_ s: ArraySlice<UInt8>) -> [UInt8]? {
    guard !s.isEmpty, s.count % 2 == 0 else { return nil }
    func nib(_ c: UInt8) -> UInt8? {
      if c >= 48 && c <= 57 { return c - 48 }
      if c >= 97 && c <= 102 { return c - 87 }
      return nil
    }
    var out: [UInt8] = []
    out.reserveCapacity(s.count / 2)
    var i = s.startIndex
    while i < s.endIndex {
      guard let h = nib(s[i]), let l = nib(s[i + 1]) else { return nil }
      out.append(h << 4 | l)
      i += 2
    }
    return out
  }
}
