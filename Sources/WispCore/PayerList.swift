// Payer lists: who may pay for relaying, for how long and how much, signed by settlement
// keys whose fingerprints a node pins (PAYER-LIST.md). Runs on host and device,
// platform-free: signatures go through `SignatureVerifier` (mbedTLS on a node, a fast
// library in `wisp credits settle`).
//
// A parsed list keeps its payers in one array sorted by fingerprint (64 bytes each:
// 10^5 payers, the format's limit, are 6.4 MB) and its signature lines; `entry(_:)` is a
// binary search. The signed bytes are rebuilt from the entries when verifying (the
// format has one spelling per value, so they equal the file's bytes).

/// One payer of a list: a P-256 key's fingerprint, its validity and its budget.
public struct PayerEntry: Equatable, Sendable {
  public var fingerprint: Fingerprint
  /// Receipts count for this payer when their epoch lies in [validFrom, validUntil].
  public var validFrom: UInt64
  public var validUntil: UInt64
  /// Bytes the payer may be charged per `period` seconds (windows start at epoch 0).
  public var budget: UInt64
  public var period: UInt64

  public init(fingerprint: Fingerprint, validFrom: UInt64, validUntil: UInt64, budget: UInt64, period: UInt64) {
    self.fingerprint = fingerprint; self.validFrom = validFrom; self.validUntil = validUntil
    self.budget = budget; self.period = period
  }

  /// Whether `epoch` lies in the validity interval (both ends included).
  public func valid(at epoch: UInt64) -> Bool { epoch >= validFrom && epoch <= validUntil }

  /// The budget window `epoch` falls in: windows are [k·period, (k+1)·period).
  public func window(of epoch: UInt64) -> UInt64 { period == 0 ? 0 : epoch / period }
}

/// Why a payer list was refused.
public enum PayerListError: Error, Equatable, Sendable {
  case tooLarge                 // over `PayerList.maxFileSize` bytes
  case badHeader                // the first line is not "wisp-payers-v1"
  case badLine(Int)             // line n is not what the format allows there
  case badValidity(Int)         // line n: valid-from after valid-until
  case badPeriod(Int)           // line n: period 0
  case unsorted(Int)            // line n: fingerprint not above the previous one (order, duplicate)
  case tooManyPayers            // more than `PayerList.maxPayers` payer lines
  case countMismatch            // "payers" disagrees with the payer lines
  case noSignature              // no signature line
  case tooManySignatures        // more than `PayerList.maxSignatures` signature lines
  case trailingData             // anything after the signature lines, or a last line without '\n'
  case badThreshold             // threshold < 1 or more than the pinned keys
  case notEnoughSignatures(valid: Int, needed: Int)  // fewer distinct pinned keys signed validly

  public var text: String {
    switch self {
    case .tooLarge: return "payer list larger than \(PayerList.maxFileSize) bytes"
    case .badHeader: return "not a wisp-payers-v1 file"
    case .badLine(let n): return "line \(n) is malformed"
    case .badValidity(let n): return "line \(n): valid-from is after valid-until"
    case .badPeriod(let n): return "line \(n): budget period is 0"
    case .unsorted(let n): return "line \(n): payers not sorted by fingerprint or repeated"
    case .tooManyPayers: return "more than \(PayerList.maxPayers) payers"
    case .countMismatch: return "payer count does not match the payer lines"
    case .noSignature: return "no signature"
    case .tooManySignatures: return "more than \(PayerList.maxSignatures) signatures"
    case .trailingData: return "data after the signatures"
    case .badThreshold: return "settlement threshold must be between 1 and the number of pinned keys"
    case .notEnoughSignatures(let v, let n):
      return "signed validly by \(v) pinned settlement key\(v == 1 ? "" : "s"), \(n) needed"
    }
  }
}

/// One `signature` line: a settlement key (65-byte point) and its DER signature.
public struct PayerListSignature: Equatable, Sendable {
  public var key: [UInt8]
  public var signature: [UInt8]
  public init(key: [UInt8], signature: [UInt8]) { self.key = key; self.signature = signature }
}

