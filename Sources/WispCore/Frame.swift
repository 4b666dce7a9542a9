// The wire protocol v2 codec (WIRE-PROTOCOL.md). Runs on host and device.
//
// Decoding reads from a datagram in place and checks every length before any
// field is trusted; encoding writes in place into a caller's buffer.

/// A decoded frame header; the body stays in the datagram.
public struct FrameHeader: Equatable {
  public var type: FrameType
  public var bodyLength: Int
  public var circuit: UInt32
}

/// What the first byte of a datagram says it is (RFC 7983 demultiplexing).
public enum DatagramKind: Equatable {
  case dtls, wisp, otherVersion, foreign
}

public enum Frame {
  @inline(__always)
  public static func load16(_ p: UnsafeRawPointer, _ o: Int) -> UInt16 {
    UInt16(p.load(fromByteOffset: o, as: UInt8.self)) << 8 | UInt16(p.load(fromByteOffset: o + 1, as: UInt8.self))
  }

  @inline(__always)
  public static func load32(_ p: UnsafeRawPointer, _ o: Int) -> UInt32 {
    UInt32(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self))
  }

  @inline(__always)
  public static func store16(_ p: UnsafeMutableRawPointer, _ o: Int, _ v: UInt16) {
    p.storeBytes(of: UInt8(v >> 8), toByteOffset: o, as: UInt8.self)
    p.storeBytes(of: UInt8(v & 255), toByteOffset: o + 1, as: UInt8.self)
  }

  @inline(__always)
  public static func store32(_ p: UnsafeMutableRawPointer, _ o: Int, _ v: UInt32) {
    p.storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt32.self)
  }

  /// Classifies a datagram by its first byte.
  @inline(__always)
  public static func kind(firstByte b: UInt8) -> DatagramKind {
    if b == Wire.versionByte { return .wisp }
    if b >= Wire.dtlsLow && b <= Wire.dtlsHigh { return .dtls }
    if b >= Wire.versionRangeLow && b <= Wire.versionRangeHigh { return .otherVersion }
    return .foreign
  }

  /// Decodes and validates a v2 frame header of a datagram of `length` bytes.
  /// Checks the first byte, the type, the declared length and the body size per type.
  @inline(__always)
  public static func decode(_ p: UnsafeRawPointer, length: Int) -> Result<FrameHeader, DropReason> {
    if length > Wire.maxDatagram { return .failure(.oversized) }
    if length < 1 { return .failure(.truncated) }
    switch kind(firstByte: p.load(as: UInt8.self)) {
    case .wisp: break
    case .dtls: return .failure(.dtlsUnsupported)
    case .otherVersion: return .failure(.badVersion)
    case .foreign: return .failure(.notWisp)
    }
    if length < Wire.headerSize { return .failure(.truncated) }
    let declared = Int(load16(p, 2))
    let actual = length - Wire.headerSize
    if declared > actual { return .failure(.truncated) }
    if declared < actual { return .failure(.lengthMismatch) }
    guard let type = FrameType(rawValue: p.load(fromByteOffset: 1, as: UInt8.self)) else {
      return .failure(.badType)
    }
    let circuit = load32(p, 4)
    switch type {
    case .data, .receipt: break
    case .create: if declared != 0 && declared < Wire.hopSize { return .failure(.badBody) }
    case .created: if declared != 4 && declared != Wire.sealedCreatedBody { return .failure(.badBody) }
    case .destroy, .refused: if declared != 1 { return .failure(.badBody) }
    case .bind: if declared != Wire.bindBody { return .failure(.badBody) }
    case .ping, .pong:
      if declared < Wire.pingMin || declared > Wire.pingMax || circuit != 0 { return .failure(.badBody) }
    }
    if circuit == 0 && type != .ping && type != .pong && type != .create { return .failure(.unknownCircuit) }
    return .success(FrameHeader(type: type, bodyLength: declared, circuit: circuit))
  }

  /// Writes a v2 header at `p`. Returns the frame's total length.
  @inline(__always)
  @discardableResult
  public static func encodeHeader(_ p: UnsafeMutableRawPointer, type: FrameType, bodyLength: Int, circuit: UInt32) -> Int {
    p.storeBytes(of: Wire.versionByte, as: UInt8.self)
    p.storeBytes(of: type.rawValue, toByteOffset: 1, as: UInt8.self)
    store16(p, 2, UInt16(bodyLength))
    store32(p, 4, circuit)
    return Wire.headerSize + bodyLength
  }
}

/// A decoded hop of a CREATE body.
public struct Hop: Equatable {
  public var kind: HopKind
  public var endpoint: Endpoint
  /// Bytes of the nested hop(s) that follow this one.
  public var restLength: Int
}

extension Frame {
  /// Decodes the hop at the start of a CREATE body, checking nesting depth.
  public static func decodeHop(_ body: UnsafeRawPointer, length: Int) -> Hop? {
    guard length >= Wire.hopSize else { return nil }
    guard let kind = HopKind(rawValue: body.load(as: UInt8.self)) else { return nil }
    if body.load(fromByteOffset: 1, as: UInt8.self) != 0 { return nil }
    let port = load16(body, 2)
    if port == 0 { return nil }
    let ip = load32(body, 4)
    let rest = length - Wire.hopSize
    if kind == .exit && rest != 0 { return nil }
    if kind == .sealedExit { return rest == Wire.pointSize ? Hop(kind: kind, endpoint: Endpoint(ip: ip, port: port), restLength: rest) : nil }
    // Count nested hops: each is at least 8 bytes with kind extend except the last.
    var depth = 1
    var off = Wire.hopSize
    var k = kind
    while off < length {
      if k == .sealedExit { return length - off == Wire.pointSize ? Hop(kind: kind, endpoint: Endpoint(ip: ip, port: port), restLength: rest) : nil }
      if k != .extend { return nil }
      guard length - off >= Wire.hopSize, let nk = HopKind(rawValue: body.load(fromByteOffset: off, as: UInt8.self)) else {
        return nil
      }
      if body.load(fromByteOffset: off + 1, as: UInt8.self) != 0 || load16(body, off + 2) == 0 { return nil }
      depth += 1
      if depth > Wire.maxHops { return nil }
      k = nk
      off += Wire.hopSize
    }
    if k == .exit && off != length { return nil }
    if k == .sealedExit { return nil }  // a sealed exit must be followed by its point (handled in the loop)
    return Hop(kind: kind, endpoint: Endpoint(ip: ip, port: port), restLength: rest)
  }

  /// Writes a hop into `p`; returns bytes written (8).
  @discardableResult
  public static func encodeHop(_ p: UnsafeMutableRawPointer, kind: HopKind, to e: Endpoint) -> Int {
    p.storeBytes(of: kind.rawValue, as: UInt8.self)
    p.storeBytes(of: 0, toByteOffset: 1, as: UInt8.self)
    store16(p, 2, e.port)
    store32(p, 4, e.ip)
    return Wire.hopSize
  }
}
