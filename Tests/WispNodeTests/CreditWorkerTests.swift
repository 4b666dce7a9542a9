// The credit worker binds circuits to payers, verifies and records receipts off the
// forwarding thread, and answers the shard through its mailbox with each circuit's limit.
// Driven here one job at a time (no thread), with real ECDSA (mbedTLS) and a real journal.
import Testing
import CPosix
import WispCore
import WispOS
import WispTLS
@testable import WispNode

@Suite struct CreditWorkerTests {
  final class Fixture {
    let dir: String
    let credit: NodeCredit
    let worker: CreditWorker
    let shardInbox: Mailbox<ShardMessage>
    var payer = P256Signer.generate()!
    let window: UInt64

    init(window: UInt64 = 1 << 20) throws {
      var template = Array("/tmp/wisp-credit-worker-XXXXXX".utf8CString)
      dir = String(cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
      self.window = window
      credit = try #require(NodeCredit.open(directory: dir, window: window, commitInterval: 0))
      worker = try CreditWorker(credit: credit, shards: 1, halvesPerShard: 64)
      shardInbox = try Mailbox(capacity: 64)
      worker.shards = [shardInbox]
    }

    var payerFP: Fingerprint { P256Verifier().fingerprint(ofKey: payer.publicKey) }

    func receipt(_ binding: Binding, bytes: UInt64, node: Fingerprint? = nil, epoch: UInt64? = nil,
                 signer: P256Signer? = nil) -> Receipt {
      var s = signer ?? payer
      return Receipt.make(signer: &s, verifier: P256Verifier(), node: node ?? credit.fingerprint, binding: binding,
                          bytes: bytes, epoch: epoch ?? UInt64(wisp_realtime_s()))!
    }

    /// Posts a receipt that came on circuit (half, localId) whose binding is `circuit`.
    func post(_ r: Receipt, half: Int32, localId: UInt32, relayed: UInt64, circuit: Binding) {
      worker.handle(.receipt(shard: 0, half: half, localId: localId, relayed: relayed, binding: circuit, r))
    }

    /// The worker's answer to the shard for a receipt, nil if none (rebalancing messages
    /// to other circuits, `.limit`, are skipped and counted).
    var limitsSkipped = 0
    func answer() -> (half: Int32, localId: UInt32, bound: Bool, receipted: UInt64, limit: UInt64)? {
      while let m = shardInbox.take() {
        if case .credited(let h, let l, let b, let r, let lim) = m { return (h, l, b, r, lim) }
        limitsSkipped += 1
      }
      return nil
    }

    var rejections: RejectionCounters { credit.tables().rejections }
  }

  func binding(_ n: UInt64) -> Binding { Binding(hi: 0xB1, lo: n) }

  @Test func aZeroByteReceiptBindsThenReceiptsRecordAndMoveTheLimit() throws {
    let f = try Fixture()
    // 0 bytes: binds the circuit to its payer, gives it the payer's window, records nothing.
    f.post(f.receipt(binding(1), bytes: 0), half: 2, localId: 7, relayed: 500, circuit: binding(1))
    let a = try #require(f.answer())
    #expect(a.half == 2 && a.localId == 7 && a.bound && a.receipted == 0 && a.limit == f.window)
    #expect(f.credit.report().totals.receipted == 0 && f.credit.report().totals.receipts == 0)
    // Cumulative amounts are recorded and move the limit.
    f.post(f.receipt(binding(1), bytes: 2000), half: 2, localId: 7, relayed: 3000, circuit: binding(1))
    let b = try #require(f.answer())
    #expect(b.bound && b.receipted == 2000 && b.limit == 2000 + f.window)
    #expect(f.credit.report().totals.receipted == 2000)
    #expect(f.credit.journal!.ledger.receipted(payer: f.payerFP, binding: binding(1)) == 2000)
    // Not higher: refused, the circuit keeps what it had.
    f.post(f.receipt(binding(1), bytes: 2000), half: 2, localId: 7, relayed: 3000, circuit: binding(1))
    #expect(try #require(f.answer()).receipted == 2000)
    #expect(f.rejections[.replay] == 1)
  }

