// Names used by `wisp config import-boot` (the headless first boot). Runs on host and device.
//
// The import validates FILE (default /boot/firmware/wisp.conf), keeps a backup of the old
// target as `TARGET.bak-EPOCH`, writes the new target durably (`Files.writeDurably`:
// `TARGET.tmp-PID`, fsync, rename, fsync of the folder) and retires the source as `FILE.imported`.

public enum ConfigImportPaths {
  public static let defaultSource = "/boot/firmware/wisp.conf"
  public static let defaultTarget = "/etc/wisp/wisp.conf"

  /// The folder holding `path` ("." for a bare name, "/" for a file at the root).
  public static func directory(of path: String) -> String {
    let bytes = Array(path.utf8)
    var end = bytes.count
    while end > 1 && bytes[end - 1] == 47 { end -= 1 }  // trailing '/'
    guard let slash = bytes[..<end].lastIndex(of: 47) else { return "." }
    if slash == 0 { return "/" }
    return String(decoding: bytes[..<slash], as: UTF8.self)
  }

  /// `TARGET.bak-EPOCH`: the previous target, kept on every import.
  public static func backup(of target: String, epoch: Int64) -> String { "\(target).bak-\(epoch)" }

  /// What the source is renamed to once imported (so the next boot does not import it again).
  public static func imported(_ source: String) -> String { "\(source).imported" }
}
