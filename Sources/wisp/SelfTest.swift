// `wisp selftest`: checks core types inside the very binary that ships, so the
// Embedded builds (which `swift test` never runs) are exercised under qemu-user.
import WispCore
import WispNode
import WispClient
import WispOS

enum SelfTest {
  nonisolated(unsafe) static var passed = 0  // the self-test runs on the main thread only
  nonisolated(unsafe) static var failed = 0

  static func check(_ ok: Bool, _ name: StaticString) {
    if ok { passed += 1 } else { failed += 1; Console.err("selftest: FAILED \(name)") }
  }

  static func run() -> Int32 {
    // Command-line grammar.
    check((try? Arguments.parse(["run", "--listen", "127.0.0.1:9"]))?.value("--listen")?.is("127.0.0.1:9") == true,
          "parse run --listen")
    check((try? Arguments.parse(["nope"])) == nil, "unknown command rejected")
    check((try? Arguments.parse(["run", "--bogus"])) == nil, "unknown option rejected")
    check((try? Arguments.parse(["run", "--listen"])) == nil, "missing value rejected")
    // Numbers and text.
    check(parseDecimal("18446744073709551615") == UInt64.max, "parse u64 max")
    check(parseDecimal("18446744073709551616") == nil, "u64 overflow rejected")
    check(formatFixed(12345, decimals: 2).is("123.45"), "fixed-point format")
    // Board files.
    let board = try? Board.parse("name = t\ntarget = armv7\ngpio_chip = c\nled_status = GPIO17\n")
    check(board?.target == .armv7 && board?.ledStatus == .name("GPIO17"), "board parse")
    check((try? Board.parse("name = t\ntarget = mips\n")) == nil, "bad board target rejected")
    Console.out("selftest: \(Build.triple) \(Build.flavour)")
    Console.out("\(passed) passed, \(failed) failed")
    return failed == 0 ? 0 : 1
  }
}
