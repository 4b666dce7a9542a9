// The one parser of `NAME=ADDR:PORT[=FINGERPRINT]` (PeerEntry.swift), as used by
// `wisp run --peer`, wisp.conf's `peers` and `wisp client --peers`.
import Testing
@testable import WispCore

private let fp = "76300de3a70d16afdda1dd8b66c414bd58efc493aea971338b199008ec4e9fbe"

@Suite struct PeerEntryTests {
  @Test func entryWithAndWithoutFingerprint() throws {
    let plain = try PeerEntry.parse("attic=10.0.0.2:7400")
    #expect(plain == PeerEntry(name: "attic", endpoint: Endpoint(ip: 0x0A00_0002, port: 7400), key: nil))
    let pinned = try PeerEntry.parse("shed-2.b_c=127.0.0.1:1=\(fp)")
    #expect(pinned.name == "shed-2.b_c" && pinned.endpoint == Endpoint("127.0.0.1:1") && pinned.key?.hex == fp)
    #expect(try PeerEntry.parse("x=1.2.3.4:65535=\(fp.uppercased())").key?.hex == fp)
    #expect(try PeerEntry.parse(String(repeating: "n", count: 32) + "=1.2.3.4:5").name.utf8.count == 32)
  }

  @Test(arguments: [
    ("", "'' is not NAME=ADDR:PORT[=FINGERPRINT]"),
    ("nope", "'nope' is not NAME=ADDR:PORT[=FINGERPRINT]"),
    ("a=1.2.3.4:5=\(fp)=x", "'a=1.2.3.4:5=\(fp)=x' is not NAME=ADDR:PORT[=FINGERPRINT]"),
    // Names.
    ("=127.0.0.1:1", "'=127.0.0.1:1': the name '' must be 1 to 32 letters, digits, '_', '.' or '-'"),
    ("a b=127.0.0.1:1", "'a b=127.0.0.1:1': the name 'a b' must be 1 to 32 letters, digits, '_', '.' or '-'"),
    (String(repeating: "n", count: 33) + "=127.0.0.1:1",
     "'\(String(repeating: "n", count: 33))=127.0.0.1:1': the name '\(String(repeating: "n", count: 33))' must be 1 to 32 letters, digits, '_', '.' or '-'"),
    // Addresses.
    ("a=", "'a=': the address '' is not ADDR:PORT"),
    ("a=127.0.0.1", "'a=127.0.0.1': the address '127.0.0.1' is not ADDR:PORT"),
    ("a=localhost:7400", "'a=localhost:7400': the address 'localhost' is not an IPv4 address (a.b.c.d)"),
    ("a=127.0.0.256:7400", "'a=127.0.0.256:7400': the address '127.0.0.256' is not an IPv4 address (a.b.c.d)"),
    ("a=10.0.0:7400", "'a=10.0.0:7400': the address '10.0.0' is not an IPv4 address (a.b.c.d)"),
    // Ports.
    ("a=1.2.3.4:0", "'a=1.2.3.4:0': the port '0' is not 1 to 65535"),
    ("a=1.2.3.4:65536", "'a=1.2.3.4:65536': the port '65536' is not 1 to 65535"),
    ("a=1.2.3.4:", "'a=1.2.3.4:': the port '' is not 1 to 65535"),
    ("a=1.2.3.4:7x", "'a=1.2.3.4:7x': the port '7x' is not 1 to 65535"),
    // Fingerprints.
    ("a=1.2.3.4:5=", "'a=1.2.3.4:5=': the fingerprint '' is not 64 hex digits ('wisp id' of that node)"),
    ("a=1.2.3.4:5=\(fp.dropLast())",
     "'a=1.2.3.4:5=\(fp.dropLast())': the fingerprint '\(fp.dropLast())' is not 64 hex digits ('wisp id' of that node)"),
    ("a=1.2.3.4:5=\(fp.dropLast())g",
     "'a=1.2.3.4:5=\(fp.dropLast())g': the fingerprint '\(fp.dropLast())g' is not 64 hex digits ('wisp id' of that node)"),
    ("a=1.2.3.4:5=\(fp)00",
     "'a=1.2.3.4:5=\(fp)00': the fingerprint '\(fp)00' is not 64 hex digits ('wisp id' of that node)"),
  ] as [(String, String)])
  func badEntryNamesThePart(text: String, message: String) {
    #expect(throws: PeerEntryError(message)) { try PeerEntry.parse(text) }
  }

  @Test func listsSkipBlanksAndComments() throws {
    let list = try PeerEntry.parseList("""
      # relays of the attic mesh
      r1=10.0.0.1:7400=\(fp), r2=10.0.0.2:7400
        r3=10.0.0.3:7400\r

      r4=10.0.0.4:7400,
      """)
    #expect(list.map { $0.name } == ["r1", "r2", "r3", "r4"])
    #expect(list[0].key != nil && list[1].key == nil)
    #expect(try PeerEntry.parseList("").isEmpty)
    #expect(try PeerEntry.parseList("# only a comment, with a comma\n  # and another").isEmpty)
    #expect(try PeerEntry.parseList(" , ").isEmpty)
  }

  @Test func duplicateNamesAreRefused() {
    #expect(throws: PeerEntryError("the name 'r1' is given twice")) {
      try PeerEntry.parseList("r1=10.0.0.1:7400, r2=10.0.0.2:7400\nr1=10.0.0.3:7400")
    }
    #expect(throws: PeerEntryError("the name 'a' is given twice")) {
      try PeerEntry.parse(["a=1.2.3.4:5", "a=1.2.3.4:5"])
    }
    // The same address under two names is two peers.
    #expect((try? PeerEntry.parse(["a=1.2.3.4:5", "b=1.2.3.4:5"]))?.count == 2)
  }

  @Test func aBadEntryInAListIsNamed() {
    #expect(throws: PeerEntryError("'r2=10.0.0.2:0': the port '0' is not 1 to 65535")) {
      try PeerEntry.parseList("r1=10.0.0.1:7400, r2=10.0.0.2:0")
    }
  }
}
