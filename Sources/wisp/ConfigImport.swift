// `wisp config import-boot [--from FILE] [--to FILE]`: the headless first boot.
//
// Someone writes wisp.conf to the SD card's boot partition (FAT, readable from any
// computer); the unit's ExecStartPre imports it into /etc/wisp before the node starts.
//  - no source: nothing to do, exit 0 without a word;
//  - the source is checked with the loader `wisp config check` uses; if it is bad the
//    error (`FILE:LINE: message`) is printed, nothing is touched, exit 1 (the unit runs
//    this with a `-` prefix, so the node still starts with the old config);
//  - if good: the old target is kept as TARGET.bak-EPOCH, the new one is written durably
//    (Files.writeDurably: TARGET.tmp-PID, fsync, rename, fsync of the folder); then the
//    source is renamed to FILE.imported (and its folder fsynced) so it is imported once.
import CPosix
import WispCore
import WispNode
import WispClient
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
        try Files.writeDurably(path, old, mode: 0o644)
      } catch {
        Console.err("wisp: cannot keep a backup of \(target) as \(path): \(error.description); nothing imported")
        return 1
      }
      backup = path
    }
    do { try Files.writeDurably(target, bytes, mode: 0o644) } catch {
      Console.err("wisp: cannot write \(target): \(error.description); nothing imported")
      return 1
    }
    let retired = ConfigImportPaths.imported(source)
    do {
      _ = try retryingEINTR { rename(source, retired) }
      try? Files.syncDirectory(of: retired)  // best effort on FAT
    } catch {
      // The new config is in place; only the retirement failed (e.g. a read-only card).
      Console.err("wisp: imported, but cannot rename \(source) to \(retired): \(error.description)")
    }
    Console.out("wisp: imported \(source) into \(target)" + (backup.map { " (previous config kept as \($0))" } ?? ""))
    return 0
  }
}
