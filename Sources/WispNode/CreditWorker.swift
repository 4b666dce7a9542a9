// The credit worker: the thread that does a node's expensive work — receipts and the
// journal, and sealed exits' key agreements — so that the forwarding loops never do.
//
// A shard that gets a sealed-exit CREATE makes the circuit (pending), then posts the
// client's point here; this thread computes ECDH with the node key (parsed once), draws
// the exit's fresh nonce, derives the circuit's keys and answers with `exitKeys`; the
// shard installs them and sends CREATED. Both kinds of work are metered on the shard
// before they are posted (SourceTable: per source and per node per second), and a full
// queue refuses them (`worker_busy`).
//
// A shard that receives a RECEIPT for this node decodes it (cheap) and posts it here with
// the circuit it came on (and that circuit's binding); it never waits. If the queue is full
// the receipt is refused and the shard counts `worker_busy`. This thread verifies the ECDSA
// signature (about 1 ms), binds the circuit to the receipt's payer, records the receipt in
// the journal (NodeCredit, which it owns), runs the journal's group commit with its
// fdatasync once a second, and answers the shard through its mailbox (`credited`: bound or
// not, the bytes its receipts acknowledge, and the relayed count the circuit may reach —
// its share of the payer's window, PayerCredit.swift). The shard applies an answer only if
// the circuit is still the one the receipt came on. A bound circuit's end comes here too
// (`closed`, with what it relayed): its unpaid bytes stay with its payer as debt.
//
// Its view of each circuit (`CreditSlot`, per shard and forward half, allocated at start)
// is the authoritative one: two receipts of one circuit in flight at once are handled in
// order, against the state the first left.
import CPosix
import WispCore
import WispOS
import WispTLS

/// The worker's view of one circuit (its forward half on one shard). All zero: empty.
public struct CreditSlot {
  public var localId: UInt32 = 0
  /// A valid receipt bound the circuit to `payer`.
  public var bound = false
  public var payer = Fingerprint.zero
  /// The circuit's binding (set when bound).
  public var binding = Binding.zero
  /// Bytes the latest valid receipt acknowledges.
  public var receipted: UInt64 = 0
  /// The relayed count the circuit may reach (what the shard was told).
  public var limit: UInt64 = 0
  /// A lower limit asked of the shard while the limit was this (0: none pending).
  public var lowering: UInt64 = 0
  public init(localId: UInt32 = 0) { self.localId = localId }
}

/// Work for the credit worker.
public enum CreditJob {
  /// A receipt naming this node, from `shard`'s circuit (forward half `half`, `localId`,
  /// binding `binding`) that had relayed `relayed` bytes when it arrived.
  case receipt(shard: Int, half: Int32, localId: UInt32, relayed: UInt64, binding: Binding, Receipt)
  /// A sealed exit's key agreement for `shard`'s circuit (forward half, local id).
  case exitKeys(shard: Int, half: Int32, localId: UInt32, clientPoint: [UInt8])
  /// A bound circuit ended after relaying `relayed` bytes.
  case closed(shard: Int, half: Int32, localId: UInt32, relayed: UInt64)
  /// The shard applied a limit the worker set (`ShardMessage.limit`).
  case limitApplied(shard: Int, half: Int32, localId: UInt32, limit: UInt64)
  /// Commit and end the thread.
  case stop
}

public final class CreditWorker {
  public let credit: NodeCredit
  /// The node key for sealed exits' key agreements (nil: sealed exits are refused).
  public var keyAgreement: ExitKeyAgreement? = nil
  /// Key agreements done, and those whose client point was not valid: written by the
  /// worker, read by the control plane (relaxed atomics).
  let agreementCounts = UnsafeMutablePointer<UInt64>(zeroedCount: 2)
  public var keyAgreements: UInt64 { wisp_atomic_load_u64(agreementCounts) }
  public var keyAgreementsFailed: UInt64 { wisp_atomic_load_u64(agreementCounts + 1) }
  public let inbox: Mailbox<CreditJob>
  /// Each shard's inbox, for the answers.
  public var shards: [Mailbox<ShardMessage>] = []
  /// Each shard's slots, one per half of its circuit table: zero pages until a receipt
  /// touches one (an all-zero CreditSlot is an empty one), so a large table costs no RAM.
  let slots: [UnsafeMutablePointer<CreditSlot>]
  let slotCount: Int
  public var thread: UInt = 0
  public var running = true
  /// Answers a full shard inbox did not take (that circuit's window moves at its next receipt).
  public var answersLost: UInt64 = 0
  /// Receipts waiting at most: a receipt costs about 1 ms here, so a full queue is about
  /// a quarter of a second of work.
  public static let queueCapacity = 256

