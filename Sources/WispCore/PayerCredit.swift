// Credit per payer (issue 15): how much unpaid traffic a payer's circuits on this node may
// carry, across all of them. Runs on host and device; the credit worker owns one
// (CreditWorker.swift), off the forwarding thread.
//
// Every circuit half this node holds has a `creditLimit`: the relayed count (both
// directions) it may reach. An unbound circuit's limit is the unbound allowance (the
// forwarder sets it); the first valid receipt binds the circuit to its payer, and from
// then on every receipt sets limit = receipted + share, where
//
//   share = max(min(max(W / open circuits of the payer, U), W − granted − debt), relayed − receipted)
//
// `granted` is Σ (limit − receipted) over the payer's open bound circuits and `debt` is
// Σ (relayed − receipted) over its closed ones. The invariant, for every payer:
//
//   Σ over its open circuits (limit − receipted) + closed debt ≤ W
//     (+ what each circuit relayed before its first receipt: at most the unbound
//      allowance, and only while its source has unbound allowances left, SourceLimits.swift)
//
// holds after every grant: a grant only hands out what the sum leaves, and the
// `relayed − receipted` term only keeps bytes already carried under an earlier, larger
// limit in the sum (they were part of the old headroom, so the sum does not grow). A
// circuit's limit never drops below what it relayed; it pauses there. A closed circuit's
// debt stays with the payer: a later receipt on the closed binding pays it back (the entry
// is kept, at most `maxClosed`; an evicted entry's debt stays until restart). What a payer
// can get without paying is therefore one W, plus what its circuits carried before their
// first receipts: each at most the unbound allowance, drawn from its source's unbound
// allowances (a few at once, given back when a circuit binds, one more every few seconds:
// SourceLimits.swift), so rotating circuits, bound or not, does not multiply it.
//
// Tables are bounded: at most `maxPayers` payers (a payer with no open circuit is evicted
// to make room, its debt forgotten, counted), at most `maxClosed` closed-debt entries
// (the oldest evicted, counted).

/// A payer's fingerprint as a dictionary key.
struct PayerKey: Hashable {
  var fp: Fingerprint
  static func == (a: PayerKey, b: PayerKey) -> Bool { a.fp == b.fp }
  func hash(into h: inout Hasher) { h.combine(fp.w0); h.combine(fp.w1) }
}

/// What the book holds for one payer.
public struct PayerState: Equatable {
  /// Open circuits bound to the payer.
  public var open: Int = 0
  /// Σ (limit − receipted) over its open circuits.
  public var granted: UInt64 = 0
  /// Σ (relayed − receipted) over its closed circuits not yet paid back.
  public var debt: UInt64 = 0
}

/// A closed circuit whose relayed bytes exceeded its receipts.
public struct ClosedDebt: Equatable {
  public var payer: Fingerprint
  public var binding: Binding
  public var receipted: UInt64
  public var relayed: UInt64
}

public struct PayerBook {
  public let window: UInt64
  public let maxPayers: Int
  public let maxClosed: Int
  var payers: [PayerKey: PayerState] = [:]
  var closed: [Binding: Int] = [:]
  var ring: [ClosedDebt?]
  var ringNext = 0
  /// Payers refused because the table was full and none could be evicted.
  public private(set) var payersFull: UInt64 = 0
  /// Payers without open circuits evicted to make room (their debt forgotten).
  public private(set) var payersEvicted: UInt64 = 0
  /// Closed-debt entries evicted (the debt stays with the payer).
  public private(set) var closedEvicted: UInt64 = 0
  /// Debt paid back by receipts on closed bindings (bytes).
  public private(set) var debtPaid: UInt64 = 0

  public init(window: UInt64, maxPayers: Int = Credits.maxPayers, maxClosed: Int = Credits.maxClosedDebts) {
    self.window = window
    self.maxPayers = max(maxPayers, 1)
    self.maxClosed = max(maxClosed, 1)
    ring = []
  }

  public var payerCount: Int { payers.count }
  public var closedCount: Int { closed.count }
  public func state(_ payer: Fingerprint) -> PayerState? { payers[PayerKey(fp: payer)] }
  /// Σ debt over every payer.
  public var totalDebt: UInt64 { payers.values.reduce(0) { $0 &+ $1.debt } }

  /// A circuit is bound to `payer`: false (counted) when the table is full.
  public mutating func open(_ payer: Fingerprint) -> Bool {
    let k = PayerKey(fp: payer)
    if payers[k] == nil && payers.count >= maxPayers {
      guard let idle = payers.first(where: { $0.value.open == 0 })?.key else {
        payersFull &+= 1
        return false
      }
      payers[idle] = nil
      payersEvicted &+= 1
    }
    payers[k, default: PayerState()].open += 1
    return true
  }

