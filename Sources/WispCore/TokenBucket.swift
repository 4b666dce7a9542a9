// Token buckets, refilled from a monotonic nanosecond clock. Runs on host and device.
//
// Tokens are bytes for rate caps and handshakes for the session table's admission.
// A `TokenRate` (tokens/s and burst) is shared; a `BucketLevel` (16 bytes: tokens and
// the last refill) is kept per node or per circuit. An all-zero level is valid: its
// first use refills it to the full burst, so a zero-filled circuit table needs no set-up.

public struct TokenRate: Equatable, Sendable {
  /// Tokens per second; 0 means unlimited.
  public let rate: UInt64
  /// Largest number of tokens that may pass at once.
  public let burst: UInt64
  /// Refill time credited at most per take: what fills the burst from empty, and at least
  /// one second (bounds `elapsed * rate` against overflow).
  let refillCapNs: UInt64

  /// `mbit` Mbit/s (0 = unlimited) with `burstMs` of traffic (at least four datagrams) as burst.
  public init(mbit: UInt64, burstMs: UInt64 = 50) {
    let rate = mbit.saturatingMultiply(125_000)
    self.init(perSecond: rate, burst: max(rate.scaled(by: burstMs, over: 1000), UInt64(Wire.maxDatagram) * 4))
  }

  /// `perSecond` tokens a second (0 = unlimited), `burst` at once.
  public init(perSecond: UInt64, burst: UInt64) {
    rate = perSecond
    self.burst = burst
    refillCapNs = perSecond == 0 ? 1_000_000_000 : max(1_000_000_000, burst.scaled(by: 1_000_000_000, over: perSecond))
  }

  public static let unlimited = TokenRate(mbit: 0)
}

public struct BucketLevel: Sendable {
  public private(set) var tokens: UInt64 = 0
  /// Time of the last refill plus one (0 = never used).
  private var lastPlusOne: UInt64 = 0

  public init() {}

  /// Takes `bytes` (tokens) if available at `rate`. Integer refill without overflow: elapsed
  /// time is capped (`refillCapNs`), multiplied in 128 bits and the sum saturates; a clock
  /// that goes back refills nothing.
  @inline(__always)
  public mutating func take(_ bytes: Int, nowNs: UInt64, rate: TokenRate) -> Bool {
    if rate.rate == 0 { return true }
    if lastPlusOne == 0 {  // never used: starts full
      tokens = rate.burst
      lastPlusOne = nowNs &+ 1
    } else if nowNs &+ 1 > lastPlusOne {
      let elapsed = min(nowNs &+ 1 - lastPlusOne, rate.refillCapNs)
      let add = elapsed.scaled(by: rate.rate, over: 1_000_000_000)
      if add > 0 {
        tokens = min(rate.burst, tokens.saturatingAdd(add))
        lastPlusOne = nowNs &+ 1
      }
    }
    let n = UInt64(bytes)
    if tokens < n { return false }
    tokens -= n
    return true
  }
}

/// A rate and its level together (the node-wide cap).
public struct TokenBucket: Sendable {
  public let limit: TokenRate
  var level = BucketLevel()

  /// A bucket for `mbit` Mbit/s (0 = unlimited), full at `nowNs`.
  public init(mbit: UInt64, burstMs: UInt64 = 50, nowNs: UInt64 = 0) {
    limit = TokenRate(mbit: mbit, burstMs: burstMs)
    _ = level.take(0, nowNs: nowNs, rate: limit)
  }

  public static let unlimited = TokenBucket(mbit: 0)
  public var rate: UInt64 { limit.rate }
  public var burst: UInt64 { limit.burst }
  public var tokens: UInt64 { level.tokens }

  @inline(__always)
  public mutating func take(_ bytes: Int, nowNs: UInt64) -> Bool {
    level.take(bytes, nowNs: nowNs, rate: limit)
  }
}
