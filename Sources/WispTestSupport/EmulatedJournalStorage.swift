// An in-memory journal storage that can lose power after any write (littlefs's
// emulated block device, for a file). A test fake (WispTestSupport): never in the product.
//
// Every call that changes the disk is one numbered operation: append, sync,
// truncate (which syncs), and the four steps of replace (write the new file, fsync
// it, rename it over, fsync the directory). With `cutAt = N` operation N never
// completes and every later call throws `powerCut`. `afterPowerLoss` then builds the
// disk a rebooted machine finds, in one of two modes:
//  - torn: every write before the cut reached the disk in order; the cut write
//    left a random prefix (possibly empty);
//  - reorder: synced data survives; each un-synced write independently survives
//    whole, as a random prefix, or not at all (a gap reads as zeros), and an
//    un-synced truncate or rename may be lost.
import WispCore

public struct EmulatedJournalStorage: JournalStorage {
  /// The emulated disk; a reference, so a test still holds it after the journal that
  /// used it has gone (as a disk outlives the process).
  public let disk: EmulatedDisk

  public init(disk: EmulatedDisk) { self.disk = disk }
  public init(image: [UInt8] = [], cutAt: Int? = nil) { disk = EmulatedDisk(image: image, cutAt: cutAt) }

  public mutating func append(_ bytes: UnsafeRawBufferPointer) throws(StorageError) { try disk.append(bytes) }
  public mutating func sync() throws(StorageError) { try disk.sync() }
  public mutating func readAll() throws(StorageError) -> [UInt8] { try disk.readAll() }
  public mutating func truncate(to length: Int) throws(StorageError) { try disk.truncate(to: length) }
  public mutating func replace(with bytes: UnsafeRawBufferPointer) throws(StorageError) { try disk.replace(with: bytes) }
}

public final class EmulatedDisk {
  public enum CutMode: Equatable { case torn, reorder }
  enum Op {
    case write(offset: Int, bytes: [UInt8])
    case truncate(Int)
  }

  /// What a power cut cannot take away.
  public private(set) var durable: [UInt8] = []
  /// What the running process sees.
  public private(set) var visible: [UInt8] = []
  /// Changes since the last sync, in order.
  var unsynced: [Op] = []
  /// The image before an un-synced rename (nil when the directory is synced).
  var beforeRename: [UInt8]? = nil
  /// The operation that was cut, if it was a write (torn mode keeps a prefix of it).
  var cutWrite: Op? = nil

  /// Cut power during operation number `cutAt` (1-based); nil = never.
  public var cutAt: Int?
  public private(set) var operations = 0
  public private(set) var powerIsCut = false
  public private(set) var syncs = 0

  public init(image: [UInt8] = [], cutAt: Int? = nil) {
    durable = image
    visible = image
    self.cutAt = cutAt
  }

  /// Counts an operation; throws if power is (or now goes) out.
  func step() throws(StorageError) {
    if powerIsCut { throw StorageError(.powerCut) }
    operations += 1
    if let c = cutAt, operations >= c {
      powerIsCut = true
      throw StorageError(.powerCut)
    }
  }

  public func append(_ bytes: UnsafeRawBufferPointer) throws(StorageError) {
    let op = Op.write(offset: visible.count, bytes: [UInt8](bytes))
    do throws(StorageError) { try step() } catch { cutWrite = op; throw error }
    visible.append(contentsOf: bytes)
    unsynced.append(op)
  }

  public func sync() throws(StorageError) {
    try step()
    durable = visible
    unsynced.removeAll()
    syncs += 1
  }

  public func readAll() throws(StorageError) -> [UInt8] {
    if powerIsCut { throw StorageError(.powerCut) }
    return visible
  }

  public func truncate(to length: Int) throws(StorageError) {
    let op = Op.truncate(length)
    do throws(StorageError) { try step() } catch { cutWrite = op; throw error }  // ftruncate
    visible.removeLast(visible.count - min(length, visible.count))
    unsynced.append(op)
    try sync()                                               // fsync
  }

  public func replace(with bytes: UnsafeRawBufferPointer) throws(StorageError) {
    try step()             // write the new file (a torn one is never renamed: harmless)
    try step()             // fsync the new file
    try step()             // rename over the journal: atomic
    // Un-synced writes to the old file no longer matter: it is unlinked.
    beforeRename = durable
    durable = [UInt8](bytes)
    visible = durable
    unsynced.removeAll()
    try step()             // fsync the directory: the rename is durable
    beforeRename = nil
  }

  /// The storage found after power comes back (`seed` picks the random outcomes).
  public func afterPowerLoss(_ mode: CutMode, seed: UInt64) -> EmulatedDisk {
    var rng = SplitMix(seed)
    var image = durable
    if let old = beforeRename, mode == .reorder, rng.next() & 1 == 0 { image = old }
    switch mode {
    case .torn:
      for op in unsynced { apply(op, to: &image, keep: nil) }
      if let op = cutWrite {
        if case .write(_, let b) = op { apply(op, to: &image, keep: Int(rng.next() % UInt64(b.count + 1))) }
        else if rng.next() & 1 == 0 { apply(op, to: &image, keep: nil) }
      }
    case .reorder:
      if beforeRename == nil || image.count == durable.count {
        for op in unsynced {
          switch rng.next() % 3 {
          case 0: break                                   // lost
          case 1: apply(op, to: &image, keep: nil)        // whole
          default:
            if case .write(_, let b) = op { apply(op, to: &image, keep: Int(rng.next() % UInt64(b.count + 1))) }
          }
        }
      }
    }
    return EmulatedDisk(image: image)
  }

  func apply(_ op: Op, to image: inout [UInt8], keep: Int?) {
    switch op {
    case .truncate(let n):
      if image.count > n { image.removeLast(image.count - n) }
    case .write(let offset, let bytes):
      let n = keep ?? bytes.count
      if n == 0 { return }
      if image.count < offset + n { image.append(contentsOf: [UInt8](repeating: 0, count: offset + n - image.count)) }
      for i in 0..<n { image[offset + i] = bytes[i] }
    }
  }
}
