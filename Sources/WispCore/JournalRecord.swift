// Journal record framing and the four record types (JOURNAL-FORMAT.md).
// Runs on host and device.
//
//   0   u32  length of the whole record, 12 ≤ length ≤ 1024
//   4   u8   type
//   5   u8   record version (1; a RECEIPT record is 1 for a v1 receipt, 2 for a v2 receipt)
//   6   u16  flags (0)
//   8   ...  body (length − 12 bytes)
//   L−4 u32  CRC-32C of bytes [0, L−4)
//
// All integers big-endian.

public enum JournalRecordType: UInt8 {
  case header = 0x01
  case receipt = 0x02
  case checkpoint = 0x03
  case commit = 0x04
}

public enum JournalFormat {
  // MARK: protocol constants (JOURNAL-FORMAT.md)
  public static let magic: StaticString = "WISPJRNL"  // 8 bytes, first in the header body
  public static let formatVersion: UInt16 = 2         // file format version in the header (what we write)
  public static let oldFormatVersion: UInt16 = 1      // written before issue 15: still read, compacted to 2 on open
  public static let recordVersion: UInt8 = 1          // per-record body version (header, commit, checkpoint, v1 receipt)
  public static let receiptV2Version: UInt8 = 2       // a RECEIPT record holding a v2 receipt
  public static let overhead = 12                     // 8-byte prefix + 4-byte CRC
  public static let minRecord = 12
  public static let maxRecord = 1024
  public static let headerBody = 8 + 2 + 32 + 8 + 8   // magic, version, node, created, generation
  public static let commitBody = 8 + 8 + 8 + 4        // sequence, epoch, total, receipts
  public static let checkpointBody = 8 + 8 + 8 + 4    // generation, epoch, total, receipts
}

/// The header: first record of every journal file.
public struct JournalHeader: Equatable {
  public var node: Fingerprint
  public var created: UInt64
  /// Incremented by every compaction.
  public var generation: UInt64
  /// The file format version the header says (1: written before issue 15).
  public var format: UInt16
  public init(node: Fingerprint, created: UInt64, generation: UInt64, format: UInt16 = JournalFormat.formatVersion) {
    self.node = node; self.created = created; self.generation = generation; self.format = format
  }
}

/// A commit marker: everything before it was made durable together.
public struct JournalCommit: Equatable {
  public var sequence: UInt64
  public var epoch: UInt64
  /// The ledger's receipted total with every receipt before the marker.
  public var total: UInt64
  /// The number of circuits with a receipt at that point.
  public var receipts: UInt32
  public init(sequence: UInt64, epoch: UInt64, total: UInt64, receipts: UInt32) {
    self.sequence = sequence; self.epoch = epoch; self.total = total; self.receipts = receipts
  }
}

public enum JournalRecord {
  /// Appends one framed record with its CRC.
  public static func append(_ type: JournalRecordType, version: UInt8 = JournalFormat.recordVersion, body: [UInt8],
                            to w: inout ByteWriter) {
    let start = w.bytes.count
    let length = JournalFormat.overhead + body.count
    precondition(length <= JournalFormat.maxRecord, "journal record too large")
    w.u32(UInt32(length))
    w.u8(type.rawValue)
    w.u8(version)
    w.u16(0)
    w.raw(body)
    let crc = w.bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start...])) }
    w.u32(crc)
  }

  public static func headerBody(_ h: JournalHeader) -> [UInt8] {
    var w = ByteWriter(capacity: JournalFormat.headerBody)
    w.raw(JournalFormat.magic)
    w.u16(h.format)
    w.fingerprint(h.node)
    w.u64(h.created)
    w.u64(h.generation)
    return w.bytes
  }

  public static func commitBody(_ c: JournalCommit) -> [UInt8] {
    var w = ByteWriter(capacity: JournalFormat.commitBody)
    w.u64(c.sequence); w.u64(c.epoch); w.u64(c.total); w.u32(c.receipts)
    return w.bytes
  }

  /// A checkpoint has the commit layout with the generation in place of the sequence.
  public static func checkpointBody(generation: UInt64, epoch: UInt64, total: UInt64, receipts: UInt32) -> [UInt8] {
    commitBody(JournalCommit(sequence: generation, epoch: epoch, total: total, receipts: receipts))
  }

  public static func parseHeader(_ body: UnsafeRawBufferPointer) -> JournalHeader? {
    guard body.count == JournalFormat.headerBody else { return nil }
    let m = JournalFormat.magic
    for i in 0..<8 where body[i] != m.utf8Start[i] { return nil }
    var r = ByteReader(body, offset: 8)
    guard let format = r.u16(), format == JournalFormat.formatVersion || format == JournalFormat.oldFormatVersion,
          let node = r.fingerprint(), let created = r.u64(), let gen = r.u64() else { return nil }
    return JournalHeader(node: node, created: created, generation: gen, format: format)
  }

  public static func parseCommit(_ body: UnsafeRawBufferPointer) -> JournalCommit? {
    guard body.count == JournalFormat.commitBody else { return nil }
    var r = ByteReader(body)
    return JournalCommit(sequence: r.u64()!, epoch: r.u64()!, total: r.u64()!, receipts: r.u32()!)
  }
}

/// One framed record found in a buffer.
public struct RecordFrame {
  public var type: UInt8
  public var version: UInt8
  public var offset: Int
  public var length: Int
  /// The body's range in the buffer.
  public var body: Range<Int> { (offset + 8)..<(offset + length - 4) }
}

/// Why reading records stopped before the end of the buffer.
public enum FrameProblem: Equatable {
  case truncated     // fewer bytes left than a record needs (torn tail)
  case badLength     // length field outside 12...1024 (torn or zeroed)
  case badChecksum   // CRC-32C mismatch
}

extension JournalRecord {
  /// Frames the record at `offset`, checking its length and CRC.
  public static func frame(_ buf: UnsafeRawBufferPointer, at offset: Int) -> Result<RecordFrame, FrameProblemError> {
    let left = buf.count - offset
    if left < 4 { return .failure(FrameProblemError(.truncated)) }
    var r = ByteReader(buf, offset: offset)
    let length = Int(r.u32()!)
    if length < JournalFormat.minRecord || length > JournalFormat.maxRecord {
      return .failure(FrameProblemError(left < JournalFormat.minRecord ? .truncated : .badLength))
    }
    if left < length { return .failure(FrameProblemError(.truncated)) }
    let stored = ByteReader(buf, offset: offset + length - 4)
    var s = stored
    let crc = s.u32()!
    if CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buf[offset..<offset + length - 4])) != crc {
      return .failure(FrameProblemError(.badChecksum))
    }
    return .success(RecordFrame(type: buf[offset + 4], version: buf[offset + 5], offset: offset, length: length))
  }
}

public struct FrameProblemError: Error {
  public let problem: FrameProblem
  public init(_ p: FrameProblem) { problem = p }
}
