import Testing
@testable import WispCore
import WispOS

/// The repository's Board/ folder, found from this file's path.
let boardDir: String = {
  var parts = Array(#filePath.utf8.split(separator: 47).map { String(decoding: $0, as: UTF8.self) })
  parts.removeLast(3)  // Tests/WispCoreTests/BoardTests.swift
  return "/" + parts.joined(separator: "/") + "/Board"
}()

@Suite struct BoardTests {
  @Test func everyBoardFileParsesAndMatchesItsFolder() throws {
    let names = try Files.list(boardDir).filter { !$0.contains(".") }
    #expect(names.count >= 7)
    for name in ["rpi3b", "rpi3bplus", "rpi4b", "rpi5", "rpizero2w", "generic-aarch64", "generic-armv7"] {
      #expect(names.contains(name), "missing board \(name)")
    }
    for name in names {
      let text = try Files.readText(boardDir + "/" + name + "/board.conf")
      let board = try Board.parse(text)
      #expect(board.name == name)
      #expect([Target.aarch64, .armv7].contains(board.target), "\(name) names no ARM target")
      let leds = [board.ledStatus, board.ledActivity, board.ledError].compactMap { $0 }
      #expect(Set(leds.map { "\($0)" }).count == leds.count, "\(name) has conflicting LED lines")
    }
  }

  @Test func piBoardsPreferChaChaExceptPi5() throws {
    for (name, chacha) in [("rpi3b", true), ("rpi4b", true), ("rpizero2w", true), ("rpi5", false)] {
      let b = try Board.parse(try Files.readText(boardDir + "/\(name)/board.conf"))
      #expect(b.prefersChaCha == chacha, "\(name)")
    }
  }

  @Test(arguments: [
    ("target = aarch64\n", 0, "missing 'name'"),
    ("name = x\n", 0, "missing 'target'"),
    ("name = x\ntarget = sparc\n", 2, "unknown target 'sparc' (known: aarch64, armv7, x86_64)"),
    ("name = x\ntarget = armv7\ncores = 0\n", 3, "'cores' must be a whole number from 1 to 64"),
    ("name = x\ntarget = armv7\ncpu_aes = maybe\n", 3, "'cpu_aes' must be yes or no"),
    ("name = x\ntarget = armv7\nled_stats = GPIO1\n", 3, "unknown key 'led_stats', did you mean 'led_status'?"),
    ("name = x\ntarget = armv7\nname = y\n", 3, "'name' given twice (first on line 1)"),
    ("name = x\ntarget\n", 2, "expected 'key = value'"),
    ("name = x\nTarget = armv7\n", 2, "bad character in key (use a-z, 0-9, _)"),
    ("name = x\ntarget =\n", 2, "missing value after '='"),
    ("name = x\ntarget = armv7\ngpio_chip = c\nled_status = GPIO1\nled_error = GPIO1\n", 0, "two LEDs share one GPIO line"),
    ("name = x\ntarget = armv7\nled_status = GPIO1\n", 0, "LED lines given without 'gpio_chip'"),
  ] as [(String, Int, String)])
  func rejectsBadBoards(text: String, line: Int, message: String) {
    do {
      _ = try Board.parse(text)
      Issue.record("accepted a bad board file")
    } catch {
      #expect(error.line == line)
      #expect(error.message == message)
    }
  }

  @Test func lineReferences() {
    #expect(LineRef("GPIO17") == .name("GPIO17"))
    #expect(LineRef("29") == .offset(29))
    #expect(LineRef("") == nil)
  }
}
