// Frame codec tests, built from Sources/WispCore/WIRE-PROTOCOL.md.
import Testing
@testable import WispCore

func bytes(_ type: UInt8, _ circuit: UInt32, _ body: [UInt8], version: UInt8 = Wire.versionByte, declared: Int? = nil) -> [UInt8] {
  let n = declared ?? body.count
  return [version, type, UInt8(n >> 8), UInt8(n & 255),
          UInt8(circuit >> 24), UInt8((circuit >> 16) & 255), UInt8((circuit >> 8) & 255), UInt8(circuit & 255)] + body
}

func decode(_ b: [UInt8]) -> Result<FrameHeader, DropReason> {
  b.withUnsafeBytes { Frame.decode($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, length: b.count) }
}

@Suite struct FrameTests {
  @Test func dataFrameRoundTrip() throws {
    var buf = [UInt8](repeating: 0, count: 64)
    let n = buf.withUnsafeMutableBytes { Frame.encodeHeader($0.baseAddress!, type: .data, bodyLength: 5, circuit: 0xA1B2C3D4) }
    #expect(n == 13)
    #expect(Array(buf[0..<8]) == [0xD2, 0x01, 0x00, 0x05, 0xA1, 0xB2, 0xC3, 0xD4])
    #expect(decode(Array(buf[0..<13])) == .success(FrameHeader(type: .data, bodyLength: 5, circuit: 0xA1B2C3D4)))
  }

