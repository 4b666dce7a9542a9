// The credit worker binds, verifies and records receipts off the forwarding thread, and
// answers the shard through its mailbox. Driven here one job at a time (no thread).
import Testing
import CPosix
import WispCore
import WispOS
import WispTLS
import WispNode

@Suite struct CreditWorkerTests {
  final class Fixture {
    let dir: String
    let credit: NodeCredit
    let worker: CreditWorker
    let shardInbox: Mailbox<ShardMessage>
    var client = P256Signer.generate()!

    init() throws {
      var template = Array("/tmp/wisp-credit-worker-XXXXXX".utf8CString)
      dir = String(cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
      credit = try #require(NodeCredit.open(directory: dir, window: 1 << 20, commitInterval: 0))
      worker = try CreditWorker(credit: credit, shards: 1, halvesPerShard: 8)
      shardInbox = try Mailbox(capacity: 16)
      worker.shards = [shardInbox]
    }

    func receipt(serial: UInt64, bytes: UInt64, node: Fingerprint? = nil) -> ReceiptV1 {
      ReceiptV1.make(signer: &client, verifier: P256Verifier(), node: node ?? credit.fingerprint, serial: serial, bytes: bytes,
                   epoch: UInt64(wisp_realtime_s()))!
    }

    /// The worker's answer to the shard: (serial, receipted), nil if none.
    func answer() -> (half: Int32, localId: UInt32, serial: UInt64, receipted: UInt64)? {
      guard let m = shardInbox.take(), case .credited(let h, let l, let s, let r) = m else { return nil }
      return (h, l, s, r)
    }
  }

  @Test func bindsVerifiesRecordsAndAnswersTheShard() throws {
    let f = try Fixture()
    f.worker.handle(.receipt(shard: 0, half: 2, localId: 7, relayed: 3000, f.receipt(serial: 11, bytes: 2000)))
    let a = try #require(f.answer())
    #expect(a.half == 2 && a.localId == 7 && a.serial == 11 && a.receipted == 2000)
    #expect(f.credit.report().totals.receipted == 2000)
    // Cumulative: the next receipt of the circuit raises it.
    f.worker.handle(.receipt(shard: 0, half: 2, localId: 7, relayed: 5000, f.receipt(serial: 11, bytes: 4000)))
    #expect(try #require(f.answer()).receipted == 4000)
    #expect(f.credit.report().totals.receipted == 4000 && f.credit.report().accepted == 2)
  }

  @Test func aCircuitCannotTakeAnotherCircuitsSerialOrChangeItsOwn() throws {
    let f = try Fixture()
    f.worker.handle(.receipt(shard: 0, half: 0, localId: 1, relayed: 1000, f.receipt(serial: 5, bytes: 1000)))
    _ = f.answer()
    // Another circuit (another slot) naming serial 5: refused, the window does not move.
    f.worker.handle(.receipt(shard: 0, half: 4, localId: 2, relayed: 1000, f.receipt(serial: 5, bytes: 1000)))
    #expect(try #require(f.answer()).receipted == 0)
    // The bound circuit switching to another serial: refused, it keeps what it had.
    f.worker.handle(.receipt(shard: 0, half: 0, localId: 1, relayed: 2000, f.receipt(serial: 6, bytes: 2000)))
    let a = try #require(f.answer())
    #expect(a.serial == 5 && a.receipted == 1000)
    #expect(f.credit.report().rejected == 2)
  }

  @Test func badReceiptsEarnNothingAndAReusedSlotStartsOver() throws {
    let f = try Fixture()
    // More than the circuit relayed (beyond the eighth + 64 KiB a receipt may exceed it by), or for another node: rejected.
    f.worker.handle(.receipt(shard: 0, half: 0, localId: 1, relayed: 100, f.receipt(serial: 9, bytes: 100_000)))
    #expect(try #require(f.answer()).receipted == 0)
    f.worker.handle(.receipt(shard: 0, half: 0, localId: 1, relayed: 100,
                             f.receipt(serial: 9, bytes: 50, node: Fingerprint(bytes: [UInt8](repeating: 3, count: 32)))))
    #expect(try #require(f.answer()).receipted == 0)
    #expect(f.credit.report().totals.receipted == 0)
    // The slot's circuit ends; a new circuit in the same slot (new local id) binds afresh.
    f.worker.handle(.receipt(shard: 0, half: 0, localId: 1, relayed: 100, f.receipt(serial: 9, bytes: 100)))
    #expect(try #require(f.answer()).serial == 9)
    f.worker.handle(.closed(shard: 0, half: 0, localId: 1, serial: 9))
    f.worker.handle(.receipt(shard: 0, half: 0, localId: 2, relayed: 300, f.receipt(serial: 10, bytes: 300)))
    let a = try #require(f.answer())
    #expect(a.localId == 2 && a.serial == 10 && a.receipted == 300)
    // Out-of-range shards and halves are ignored, not trapped on.
    f.worker.handle(.receipt(shard: 3, half: 0, localId: 1, relayed: 1, f.receipt(serial: 1, bytes: 1)))
    f.worker.handle(.receipt(shard: 0, half: 99, localId: 1, relayed: 1, f.receipt(serial: 1, bytes: 1)))
    f.worker.handle(.closed(shard: 0, half: -1, localId: 1, serial: 1))
    #expect(f.answer() == nil)
  }
}
