// Text helpers that stay cheap in Embedded Swift.
//
// Runs on host and device. `String ==` pulls Unicode normalisation tables into an
// Embedded binary (hundreds of KB), so command names, flags and config keys are
// compared as UTF-8 bytes, and numbers are parsed and printed here by hand.

extension String {
  /// Byte-wise equality with a literal: no Unicode tables.
  @inlinable
  public func `is`(_ literal: StaticString) -> Bool {
    let count = literal.utf8CodeUnitCount
    if utf8.count != count { return false }
    var i = 0
    for b in utf8 {
      if b != literal.utf8Start[i] { return false }
      i += 1
    }
    return true
  }

  /// Byte-wise equality with another string.
  @inlinable
  public func same(_ other: String) -> Bool {
    utf8.elementsEqual(other.utf8)
  }

  /// Whether the string starts with the ASCII literal.
  public func hasBytePrefix(_ literal: StaticString) -> Bool {
    let count = literal.utf8CodeUnitCount
    if utf8.count < count { return false }
    var i = 0
    for b in utf8 {
      if i == count { return true }
      if b != literal.utf8Start[i] { return false }
      i += 1
    }
    return true
  }

  /// Builds a string from raw UTF-8 bytes (invalid sequences are repaired).
  public init(bytes: UnsafeRawBufferPointer) {
    self = String(decoding: bytes, as: UTF8.self)
  }
}

/// Parses a decimal unsigned integer; nil on empty input, a non-digit or overflow.
public func parseDecimal(_ text: String) -> UInt64? {
  var value: UInt64 = 0
  var digits = 0
  for b in text.utf8 {
    guard b >= 48, b <= 57 else { return nil }
    let (m, o1) = value.multipliedReportingOverflow(by: 10)
    let (s, o2) = m.addingReportingOverflow(UInt64(b - 48))
    if o1 || o2 { return nil }
    value = s
    digits += 1
  }
  return digits == 0 ? nil : value
}

/// Formats `value / 10^decimals` with exactly `decimals` fractional digits.
public func formatFixed(_ value: UInt64, decimals: Int) -> String {
  var divisor: UInt64 = 1
  for _ in 0..<decimals { divisor *= 10 }
  let whole = value / divisor
  if decimals == 0 { return "\(whole)" }
  var frac = "\(value % divisor)"
  while frac.utf8.count < decimals { frac = "0" + frac }
  return "\(whole).\(frac)"
}

/// Bytes from hexadecimal digits (either case; ':' separators skipped); nil for any other
/// character or an odd number of digits.
public func bytesFromHex<S: Sequence>(_ text: S) -> [UInt8]? where S.Element == UInt8 {
  var out: [UInt8] = []
  var high: UInt8? = nil
  for c in text {
    if c == 58 { continue }  // ':'
    let v: UInt8
    switch c {
    case 48...57: v = c - 48
    case 97...102: v = c - 87
    case 65...70: v = c - 55
    default: return nil
    }
    if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
  }
  return high == nil ? out : nil
}

/// Lower-case hexadecimal of bytes.
public func hexString(_ bytes: UnsafeRawBufferPointer) -> String {
  let digits: StaticString = "0123456789abcdef"
  var out = [UInt8]()
  out.reserveCapacity(bytes.count * 2)
  for b in bytes {
    out.append(digits.utf8Start[Int(b >> 4)])
    out.append(digits.utf8Start[Int(b & 15)])
  }
  return out.withUnsafeBytes { String(bytes: $0) }
}