  /// A receipt of a bound circuit of `payer`: the circuit had `headroom` (its limit minus
  /// its receipted amount before this receipt; 0 when it was just bound), has relayed
  /// `relayed` and its receipts now acknowledge `receipted`. Returns the circuit's new
  /// limit: receipted + share, but never below what it already relayed (bytes carried
  /// under an earlier, larger limit stay counted as its headroom, so a smaller share
  /// pauses the circuit at once instead of hiding them).
  ///
  /// `floor`: the share is at least this much while granted + debt leave it room within
  /// W + floor (the unbound allowance: a circuit keeps what it could carry before its first
  /// receipt). The one floor beyond W lets a payer's new circuit carry at once while its
  /// other circuits, which hold the window, are lowered to their fair share (CreditWorker);
  /// without it the circuit is paused from its bind until then, and the first datagram of a
  /// DNS query on it is lost. It is one floor per payer, not one per circuit: a payer whose
  /// window is spent (granted to other circuits, or owed by closed ones) gets nothing beyond
  /// what the circuit already relayed, so rotating circuits never adds a floor per circuit.
  public mutating func grant(_ payer: Fingerprint, headroom: UInt64, receipted: UInt64, relayed: UInt64 = 0,
                             floor: UInt64 = 0) -> UInt64 {
    let k = PayerKey(fp: payer)
    guard var s = payers[k], s.open > 0 else { return max(receipted, floor) }
    s.granted = s.granted > headroom ? s.granted - headroom : 0
    let used = s.granted &+ s.debt
    let left = window > used ? window - used : 0
    let room = window &+ floor > used ? window &+ floor - used : 0
    let spent = relayed > receipted ? relayed - receipted : 0
    let share = max(min(max(window / UInt64(s.open), floor), left), min(floor, room), spent)
    s.granted &+= share
    payers[k] = s
    let (limit, over) = receipted.addingReportingOverflow(share)
    return over ? UInt64.max : limit
  }

  /// The share a circuit of `payer` is due when the window is split evenly: W / its open circuits.
  public func fairShare(_ payer: Fingerprint) -> UInt64 {
    guard let s = payers[PayerKey(fp: payer)], s.open > 0 else { return window }
    return window / UInt64(s.open)
  }

  /// A circuit of `payer` now has `headroom` where it had `old` (a limit the shard lowered
  /// on the worker's request, rebalancing the window: counted only once applied).
  public mutating func adjust(_ payer: Fingerprint, from old: UInt64, to headroom: UInt64) {
    let k = PayerKey(fp: payer)
    guard var s = payers[k] else { return }
    s.granted = (s.granted > old ? s.granted - old : 0) &+ headroom
    payers[k] = s
  }

  /// A bound circuit of `payer` closed with `headroom` granted, `receipted` acknowledged and
  /// `relayed` carried: its headroom goes back, what it carried unpaid becomes debt (kept
  /// under its binding, so that a later receipt can pay it back).
  public mutating func close(_ payer: Fingerprint, binding: Binding, headroom: UInt64, receipted: UInt64, relayed: UInt64) {
    let k = PayerKey(fp: payer)
    guard var s = payers[k] else { return }
    if s.open > 0 { s.open -= 1 }
    s.granted = s.granted > headroom ? s.granted - headroom : 0
    if relayed > receipted {
      s.debt &+= relayed - receipted
      remember(ClosedDebt(payer: payer, binding: binding, receipted: receipted, relayed: relayed))
    }
    if s.open == 0 && s.debt == 0 { payers[k] = nil } else { payers[k] = s }
  }

  mutating func remember(_ d: ClosedDebt) {
    if let i = closed[d.binding] { ring[i] = d; return }
    if ring.count < maxClosed {
      ring.append(d)
      closed[d.binding] = ring.count - 1
      return
    }
    if let old = ring[ringNext] {
      closed[old.binding] = nil
      closedEvicted &+= 1
    }
    ring[ringNext] = d
    closed[d.binding] = ringNext
    ringNext = (ringNext + 1) % maxClosed
  }

  /// The closed circuit with this binding, if its debt is still held.
  public func closedDebt(_ binding: Binding) -> ClosedDebt? { closed[binding].flatMap { ring[$0] } }

  /// A valid receipt of `payer` for the closed binding acknowledges `bytes` (at most what
  /// the circuit relayed plus the loss allowance, checked by the caller): the debt shrinks
  /// by what it adds. Returns the bytes paid back (0: not a closed binding of this payer,
  /// or nothing new).
  @discardableResult
  public mutating func pay(_ payer: Fingerprint, binding: Binding, bytes: UInt64) -> UInt64 {
    guard let i = closed[binding], var d = ring[i], d.payer == payer, bytes > d.receipted else { return 0 }
    let paid = min(bytes, d.relayed) &- min(d.receipted, d.relayed)
    d.receipted = bytes
    let k = PayerKey(fp: payer)
    if var s = payers[k] {
      s.debt = s.debt > paid ? s.debt - paid : 0
      if s.open == 0 && s.debt == 0 { payers[k] = nil } else { payers[k] = s }
    }
    if d.receipted >= d.relayed {
      closed[binding] = nil
      ring[i] = nil
    } else {
      ring[i] = d
    }
    debtPaid &+= paid
    return paid
  }
}
