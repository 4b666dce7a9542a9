// Finding a board file by name or path.
import WispCore
import WispOS

enum BoardFiles {
  /// Where named boards are looked up, in order: the installed copy, then the source tree.
  static let roots = ["/usr/share/wisp/boards", "Board"]

  static func load(_ nameOrPath: String) -> Result<Board, BoardLoadError> {
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

struct BoardLoadError: Error {
  let message: String
  init(_ m: String) { message = m }
}
