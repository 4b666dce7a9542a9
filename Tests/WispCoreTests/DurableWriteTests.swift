// Files.writeDurably (WispOS/DurableWrite.swift) on a real temporary directory: the new
// bytes and mode arrive, no temporary file is left, and a write that fails leaves the
// old file exactly as it was.
import Glibc
import Testing
import WispCore
import WispOS

private func freshDirectory() -> String {
  var template = Array("/tmp/wisp-durable-test.XXXXXX".utf8CString)
  return String(cString: mkdtemp(&template)!)
}

private func entries(_ dir: String) -> [String] { (try? Files.list(dir)) ?? [] }

@Suite struct DurableWriteTests {
  @Test func writesAndReadsBack() throws {
    let dir = freshDirectory()
    let path = dir + "/state.bin"
    let bytes: [UInt8] = Array(0...255) + Array("the end\n".utf8)
    try Files.writeDurably(path, bytes, mode: 0o600)
    #expect(try Files.read(path) == bytes)
    #expect(try Files.permissions(path) == 0o600)
    #expect(entries(dir) == ["state.bin"], "no temporary file left")
  }

  @Test func replacesAnExistingFileWithTheExactMode() throws {
    let dir = freshDirectory()
    let path = dir + "/wisp.conf"
    try Files.writeDurably(path, Array("old\n".utf8), mode: 0o600)
    let oldMask = umask(0o077)  // the umask must not narrow the mode asked for
    defer { umask(oldMask) }
    try Files.writeDurably(path, Array("new\n".utf8), mode: 0o644)
    #expect(try Files.read(path) == Array("new\n".utf8))
    #expect(try Files.permissions(path) == 0o644)
    try Files.writeDurably(path, [], mode: 0o600)
    #expect(try Files.read(path).isEmpty)
    #expect(entries(dir) == ["wisp.conf"])
  }

  @Test func aFailedWriteLeavesTheOldFileIntact() throws {
    let dir = freshDirectory()
    let path = dir + "/node.crt"
    let old = Array("old contents\n".utf8)
    try Files.writeDurably(path, old, mode: 0o644)
    // The temporary file cannot be created: a folder is in its place.
    let blocked = dir + "/blocked.tmp"
    #expect(mkdir(blocked, 0o700) == 0)
    #expect(throws: Errno.self) { try Files.writeDurably(path, Array("new".utf8), mode: 0o644, temporary: blocked) }
    #expect(try Files.read(path) == old)
    // The temporary file's folder does not exist.
    #expect(throws: Errno(ENOENT)) {
      try Files.writeDurably(path, Array("new".utf8), mode: 0o644, temporary: dir + "/missing/x.tmp")
    }
    #expect(try Files.read(path) == old)
    // The target's folder does not exist: nothing is written anywhere.
    #expect(throws: Errno(ENOENT)) { try Files.writeDurably(dir + "/missing/node.crt", old, mode: 0o644) }
    #expect(try Files.read(path) == old)
    #expect(try Files.permissions(path) == 0o644)
    #expect(entries(dir) == ["blocked.tmp", "node.crt"])
  }

  @Test func aFailedRenameRemovesTheTemporaryFile() throws {
    // Written and fsynced in full, then the rename fails (another file system: EXDEV).
    var shm = stat(), tmp = stat()
    guard stat("/dev/shm", &shm) == 0, stat("/tmp", &tmp) == 0, shm.st_dev != tmp.st_dev else { return }
    let dir = freshDirectory()
    let path = dir + "/ticket.seed"
    let old = [UInt8](repeating: 7, count: 32)
    try Files.writeDurably(path, old, mode: 0o600)
    let elsewhere = "/dev/shm/wisp-durable-test.\(getpid()).tmp"
    #expect(throws: Errno(EXDEV)) {
      try Files.writeDurably(path, [UInt8](repeating: 9, count: 32), mode: 0o600, temporary: elsewhere)
    }
    #expect(try Files.read(path) == old)
    #expect(!Files.exists(elsewhere), "the temporary file is removed")
    #expect(entries(dir) == ["ticket.seed"])
  }
}
