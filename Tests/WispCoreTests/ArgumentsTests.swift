import Testing
@testable import WispCore

@Suite struct ArgumentsTests {
  @Test func versionForms() throws {
    #expect(try Arguments.parse(["--version"]).command == .version)
    #expect(try Arguments.parse(["-V"]).command == .version)
    #expect(try Arguments.parse(["version"]).command == .version)
  }

  @Test func helpForms() throws {
    #expect(try Arguments.parse(["help"]).command == .help)
    #expect(try Arguments.parse(["--help"]).command == .help)
    let h = try Arguments.parse(["run", "--help"])
    #expect(h.command == .help)
    #expect(h.positionals == ["run"])
    #expect(try Arguments.parse(["help", "run"]).positionals == ["run"])
  }

  @Test func optionValuesBothSpellings() throws {
    let a = try Arguments.parse(["run", "--listen", "127.0.0.1:7000", "--pool=512"])
    #expect(a.command == .run)
    #expect(a.value("--listen") == "127.0.0.1:7000")
    #expect(a.value("--pool") == "512")
    #expect(a.value("--circuits") == nil)
  }

  @Test func repeatedOptionsKeepAllValuesLastWins() throws {
    let a = try Arguments.parse(["run", "--exit", "127.0.0.1:1", "--exit", "127.0.0.1:2"])
    #expect(a.values("--exit") == ["127.0.0.1:1", "127.0.0.1:2"])
    #expect(a.value("--exit") == "127.0.0.1:2")
  }

  @Test func switches() throws {
    let a = try Arguments.parse(["demo", "--forever"])
    #expect(a.has("--forever"))
    #expect(!a.has("--seconds"))
  }

  @Test(arguments: [
    ([], "no command given"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["--frob"], "unknown option '--frob'"),
    (["run", "--frob"], "unknown option '--frob' for 'wisp run'"),
    (["run", "--listen"], "option '--listen' needs a value"),
    (["run", "--listen="], "option '--listen' needs a value"),
    (["demo", "--forever=yes"], "option '--forever' takes no value"),
    (["run", "extra"], "unexpected argument 'extra' for 'wisp run'"),
    (["help", "nope"], "unknown command 'nope'"),
    (["--version", "x"], "'--version' takes no arguments"),
  ] as [([String], String)])
  func rejectsBadInput(args: [String], message: String) {
    #expect(throws: UsageError.self) { try Arguments.parse(args) }
    do {
      _ = try Arguments.parse(args)
    } catch {
      #expect(error.message == message)
    }
  }

  @Test func doubleDashEndsOptions() throws {
    let a = try Arguments.parse(["help", "--", "run"])
    #expect(a.positionals == ["run"])
  }

  @Test func usageAndHelpNameEveryCommand() {
    let text = Arguments.help(nil)
    for c in Arguments.commands {
      #expect(text.contains("  \(c.name)"))
    }
    #expect(Arguments.usage(.run) == "usage: wisp run [OPTION...]")
    #expect(Arguments.help("run").contains("--listen ADDR:PORT"))
  }
}

@Suite struct TextTests {
  @Test func decimal() {
    #expect(parseDecimal("0") == 0)
    #expect(parseDecimal("42") == 42)
    #expect(parseDecimal("18446744073709551615") == UInt64.max)
    #expect(parseDecimal("18446744073709551616") == nil)
    #expect(parseDecimal("") == nil)
    #expect(parseDecimal("-1") == nil)
    #expect(parseDecimal("1x") == nil)
  }

  @Test func fixed() {
    #expect(formatFixed(5, decimals: 2) == "0.05")
    #expect(formatFixed(12345, decimals: 3) == "12.345")
    #expect(formatFixed(7, decimals: 0) == "7")
  }

  @Test func byteComparisons() {
    #expect("run".is("run"))
    #expect(!"run".is("ru"))
    #expect(!"runs".is("run"))
    #expect("--listen=x".hasBytePrefix("--"))
    #expect(!"-".hasBytePrefix("--"))
  }
}