  @Test func demultiplexesByFirstByte() {
    #expect(Frame.kind(firstByte: 0xD2) == .wisp)
    for b in UInt8(20)...63 { #expect(Frame.kind(firstByte: b) == .dtls) }
    #expect(Frame.kind(firstByte: 0xD0) == .otherVersion)
    #expect(Frame.kind(firstByte: 0xDF) == .otherVersion)
    #expect(Frame.kind(firstByte: 19) == .foreign)
    #expect(Frame.kind(firstByte: 64) == .foreign)
    #expect(Frame.kind(firstByte: 0) == .foreign)
  }

  @Test func everyMalformedLength() {
    // Every prefix shorter than the header is truncated.
    let full = bytes(1, 7, [1, 2, 3])
    for cut in 1..<8 { #expect(decode(Array(full[0..<cut])) == .failure(.truncated), "cut \(cut)") }
    #expect(decode([]) == .failure(.truncated))
    // Declared body longer than what arrived.
    for declared in 4...20 { #expect(decode(bytes(1, 7, [1, 2, 3], declared: declared)) == .failure(.truncated)) }
    // Declared shorter than what arrived (trailing bytes).
    for declared in 0...2 { #expect(decode(bytes(1, 7, [1, 2, 3], declared: declared)) == .failure(.lengthMismatch)) }
    #expect(decode(bytes(1, 7, [1, 2, 3], declared: 0xFFFF)) == .failure(.truncated))
    // Largest accepted and first rejected size.
    #expect(decode(bytes(1, 7, [UInt8](repeating: 0, count: Wire.maxBody))) != .failure(.oversized))
    #expect(decode(bytes(1, 7, [UInt8](repeating: 0, count: Wire.maxBody + 1))) == .failure(.oversized))
  }

  @Test func versionsAndTypes() {
    #expect(decode(bytes(1, 7, [], version: 0xD1)) == .failure(.badVersion))   // v1
    #expect(decode(bytes(1, 7, [], version: 0xD3)) == .failure(.badVersion))
    #expect(decode(bytes(1, 7, [], version: 0x16)) == .failure(.dtlsUnsupported))
    #expect(decode(bytes(1, 7, [], version: 0x80)) == .failure(.notWisp))
    for t in [UInt8(0), 10, 0x7F, 0xFF] { #expect(decode(bytes(t, 7, [])) == .failure(.badType)) }
  }

  @Test func bodySizesPerType() {
    #expect(decode(bytes(3, 7, [0, 0, 0, 1])) == .success(FrameHeader(type: .created, bodyLength: 4, circuit: 7)))
    #expect(decode(bytes(3, 7, [0, 0, 1])) == .failure(.badBody))
    #expect(decode(bytes(3, 7, [0, 0, 0, 0, 1])) == .failure(.badBody))
    #expect(decode(bytes(4, 7, [0])) == .success(FrameHeader(type: .destroy, bodyLength: 1, circuit: 7)))
    #expect(decode(bytes(4, 7, [])) == .failure(.badBody))
    #expect(decode(bytes(8, 7, [1, 2])) == .failure(.badBody))
    #expect(decode(bytes(2, 7, [1, 0, 0])) == .failure(.badBody))   // CREATE: 1–7 bytes
    #expect(decode(bytes(2, 7, [])) == .success(FrameHeader(type: .create, bodyLength: 0, circuit: 7)))
    #expect(decode(bytes(5, 0, [UInt8](repeating: 1, count: 7))) == .failure(.badBody))
    #expect(decode(bytes(5, 0, [UInt8](repeating: 1, count: 8))) == .success(FrameHeader(type: .ping, bodyLength: 8, circuit: 0)))
    #expect(decode(bytes(5, 0, [UInt8](repeating: 1, count: 65))) == .failure(.badBody))
    #expect(decode(bytes(5, 9, [UInt8](repeating: 1, count: 8))) == .failure(.badBody))  // PING carries id 0
    #expect(decode(bytes(1, 0, [1])) == .failure(.unknownCircuit))  // id 0 is never a circuit
  }

  func hop(_ kind: UInt8, _ port: UInt16, _ ip: UInt32 = 0x7F00_0001, zero: UInt8 = 0) -> [UInt8] {
    [kind, zero, UInt8(port >> 8), UInt8(port & 255), UInt8(ip >> 24), UInt8((ip >> 16) & 255), UInt8((ip >> 8) & 255), UInt8(ip & 255)]
  }

  func decodeHop(_ b: [UInt8]) -> Hop? { b.withUnsafeBytes { Frame.decodeHop($0.baseAddress!, length: b.count) } }

  @Test func hops() {
    #expect(decodeHop(hop(1, 9000)) == Hop(kind: .extend, endpoint: Endpoint(ip: 0x7F00_0001, port: 9000), restLength: 0))
    #expect(decodeHop(hop(2, 53)) == Hop(kind: .exit, endpoint: Endpoint(ip: 0x7F00_0001, port: 53), restLength: 0))
    #expect(decodeHop(hop(1, 1) + hop(1, 2) + hop(2, 3))?.restLength == 16)
    #expect(decodeHop(hop(1, 1) + hop(1, 2) + hop(1, 3) + hop(2, 4)) == nil)  // four hops
    #expect(decodeHop(hop(1, 1) + hop(3, 2)) == nil)                           // a nested sealed exit without its point
    #expect(decodeHop(hop(1, 1) + hop(3, 2) + [4] + [UInt8](repeating: 0, count: 64))?.restLength == 8 + 65)
    #expect(decodeHop(hop(2, 1) + hop(1, 2)) == nil)                          // exit must be last
    #expect(decodeHop(hop(1, 1) + [1, 0, 0]) == nil)                          // ragged rest
    #expect(decodeHop(hop(3, 1)) == nil)                                      // unknown kind
    #expect(decodeHop(hop(1, 0)) == nil)                                      // port 0
    #expect(decodeHop(hop(1, 1, zero: 1)) == nil)                             // reserved byte
    #expect(decodeHop(hop(1, 1) + hop(1, 0)) == nil)                          // nested port 0
    #expect(decodeHop(Array(hop(1, 1)[0..<7])) == nil)
  }

  @Test func endpoints() {
    #expect(Endpoint("127.0.0.1:7400") == Endpoint(ip: 0x7F00_0001, port: 7400))
    #expect(Endpoint("10.1.2.3:65535")?.text == "10.1.2.3:65535")
    for bad in ["", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "256.0.0.1:1", "1.2.3:4",
                "1.2.3.4.5:6", "a.b.c.d:1", "1..2.3:4", "1.2.3.4:5x", ":80"] {
      #expect(Endpoint(bad) == nil, "\(bad)")
    }
    #expect(Endpoint("127.9.9.9:1")!.isLoopback)
  }
}