  @Test func aReceiptForOneBindingCannotPayForAnother() throws {
    let f = try Fixture()
    // Circuit A (binding 1) is bound and paid; circuit B (binding 2) is not.
    f.post(f.receipt(binding(1), bytes: 1000), half: 0, localId: 1, relayed: 1000, circuit: binding(1))
    #expect(try #require(f.answer()).bound)
    // A's receipt (and a higher one for A) sent on B: B stays unbound, earns nothing, A is unchanged.
    f.post(f.receipt(binding(1), bytes: 1000), half: 4, localId: 2, relayed: 5000, circuit: binding(2))
    let b = try #require(f.answer())
    #expect(!b.bound && b.receipted == 0 && b.limit == 0)
    f.post(f.receipt(binding(1), bytes: 4000), half: 4, localId: 2, relayed: 5000, circuit: binding(2))
    #expect(try #require(f.answer()).bound == false)
    #expect(f.rejections[.wrongBinding] == 2)
    #expect(f.credit.report().totals.receipted == 1000)
    // A receipt naming a binding this node never drew: refused the same way.
    f.post(f.receipt(binding(99), bytes: 10), half: 4, localId: 2, relayed: 5000, circuit: binding(2))
    #expect(try #require(f.answer()).bound == false)
    #expect(f.rejections[.wrongBinding] == 3)
    // Another payer cannot take over a bound circuit.
    f.post(f.receipt(binding(1), bytes: 2000, signer: P256Signer.generate()!), half: 0, localId: 1, relayed: 2000, circuit: binding(1))
    #expect(try #require(f.answer()).receipted == 1000)
    #expect(f.rejections[.wrongCircuit] == 1)
  }

  @Test func rotationGivesAPayerThatNeverPaysAtMostOneWindow() throws {
    // N circuits of one payer, one after the other: each is bound by a 0-byte receipt
    // (after `pre` bytes carried on its unbound allowance, for the odd ones), relays
    // everything it is allowed, then closes unpaid. The node's total is at most W plus the
    // one unbound allowance a payer may hold beyond it (PayerBook.grant), plus what the
    // circuits carried before their receipts (which the source's unbound allowances
    // bound: ForwarderTests.aSourceHoldsFewUnboundAllowances).
    let w: UInt64 = 100_000, unbound = Credits.defaultUnboundAllowance, n = 10
    let f = try Fixture(window: w)
    var total: UInt64 = 0, before: UInt64 = 0
    for i in 0..<n {
      let b = binding(UInt64(100 + i))
      let pre: UInt64 = i % 2 == 1 ? unbound : 0
      f.post(f.receipt(b, bytes: 0), half: 0, localId: UInt32(10 + i), relayed: pre, circuit: b)
      let a = try #require(f.answer())
      #expect(a.bound)
      let relayed = max(a.limit, pre)
      total += relayed
      before += pre
      f.worker.handle(.closed(shard: 0, half: 0, localId: UInt32(10 + i), relayed: relayed))
    }
    #expect(total <= w + unbound + before)
    #expect(total >= w)  // the first circuit got the whole window: the bound is not vacuous
    #expect(f.credit.tables().debtBytes == total)
    // The same N circuits open at once: the window is shared, never multiplied.
    let g = try Fixture(window: w)
    var granted: UInt64 = 0
    for i in 0..<n {
      let b = binding(UInt64(200 + i))
      g.post(g.receipt(b, bytes: 0), half: Int32(2 * i), localId: UInt32(1 + i), relayed: 0, circuit: b)
      granted += try #require(g.answer()).limit
    }
    // The first gets the window, the second the one allowance beyond it; the others wait for
    // the rebalancing (a .limit for the first).
    #expect(granted <= w + unbound)
  }

