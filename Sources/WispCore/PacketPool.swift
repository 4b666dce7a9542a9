// The packet pool: every packet buffer wisp will ever use, allocated once at start.
// Runs on host and device.
//
// Buffers are fixed-size slices of one allocation, handed out by index from a
// free stack. When the stack is empty the caller drops the packet and counts
// `pool_exhausted`: the pool never grows. Buffers are not cleared on return:
// a buffer is only ever sent from the offset and length its last receive or
// encode wrote, so stale bytes are never transmitted.
public final class PacketPool {
  public let capacity: Int
  public let bufferSize: Int
  public let memory: UnsafeMutableRawPointer
  private let freeStack: UnsafeMutablePointer<Int32>
  public private(set) var available: Int
  /// Times `take` found the pool empty.
  public private(set) var exhausted: UInt64 = 0

  public init(capacity: Int, bufferSize: Int = Defaults.bufferSize) {
    precondition(capacity > 0 && bufferSize >= Defaults.headroom + Wire.maxDatagram, "bad pool geometry")
    self.capacity = capacity
    self.bufferSize = bufferSize
    memory = UnsafeMutableRawPointer.allocate(byteCount: capacity * bufferSize, alignment: 64)
    // Not zero-filled: the kernel maps the pages lazily, so resident memory follows the
    // buffers actually in use (a LIFO free stack keeps reusing the same few).
    freeStack = .allocate(capacity: capacity)
    for i in 0..<capacity { freeStack[i] = Int32(capacity - 1 - i) }
    available = capacity
  }

  deinit {
    memory.deallocate()
    freeStack.deallocate()
  }

  /// A free buffer's index, or nil (counted) when the pool is exhausted.
  @inline(__always)
  public func take() -> Int32? {
    if available == 0 { exhausted &+= 1; return nil }
    available -= 1
    return freeStack[available]
  }

  /// Returns a buffer. Returning one twice is a programmer error and traps.
  @inline(__always)
  public func give(_ index: Int32) {
    precondition(available < capacity, "packet buffer returned twice")
    freeStack[available] = index
    available += 1
  }

  /// Start of buffer `index`.
  @inline(__always)
  public func buffer(_ index: Int32) -> UnsafeMutableRawPointer {
    memory + Int(index) * bufferSize
  }
}
