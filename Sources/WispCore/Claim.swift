// Claim files: the receipts a node exports to be paid, signed by the node, checkable
// with nothing but the file (CLAIM-FORMAT.md). Runs on host and device.

public enum ClaimError: Error, Equatable {
  case badHeader           // the first line is not "wisp-claim-v1"
  case badLine(Int)        // line n is not what the format allows there
  case badNodeKey          // not a 65-byte P-256 point
  case badReceipt(Int, ReceiptRejection)  // receipt line n failed a receipt check
  case duplicateCircuit(Int)              // a second receipt for one (client, serial)
  case countMismatch       // "receipts" disagrees with the receipt lines
  case totalMismatch       // "total" disagrees with the receipt lines
  case badSignature        // the node's signature does not verify
  case trailingData        // bytes after the signature line

  public var text: String {
    switch self {
    case .badHeader: return "not a wisp-claim-v1 file"
    case .badLine(let n): return "line \(n) is malformed"
    case .badNodeKey: return "node-key is not a P-256 public point"
    case .badReceipt(let n, let why): return "receipt on line \(n) rejected: \(why.name)"
    case .duplicateCircuit(let n): return "line \(n) repeats a (client, serial)"
    case .countMismatch: return "receipt count does not match"
    case .totalMismatch: return "total does not match the receipts"
    case .badSignature: return "node signature does not verify"
    case .trailingData: return "data after the node signature"
    }
  }
}

/// What a valid claim file says.
public struct ClaimSummary: Equatable {
  public var node: Fingerprint
  public var receipts: Int
  public var total: UInt64
  public var created: UInt64
  public var since: UInt64
  public init(node: Fingerprint, receipts: Int, total: UInt64, created: UInt64, since: UInt64) {
    self.node = node; self.receipts = receipts; self.total = total; self.created = created; self.since = since
  }
}

public enum Claim {
  // MARK: protocol constants (CLAIM-FORMAT.md)
  public static let magic: StaticString = "wisp-claim-v1"

  /// The bytes the node signs: "wisp-claim-v1" 0x00, then the file through the "total" line.
  static func signedMessage(_ body: UnsafeRawBufferPointer) -> [UInt8] {
    var w = ByteWriter(capacity: body.count + 14)
    w.raw(magic)
    w.u8(0)
    w.bytes.append(contentsOf: body)
    return w.bytes
  }

  /// Builds a signed claim from receipts (the latest per circuit, in the given order).
  public static func build<S: MessageSigner>(receipts: [ReceiptV1], signer: inout S, created: UInt64,
                                             since: UInt64) -> [UInt8]? {
    var text = ""
    text += "wisp-claim-v1\n"
    text += "node-key " + hex(signer.publicKey) + "\n"
    text += "created \(created)\n"
    text += "since \(since)\n"
    var total: UInt64 = 0
    for r in receipts {
      text += "receipt \(r.serial) \(r.bytes) \(r.epoch) " + hex(r.clientKey) + " " + hex(r.signature) + "\n"
      total &+= r.bytes
    }
    text += "receipts \(receipts.count)\n"
    text += "total \(total)\n"
    var body = Array(text.utf8)
    guard let sig = body.withUnsafeBytes({ b in signer.sign(signedMessage(b)) }) else { return nil }
    body.append(contentsOf: Array(("node-signature " + hex(sig) + "\n").utf8))
    return body
  }

  /// Verifies a claim file completely; every failure names its reason.
  public static func verify<V: SignatureVerifier>(_ file: [UInt8], verifier: V) -> Result<ClaimSummary, ClaimError> {
    let lines = splitLines(file)
    var n = 0
    func line(_ i: Int) -> ArraySlice<UInt8> { file[lines[i].0..<lines[i].1] }
    guard lines.count >= 7 else { return .failure(.badHeader) }
    guard equal(line(0), magic) else { return .failure(.badHeader) }
    n = 1
    guard let keyHex = field(line(1), "node-key"), let nodeKey = unhex(keyHex), nodeKey.count == ReceiptV1.keySize,
          nodeKey[0] == 4 else { return .failure(.badNodeKey) }
    guard let created = field(line(2), "created").flatMap(decimal) else { return .failure(.badLine(3)) }
    guard let since = field(line(3), "since").flatMap(decimal) else { return .failure(.badLine(4)) }
    let node = verifier.fingerprint(ofKey: nodeKey)
    var seen: [(Fingerprint, UInt64)] = []
    var total: UInt64 = 0
    n = 4
    while n < lines.count, let rest = field(line(n), "receipt") {
      let parts = words(rest)
      guard parts.count == 5, let serial = decimal(parts[0]), let bytes = decimal(parts[1]),
            let epoch = decimal(parts[2]), let key = unhex(parts[3]), let sig = unhex(parts[4])
      else { return .failure(.badLine(n + 1)) }
      let r = ReceiptV1(node: node, client: verifier.fingerprint(ofKey: key), serial: serial, bytes: bytes,
                      epoch: epoch, clientKey: key, signature: sig)
      if let why = r.check(node: node, verifier: verifier) { return .failure(.badReceipt(n + 1, why)) }
      if r.bytes == 0 { return .failure(.badReceipt(n + 1, .replay)) }
      if seen.contains(where: { $0.0 == r.client && $0.1 == serial }) { return .failure(.duplicateCircuit(n + 1)) }
      seen.append((r.client, serial))
      let (t, o) = total.addingReportingOverflow(bytes)
      if o { return .failure(.totalMismatch) }
      total = t
      n += 1
    }
    guard n + 3 == lines.count else {
      return .failure(n + 3 < lines.count ? .trailingData : .badLine(n + 1))
    }
    guard let count = field(line(n), "receipts").flatMap(decimal) else { return .failure(.badLine(n + 1)) }
    guard let claimed = field(line(n + 1), "total").flatMap(decimal) else { return .failure(.badLine(n + 2)) }
    if count != UInt64(seen.count) { return .failure(.countMismatch) }
    if claimed != total { return .failure(.totalMismatch) }
    guard let sigHex = field(line(n + 2), "node-signature"), let sig = unhex(sigHex) else {
      return .failure(.badLine(n + 3))
    }
    if lines[n + 2].1 + 1 != file.count { return .failure(.trailingData) }
    let signedEnd = lines[n + 1].1 + 1
    let ok = file.withUnsafeBytes { b in
      verifier.verify(key: nodeKey, message: signedMessage(UnsafeRawBufferPointer(rebasing: b[0..<signedEnd])),
                      signature: sig)
    }
    if !ok { return .failure(.badSignature) }
    return .success(ClaimSummary(node: node, receipts: seen.count, total: total, created: created, since: since))
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
