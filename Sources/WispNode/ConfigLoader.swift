// Loading a node's configuration: board defaults, then wisp.conf, then the command line.
import CPosix
import WispCore
import WispOS

public enum ConfigLoader {
  public static let defaultPath = "/etc/wisp/wisp.conf"

  public struct Failure: Error {
    public let message: String
    /// 2 for a bad command line, 1 for a bad or unreadable file.
    public let exitCode: Int32
  }

  /// Reads and validates `path` over the board it names (or `boardOverride`).
  public static func load(path: String?, boardOverride: String?, inv: Invocation?) -> Result<RunConfig, Failure> {
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
    // Exit rules the address policy makes useless, or too many: an error, wherever given.
    let fromCommandLine = inv.map { !$0.values("--exit").isEmpty || !$0.values("--exit-policy").isEmpty } ?? false
    let key = fromCommandLine ? (inv!.values("--exit-policy").isEmpty ? "--exit" : "--exit-policy")
      : (c.exitRules.isEmpty ? "exits" : "exit_policy")
    if let m = c.exitPolicyMessage(key) {
      return .failure(Failure(message: fromCommandLine || path == nil ? m : "\(path!): \(m)", exitCode: fromCommandLine ? 2 : 1))
    }
    if c.statusSocket == nil && (inv == nil || inv!.value("--status-socket") == nil) {
      if let rt = ProcessInfo.environment("RUNTIME_DIRECTORY") { c.statusSocket = rt + "/status.sock" }
    }
    return .success(c)
  }

  /// `wisp run`'s configuration: --config FILE, else /etc/wisp/wisp.conf when present.
  public static func forRun(_ inv: Invocation) -> Result<RunConfig, Failure> {
    let path = inv.value("--config") ?? (Files.exists(defaultPath) ? defaultPath : nil)
    return load(path: path, boardOverride: inv.value("--board"), inv: inv)
  }

}
