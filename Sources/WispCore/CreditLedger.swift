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
//     and the amount may not exceed what this node relayed on it by more than an eighth
//     plus 64 KiB (`ReceiptV1.acceptable`: a client paying for what it sent both ways
//     also pays for bytes lost before this hop; it signed them, nobody else can).
//  4. Credit window W: a circuit may run at most W bytes beyond its last valid
//     receipt; at relayed ≥ receipted + W it is paused until a higher receipt arrives.
//
//  5. Bounded: at most `maxOpen` circuits are open at once (Credits.maxOpenCircuits,
//     65,536 by default); beyond it `open` refuses and counts (`full`). An entry exists
//     only for an open circuit or for a circuit with a valid receipt: closing a circuit
//     that never got one removes its entry. Live, a receipt is taken only for an open
//     circuit that relayed at least its amount, so entries with receipts grow only with
//     paid traffic; recovery rebuilds them from the journal.
//
// Circuits live in a flat array (ledger order is what compaction writes; removing an
// entry moves the last one into its place), found in O(1) through two hash indexes: by
// (client, serial) and, for open circuits, by serial.

/// One circuit's credit.
public struct CircuitCredit {
  public var client: Fingerprint
  public var serial: UInt64
  /// Bytes this node relayed on the circuit since it was opened in this process.
  public var relayed: UInt64 = 0
  /// Cumulative bytes of the latest valid receipt (0 before any).
  public var receipted: UInt64 = 0
  /// The latest valid receipt (what compaction keeps).
  public var latest: ReceiptV1? = nil
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

/// A circuit's identity in the ledger's index.
struct CircuitKey: Hashable {
  var client: Fingerprint
  var serial: UInt64
  static func == (a: CircuitKey, b: CircuitKey) -> Bool { a.serial == b.serial && a.client == b.client }
  func hash(into h: inout Hasher) {
    h.combine(serial)
    h.combine(client.w0)
    h.combine(client.w1)
  }
}

public struct CreditLedger {
  public let node: Fingerprint
  /// The credit window in bytes.
  public var window: UInt64
  /// Open circuits held at most (rule 5).
  public let maxOpen: Int
  public private(set) var circuits: [CircuitCredit] = []
  public private(set) var rejections = RejectionCounters()
  /// Sum of every circuit's latest receipted amount (modulo 2^64, JOURNAL-FORMAT.md).
  public private(set) var receiptedTotal: UInt64 = 0
  /// Open circuits now.
  public private(set) var openCount = 0
  /// Circuits refused because `maxOpen` were open.
  public private(set) var full: UInt64 = 0
  var byCircuit: [CircuitKey: Int] = [:]
  var openBySerial: [UInt64: Int] = [:]

  public init(node: Fingerprint, window: UInt64 = Credits.defaultWindow, maxOpen: Int = Credits.maxOpenCircuits) {
    self.node = node
    self.window = window
    self.maxOpen = maxOpen
  }

  // MARK: lookup

  public func index(client: Fingerprint, serial: UInt64) -> Int? {
    byCircuit[CircuitKey(client: client, serial: serial)]
  }

  /// The open circuit with this serial.
  public func index(openSerial serial: UInt64) -> Int? {
    openBySerial[serial]
  }

  /// Counts a receipt refused before it reached the ledger (the caller's own checks).
  public mutating func countRejection(_ why: ReceiptRejection) { rejections.count(why) }

  public var pendingTotal: UInt64 { circuits.reduce(0) { $0 &+ $1.pending } }
  public var pausedCount: Int { circuits.reduce(0) { $0 + ($1.paused ? 1 : 0) } }
  public var receiptCount: Int { circuits.reduce(0) { $0 + ($1.latest == nil ? 0 : 1) } }

  // MARK: the relay side

