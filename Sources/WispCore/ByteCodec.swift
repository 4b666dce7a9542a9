// Big-endian byte writer and bounds-checked reader for the journal and receipt
// formats (JOURNAL-FORMAT.md). Runs on host and device.

/// Appends big-endian fields to a growing byte array.
public struct ByteWriter {
  public var bytes: [UInt8]
  public init(capacity: Int = 256) {
    bytes = []
    bytes.reserveCapacity(capacity)
  }

  public mutating func u8(_ v: UInt8) { bytes.append(v) }
  public mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(v & 0xFF)) }
  public mutating func u32(_ v: UInt32) {
    for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8((v >> UInt32(s)) & 0xFF)) }
  }
  public mutating func u64(_ v: UInt64) {
    for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((v >> UInt64(s)) & 0xFF)) }
  }
  public mutating func raw(_ v: [UInt8]) { bytes.append(contentsOf: v) }
  public mutating func raw(_ v: StaticString) {
    for i in 0..<v.utf8CodeUnitCount { bytes.append(v.utf8Start[i]) }
  }
  public mutating func fingerprint(_ f: Fingerprint) { u64(f.w0); u64(f.w1); u64(f.w2); u64(f.w3) }
}

/// Reads big-endian fields; every read checks the bounds and fails with nil.
public struct ByteReader {
  public let bytes: UnsafeRawBufferPointer
  public private(set) var offset: Int
  public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
    self.bytes = bytes
    self.offset = offset
  }

  public var remaining: Int { bytes.count - offset }

  public mutating func u8() -> UInt8? {
    guard remaining >= 1 else { return nil }
    offset += 1
    return bytes[offset - 1]
  }
  public mutating func u16() -> UInt16? {
    guard remaining >= 2 else { return nil }
    let v = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    offset += 2
    return v
  }
  public mutating func u32() -> UInt32? {
    guard remaining >= 4 else { return nil }
    var v: UInt32 = 0
    for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
    offset += 4
    return v
  }
  public mutating func u64() -> UInt64? {
    guard remaining >= 8 else { return nil }
    var v: UInt64 = 0
    for i in 0..<8 { v = v << 8 | UInt64(bytes[offset + i]) }
    offset += 8
    return v
  }
  public mutating func raw(_ n: Int) -> [UInt8]? {
    guard n >= 0, remaining >= n else { return nil }
    let out = [UInt8](bytes[offset..<offset + n])
    offset += n
    return out
  }
  public mutating func fingerprint() -> Fingerprint? {
    guard let a = u64(), let b = u64(), let c = u64(), let d = u64() else { return nil }
    return Fingerprint(w0: a, w1: b, w2: c, w3: d)
  }
}
