// The endpoint type: IPv4 and IPv6 in one value (Endpoint.swift).
import Testing
@testable import WispCore

@Suite struct EndpointTests {
  @Test func ipv4RoundTrips() throws {
    let e = try #require(Endpoint("192.168.1.20:7400"))
    #expect(e.isIPv4 && e.ip == 0xC0A8_0114 && e.port == 7400 && e.text == "192.168.1.20:7400")
    #expect(e == Endpoint(ip: 0xC0A8_0114, port: 7400))
    #expect(Endpoint("127.0.0.1:1")!.isLoopback && !e.isLoopback)
    #expect(Endpoint("0.0.0.0:9")!.isUnspecified && Endpoint("255.255.255.255:9")!.isBroadcast)
    #expect(Endpoint("224.0.0.1:9")!.isMulticast && Endpoint("239.255.255.255:9")!.isMulticast && !Endpoint("240.0.0.1:9")!.isMulticast)
  }

  @Test(arguments: ["1.2.3:4", "1.2.3.4", "1.2.3.4:0", "1.2.3.4:65536", "256.1.1.1:5", "1.2.3.4.5:6", ":5", "1..2.3:4",
                    "[::1]", "[::1]:", "[::1]:0", "[1:2:3:4:5:6:7:8:9]:5", "[1::2::3]:5", "[12345::]:5", "[:1]:5",
                    "[1:]:5", "[g::]:5", "::1:5", "[]:5", "", "1.2.3.4:5x"])
  func badTextIsRefused(text: String) {
    #expect(Endpoint(text) == nil)
  }

  @Test func ipv6RoundTrips() throws {
    let cases: [(String, String)] = [
      ("[::1]:7400", "[::1]:7400"),
      ("[2001:DB8:0:0:8:800:200C:417A]:53", "[2001:db8::8:800:200c:417a]:53"),
      ("[fe80::]:1", "[fe80::]:1"),
      ("[::]:9", "[::]:9"),
      ("[1:0:0:2:0:0:0:3]:5", "[1:0:0:2::3]:5"),
      ("[1:2:3:4:5:6:7:8]:5", "[1:2:3:4:5:6:7:8]:5"),
    ]
    for (input, canonical) in cases {
      let e = try #require(Endpoint(input), "\(input)")
      #expect(!e.isIPv4 && e.text == canonical, "\(input) → \(e.text)")
      #expect(Endpoint(e.text) == e)
    }
    let loop = try #require(Endpoint("[::1]:7400"))
    #expect(loop.isLoopback && loop.ip == 0 && loop != Endpoint(ip: 0x7F00_0001, port: 7400))
    #expect(Endpoint("[ff02::1]:5")!.isMulticast && Endpoint("[::]:5")!.isUnspecified && !Endpoint("[::]:5")!.isBroadcast)
  }

  @Test func sourcesAreAddressesOrSlash64s() throws {
    // IPv4: the address, any port. IPv6: the /64.
    #expect(Endpoint("10.0.0.1:1")!.sourceKey == Endpoint("10.0.0.1:2")!.sourceKey)
    #expect(Endpoint("10.0.0.1:1")!.sourceKey != Endpoint("10.0.0.2:1")!.sourceKey)
    #expect(Endpoint("[2001:db8:1:2::1]:1")!.sourceKey == Endpoint("[2001:db8:1:2:ffff::9]:7")!.sourceKey)
    #expect(Endpoint("[2001:db8:1:2::1]:1")!.sourceKey != Endpoint("[2001:db8:1:3::1]:1")!.sourceKey)
  }
}