/// A parsed payer list (PAYER-LIST.md).
public struct PayerList: Sendable {
  // MARK: protocol constants (PAYER-LIST.md)
  public static let magic: StaticString = "wisp-payers-v1"
  public static let maxPayers = 100_000
  public static let maxSignatures = 16
  /// Longest payer line is 6 + 64 + 4·21 + 1 = 155 bytes; signature lines ≤ 10 + 130 + 1 + 144 + 1.
  public static let maxFileSize = 16 << 20

  public let version: UInt64
  public let created: UInt64
  /// Sorted by fingerprint (byte order), no duplicates.
  public let entries: [PayerEntry]
  public let signatures: [PayerListSignature]

  public var count: Int { entries.count }

  public init(version: UInt64, created: UInt64, entries: [PayerEntry], signatures: [PayerListSignature]) {
    self.version = version; self.created = created; self.entries = entries; self.signatures = signatures
  }

  // MARK: lookup

  /// The entry for `fp`, by binary search (O(log n)).
  public func entry(_ fp: Fingerprint) -> PayerEntry? {
    var lo = 0, hi = entries.count
    while lo < hi {
      let mid = (lo + hi) / 2
      let e = entries[mid].fingerprint
      if e == fp { return entries[mid] }
      if e.precedes(fp) { lo = mid + 1 } else { hi = mid }
    }
    return nil
  }

  /// Whether `fp` is listed and valid at `epoch`.
  public func valid(_ fp: Fingerprint, at epoch: UInt64) -> Bool {
    entry(fp)?.valid(at: epoch) ?? false
  }

  // MARK: writing

  /// The text from the first line through the `payers` line (what is signed, without the domain).
  public static func body(version: UInt64, created: UInt64, entries: [PayerEntry]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(64 + entries.count * 120)
    func put(_ s: String) { out.append(contentsOf: s.utf8) }
    put("wisp-payers-v1\nversion \(version)\ncreated \(created)\n")
    for e in entries {
      put("payer " + e.fingerprint.hex + " \(e.validFrom) \(e.validUntil) \(e.budget) \(e.period)\n")
    }
    put("payers \(entries.count)\n")
    return out
  }

  /// The bytes a settlement key signs: "wisp-payers-v1" 0x00, then `body`.
  public static func signedMessage(_ body: [UInt8]) -> [UInt8] {
    var w = ByteWriter(capacity: body.count + 15)
    w.raw(magic)
    w.u8(0)
    w.raw(body)
    return w.bytes
  }

  /// The body followed by one `signature` line per signature.
  public static func file(body: [UInt8], signatures: [PayerListSignature]) -> [UInt8] {
    var out = body
    for s in signatures {
      out.append(contentsOf: ("signature " + Claim.hex(s.key) + " " + Claim.hex(s.signature) + "\n").utf8)
    }
    return out
  }

  /// This list's file bytes (entries and signature lines as held).
  public var fileBytes: [UInt8] {
    PayerList.file(body: PayerList.body(version: version, created: created, entries: entries), signatures: signatures)
  }

  /// Sorts `entries` by fingerprint; nil if two share one.
  public static func sorted(_ entries: [PayerEntry]) -> [PayerEntry]? {
    let s = entries.sorted { $0.fingerprint.precedes($1.fingerprint) }
    var i = 1
    while i < s.count {
      if s[i].fingerprint == s[i - 1].fingerprint { return nil }
      i += 1
    }
    return s
  }

  // MARK: reading

