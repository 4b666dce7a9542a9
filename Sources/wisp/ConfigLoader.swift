// Loading a node's configuration: board defaults, then wisp.conf, then the command line.
import CPosix
import WispCore
import WispOS

enum ConfigLoader {
  static let defaultPath = "/etc/wisp/wisp.conf"

  struct Failure: Error {
    let message: String
    /// 2 for a bad command line, 1 for a bad or unreadable file.
    let exitCode: Int32
  }

  /// Reads and validates `path` over the board it names (or `boardOverride`).
  static func load(path: String?, boardOverride: String?, inv: Invocation?) -> Result<RunConfig, Failure> {
    var base = RunConfig()
    base.cores = Int(wisp_cpu_count())
    var text: String? = nil
    if let path {
      do { text = try Files.readText(path) } catch {
        return .failure(Failure(message: "cannot read \(path): \(error.description)", exitCode: 1))
      }
    }
    // First pass only to learn the board the file names.
    var boardName = boardOverride
    if boardName == nil, let text {
      switch Result(catching: { () throws(ConfigError) -> RunConfig in try ConfigFile.apply(text, to: base) }) {
      case .success(let c): boardName = c.boardName
      case .failure(let e): return .failure(Failure(message: "\(path!):\(e.line): \(e.message)", exitCode: 1))
      }
    }
    if let boardName {
      switch BoardFiles.load(boardName) {
      case .success(let b): base.apply(board: b)
      case .failure(let e): return .failure(Failure(message: e.message, exitCode: path == nil ? 2 : 1))
      }
    }
    var c = base
    if let text {
      do { c = try ConfigFile.apply(text, to: base) } catch {
        return .failure(Failure(message: "\(path!):\(error.line): \(error.message)", exitCode: 1))
      }
      c.configPath = path
    }
    if let inv {
      do { c = try RunConfig.from(inv, over: c) } catch {
        return .failure(Failure(message: error.message, exitCode: 2))
      }
    }
    if c.statusSocket == nil && (inv == nil || inv!.value("--status-socket") == nil) {
      if let rt = ProcessInfo.environment("RUNTIME_DIRECTORY") { c.statusSocket = rt + "/status.sock" }
    }
    return .success(c)
  }

  /// `wisp run`'s configuration: --config FILE, else /etc/wisp/wisp.conf when present.
  static func forRun(_ inv: Invocation) -> Result<RunConfig, Failure> {
    let path = inv.value("--config") ?? (Files.exists(defaultPath) ? defaultPath : nil)
    return load(path: path, boardOverride: inv.value("--board"), inv: inv)
  }

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
    let path = inv.positionals.count > 1 ? inv.positionals[1] : defaultPath
    switch load(path: path, boardOverride: nil, inv: nil) {
    case .failure(let f):
      Console.err("wisp: \(f.message)")
      return 1
    case .success(let c):
      Console.out("\(path): ok")
      Console.out("  name=\(c.name) listen=\(c.listen.text) board=\(c.boardName ?? "none") shards=\(c.effectiveShards)"
                  + " pool=\(c.poolPackets) circuits=\(c.circuits) exits=\(c.exits.count)"
                  + " metrics=\(c.metrics?.text ?? "off") state_dir=\(c.stateDir)")
      return 0
    }
  }
}
