import Testing
@testable import WispCore

@Suite struct FingerprintTests {
  @Test func hexRoundTrips() throws {
    let fp = Fingerprint(bytes: Array(0..<32))
    #expect(fp.hex.utf8.count == 64)
    #expect(fp.hex.hasBytePrefix("000102030405"))
    #expect(Fingerprint(hex: fp.hex) == fp)
    #expect(Fingerprint(hex: fp.hex.uppercased()) == fp)
    #expect(Fingerprint(bytes: fp.bytes) == fp)
  }

  @Test(arguments: ["", "abc", String(repeating: "0", count: 63), String(repeating: "0", count: 66),
                    String(repeating: "0", count: 63) + "g"])
  func badHexIsRefused(text: String) {
    #expect(Fingerprint(hex: text) == nil)
  }

  @Test func colonSeparatedHexIsAccepted() throws {
    let fp = Fingerprint(bytes: Array(0..<32))
    var colons = ""
    for (i, c) in fp.hex.utf8.enumerated() {
      if i > 0 && i % 2 == 0 { colons += ":" }
      colons += String(decoding: [c], as: UTF8.self)
    }
    #expect(Fingerprint(hex: colons) == fp)
  }

  @Test func ordersByBytes() {
    let a = Fingerprint(bytes: [UInt8](repeating: 1, count: 32))
    var b = [UInt8](repeating: 1, count: 32)
    b[31] = 2
    #expect(a.precedes(Fingerprint(bytes: b)))
    #expect(!Fingerprint(bytes: b).precedes(a))
  }
}
