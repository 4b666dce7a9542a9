// Developer tools: `wisp tls-probe`, `wisp tls-bench` and `wisp credits selftest-fill`.
//
// They test and measure; a relay never needs them. The device binary (Embedded Swift,
// Toolchain/build.sh) leaves them out and says so when asked; the host build has them:
//   swift build -c release && .build/release/wisp tls-bench
// (Toolchain/host-build.sh builds it once and prints its path, for the test scripts.)
// The command line still parses them everywhere, so the device's answer is this clear
// error rather than "unknown command".
import WispCore
import WispNode
import WispClient
import WispOS

enum DeveloperTools {
  /// Whether `inv` asks for a developer tool.
  static func wanted(_ inv: Invocation) -> Bool {
    switch inv.command {
    case .tlsProbe, .tlsBench: return true
    case .credits: return inv.positionals.first?.is("selftest-fill") == true
    default: return false
    }
  }

  /// Runs the tool `inv` names (`wanted(inv)` is true); exit 2 in the device binary.
  static func main(_ inv: Invocation) -> Int32 {
    #if hasFeature(Embedded)
      let name = inv.command == .tlsProbe ? "tls-probe" : inv.command == .tlsBench ? "tls-bench" : "credits selftest-fill"
      Console.err("wisp: '\(name)' is a developer tool, not in this build (\(Build.flavour) \(Build.triple));"
                  + " use the host build: swift build -c release && .build/release/wisp \(name)")
      return 2
    #else
      switch inv.command {
      case .tlsProbe: return TLSProbe.main(inv)
      case .tlsBench: return TLSBench.main(inv)
      default: return CreditsFill.main(inv)
      }
    #endif
  }
}