  @Test func aNewCircuitGetsItsShareBackFromCircuitsOnADeadPath() throws {
    // Circuit A holds the payer's whole window, then its path dies (no close reaches this
    // node). Circuit B of the same payer binds with nothing left but the one unbound allowance
    // beyond the window: the worker asks A's shard to lower A to its fair share; once applied,
    // B is raised to its share.
    let w: UInt64 = 100_000
    let f = try Fixture(window: w)
    f.post(f.receipt(binding(1), bytes: 0), half: 0, localId: 1, relayed: 0, circuit: binding(1))
    #expect(try #require(f.answer()).limit == w)
    f.post(f.receipt(binding(2), bytes: 0), half: 2, localId: 2, relayed: 0, circuit: binding(2))
    #expect(try #require(f.answer()).limit == Credits.defaultUnboundAllowance)  // carries while rebalancing
    guard case .limit(let h, let l, let lower) = try #require(f.shardInbox.take()) else { Issue.record("no .limit"); return }
    #expect(h == 0 && l == 1 && lower == w / 2)
    // The shard applies it (A had relayed 10,000: above its new limit's floor it stays at w/2).
    f.worker.handle(.limitApplied(shard: 0, half: 0, localId: 1, limit: w / 2))
    guard case .limit(let h2, let l2, let raised) = try #require(f.shardInbox.take()) else { Issue.record("no raise"); return }
    #expect(h2 == 2 && l2 == 2 && raised == w / 2)
    #expect(f.credit.book.state(f.payerFP)?.granted == w)   // the invariant still holds
    // A stale answer (a receipt changed A's limit meanwhile) is not counted.
    f.worker.handle(.limitApplied(shard: 0, half: 0, localId: 1, limit: 1))
    #expect(f.credit.book.state(f.payerFP)?.granted == w && f.shardInbox.take() == nil)
  }

  /// A busy circuit holds the window; a new circuit of the payer binds with nothing left and
  /// asks for it to be lowered, but a receipt of the busy circuit overtakes the lowering. The
  /// receipt's smaller share frees the window for the waiting circuit at once, and the stale
  /// lowering does not keep the busy circuit from being lowered again.
  @Test func aReceiptOfABusyCircuitFeedsItsWaitingSiblings() throws {
    let w: UInt64 = 100_000
    let f = try Fixture(window: w)
    f.post(f.receipt(binding(1), bytes: 0), half: 0, localId: 1, relayed: 0, circuit: binding(1))
    #expect(try #require(f.answer()).limit == w)
    f.post(f.receipt(binding(2), bytes: 0), half: 2, localId: 2, relayed: 0, circuit: binding(2))
    #expect(try #require(f.answer()).limit == Credits.defaultUnboundAllowance)
    guard case .limit(0, 1, w / 2) = try #require(f.shardInbox.take()) else { Issue.record("no lowering"); return }
    // Circuit 1's receipt arrives before the shard says it applied the lowering.
    f.post(f.receipt(binding(1), bytes: 10_000), half: 0, localId: 1, relayed: 10_000, circuit: binding(1))
    var raised: UInt64? = nil, credited: UInt64? = nil
    while let m = f.shardInbox.take() {
      if case .credited(0, 1, true, 10_000, let l) = m { credited = l }
      if case .limit(2, 2, let l) = m { raised = l }
    }
    #expect(credited == 10_000 + w / 2)
    #expect(raised == w / 2)  // circuit 2 flows without waiting for anything else
    // The stale answer: ignored, and the lowering is over.
    f.worker.handle(.limitApplied(shard: 0, half: 0, localId: 1, limit: w / 2))
    #expect(f.credit.book.state(f.payerFP)?.granted == w)
    // A third circuit: both others are above its fair share and are asked to come down.
    f.post(f.receipt(binding(3), bytes: 0), half: 4, localId: 3, relayed: 0, circuit: binding(3))
    var lowered: [Int32] = []
    while let m = f.shardInbox.take() { if case .limit(let h, _, let l) = m, l < w / 2 + 10_000 { lowered.append(h) } }
    #expect(lowered.sorted() == [0, 2])
  }

