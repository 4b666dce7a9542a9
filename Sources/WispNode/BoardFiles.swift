// Finding a board file by name or path.
import WispCore
import WispOS

public enum BoardFiles {
  /// Where named boards are looked up, in order: the installed copy, then the source tree.
  public static let roots = ["/usr/share/wisp/boards", "Board"]

  public static func load(_ nameOrPath: String) -> Result<Board, BoardLoadError> {
    var candidates: [String] = []
    if nameOrPath.utf8.contains(47) {  // '/': a path
      candidates = [nameOrPath]
    } else {
      candidates = roots.map { $0.is("Board") ? "Board/\(nameOrPath)/board.conf" : "\($0)/\(nameOrPath).conf" }
    }
    for path in candidates where Files.exists(path) {
      let text: String
      do { text = try Files.readText(path) } catch { return .failure(BoardLoadError("cannot read \(path): \(error.description)")) }
      do { return .success(try Board.parse(text)) } catch {
        return .failure(BoardLoadError("\(path):\(error.line): \(error.message)"))
      }
    }
    var known: [String] = []
    for root in roots {
      if let names = try? Files.list(root) {
        for n in names where !n.utf8.contains(46) { known.append(n) }  // folders, not README.md
      }
    }
    return .failure(BoardLoadError("unknown board '\(nameOrPath)' (known: \(known.isEmpty ? "none found" : known.joined(separator: ", ")))"))
  }
}

extension BoardFiles {
  /// `wisp boards`: every board found, with its target.
  public static func list() -> Int32 {
    var any = false
    for root in roots {
      guard let names = try? Files.list(root) else { continue }
      for n in names where !n.utf8.contains(46) || root.is("/usr/share/wisp/boards") {
        let name = root.is("Board") ? n : String(n.utf8.prefix(n.utf8.count - 5))!
        if case .success(let b) = load(root.is("Board") ? "Board/\(n)/board.conf" : "\(root)/\(n)") {
          Console.out("\(name)  \(b.target.name)  \(b.description)")
          any = true
        }
      }
      if any { return 0 }
    }
    Console.err("wisp: no board files found in \(roots.joined(separator: " or "))")
    return 1
  }
}

public struct BoardLoadError: Error {
  public let message: String
  public init(_ m: String) { message = m }
}
