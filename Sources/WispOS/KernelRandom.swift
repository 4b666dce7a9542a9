// Random numbers from the kernel's CSPRNG (getrandom), fetched 64 at a time. Runs on host and device.
import CPosix
import WispCore

public struct KernelRandom: RandomSource {
  private var buffer = [UInt32](repeating: 0, count: 64)
  private var used = 64

  public init() {}

  public mutating func next32() -> UInt32 {
    if used == buffer.count {
      let r = buffer.withUnsafeMutableBytes { wisp_getrandom($0.baseAddress, $0.count) }
      precondition(r == 0, "getrandom failed")  // only fails on a kernel without getrandom(2)
      used = 0
    }
    used += 1
    return buffer[used - 1]
  }
}
