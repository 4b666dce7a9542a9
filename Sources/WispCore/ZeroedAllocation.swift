// Zero-filled allocations whose pages stay non-resident until touched. Runs on host and device.
//
// Large fixed tables (the circuit table) are reserved whole at start, but only the
// slots in use should cost RAM. A fresh large allocation from the C library is mmap'd
// zero pages, and `calloc` does not touch them.

@_silgen_name("calloc")
func c_calloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer?


/// `count` zeroed elements of `T`; T's all-zero bit pattern must be a valid value.
func zeroedAllocation<T>(_ count: Int) -> UnsafeMutablePointer<T> {
  guard let raw = c_calloc(count, MemoryLayout<T>.stride) else { fatalError("out of memory at start-up") }
  return raw.bindMemory(to: T.self, capacity: count)
}

/// Releases a `zeroedAllocation`. Swift's allocator is the C library's malloc/free on
/// Linux (full and Embedded Swift alike), so `deallocate` frees what calloc returned.
func freeZeroed<T>(_ p: UnsafeMutablePointer<T>) { UnsafeMutableRawPointer(p).deallocate() }

extension UnsafeMutablePointer {
  /// `count` zeroed elements, non-resident until touched (Pointee's all-zero bit pattern
  /// must be a valid value); release with `deallocate()`.
  public init(zeroedCount count: Int) {
    self = zeroedAllocation(count)
  }
}

extension UnsafeMutableRawPointer {
  /// `count` zeroed bytes, non-resident until touched; release with `deallocate()`.
  public init(zeroedBytes count: Int) {
    guard let raw = c_calloc(count, 1) else { fatalError("out of memory at start-up") }
    self = raw
  }
}