  public init(credit: NodeCredit, shards: Int, halvesPerShard: Int) throws(Errno) {
    self.credit = credit
    inbox = try Mailbox(capacity: CreditWorker.queueCapacity)
    slotCount = halvesPerShard
    slots = (0..<shards).map { _ in UnsafeMutablePointer<CreditSlot>(zeroedCount: halvesPerShard) }
  }

  deinit {
    for p in slots { p.deallocate() }
    agreementCounts.deallocate()
  }

  /// Wires a shard's forwarder to the worker: receipts in, circuit ends in.
  public func connect(_ fwd: Forwarder<KernelRandom>, shard: Int) {
    let inbox = self.inbox
    fwd.onReceipt = { r, half, localId, relayed, binding in
      inbox.post(.receipt(shard: shard, half: half, localId: localId, relayed: relayed, binding: binding, r))
    }
    if keyAgreement != nil {
      fwd.onExitKeys = { half, localId, point in
        inbox.post(.exitKeys(shard: shard, half: half, localId: localId, clientPoint: Array(point)))
      }
    }
    fwd.onLimitApplied = { half, localId, limit in
      _ = inbox.post(.limitApplied(shard: shard, half: half, localId: localId, limit: limit))
    }
    fwd.circuits.onClose = { half, localId, relayed in
      // A full queue loses the close: the payer's headroom comes back when the slot is reused.
      _ = inbox.post(.closed(shard: shard, half: half, localId: localId, relayed: relayed))
    }
  }

  /// Starts the thread (after `shards` is set): 0, or -errno.
  public func start() -> Int32 {
    switch Threads.spawn({ [self] in run() }) {
    case .success(let h): thread = h; return 0
    case .failure(let e): return -e.code
    }
  }

  public func run() {
    var nextTick = wisp_monotonic_ns() + 1_000_000_000
    while running {
      let now = wisp_monotonic_ns()
      if now >= nextTick {
        credit.tick()  // group commit, compaction, or a retry after a storage error
        nextTick += 1_000_000_000
        if nextTick <= now { nextTick = now + 1_000_000_000 }
        continue
      }
      _ = wisp_poll_in(inbox.fd, Int32((nextTick - now) / 1_000_000 + 1))
      inbox.acknowledge()
      while running, let job = inbox.take() { handle(job) }
    }
    credit.close()
  }

  public func handle(_ job: CreditJob) {
    switch job {
    case .receipt(let shard, let half, let localId, let relayed, let binding, let r):
      guard shard < slots.count, half >= 0, Int(half) < slotCount else { return }
      var s = slots[shard][Int(half)]
      if s.localId != localId {
        // The slot holds a circuit that ended and whose close was not seen (a full queue):
        // what it relayed is unknown here, its receipted amount is what the payer owes.
        if s.bound {
          credit.closed(s, relayed: s.receipted)
          forget(SlotRef(shard: shard, half: half), of: s.payer)
        }
        s = CreditSlot(localId: localId)
      }
      let wasBound = s.bound
      credit.take(r, slot: &s, relayed: relayed, binding: binding)
      slots[shard][Int(half)] = s
      if shard < shards.count,
         !shards[shard].post(.credited(half: half, localId: localId, bound: s.bound, receipted: s.receipted, limit: s.limit)) {
        answersLost &+= 1
      }
      if s.bound {
        let ref = SlotRef(shard: shard, half: half)
        if !wasBound { circuitsOf[FPKey(s.payer), default: []].append(ref) }
        // Short of its fair share (the payer's other circuits hold the window, some maybe on
        // a dead path): ask the shards to lower the circuits above their share.
        if s.limit &- max(s.receipted, relayed) < credit.fairShare(s.payer) { lowerOthers(of: s.payer, except: ref) }
        // A receipt of a busy circuit shrinks its share to what is fair now, or pays a closed
        // circuit's debt: what it frees goes at once to the payer's circuits short of their
        // share (this one too). Nobody else would ask: a paused circuit carries nothing that
        // makes its client send a new receipt. (O(the payer's circuits) per receipt, here.)
        raiseStarved(of: s.payer)
      }
    case .exitKeys(let shard, let half, let localId, let point):
      let made = keyAgreement.flatMap { k in point.withUnsafeBytes { k.agree(clientPoint: $0) } }
      let c = agreementCounts + (made == nil ? 1 : 0)
      wisp_atomic_store_u64(c, c.pointee &+ 1)  // only this thread writes
      if shard < shards.count,
         !shards[shard].post(.exitKeys(half: half, localId: localId, keys: made?.keys ?? [], created: made?.created ?? [])) {
        answersLost &+= 1
      }
    case .closed(let shard, let half, let localId, let relayed):
      if shard < slots.count, half >= 0, Int(half) < slotCount, slots[shard][Int(half)].localId == localId {
        let s = slots[shard][Int(half)]
        credit.closed(s, relayed: relayed)
        slots[shard][Int(half)] = CreditSlot()
        if s.bound {
          forget(SlotRef(shard: shard, half: half), of: s.payer)
          raiseStarved(of: s.payer)
        }
      }
    case .limitApplied(let shard, let half, let localId, let limit):
      guard shard < slots.count, half >= 0, Int(half) < slotCount else { return }
      var s = slots[shard][Int(half)]
      guard s.localId == localId, s.bound, s.lowering != 0 else { return }
      // Counted only if no receipt changed the circuit's limit since it was asked for (the
      // shard applied that receipt's limit after this one: it stands). Either way the
      // lowering is over, so the circuit can be lowered again later.
      if s.lowering == s.limit {
        credit.adjust(s.payer, from: s.limit &- s.receipted, to: limit &- s.receipted)
        s.limit = limit
      }
      s.lowering = 0
      slots[shard][Int(half)] = s
      raiseStarved(of: s.payer)
    case .stop:
      running = false
    }
  }

