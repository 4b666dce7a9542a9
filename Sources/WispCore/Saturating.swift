// Arithmetic on counters, clocks and values from outside that cannot trap. Runs on host
// and device.
//
// Counters (bytes relayed, packets) only grow and may be anything up to UInt64.max after
// long enough; clock readings may come from a clock that jumps (wall time) or from a peer.
// Wherever such a value is multiplied, added to another or subtracted, it goes through
// one of these: the result saturates at the type's bounds instead of trapping, and a
// difference of two readings is 0 when the later one is smaller.

extension UInt64 {
  /// self + other, or UInt64.max on overflow.
  @inline(__always)
  public func saturatingAdd(_ other: UInt64) -> UInt64 {
    let (r, o) = addingReportingOverflow(other)
    return o ? .max : r
  }

  /// self × other, or UInt64.max on overflow.
  @inline(__always)
  public func saturatingMultiply(_ other: UInt64) -> UInt64 {
    let (r, o) = multipliedReportingOverflow(by: other)
    return o ? .max : r
  }

  /// self − earlier, or 0 when `earlier` is larger (a counter or clock that went back).
  @inline(__always)
  public func since(_ earlier: UInt64) -> UInt64 { self > earlier ? self - earlier : 0 }

  /// self × numerator / denominator with a 128-bit intermediate: exact when the result
  /// fits, UInt64.max when it does not, 0 when `denominator` is 0.
  public func scaled(by numerator: UInt64, over denominator: UInt64) -> UInt64 {
    if denominator == 0 { return 0 }
    let p = multipliedFullWidth(by: numerator)
    if p.high >= denominator { return .max }
    return denominator.dividingFullWidth((high: p.high, low: p.low)).quotient
  }
}

/// Rates between two readings of a counter.
public enum Rate {
  /// Events per second: `count` events in `ns` nanoseconds (0 when ns is 0).
  public static func perSecond(_ count: UInt64, overNs ns: UInt64) -> UInt64 {
    count.scaled(by: 1_000_000_000, over: ns)
  }

  /// Kilobits per second: `bytes` in `ns` nanoseconds (0 when ns is 0).
  public static func kbitPerSecond(bytes: UInt64, overNs ns: UInt64) -> UInt64 {
    bytes.scaled(by: 8_000_000, over: ns)
  }
}
