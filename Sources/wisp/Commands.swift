// Dispatch of parsed commands to their implementations (the developer tools through
// DeveloperTools and the settlement tools through SettleCommands, which the device binary
// answers with "not in this build").
import WispCore
import WispNode
import WispClient
import WispOS
import WispTLS
import WispGPIO

enum Commands {
  static func dispatch(_ inv: Invocation) -> Int32 {
    switch inv.command {
    case .version:
      Console.out("wisp \(Build.version) \(Build.triple) \(Build.flavour)")
      Console.out("libraries: \(TLSLibrary.version), libgpiod \(GPIOLibrary.version)")
      return 0
    case .help:
      Console.out(Arguments.help(inv.positionals.first))
      return 0
    case .selftest:
      return SelfTest.run()
    case .run:
      return RunCommand.main(inv)
    case .demo:
      return Demo.main(inv)
    case .client:
      return ClientCommand.main(inv)
    case .forward:
      return ForwardCommand.main(inv)
    case .config:
      return ConfigCommand.check(inv)
    case .boards:
      return BoardFiles.list()
    case .status:
      return StatusClient.main(inv)
    case .leds:
      return LedsCommand.run(inv)
    case .keygen:
      return IdentityCommands.keygen(inv)
    case .id:
      return IdentityCommands.id(inv)
    case .tlsProbe, .tlsBench:
      return DeveloperTools.main(inv)
    case .credits:
      if SettleCommands.wanted(inv) { return SettleCommands.main(inv) }
      return DeveloperTools.wanted(inv) ? DeveloperTools.main(inv) : CreditsCommands.credits(inv)
    case .payers:
      return SettleCommands.main(inv)
    case .journal:
      return CreditsCommands.journal(inv)
    }
  }
}
