// A token bucket in bytes, refilled from a monotonic nanosecond clock. Runs on host and device.

public struct TokenBucket {
  /// Bytes per second; 0 means unlimited.
  public private(set) var rate: UInt64
  /// Largest number of bytes that may pass at once.
  public private(set) var burst: UInt64
  public private(set) var tokens: UInt64
  private var lastNs: UInt64

  /// A bucket for `mbit` Mbit/s (0 = unlimited) with `burstMs` of traffic as burst.
  public init(mbit: UInt64, burstMs: UInt64 = 50, nowNs: UInt64 = 0) {
    rate = mbit * 125_000
    burst = max(rate * burstMs / 1000, UInt64(Wire.maxDatagram) * 4)
    tokens = burst
    lastNs = nowNs
  }

  public static let unlimited = TokenBucket(mbit: 0)

  /// Takes `bytes` if available. Refill is integer arithmetic without overflow:
  /// elapsed time is capped at one second before multiplying.
  @inline(__always)
  public mutating func take(_ bytes: Int, nowNs: UInt64) -> Bool {
    if rate == 0 { return true }
    if nowNs > lastNs {
      let elapsed = min(nowNs - lastNs, 1_000_000_000)
      let add = elapsed * rate / 1_000_000_000
      if add > 0 {
        tokens = min(burst, tokens + add)
        lastNs = nowNs
      }
    }
    let n = UInt64(bytes)
    if tokens < n { return false }
    tokens -= n
    return true
  }
}
