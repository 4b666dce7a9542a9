// CRC-32C (Castagnoli), as the journal and claim formats use it. Runs on host and device.
//
// Parameters (JOURNAL-FORMAT.md, "Checksum"): reflected polynomial 0x82F63B78
// (normal form 0x1EDC6F41), initial value 0xFFFFFFFF, input and output reflected,
// final XOR 0xFFFFFFFF. Check value: CRC32C("123456789") = 0xE3069283.

public enum CRC32C {
  /// The reflected polynomial.
  public static let polynomial: UInt32 = 0x82F6_3B78

  /// 256-entry lookup table, built once.
  static let table: [UInt32] = {
    var t = [UInt32](repeating: 0, count: 256)
    for i in 0..<256 {
      var c = UInt32(i)
      for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ polynomial : c >> 1 }
      t[i] = c
    }
    return t
  }()

  /// Continues a running CRC; start from `begin`, finish with `finish`.
  @inline(__always)
  public static func update(_ state: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var c = state
    table.withUnsafeBufferPointer { t in
      for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    }
    return c
  }

  public static let begin: UInt32 = 0xFFFF_FFFF
  @inline(__always)
  public static func finish(_ state: UInt32) -> UInt32 { state ^ 0xFFFF_FFFF }

  /// CRC-32C of a whole buffer.
  public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    finish(update(begin, bytes))
  }

  public static func checksum(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { checksum($0) }
  }
}
