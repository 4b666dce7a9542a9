// `wisp config check [FILE]` and `wisp config import-boot`.
import WispCore
import WispOS
import WispNode

enum ConfigCommand {
  /// `wisp config check [FILE]` and `wisp config import-boot [--from FILE] [--to FILE]`.
  static func check(_ inv: Invocation) -> Int32 {
    if let verb = inv.positionals.first, verb.is("import-boot") {
      if inv.positionals.count > 1 {
        Console.err("wisp: 'config import-boot' takes no file argument (use --from/--to)")
        return 2
      }
      return ConfigImport.main(inv)
    }
    guard let verb = inv.positionals.first, verb.is("check") else {
      Console.err("wisp: 'config' needs a verb: wisp config check [FILE] | wisp config import-boot [--from FILE] [--to FILE]")
      return 2
    }
    if inv.value("--from") != nil || inv.value("--to") != nil {
      Console.err("wisp: --from and --to belong to 'wisp config import-boot'")
      return 2
    }
    let path = inv.positionals.count > 1 ? inv.positionals[1] : ConfigLoader.defaultPath
    switch ConfigLoader.load(path: path, boardOverride: nil, inv: nil) {
    case .failure(let f):
      Console.err("wisp: \(f.message)")
      return 1
    case .success(let c):
      Console.out("\(path): ok")
      Console.out("  name=\(c.name) listen=\(c.listen.text) board=\(c.boardName ?? "none") shards=\(c.effectiveShards)"
                  + " pool=\(c.poolPackets) circuits=\(c.circuits) exit_rules=\(c.exitPolicy.rules.count)"
                  + " metrics=\(c.metrics?.text ?? "off") state_dir=\(c.stateDir)"
                  + " links=\(c.linksRequired ? "required" : "optional") lab_addresses=\(c.limits.labAddresses ? "yes" : "no")"
                  + " clock_sync=\(c.clockSync.name)")
      Console.out("  exit_policy=\(c.exitPolicy.text)\(c.exitPolicy.isEmpty ? " (no exit)" : " (first match wins; no match: reject)")")
      return 0
    }
  }
}
