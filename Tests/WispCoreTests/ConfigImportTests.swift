import Testing
@testable import WispCore

@Suite struct ConfigImportTests {
  @Test func directories() {
    #expect(ConfigImportPaths.directory(of: "/etc/wisp/wisp.conf") == "/etc/wisp")
    #expect(ConfigImportPaths.directory(of: "/wisp.conf") == "/")
    #expect(ConfigImportPaths.directory(of: "wisp.conf") == ".")
    #expect(ConfigImportPaths.directory(of: "a/b/") == "a")
    #expect(ConfigImportPaths.directory(of: "/boot/firmware/wisp.conf") == "/boot/firmware")
  }

  @Test func names() {
    #expect(ConfigImportPaths.backup(of: "/etc/wisp/wisp.conf", epoch: 1700000000) == "/etc/wisp/wisp.conf.bak-1700000000")
    #expect(ConfigImportPaths.imported("/boot/firmware/wisp.conf") == "/boot/firmware/wisp.conf.imported")
    #expect(ConfigImportPaths.defaultSource == "/boot/firmware/wisp.conf")
    #expect(ConfigImportPaths.defaultTarget == "/etc/wisp/wisp.conf")
  }
}