  // MARK: rebalancing a payer's window across its circuits

  struct SlotRef: Equatable { var shard: Int; var half: Int32 }
  struct FPKey: Hashable {
    var fp: Fingerprint
    init(_ f: Fingerprint) { fp = f }
    static func == (a: FPKey, b: FPKey) -> Bool { a.fp == b.fp }
    func hash(into h: inout Hasher) { h.combine(fp.w0); h.combine(fp.w1) }
  }
  /// Each payer's open bound circuits (bounded by the circuit tables).
  var circuitsOf: [FPKey: [SlotRef]] = [:]
  /// Limits lowered and raised to rebalance payers' windows.
  public private(set) var rebalanced: UInt64 = 0

  func forget(_ ref: SlotRef, of payer: Fingerprint) {
    let k = FPKey(payer)
    circuitsOf[k]?.removeAll { $0 == ref }
    if circuitsOf[k]?.isEmpty == true { circuitsOf[k] = nil }
  }

  /// Asks the shards to lower the payer's circuits that hold more than their fair share of
  /// its window to receipted + that share (never below what they relayed). The headroom
  /// they give up is counted free only when a shard says it applied the lower limit.
  func lowerOthers(of payer: Fingerprint, except: SlotRef) {
    let fair = credit.fairShare(payer)
    for ref in circuitsOf[FPKey(payer)] ?? [] where ref != except {
      var o = slots[ref.shard][Int(ref.half)]
      guard o.bound, o.payer == payer, o.lowering == 0, o.limit &- o.receipted > fair, ref.shard < shards.count else { continue }
      o.lowering = o.limit
      slots[ref.shard][Int(ref.half)] = o
      if shards[ref.shard].post(.limit(half: ref.half, localId: o.localId, limit: o.receipted &+ fair)) { rebalanced &+= 1 }
    }
  }

  /// Gives the payer's circuits that are short of their fair share what the window has
  /// left now (a lower limit applied elsewhere, a circuit closed).
  func raiseStarved(of payer: Fingerprint) {
    let fair = credit.fairShare(payer)
    for ref in circuitsOf[FPKey(payer)] ?? [] {
      var o = slots[ref.shard][Int(ref.half)]
      guard o.bound, o.payer == payer, o.lowering == 0, o.limit &- o.receipted < fair, ref.shard < shards.count else { continue }
      let limit = credit.regrant(o)
      guard limit > o.limit else { continue }
      o.limit = limit
      slots[ref.shard][Int(ref.half)] = o
      if shards[ref.shard].post(.limit(half: ref.half, localId: o.localId, limit: limit)) { rebalanced &+= 1 }
    }
  }
}
