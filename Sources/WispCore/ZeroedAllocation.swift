// Zero-filled allocations whose pages stay non-resident until touched. Runs on host and device.
//
// Large fixed tables (the circuit table) are reserved whole at start, but only the
// slots in use should cost RAM. A fresh large allocation from the C library is mmap'd
// zero pages, and `calloc` does not touch them.

@_silgen_name("calloc")
func c_calloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer?

@_silgen_name("free")
func c_free(_ p: UnsafeMutableRawPointer?)

/// `count` zeroed elements of `T`; T's all-zero bit pattern must be a valid value.
func zeroedAllocation<T>(_ count: Int) -> UnsafeMutablePointer<T> {
  guard let raw = c_calloc(count, MemoryLayout<T>.stride) else { fatalError("out of memory at start-up") }
  return raw.bindMemory(to: T.self, capacity: count)
}

func freeZeroed<T>(_ p: UnsafeMutablePointer<T>) { c_free(UnsafeMutableRawPointer(p)) }

extension UnsafeMutableRawPointer {
  /// `count` zeroed bytes, non-resident until touched; release with `deallocate()`-free `free`.
  public init(zeroedBytes count: Int) {
    guard let raw = c_calloc(count, 1) else { fatalError("out of memory at start-up") }
    self = raw
  }
}
