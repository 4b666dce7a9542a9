// Whole-file reads, folders and permission bits. Runs on host and device.
// Durable writes are in DurableWrite.swift.
import CPosix
import WispCore

public enum Files {
  /// Reads a whole file (up to `limit` bytes; larger is EFBIG).
  public static func read(_ path: String, limit: Int = 1 << 20) throws(Errno) -> [UInt8] {
    let fd = try retryingEINTR { wisp_open(path, O_RDONLY | O_CLOEXEC, 0) }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = try retryingEINTR { chunk.withUnsafeMutableBytes { CPosix.read(fd, $0.baseAddress, $0.count) } }
      if n == 0 { break }
      out.append(contentsOf: chunk[0..<n])
      if out.count > limit { throw Errno(EFBIG) }
    }
    return out
  }

  /// Reads a whole text file.
  public static func readText(_ path: String) throws(Errno) -> String {
    let bytes = try read(path)
    return bytes.withUnsafeBytes { String(bytes: $0) }
  }

  /// Entry names in a directory, sorted by byte value.
  public static func list(_ path: String) throws(Errno) -> [String] {
    var buf = [CChar](repeating: 0, count: 64 * 1024)
    let used = Int(wisp_list_dir(path, &buf, buf.count))
    if used < 0 { throw Errno(Int32(-used)) }
    var names: [String] = []
    var start = 0
    for i in 0..<used where buf[i] == 0 {
      names.append(buf[start..<i].withUnsafeBytes { String(bytes: $0) })
      start = i + 1
    }
    return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
  }

  public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

  /// Creates `path` (one level) with `mode` if it does not exist yet.
  public static func makeDirectory(_ path: String, mode: UInt32 = 0o700) throws(Errno) {
    if mkdir(path, mode_t(mode)) == 0 { return }
    let e = wisp_errno()
    if e != EEXIST { throw Errno(e) }
  }

  /// Permission bits (mode & 0o7777) of a file, following no symbolic link at the end.
  public static func permissions(_ path: String) throws(Errno) -> UInt32 {
    var st = stat()
    _ = try retryingEINTR { lstat(path, &st) }
    return UInt32(st.st_mode) & 0o7777
  }
}
