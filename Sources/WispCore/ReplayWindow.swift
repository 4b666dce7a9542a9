// Anti-replay window for counter nonces (RFC 4303 §3.4.3, RFC 6479). Runs on host and device.
//
// The receiver of a sealed direction (WIRE-PROTOCOL.md, "Sealed exits") keeps the highest
// counter it has opened and a 64-bit bitmap of that counter and the 63 below it. It
// guarantees:
//  - each counter is accepted at most once;
//  - counter 0 is never accepted (senders count from 1);
//  - a counter 64 or more below the highest accepted one is refused, whether or not it
//    was seen, so the state stays 16 bytes;
//  - any counter above the highest is fresh, up to UInt64.max, with no arithmetic trap.
//
// Use it in two steps: `check` before authenticating a packet (cheap rejection, records
// nothing), `accept` only after its AEAD tag has verified. A forged packet therefore
// cannot burn a counter or move the window.

/// The 64-wide replay window of one receiving direction. An all-zero window (the
/// initial state) has seen nothing.
public struct ReplayWindow: Equatable {
  /// How many counters, ending at the highest accepted one, the bitmap covers.
  public static let width: UInt64 = 64

  /// The highest counter accepted so far (0 = none yet).
  public private(set) var highest: UInt64 = 0
  /// Bit `d` is set when counter `highest - d` has been accepted.
  private var bitmap: UInt64 = 0

  public init() {}

  /// Whether `counter` may still be accepted: nonzero, not already accepted, and not
  /// `width` or more below the highest. Records nothing.
  @inline(__always)
  public func check(_ counter: UInt64) -> Bool {
    if counter == 0 { return false }
    if counter > highest { return true }
    let distance = highest - counter
    return distance < ReplayWindow.width && bitmap & (1 << distance) == 0
  }

  /// Records `counter` as accepted, moving the window up if it is above the highest.
  /// Call only after `check(counter)` and a verified tag; a counter `check` would refuse
  /// changes nothing.
  @inline(__always)
  public mutating func accept(_ counter: UInt64) {
    if counter == 0 { return }
    if counter > highest {
      let shift = counter - highest
      bitmap = shift >= ReplayWindow.width ? 0 : bitmap << shift
      highest = counter
    }
    let distance = highest - counter
    if distance < ReplayWindow.width { bitmap |= 1 << distance }
  }
}
