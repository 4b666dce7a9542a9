// Per-source shares of a shard's circuits and of its expensive work. Runs on host and device.
//
// A *source* is the address a CREATE or RECEIPT came from: an IPv4 address (any port) or an
// IPv6 /64 (`Endpoint.sourceKey`), or
// for frames that arrived over a node link, that link's address. Sources are kept in a
// fixed table of counters indexed by a keyed hash of the address (the key is drawn from
// the kernel's random source at start, so nobody outside can aim two addresses at one
// counter); two sources that do share a counter share its limit. Nothing here allocates
// after `init`, and every operation is O(1).
//
// Limits (THREAT-MODEL.md, "Bounded state" and "Expensive work"):
//   - circuits per source: circuits whose first half came from the source;
//   - pending per source: circuits waiting for CREATED (or for their exit keys);
//   - exits per source: exit circuits, each holding a socket of the node's budget;
//   - expensive work per source and per node, per second: receipt signatures and
//     sealed-exit key agreements, each counted when every cheap check has passed, just
//     before it is handed to the worker (and given back if the worker's queue refuses it).
//     The last quarter of the node's receipt budget is a reserve for circuits that a valid
//     receipt has bound and that sent no invalid one since, so that a flood of receipts
//     on other circuits cannot starve paying clients;
//   - unbound allowances per source: where credit is enforced, a new circuit may carry the
//     unbound allowance before a receipt binds it only if its source has one left: at most
//     `unboundPerSource` outstanding, one given back when a circuit of the source binds and
//     one every `unboundRefillSeconds`. A circuit opened without one has a limit of 0 until
//     it binds (a paying client binds in one round trip). So a client that opens circuits and
//     never binds them — or binds each with a 0-byte receipt only after using its
//     allowance — gets `unboundPerSource` allowances at once and then one per refill
//     period, however many circuits it rotates through.
// Configured peers (node links) are exempt from the shares.

public struct SourceLimitSettings: Equatable, Sendable {
  /// Circuits one source may hold on a node (0: no limit).
  public var circuitsPerSource: Int
  /// Circuits one source may have waiting for CREATED (0: no limit).
  public var pendingPerSource: Int
  /// Exit circuits (sockets) one source may hold (0: no limit).
  public var exitsPerSource: Int
  /// Signatures and key agreements one source may cause per second.
  public var expensivePerSource: Int
  /// Signatures checked per second, whole node.
  public var receiptsPerSecond: Int
  /// Sealed-exit key agreements per second, whole node.
  public var keyAgreementsPerSecond: Int
  /// Unbound allowances one source may have outstanding (0: no limit).
  public var unboundPerSource: Int = 16
  /// One outstanding unbound allowance of a source lapses every this many seconds.
  public var unboundRefillSeconds: UInt32 = 5

  public init(circuitsPerSource: Int = 512, pendingPerSource: Int = 64, exitsPerSource: Int = 64,
              expensivePerSource: Int = Defaults.expensivePerSourcePerSecond,
              receiptsPerSecond: Int = Defaults.receiptsPerSecond,
              keyAgreementsPerSecond: Int = Defaults.keyAgreementsPerSecond) {
    self.circuitsPerSource = circuitsPerSource
    self.pendingPerSource = pendingPerSource
    self.exitsPerSource = exitsPerSource
    self.expensivePerSource = expensivePerSource
    self.receiptsPerSecond = receiptsPerSecond
    self.keyAgreementsPerSecond = keyAgreementsPerSecond
  }

  /// The share of one shard of `shards` (node-wide rates split evenly, at least 1).
  public func perShard(_ shards: Int) -> SourceLimitSettings {
    var s = self
    let n = max(shards, 1)
    s.receiptsPerSecond = max(receiptsPerSecond / n, 1)
    s.keyAgreementsPerSecond = max(keyAgreementsPerSecond / n, 1)
    if exitsPerSource > 0 { s.exitsPerSource = max(exitsPerSource / n, 1) }
    if unboundPerSource > 0 { s.unboundPerSource = max(unboundPerSource / n, 1) }
    return s
  }
}

/// What kind of expensive work is asked for.
public enum Expense {
  /// A receipt of a circuit not bound by a valid receipt yet (or whose last one failed).
  case receipt
  /// A receipt of a circuit bound by a valid receipt, with no invalid one since: it may use
  /// the reserve, the last quarter of each second's node-wide receipt budget.
  case boundReceipt
  /// A sealed exit's key agreement.
  case keyAgreement
}

public final class SourceTable {
  public static let size = 4096
  public var settings: SourceLimitSettings
  /// Sources exempt from the shares (configured peers' `Endpoint.sourceKey`).
  public var exempt: [UInt64] = []
  let circuits: UnsafeMutablePointer<UInt32>
  let pending: UnsafeMutablePointer<UInt32>
  let exitCount: UnsafeMutablePointer<UInt32>
  let spent: UnsafeMutablePointer<UInt32>
  let spentSecond: UnsafeMutablePointer<UInt32>
  /// Unbound allowances outstanding per slot, and the second the last one lapsed.
  let unbound: UnsafeMutablePointer<UInt32>
  let unboundStamp: UnsafeMutablePointer<UInt32>
  var receiptsSpent = 0
  var keysSpent = 0
  var second: UInt32 = 0
  let key0: UInt32
  let key1: UInt32
  /// Refusals, for status.
  public private(set) var refusedCircuits: UInt64 = 0
  public private(set) var refusedPending: UInt64 = 0
  public private(set) var refusedExpensive: UInt64 = 0
  /// Circuits opened without an unbound allowance (their source had none left).
  public private(set) var refusedUnbound: UInt64 = 0