  /// Parses the format (everything but the signatures' validity, which `verify` checks).
  public static func parse(_ file: [UInt8]) throws(PayerListError) -> PayerList {
    if file.count > maxFileSize { throw .tooLarge }
    let lines = Claim.splitLines(file)
    func line(_ i: Int) -> ArraySlice<UInt8> { file[lines[i].0..<lines[i].1] }
    guard !lines.isEmpty, Claim.equal(line(0), magic) else { throw .badHeader }
    // Every line ends with '\n' (splitLines reports an unterminated tail as a last line).
    if let last = lines.last, last.1 == file.count, file.last != 10 { throw .trailingData }
    guard lines.count >= 5 else { throw .badLine(lines.count + 1) }
    guard let version = Claim.field(line(1), "version").flatMap(Claim.decimal) else { throw .badLine(2) }
    guard let created = Claim.field(line(2), "created").flatMap(Claim.decimal) else { throw .badLine(3) }
    var entries: [PayerEntry] = []
    var n = 3
    while n < lines.count, let rest = Claim.field(line(n), "payer") {
      if entries.count == maxPayers { throw .tooManyPayers }
      let w = Claim.words(rest)
      guard w.count == 5, w[0].count == 64, let fb = Claim.unhex(w[0]), let fp = Fingerprint(fb),
            let from = Claim.decimal(w[1]), let until = Claim.decimal(w[2]),
            let budget = Claim.decimal(w[3]), let period = Claim.decimal(w[4]) else { throw .badLine(n + 1) }
      if from > until { throw .badValidity(n + 1) }
      if period == 0 { throw .badPeriod(n + 1) }
      if let prev = entries.last, !prev.fingerprint.precedes(fp) { throw .unsorted(n + 1) }
      entries.append(PayerEntry(fingerprint: fp, validFrom: from, validUntil: until, budget: budget, period: period))
      n += 1
    }
    guard n < lines.count, let count = Claim.field(line(n), "payers").flatMap(Claim.decimal) else {
      throw .badLine(n + 1)
    }
    if count != UInt64(entries.count) { throw .countMismatch }
    n += 1
    var signatures: [PayerListSignature] = []
    while n < lines.count, let rest = Claim.field(line(n), "signature") {
      if signatures.count == maxSignatures { throw .tooManySignatures }
      let w = Claim.words(rest)
      guard w.count == 2, let key = Claim.unhex(w[0]), key.count == Receipt.keySize, key[0] == 4,
            let sig = Claim.unhex(w[1]), sig.count >= Receipt.minSignature, sig.count <= Receipt.maxSignature
      else { throw .badLine(n + 1) }
      signatures.append(PayerListSignature(key: key, signature: sig))
      n += 1
    }
    if n < lines.count { throw signatures.isEmpty ? .badLine(n + 1) : .trailingData }
    if signatures.isEmpty { throw .noSignature }
    return PayerList(version: version, created: created, entries: entries, signatures: signatures)
  }

  /// nil when at least `threshold` distinct keys among `pinned` signed the list validly.
  public func verify<V: SignatureVerifier>(pinned: [Fingerprint], threshold: Int, verifier: V) -> PayerListError? {
    var distinct: [Fingerprint] = []
    for p in pinned where !distinct.contains(p) { distinct.append(p) }
    if threshold < 1 || threshold > distinct.count { return .badThreshold }
    let message = PayerList.signedMessage(PayerList.body(version: version, created: created, entries: entries))
    var good: [Fingerprint] = []
    for s in signatures {
      let fp = verifier.fingerprint(ofKey: s.key)
      guard distinct.contains(fp), !good.contains(fp) else { continue }
      if verifier.verify(key: s.key, message: message, signature: s.signature) { good.append(fp) }
    }
    return good.count >= threshold ? nil : .notEnoughSignatures(valid: good.count, needed: threshold)
  }

  /// Builds and signs a list with each signer (what `wisp payers sign` does); nil if
  /// two entries share a fingerprint, an entry is invalid or a signature fails.
  public static func build<S: MessageSigner>(version: UInt64, created: UInt64, entries: [PayerEntry],
                                             signers: inout [S]) -> [UInt8]? {
    guard entries.count <= maxPayers, !signers.isEmpty, signers.count <= maxSignatures,
          let sorted = sorted(entries) else { return nil }
    for e in sorted where e.validFrom > e.validUntil || e.period == 0 { return nil }
    let body = body(version: version, created: created, entries: sorted)
    let message = signedMessage(body)
    var sigs: [PayerListSignature] = []
    for i in signers.indices {
      guard let s = signers[i].sign(message) else { return nil }
      sigs.append(PayerListSignature(key: signers[i].publicKey, signature: s))
    }
    return file(body: body, signatures: sigs)
  }
}