  @Test func closedDebtIsPaidOnlyByItsOwnBinding() throws {
    let w: UInt64 = 100_000
    let f = try Fixture(window: w)
    f.post(f.receipt(binding(1), bytes: 0), half: 0, localId: 1, relayed: 0, circuit: binding(1))
    _ = f.answer()
    f.worker.handle(.closed(shard: 0, half: 0, localId: 1, relayed: w))
    #expect(f.credit.tables().debtBytes == w && f.credit.tables().closedDebts == 1)
    // A new circuit of the payer gets only the one unbound allowance beyond the window while
    // the debt stands (one per payer: a payer that rotates circuits gets no more)...
    let u = Credits.defaultUnboundAllowance
    f.post(f.receipt(binding(2), bytes: 0), half: 2, localId: 2, relayed: 0, circuit: binding(2))
    #expect(try #require(f.answer()).limit == u)
    f.post(f.receipt(binding(3), bytes: 0), half: 4, localId: 3, relayed: 0, circuit: binding(3))
    #expect(try #require(f.answer()).limit == 0)
    f.worker.handle(.closed(shard: 0, half: 4, localId: 3, relayed: 0))
    // ...a receipt for the closed binding, sent on it, pays the debt (and is recorded)
    // without moving the circuit's receipted amount; the window it frees raises the circuit...
    f.post(f.receipt(binding(1), bytes: w), half: 2, localId: 2, relayed: 0, circuit: binding(2))
    guard case .credited(2, 2, true, 0, u) = try #require(f.shardInbox.take()) else { Issue.record("no answer"); return }
    guard case .limit(2, 2, w) = try #require(f.shardInbox.take()) else { Issue.record("not raised"); return }
    #expect(f.credit.tables().debtBytes == 0 && f.credit.tables().debtPaid == w)
    #expect(f.credit.report().totals.receipted == w)
    // ...and its next receipt keeps the window.
    f.post(f.receipt(binding(2), bytes: 10), half: 2, localId: 2, relayed: 10, circuit: binding(2))
    #expect(try #require(f.answer()).limit == 10 + w)
  }

