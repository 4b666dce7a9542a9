// The credit ledger: per circuit, bytes receipted (latest valid receipt), pending
// (relayed, not yet receipted) and whether the circuit is paused by the credit window.
// Runs on host and device.
//
// Rules (issue 5):
//  1. Only the latest receipt per (client, serial) counts; its `bytes` is cumulative.
//  2. A receipt adds credit only if it is well formed, names this node, its key
//     matches the client fingerprint, its signature verifies, and its amount is
//     higher than the latest one for (client, serial). Everything else adds nothing
//     and is counted by reason (`ReceiptRejection`).
//  3. Live (`requireOpen`): the serial must be an open circuit of that same client,
//     and the amount may not exceed what this node relayed on it.
//  4. Credit window W: a circuit may run at most W bytes beyond its last valid
//     receipt; at relayed ≥ receipted + W it is paused until a higher receipt arrives.
//
// Circuits live in a flat array searched linearly: a node holds a few thousand at most
// and receipts arrive once per megabytes of traffic, not per packet.

/// One circuit's credit.
public struct CircuitCredit {
  public var client: Fingerprint
  public var serial: UInt64
  /// Bytes this node relayed on the circuit since it was opened in this process.
  public var relayed: UInt64 = 0
  /// Cumulative bytes of the latest valid receipt (0 before any).
  public var receipted: UInt64 = 0
  /// The latest valid receipt (what compaction keeps).
  public var latest: Receipt? = nil
  /// Relaying on this circuit right now.
  public var open = false
  /// Over its credit window: stop forwarding until a higher receipt arrives.
  public var paused = false

  /// Relayed but not (yet) receipted.
  public var pending: UInt64 { relayed > receipted ? relayed - receipted : 0 }
}

/// What `accept` decided.
public enum ReceiptVerdict: Equatable {
  /// Accepted; `added` is the credit it added over the previous receipt.
  case accepted(added: UInt64)
  case rejected(ReceiptRejection)
}

public struct CreditLedger {
  public let node: Fingerprint
  /// The credit window in bytes.
  public var window: UInt64
  public private(set) var circuits: [CircuitCredit] = []
  public private(set) var rejections = RejectionCounters()
  /// Sum of every circuit's latest receipted amount.
  public private(set) var receiptedTotal: UInt64 = 0

  public init(node: Fingerprint, window: UInt64 = Credits.defaultWindow) {
    self.node = node
    self.window = window
  }

  // MARK: lookup

  public func index(client: Fingerprint, serial: UInt64) -> Int? {
    for i in 0..<circuits.count where circuits[i].serial == serial && circuits[i].client == client { return i }
    return nil
  }

  /// The open circuit with this serial.
  public func index(openSerial serial: UInt64) -> Int? {
    for i in 0..<circuits.count where circuits[i].serial == serial && circuits[i].open { return i }
    return nil
  }

  public var pendingTotal: UInt64 { circuits.reduce(0) { $0 &+ $1.pending } }
  public var pausedCount: Int { circuits.reduce(0) { $0 + ($1.paused ? 1 : 0) } }
  public var receiptCount: Int { circuits.reduce(0) { $0 + ($1.latest == nil ? 0 : 1) } }

  // MARK: the relay side

  /// A circuit of `client` starts relaying under `serial` (the binding receipts are checked against).
  public mutating func open(client: Fingerprint, serial: UInt64) {
    if let i = index(client: client, serial: serial) {
      circuits[i].open = true
    } else {
      var c = CircuitCredit(client: client, serial: serial)
      c.open = true
      circuits.append(c)
    }
  }

  /// The circuit ended: its receipts stay, it stops counting as pending or paused.
  public mutating func close(serial: UInt64) {
    guard let i = index(openSerial: serial) else { return }
    circuits[i].open = false
    circuits[i].relayed = circuits[i].receipted
    circuits[i].paused = false
  }

  /// Counts `bytes` relayed on an open circuit; returns whether it must now pause.
  @discardableResult
  public mutating func relayed(serial: UInt64, bytes: UInt64) -> Bool {
    guard let i = index(openSerial: serial) else { return false }
    circuits[i].relayed &+= bytes
    updatePause(i)
    return circuits[i].paused
  }

  /// Whether the circuit has run W bytes or more beyond its last valid receipt.
  public func shouldPause(serial: UInt64) -> Bool {
    guard let i = index(openSerial: serial) else { return false }
    return circuits[i].paused
  }

  /// Bytes the circuit may still relay before it pauses.
  public func allowance(serial: UInt64) -> UInt64 {
    guard let i = index(openSerial: serial) else { return 0 }
    let c = circuits[i]
    let limit = c.receipted &+ window
    return c.relayed >= limit ? 0 : limit - c.relayed
  }

  mutating func updatePause(_ i: Int) {
    let c = circuits[i]
    let (limit, over) = c.receipted.addingReportingOverflow(window)
    circuits[i].paused = c.open && !over && c.relayed >= limit
  }

  // MARK: receipts

  /// Checks a receipt and, if it is the new latest for its circuit, takes it.
  public mutating func accept<V: SignatureVerifier>(_ r: Receipt, verifier: V, requireOpen: Bool) -> ReceiptVerdict {
    let verdict = judge(r, verifier: verifier, requireOpen: requireOpen)
    switch verdict {
    case .rejected(let why):
      rejections.count(why)
    case .accepted:
      take(r)
    }
    return verdict
  }

  func judge<V: SignatureVerifier>(_ r: Receipt, verifier: V, requireOpen: Bool) -> ReceiptVerdict {
    if let why = r.check(node: node, verifier: verifier) { return .rejected(why) }
    let i = index(client: r.client, serial: r.serial)
    if requireOpen {
      guard let open = index(openSerial: r.serial) else { return .rejected(.unknownCircuit) }
      if circuits[open].client != r.client { return .rejected(.wrongCircuit) }
      if r.bytes > circuits[open].relayed { return .rejected(.exceedsRelayed) }
    }
    let previous = i.map { circuits[$0].receipted } ?? 0
    if let i, let latest = circuits[i].latest {
      if r.bytes == latest.bytes { return .rejected(.replay) }
      if r.bytes < latest.bytes { return .rejected(.notHigher) }
    } else if r.bytes == 0 {
      return .rejected(.replay)  // nothing to credit: indistinguishable from a replayed zero
    }
    return .accepted(added: r.bytes - previous)
  }

  /// Takes an already checked receipt as the latest of its circuit.
  mutating func take(_ r: Receipt) {
    let i: Int
    if let found = index(client: r.client, serial: r.serial) {
      i = found
    } else {
      circuits.append(CircuitCredit(client: r.client, serial: r.serial))
      i = circuits.count - 1
    }
    // Modulo 2^64, like the journal's commit totals: signed amounts from recovery may be anything.
    receiptedTotal = receiptedTotal &- circuits[i].receipted &+ r.bytes
    circuits[i].receipted = r.bytes
    circuits[i].latest = r
    if circuits[i].relayed < r.bytes && !circuits[i].open { circuits[i].relayed = r.bytes }
    updatePause(i)
  }

  /// Every latest receipt, in ledger order.
  public var latestReceipts: [Receipt] {
    var out: [Receipt] = []
    for c in circuits { if let r = c.latest { out.append(r) } }
    return out
  }
}

public enum Credits {
  // MARK: implementation constants (tunable)
  public static let defaultWindow: UInt64 = 4 << 20            // 4 MiB credit window per circuit
  public static let defaultCommitInterval: UInt64 = 30         // seconds between group commits
  public static let defaultCommitThreshold: UInt64 = 64 << 20  // un-synced receipted bytes that force a commit
}
