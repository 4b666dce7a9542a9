// Recovery: reads a journal image record by record and rebuilds the ledger.
// Runs on host and device.
//
//  1. The first record must be a CRC-valid header (magic, format version, node).
//  2. Each following record must frame (length in bounds, whole, CRC-32C matches),
//     have a known type and version: 1 for every type; 2 also for a RECEIPT (a v2
//     receipt), only in a file whose header says format 2.
//  3. A receipt record must pass every receipt check (node, key binding, ECDSA
//     signature) and be higher than the latest for its key: (payer, binding) for v2,
//     (client, serial) for v1.
//  4. A commit or checkpoint record must agree with the ledger rebuilt so far
//     (receipted total and receipt count).
//  5. The scan stops at the first record that fails any of these: it and everything
//     after it are the tail, which `Journal.open` truncates away. No record that
//     failed a check is ever applied.

/// Why a scan stopped before the end of the image.
public enum ScanStop: Equatable {
  /// A partial or corrupt record (what a power cut leaves): CRC or length failed.
  case torn(FrameProblem)
  /// A record that framed correctly but says something false or unknown.
  case invalid(ScanInvalid)
}

public enum ScanInvalid: Equatable {
  case missingHeader        // the first record is not a header
  case wrongNode            // the header names another node
  case badVersion           // unknown record version or file format
  case unknownType          // unknown record type
  case badBody              // wrong body size for its type
  case receipt(ReceiptRejection)
  case commitMismatch       // a commit/checkpoint disagrees with the records before it
  case duplicateHeader      // a second header
}

/// The result of a scan: the recovered ledger and a health report.
public struct JournalScan {
  public var header: JournalHeader? = nil
  public var ledger: CreditLedger
  /// Records that passed every check.
  public var validRecords = 0
  public var receiptRecords = 0
  public var commits = 0
  /// Bytes of the valid prefix; everything after is the tail.
  public var validLength = 0
  /// Bytes after the valid prefix.
  public var tailBytes = 0
  /// Where and why the scan stopped early (nil: the image ended cleanly).
  public var stop: ScanStop? = nil
  /// The last commit marker (or checkpoint) in the valid prefix.
  public var lastCommit: JournalCommit? = nil
  /// Records after the last commit marker (valid, but not yet committed when written).
  public var uncommittedRecords = 0

  public init(ledger: CreditLedger) { self.ledger = ledger }

  /// Scans `image`. With `node` nil the node is taken from the header (health checks
  /// without the node key); otherwise a header naming another node is `wrongNode`.
  public static func scan<V: SignatureVerifier>(_ image: UnsafeRawBufferPointer, node: Fingerprint?, verifier: V) -> JournalScan {
    var s = JournalScan(ledger: CreditLedger(node: node ?? .zero))
    var offset = 0
    while offset < image.count {
      switch JournalRecord.frame(image, at: offset) {
      case .failure(let e):
        s.stop = .torn(e.problem)
      case .success(let f):
        if let why = s.apply(f, image, expectedNode: node, verifier: verifier) {
          s.stop = .invalid(why)
        } else {
          offset += f.length
          s.validRecords += 1
          s.validLength = offset
        }
      }
      if s.stop != nil { break }
    }
    s.tailBytes = image.count - s.validLength
    return s
  }

  public static func scan<V: SignatureVerifier>(_ image: [UInt8], node: Fingerprint?, verifier: V) -> JournalScan {
    image.withUnsafeBytes { scan($0, node: node, verifier: verifier) }
  }

  mutating func apply<V: SignatureVerifier>(_ f: RecordFrame, _ image: UnsafeRawBufferPointer,
                                            expectedNode: Fingerprint?, verifier: V) -> ScanInvalid? {
    let body = UnsafeRawBufferPointer(rebasing: image[f.body])
    guard let type = JournalRecordType(rawValue: f.type) else { return .unknownType }
    if f.version != JournalFormat.recordVersion
      && !(type == .receipt && f.version == JournalFormat.receiptV2Version && (header?.format ?? 0) >= 2) { return .badVersion }
    if header == nil && type != .header { return .missingHeader }
    switch type {
    case .header:
      if header != nil { return .duplicateHeader }
      guard let h = JournalRecord.parseHeader(body) else {
        return body.count == JournalFormat.headerBody ? .badVersion : .badBody
      }
      if let expectedNode, h.node != expectedNode { return .wrongNode }
      header = h
      ledger = CreditLedger(node: h.node)
    case .receipt:
      var r = ByteReader(body)
      let verdict: ReceiptVerdict
      if f.version == JournalFormat.receiptV2Version {
        guard let receipt = Receipt.decode(&r), r.remaining == 0 else { return .badBody }
        verdict = ledger.accept(receipt, verifier: verifier)
      } else {
        guard let receipt = ReceiptV1.decode(&r), r.remaining == 0 else { return .badBody }
        verdict = ledger.accept(v1: receipt, verifier: verifier)
      }
      switch verdict {
      case .rejected(let why): return .receipt(why)
      case .accepted: break
      }
      receiptRecords += 1
      uncommittedRecords += 1
    case .commit, .checkpoint:
      guard let c = JournalRecord.parseCommit(body) else { return .badBody }
      if c.total != ledger.receiptedTotal || Int(c.receipts) != ledger.receiptCount { return .commitMismatch }
      if type == .commit {
        commits += 1
        lastCommit = c
        uncommittedRecords = 0
      }
    }
    return nil
  }

  /// Receipted credit as of the last commit marker.
  public var committedTotal: UInt64 { lastCommit?.total ?? 0 }
}

extension ScanStop {
  public var text: String {
    switch self {
    case .torn(let p):
      switch p {
      case .truncated: return "torn: truncated record"
      case .badLength: return "torn: bad length"
      case .badChecksum: return "torn: CRC-32C mismatch"
      }
    case .invalid(let why):
      switch why {
      case .missingHeader: return "invalid: no header"
      case .wrongNode: return "invalid: header names another node"
      case .badVersion: return "invalid: unknown version"
      case .unknownType: return "invalid: unknown record type"
      case .badBody: return "invalid: bad record body"
      case .receipt(let r): return "invalid: receipt \(r.name)"
      case .commitMismatch: return "invalid: commit disagrees with the records before it"
      case .duplicateHeader: return "invalid: second header"
      }
    }
  }
}
