// `wisp config import-boot [--from FILE] [--to FILE]`: the headless first boot.
//
// Someone writes wisp.conf to the SD card's boot partition (FAT, readable from any
// computer); the unit's ExecStartPre imports it into /etc/wisp before the node starts.
//  - no source: nothing to do, exit 0 without a word;
//  - the source is checked with the loader `wisp config check` uses; if it is bad the
//    error (`FILE:LINE: message`) is printed, nothing is touched, exit 1 (the unit runs
//    this with a `-` prefix, so the node still starts with the old config);
//  - if good: the old target is kept as TARGET.bak-EPOCH, the new one is written to a
//    temporary file, fsynced, renamed over the target and the folder fsynced; then the
//    source is renamed to FILE.imported (and its folder fsynced) so it is imported once.
import CPosix
import WispCore
import WispOS

enum ConfigImport {
  static func main(_ inv: Invocation) -> Int32 {
    let source = inv.value("--from") ?? ConfigImportPaths.defaultSource
    let target = inv.value("--to") ?? ConfigImportPaths.defaultTarget
    if !Files.exists(source) { return 0 }
    if case .failure(let f) = ConfigLoader.load(path: source, boardOverride: nil, inv: nil) {
      Console.err("wisp: \(f.message)")
      Console.err("wisp: \(source) not imported; \(target) left as it was")
      return 1
    }
    let bytes: [UInt8]
    do { bytes = try Files.read(source) } catch {
      Console.err("wisp: cannot read \(source): \(error.description)")
      return 1
    }
    var backup: String? = nil
    if Files.exists(target) {
      let path = ConfigImportPaths.backup(of: target, epoch: wisp_realtime_s())
      do {
        let old = try Files.read(target)
        try writeDurably(path, old)
      } catch {
        Console.err("wisp: cannot keep a backup of \(target) as \(path): \(error.description); nothing imported")
        return 1
      }
      backup = path
    }
    do { try writeDurably(target, bytes) } catch {
      Console.err("wisp: cannot write \(target): \(error.description); nothing imported")
      return 1
    }
    let retired = ConfigImportPaths.imported(source)
    do {
      _ = try retryingEINTR { rename(source, retired) }
      _ = wisp_fsync_path(ConfigImportPaths.directory(of: source))  // best effort on FAT
    } catch {
      // The new config is in place; only the retirement failed (e.g. a read-only card).
      Console.err("wisp: imported, but cannot rename \(source) to \(retired): \(error.description)")
    }
    Console.out("wisp: imported \(source) into \(target)" + (backup.map { " (previous config kept as \($0))" } ?? ""))
    return 0
  }

  /// Replaces `path` with `bytes` so that a power cut leaves either the old or the new
  /// file: temporary file (mode 0644), write, fsync, rename, fsync of the folder.
  static func writeDurably(_ path: String, _ bytes: [UInt8]) throws(Errno) {
    let tmp = ConfigImportPaths.temporary(for: path, pid: getpid())
    let fd = try retryingEINTR { wisp_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
    let written = Result { () throws(Errno) -> Void in
      var offset = 0
      while offset < bytes.count {
        let n = try retryingEINTR {
          bytes.withUnsafeBytes { CPosix.write(fd, $0.baseAddress! + offset, $0.count - offset) }
        }
        offset += n
      }
      _ = try retryingEINTR { fsync(fd) }
    }
    let closed = close(fd)
    if case .failure(let e) = written { _ = wisp_unlink(tmp); throw e }
    if closed < 0 { let e = Errno.current; _ = wisp_unlink(tmp); throw e }
    do { _ = try retryingEINTR { rename(tmp, path) } } catch { _ = wisp_unlink(tmp); throw error }
    let r = wisp_fsync_path(ConfigImportPaths.directory(of: path))
    if r < 0 && -r != EINVAL { throw Errno(-r) }  // EINVAL: the file system cannot sync folders
  }
}
