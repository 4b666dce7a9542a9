// A 32-byte identity fingerprint: SHA-256 of a P-256 key's DER SubjectPublicKeyInfo, the
// value `wisp id` prints, peers pin, receipts name, and
// `openssl pkey -in KEY -pubout -outform DER | sha256sum` gives.
// Runs on host and device, platform-free: the hashing lives where the crypto is
// (WispTLS: `P256Verifier.fingerprint(ofKey:)`, `fingerprint(of:)` for a key mbedTLS holds).
// Stored as four big-endian words so that comparing two costs four integer compares and
// needs no hashing tables.

public struct Fingerprint: Equatable, Sendable {
  public var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

  public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
    self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
  }

  public static let zero = Fingerprint(w0: 0, w1: 0, w2: 0, w3: 0)
  public static let size = 32

  /// From exactly 32 bytes; nil for any other length.
  public init?(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count == Fingerprint.size else { return nil }
    var r = ByteReader(bytes)
    self = r.fingerprint()!
  }

  public init?(_ bytes: [UInt8]) {
    guard let f = bytes.withUnsafeBytes({ Fingerprint($0) }) else { return nil }
    self = f
  }

  /// From exactly 32 bytes; any other length is a programmer error.
  public init(bytes: [UInt8]) {
    precondition(bytes.count == Fingerprint.size, "a fingerprint is 32 bytes")
    self = Fingerprint(bytes)!
  }

  /// Parses 64 hex digits (either case; ':' separators are skipped); nil for anything else.
  public init?(hex: String) {
    guard let b = bytesFromHex(hex.utf8), let f = Fingerprint(b) else { return nil }
    self = f
  }

  public var bytes: [UInt8] {
    var w = ByteWriter(capacity: 32)
    w.fingerprint(self)
    return w.bytes
  }

  /// Lower-case hex, 64 digits.
  public var hex: String { bytes.withUnsafeBytes { hexString($0) } }

  /// Byte order comparison (stable listing order).
  public func precedes(_ o: Fingerprint) -> Bool {
    if w0 != o.w0 { return w0 < o.w0 }
    if w1 != o.w1 { return w1 < o.w1 }
    if w2 != o.w2 { return w2 < o.w2 }
    return w3 < o.w3
  }
}