  /// A circuit of `client` starts relaying under `serial` (the binding receipts are
  /// checked against). false (counted `full`) when `maxOpen` circuits are open, or when
  /// another client's circuit is open under this serial.
  @discardableResult
  public mutating func open(client: Fingerprint, serial: UInt64) -> Bool {
    if let o = openBySerial[serial] { return circuits[o].client == client }
    if openCount >= maxOpen {
      full &+= 1
      return false
    }
    let i: Int
    if let found = index(client: client, serial: serial) {
      i = found
    } else {
      circuits.append(CircuitCredit(client: client, serial: serial))
      i = circuits.count - 1
      byCircuit[CircuitKey(client: client, serial: serial)] = i
    }
    circuits[i].open = true
    openBySerial[serial] = i
    openCount += 1
    return true
  }

  /// The circuit ended: its receipts stay, it stops counting as pending or paused; an
  /// entry without a receipt goes.
  public mutating func close(serial: UInt64) {
    guard let i = index(openSerial: serial) else { return }
    openBySerial[serial] = nil
    openCount -= 1
    circuits[i].open = false
    circuits[i].relayed = circuits[i].receipted
    circuits[i].paused = false
    if circuits[i].latest == nil { remove(i) }
  }

  /// Removes entry `i` (closed): the last entry takes its place.
  mutating func remove(_ i: Int) {
    byCircuit[CircuitKey(client: circuits[i].client, serial: circuits[i].serial)] = nil
    let last = circuits.count - 1
    if i != last {
      let moved = circuits[last]
      circuits[i] = moved
      byCircuit[CircuitKey(client: moved.client, serial: moved.serial)] = i
      if moved.open { openBySerial[moved.serial] = i }
    }
    circuits.removeLast()
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
  /// `signatureChecked`: the caller has just run `r.check` on it (not run again).
  public mutating func accept<V: SignatureVerifier>(_ r: ReceiptV1, verifier: V, requireOpen: Bool,
                                                    signatureChecked: Bool = false) -> ReceiptVerdict {
    let verdict = judge(r, verifier: verifier, requireOpen: requireOpen, signatureChecked: signatureChecked)
    switch verdict {
    case .rejected(let why):
      rejections.count(why)
    case .accepted:
      take(r)
    }
    return verdict
  }

  func judge<V: SignatureVerifier>(_ r: ReceiptV1, verifier: V, requireOpen: Bool, signatureChecked: Bool = false) -> ReceiptVerdict {
    if !signatureChecked, let why = r.check(node: node, verifier: verifier) { return .rejected(why) }
    let i = index(client: r.client, serial: r.serial)
    if requireOpen {
      guard let open = index(openSerial: r.serial) else { return .rejected(.unknownCircuit) }
      if circuits[open].client != r.client { return .rejected(.wrongCircuit) }
      if r.bytes > ReceiptV1.acceptable(relayed: circuits[open].relayed) { return .rejected(.exceedsRelayed) }
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
  mutating func take(_ r: ReceiptV1) {
    let i: Int
    if let found = index(client: r.client, serial: r.serial) {
      i = found
    } else {
      circuits.append(CircuitCredit(client: r.client, serial: r.serial))
      i = circuits.count - 1
      byCircuit[CircuitKey(client: r.client, serial: r.serial)] = i
    }
    // Modulo 2^64, like the journal's commit totals: signed amounts from recovery may be anything.
    receiptedTotal = receiptedTotal &- circuits[i].receipted &+ r.bytes
    circuits[i].receipted = r.bytes
    circuits[i].latest = r
    if circuits[i].relayed < r.bytes && !circuits[i].open { circuits[i].relayed = r.bytes }
    updatePause(i)
  }

  /// Every latest receipt, in ledger order.
  public var latestReceipts: [ReceiptV1] {
    var out: [ReceiptV1] = []
    for c in circuits { if let r = c.latest { out.append(r) } }
    return out
  }
}

public enum Credits {
  // MARK: implementation constants (tunable)
  public static let defaultWindow: UInt64 = 4 << 20            // 4 MiB credit window per circuit
  public static let defaultCommitInterval: UInt64 = 30         // seconds between group commits
  public static let defaultCommitThreshold: UInt64 = 64 << 20  // un-synced receipted bytes that force a commit
  public static let maxOpenCircuits = 65_536                  // open circuits the ledger holds (beyond: refused, counted)
}
