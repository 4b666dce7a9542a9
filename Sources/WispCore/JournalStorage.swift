// The storage under the credit journal: five callbacks with written contracts.
// Runs on host and device. The real one is `FileJournalStorage` (WispOS); tests use
// `EmulatedJournalStorage` (WispTestSupport), which can cut power after any write.

/// A failure of the storage below the journal.
public struct StorageError: Error, Equatable {
  public enum Kind: Equatable {
    case io           // the OS refused (code = errno)
    case powerCut     // emulated: power is gone, nothing more reaches the disk
    case tooLarge     // the journal is larger than the reader's limit
  }
  public let kind: Kind
  public let code: Int32
  public init(_ kind: Kind, code: Int32 = 0) {
    self.kind = kind
    self.code = code
  }
}

/// Contracts (every implementation keeps all of them):
///  - `append` adds bytes at the end of the journal. They may stay volatile until
///    `sync` returns; a power cut may keep any prefix of them, or (without a sync)
///    lose or keep each unsynced write independently.
///  - `sync` returns only when every byte appended before it is durable (fdatasync).
///  - `readAll` returns the journal as the running process sees it (empty if none).
///  - `truncate` cuts the journal to `length` bytes and makes the new length durable.
///  - `replace` swaps the whole journal for `bytes` atomically: after a power cut the
///    journal is either entirely the old one or entirely the new one, and once it
///    returns it is the new one (write a new file, fsync it, rename it over the old,
///    fsync the directory).
public protocol JournalStorage {
  mutating func append(_ bytes: UnsafeRawBufferPointer) throws(StorageError)
  mutating func sync() throws(StorageError)
  mutating func readAll() throws(StorageError) -> [UInt8]
  mutating func truncate(to length: Int) throws(StorageError)
  mutating func replace(with bytes: UnsafeRawBufferPointer) throws(StorageError)
}

extension JournalStorage {
  public mutating func append(_ bytes: [UInt8]) throws(StorageError) {
    var failure: StorageError? = nil
    bytes.withUnsafeBytes { b in
      do throws(StorageError) { try self.append(b) } catch { failure = error }
    }
    if let failure { throw failure }
  }

  public mutating func replace(with bytes: [UInt8]) throws(StorageError) {
    var failure: StorageError? = nil
    bytes.withUnsafeBytes { b in
      do throws(StorageError) { try self.replace(with: b) } catch { failure = error }
    }
    if let failure { throw failure }
  }
}
