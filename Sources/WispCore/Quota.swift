// The monthly traffic quota with a reset day, like Tor's AccountingMax. Runs on host and device.
//
// A period starts at 00:00 UTC on `resetDay` (1–28) of a month and lasts until
// the same day of the next month. At the quota the node refuses new circuits
// (REFUSED 2) and drops DATA (`quota_reached`); a new period clears it.

public struct Quota {
  /// Bytes per period; 0 = no quota.
  public private(set) var limit: UInt64
  public private(set) var resetDay: Int
  public private(set) var used: UInt64 = 0
  /// Start of the current period, seconds since the epoch (UTC).
  public private(set) var periodStart: Int64

  public init(limitBytes: UInt64, resetDay: Int, nowEpoch: Int64) {
    precondition(resetDay >= 1 && resetDay <= 28, "reset day must be 1-28")
    limit = limitBytes
    self.resetDay = resetDay
    periodStart = Quota.periodStart(containing: nowEpoch, resetDay: resetDay)
  }

  public var reached: Bool { limit != 0 && used >= limit }

  @inline(__always)
  public mutating func add(_ bytes: Int) { used &+= UInt64(bytes) }

  /// Starts a new period if `nowEpoch` has left the current one. Returns true if it did.
  @discardableResult
  public mutating func rollover(nowEpoch: Int64) -> Bool {
    let start = Quota.periodStart(containing: nowEpoch, resetDay: resetDay)
    if start != periodStart {
      periodStart = start
      used = 0
      return true
    }
    return false
  }

  /// Restores usage (e.g. from the journal) for the period starting at `start`.
  public mutating func restore(used: UInt64, periodStart start: Int64) {
    if start == periodStart { self.used = used }
  }

  /// Wall-clock readings are taken within years 1970–9999 (a clock set far off either
  /// way counts as the nearest end), so the calendar arithmetic below cannot overflow.
  public static let earliest: Int64 = 0
  public static let latest: Int64 = 253_402_300_799  // 9999-12-31 23:59:59 UTC

  /// The start of the period that contains `t` (clamped to `earliest...latest`).
  public static func periodStart(containing t0: Int64, resetDay: Int) -> Int64 {
    let t = min(max(t0, earliest), latest)
    let day = floorDiv(t, 86_400)
    var (y, m, d) = civil(fromDays: day)
    if d < resetDay {  // the period began last month
      m -= 1
      if m == 0 { m = 12; y -= 1 }
    }
    return days(fromCivil: y, m, resetDay) * 86_400
  }

  /// The start of the next period after the one starting at `start`.
  public static func nextPeriod(after start0: Int64, resetDay: Int) -> Int64 {
    let start = min(max(start0, earliest), latest)
    var (y, m, _) = civil(fromDays: floorDiv(start, 86_400))
    m += 1
    if m == 13 { m = 1; y += 1 }
    return days(fromCivil: y, m, resetDay) * 86_400
  }

  static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
  }

  /// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
  public static func civil(fromDays z0: Int64) -> (Int64, Int, Int) {
    let z = z0 + 719_468
    let era = floorDiv(z, 146_097)
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = Int(doy - (153 * mp + 2) / 5 + 1)
    let m = Int(mp < 10 ? mp + 3 : mp - 9)
    return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
  }

  /// (year, month, day) → days since 1970-01-01.
  public static func days(fromCivil y0: Int64, _ m: Int, _ d: Int) -> Int64 {
    let y = m <= 2 ? y0 - 1 : y0
    let era = floorDiv(y, 400)
    let yoe = y - era * 400
    let mm = Int64(m)
    let doy = (153 * (mm > 2 ? mm - 3 : mm + 9) + 2) / 5 + Int64(d) - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
  }
}