  /// `key0`, `key1`: the hash key, random (the forwarder draws it from the kernel).
  public init(settings: SourceLimitSettings, key0: UInt32, key1: UInt32) {
    self.settings = settings
    circuits = zeroedAllocation(SourceTable.size)
    pending = zeroedAllocation(SourceTable.size)
    exitCount = zeroedAllocation(SourceTable.size)
    spent = zeroedAllocation(SourceTable.size)
    spentSecond = zeroedAllocation(SourceTable.size)
    unbound = zeroedAllocation(SourceTable.size)
    unboundStamp = zeroedAllocation(SourceTable.size)
    self.key0 = key0 | 1
    self.key1 = key1
  }

  deinit {
    freeZeroed(circuits); freeZeroed(pending); freeZeroed(exitCount); freeZeroed(spent); freeZeroed(spentSecond)
    freeZeroed(unbound); freeZeroed(unboundStamp)
  }

  @inline(__always)
  func slot(_ e: Endpoint) -> Int {
    let k = e.sourceKey
    var h = (UInt32(truncatingIfNeeded: k) ^ UInt32(truncatingIfNeeded: k >> 32) &* 0x9E37_79B9 ^ key1) &* key0
    h ^= h >> 15
    h = h &* 0x2C1B_3C6D
    h ^= h >> 12
    return Int(h & UInt32(SourceTable.size - 1))
  }

  @inline(__always)
  public func isExempt(_ e: Endpoint) -> Bool {
    for a in exempt where a == e.sourceKey { return true }
    return false
  }

  /// Counts a new circuit from `e`; false (nothing counted) when its share is used up.
  public func takeCircuit(_ e: Endpoint, pending isPending: Bool) -> Bool {
    let i = slot(e)
    if settings.circuitsPerSource > 0 && Int(circuits[i]) >= settings.circuitsPerSource {
      refusedCircuits &+= 1
      return false
    }
    if isPending && settings.pendingPerSource > 0 && Int(pending[i]) >= settings.pendingPerSource {
      refusedPending &+= 1
      return false
    }
    circuits[i] &+= 1
    if isPending { pending[i] &+= 1 }
    return true
  }

  /// Counts an exit circuit (socket) for `e`; false when its share is used up.
  public func takeExit(_ e: Endpoint) -> Bool {
    let i = slot(e)
    if settings.exitsPerSource > 0 && Int(exitCount[i]) >= settings.exitsPerSource {
      refusedCircuits &+= 1
      return false
    }
    exitCount[i] &+= 1
    return true
  }

  public func releaseExit(_ e: Endpoint) {
    let i = slot(e)
    if exitCount[i] > 0 { exitCount[i] -= 1 }
  }

  public func releaseCircuit(_ e: Endpoint) {
    let i = slot(e)
    if circuits[i] > 0 { circuits[i] -= 1 }
  }

  public func releasePending(_ e: Endpoint) {
    let i = slot(e)
    if pending[i] > 0 { pending[i] -= 1 }
  }

  /// An unbound allowance for a new circuit from `e` at monotonic second `now`: false
  /// (counted) when the source has `unboundPerSource` outstanding.
  public func takeUnbound(_ e: Endpoint, nowSec now: UInt32) -> Bool {
    guard settings.unboundPerSource > 0 else { return true }
    let i = slot(e)
    let period = max(settings.unboundRefillSeconds, 1)
    if unbound[i] == 0 {
      unboundStamp[i] = now
    } else {
      let lapsed = (now &- unboundStamp[i]) / period
      if lapsed > 0 {
        unbound[i] = unbound[i] > lapsed ? unbound[i] - lapsed : 0
        unboundStamp[i] = unboundStamp[i] &+ lapsed &* period
      }
    }
    if Int(unbound[i]) >= settings.unboundPerSource {
      refusedUnbound &+= 1
      return false
    }
    unbound[i] &+= 1
    return true
  }

  /// A circuit of `e` that took an unbound allowance was bound by a receipt: it comes back.
  public func giveBackUnbound(_ e: Endpoint) {
    let i = slot(e)
    if unbound[i] > 0 { unbound[i] -= 1 }
  }

  /// One unit of expensive work for `e` at monotonic second `now`: within both the
  /// source's and the node's budget for this second? Counted only when allowed.
  public func allow(_ kind: Expense, from e: Endpoint, nowSec now: UInt32) -> Bool {
    if now != second {
      second = now
      receiptsSpent = 0
      keysSpent = 0
    }
    let node: Int
    switch kind {
    case .receipt: node = settings.receiptsPerSecond - settings.receiptsPerSecond / 4
    case .boundReceipt: node = settings.receiptsPerSecond
    case .keyAgreement: node = settings.keyAgreementsPerSecond
    }
    if (kind == .keyAgreement ? keysSpent : receiptsSpent) >= node { refusedExpensive &+= 1; return false }
    if !isExempt(e) {
      let i = slot(e)
      if spentSecond[i] != now { spentSecond[i] = now; spent[i] = 0 }
      if Int(spent[i]) >= settings.expensivePerSource { refusedExpensive &+= 1; return false }
      spent[i] &+= 1
    }
    if kind == .keyAgreement { keysSpent += 1 } else { receiptsSpent += 1 }
    return true
  }

  /// Gives back what `allow` counted in this second (the work was not done after all).
  public func refund(_ kind: Expense, from e: Endpoint, nowSec now: UInt32) {
    guard now == second else { return }
    if kind == .keyAgreement { if keysSpent > 0 { keysSpent -= 1 } } else if receiptsSpent > 0 { receiptsSpent -= 1 }
    if !isExempt(e) {
      let i = slot(e)
      if spentSecond[i] == now && spent[i] > 0 { spent[i] -= 1 }
    }
  }
}