  @Test func unlistedPayersEarnNothingAndBindNothing() throws {
    let f = try Fixture()
    var settlement = [P256Signer.generate()!]
    let listed = P256Signer.generate()!
    let now = UInt64(wisp_realtime_s())
    let entry = PayerEntry(fingerprint: P256Verifier().fingerprint(ofKey: listed.publicKey), validFrom: now - 100,
                           validUntil: now + 300, budget: 1 << 30, period: 86_400)
    let bytes = try #require(PayerList.build(version: 3, created: now, entries: [entry], signers: &settlement))
    let list = try PayerList.parse(bytes)
    #expect(list.verify(pinned: [P256Verifier().fingerprint(ofKey: settlement[0].publicKey)], threshold: 1,
                        verifier: P256Verifier()) == nil)
    f.credit.setPayers(list, required: true)
    // f.payer is not listed: refused, not bound, nothing recorded.
    f.post(f.receipt(binding(1), bytes: 0), half: 0, localId: 1, relayed: 100, circuit: binding(1))
    #expect(try #require(f.answer()).bound == false)
    f.post(f.receipt(binding(1), bytes: 100), half: 0, localId: 1, relayed: 100, circuit: binding(1))
    #expect(try #require(f.answer()).bound == false)
    #expect(f.rejections[.unlistedPayer] == 2 && f.credit.report().totals.receipted == 0)
    // The listed payer binds and earns; outside its validity it earns nothing.
    f.post(f.receipt(binding(2), bytes: 100, signer: listed), half: 2, localId: 2, relayed: 100, circuit: binding(2))
    #expect(try #require(f.answer()).bound)
    f.post(f.receipt(binding(3), bytes: 100, epoch: now + 500, signer: listed), half: 4, localId: 3, relayed: 100, circuit: binding(3))
    #expect(try #require(f.answer()).bound == false)
    #expect(f.credit.report().totals.receipted == 100)
    // require_payers = no: taken, counted unlisted.
    f.credit.setPayers(list, required: false)
    f.post(f.receipt(binding(1), bytes: 100), half: 0, localId: 1, relayed: 100, circuit: binding(1))
    #expect(try #require(f.answer()).bound)
    #expect(f.credit.tables().unlisted == 1)
  }

  @Test func epochsOutsideTheWindowAreRefusedAndWaitWhileTheClockIsUnsynced() throws {
    let f = try Fixture()
    let now = UInt64(wisp_realtime_s())
    // Synchronised: ±600 s is accepted, beyond it refused.
    f.post(f.receipt(binding(1), bytes: 10, epoch: now - 700), half: 0, localId: 1, relayed: 100, circuit: binding(1))
    #expect(try #require(f.answer()).bound == false)
    #expect(f.rejections[.epoch] == 1)
    f.post(f.receipt(binding(1), bytes: 10, epoch: now + 500), half: 0, localId: 1, relayed: 100, circuit: binding(1))
    #expect(try #require(f.answer()).receipted == 10)
    // Unsynchronised: the check waits. Receipts move the window but are held, not journaled.
    var synced = false
    f.credit.clockSynced = { synced }
    f.post(f.receipt(binding(2), bytes: 50, epoch: now - 5000), half: 2, localId: 2, relayed: 100, circuit: binding(2))
    #expect(try #require(f.answer()).receipted == 50)
    f.post(f.receipt(binding(3), bytes: 60), half: 4, localId: 3, relayed: 100, circuit: binding(3))
    #expect(try #require(f.answer()).receipted == 60)
    #expect(f.credit.tables().held == 2 && f.credit.report().totals.receipted == 10)
    f.credit.tick()
    #expect(f.credit.tables().held == 2)
    // Synchronised: the held ones are journaled, or refused `epoch`.
    synced = true
    f.credit.tick()
    #expect(f.credit.tables().held == 0 && f.rejections[.epoch] == 2)
    #expect(f.credit.report().totals.receipted == 70)
  }

  @Test func badReceiptsEarnNothingAndAReusedSlotStartsOver() throws {
    let f = try Fixture()
    // More than the circuit relayed (beyond the eighth + 64 KiB a receipt may exceed it by), or for another node: rejected.
    f.post(f.receipt(binding(9), bytes: 100_000), half: 0, localId: 1, relayed: 100, circuit: binding(9))
    #expect(try #require(f.answer()).receipted == 0)
    f.post(f.receipt(binding(9), bytes: 50, node: Fingerprint(bytes: [UInt8](repeating: 3, count: 32))), half: 0, localId: 1,
           relayed: 100, circuit: binding(9))
    #expect(try #require(f.answer()).receipted == 0)
    #expect(f.credit.report().totals.receipted == 0)
    // The slot's circuit ends; a new circuit in the same slot (new local id) binds afresh.
    f.post(f.receipt(binding(9), bytes: 100), half: 0, localId: 1, relayed: 100, circuit: binding(9))
    #expect(try #require(f.answer()).bound)
    f.worker.handle(.closed(shard: 0, half: 0, localId: 1, relayed: 100))
    f.post(f.receipt(binding(10), bytes: 300), half: 0, localId: 2, relayed: 300, circuit: binding(10))
    let a = try #require(f.answer())
    #expect(a.localId == 2 && a.bound && a.receipted == 300)
    // Out-of-range shards and halves are ignored, not trapped on.
    f.worker.handle(.receipt(shard: 3, half: 0, localId: 1, relayed: 1, binding: binding(1), f.receipt(binding(1), bytes: 1)))
    f.worker.handle(.receipt(shard: 0, half: 99, localId: 1, relayed: 1, binding: binding(1), f.receipt(binding(1), bytes: 1)))
    f.worker.handle(.closed(shard: 0, half: -1, localId: 1, relayed: 1))
    #expect(f.answer() == nil)
  }
}
