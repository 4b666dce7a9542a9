// The credit journal on a real file: write + fdatasync, ftruncate + fsync, and
// compaction as write-new/fsync/rename/fsync-directory (Files.writeDurably). Runs on host and device.
// Implements the contracts of `JournalStorage` (WispCore/JournalStorage.swift).
import CPosix
import WispCore

public struct FileJournalStorage: JournalStorage {
  public let directory: String
  public let path: String
  var tmpPath: String { path + ".tmp" }
  var fd: Int32 = -1
  /// The largest journal `readAll` accepts.
  public var readLimit = 64 << 20

  /// Names `<directory>/<name>`; creates the directory; removes a stale compaction file.
  public init(directory: String, name: String = "credits.journal") throws(Errno) {
    self.directory = directory
    self.path = directory + "/" + name
    _ = try retryingNegErrno { wisp_mkdir(directory, 0o700) }
    _ = wisp_unlink(path + ".tmp")  // an interrupted compaction: the journal itself is intact
    fd = try retryingEINTR { wisp_open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600) }
  }

  public mutating func close() {
    if fd >= 0 { _ = CPosix.close(fd) }
    fd = -1
  }

  static func err(_ r: Int) -> StorageError { StorageError(.io, code: Int32(-r)) }

  /// write(2) until done.
  public mutating func append(_ bytes: UnsafeRawBufferPointer) throws(StorageError) {
    let r = wisp_write_file(fd, bytes.baseAddress, bytes.count)
    if r < 0 { throw Self.err(r) }
  }

  /// fdatasync(2).
  public mutating func sync() throws(StorageError) {
    let r = wisp_fdatasync(fd)
    if r < 0 { throw Self.err(Int(r)) }
  }

  /// pread(2) from offset 0 until end of file.
  public mutating func readAll() throws(StorageError) -> [UInt8] {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
      let off = Int64(out.count)
      let n = chunk.withUnsafeMutableBytes { wisp_pread(fd, $0.baseAddress, $0.count, off) }
      if n < 0 { throw Self.err(n) }
      if n == 0 { break }
      out.append(contentsOf: chunk[0..<n])
      if out.count > readLimit { throw StorageError(.tooLarge) }
    }
    return out
  }

  /// ftruncate(2) then fsync(2).
  public mutating func truncate(to length: Int) throws(StorageError) {
    var r = wisp_ftruncate(fd, Int64(length))
    if r == 0 { r = wisp_fsync(fd) }
    if r < 0 { throw Self.err(Int(r)) }
  }

  /// Writes `<path>.tmp`, fsyncs it, renames it over the journal, fsyncs the directory
  /// (Files.writeDurably), then reopens the journal.
  public mutating func replace(with bytes: UnsafeRawBufferPointer) throws(StorageError) {
    do { try Files.writeDurably(path, bytes, mode: 0o600, temporary: tmpPath) } catch {
      throw StorageError(.io, code: error.code)
    }
    close()
    fd = wisp_open(path, O_RDWR | O_APPEND | O_CLOEXEC, 0o600)
    if fd < 0 { throw StorageError(.io, code: wisp_errno()) }
  }
}
