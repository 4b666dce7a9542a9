// Durable replacement of a whole file: the one temporary-file + fsync + rename writer.
// Runs on host and device.
//
// A power cut leaves either the old file or the new one under the name, never a mix:
//   1. the bytes go to a temporary file beside the target (`NAME.tmp-PID` unless the
//      caller names one), created with exactly the requested mode (the umask neither
//      widens nor narrows it; a symbolic link in its place is refused);
//   2. it is written in full, fsynced and closed (a failed close is a failed write);
//   3. it is renamed over NAME (atomic on POSIX file systems);
//   4. the folder is fsynced, so that the rename itself is on disk. A file system that
//      cannot fsync a folder (EINVAL) is accepted: there is nothing more to do there.
// A failure in steps 1–3 removes the temporary file and leaves NAME as it was.
//
// Used for the node key and certificate, session tickets, the ticket seed, claim files,
// the credit journal's compaction and `wisp config import-boot`.
import CPosix
import WispCore

extension Files {
  /// Replaces `path` with `bytes` durably (temporary file, fsync, rename, fsync of the
  /// folder), the new file with permission bits `mode`. `temporary` names the temporary
  /// file (default `path.tmp-PID`). Wraps open(2), write(2), fsync(2), close(2), rename(2).
  public static func writeDurably(_ path: String, _ bytes: UnsafeRawBufferPointer, mode: UInt32,
                                  temporary: String? = nil) throws(Errno) {
    let tmp = temporary ?? path + ".tmp-\(getpid())"
    let fd = try retryingEINTR { wisp_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode) }
    var failure: Errno? = nil
    do throws(Errno) {
      _ = try retryingEINTR { fchmod(fd, mode_t(mode)) }
      var off = 0
      while off < bytes.count {
        let n = try retryingEINTR { CPosix.write(fd, bytes.baseAddress! + off, bytes.count - off) }
        if n == 0 { throw Errno(EIO) }
        off += n
      }
      _ = try retryingEINTR { fsync(fd) }
    } catch {
      failure = error
    }
    if close(fd) < 0 && failure == nil { failure = Errno.current }
    if failure == nil {
      do { _ = try retryingEINTR { CPosix.rename(tmp, path) } } catch { failure = error }
    }
    if let failure {
      _ = wisp_unlink(tmp)
      throw failure
    }
    try syncDirectory(of: path)
  }

  /// `writeDurably` for an array.
  public static func writeDurably(_ path: String, _ bytes: [UInt8], mode: UInt32, temporary: String? = nil) throws(Errno) {
    var failure: Errno? = nil
    bytes.withUnsafeBytes { b in
      do throws(Errno) { try writeDurably(path, b, mode: mode, temporary: temporary) } catch { failure = error }
    }
    if let failure { throw failure }
  }

  /// Renames `from` to `to` and fsyncs the directory of `to`.
  public static func renameDurably(_ from: String, _ to: String) throws(Errno) {
    _ = try retryingEINTR { CPosix.rename(from, to) }
    try syncDirectory(of: to)
  }

  /// fsync(2) of the directory holding `path`, so a rename in it is on disk; a file system
  /// that cannot sync folders (EINVAL) is not an error.
  public static func syncDirectory(of path: String) throws(Errno) {
    let dir = directoryName(path)
    let fd = try retryingEINTR { wisp_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0) }
    defer { close(fd) }
    do { _ = try retryingEINTR { fsync(fd) } } catch {
      if error.code != EINVAL { throw error }
    }
  }

  /// Everything before the last '/', or "." when there is none.
  static func directoryName(_ path: String) -> String {
    let bytes = Array(path.utf8)
    guard let slash = bytes.lastIndex(of: 47) else { return "." }
    if slash == 0 { return "/" }
    return bytes[0..<slash].withUnsafeBytes { String(bytes: $0) }
  }
}
