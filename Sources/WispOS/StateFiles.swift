// Durable small files in a state directory (node key, certificate). Runs on host and device.
//
// A write never leaves a half-written file under the final name: the bytes go to
// `NAME.tmp-PID`, which is fsynced, renamed over NAME, and then the directory is
// fsynced so the rename itself survives a power cut.
import CPosix
import WispCore

extension Files {
  /// Writes `bytes` to `path` durably with permission bits `mode` (temp, fsync, rename, fsync dir).
  public static func writeDurably(_ path: String, _ bytes: [UInt8], mode: UInt32) throws(Errno) {
    let tmp = path + ".tmp-\(getpid())"
    let fd = try retryingEINTR { wisp_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode) }
    do {
      _ = try retryingEINTR { fchmod(fd, mode_t(mode)) }  // the umask must not widen or narrow it
      var off = 0
      while off < bytes.count {
        let n = try retryingEINTR { bytes.withUnsafeBytes { CPosix.write(fd, $0.baseAddress! + off, $0.count - off) } }
        off += n
      }
      _ = try retryingEINTR { fsync(fd) }
    } catch {
      close(fd)
      unlink(tmp)
      throw error
    }
    close(fd)
    do {
      _ = try retryingEINTR { CPosix.rename(tmp, path) }
    } catch {
      unlink(tmp)
      throw error
    }
    try syncDirectory(of: path)
  }

  /// Renames `from` to `to` and fsyncs the directory of `to`.
  public static func renameDurably(_ from: String, _ to: String) throws(Errno) {
    _ = try retryingEINTR { CPosix.rename(from, to) }
    try syncDirectory(of: to)
  }

  /// fsync(2) of the directory holding `path`, so a rename in it is on disk.
  public static func syncDirectory(of path: String) throws(Errno) {
    let dir = directoryName(path)
    let fd = try retryingEINTR { wisp_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0) }
    defer { close(fd) }
    _ = try retryingEINTR { fsync(fd) }
  }

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

  /// Everything before the last '/', or "." when there is none.
  static func directoryName(_ path: String) -> String {
    let bytes = Array(path.utf8)
    guard let slash = bytes.lastIndex(of: 47) else { return "." }
    if slash == 0 { return "/" }
    return bytes[0..<slash].withUnsafeBytes { String(bytes: $0) }
  }
}
