// Power-loss emulation, littlefs style: run a workload, cut power during write N for
// every N the workload makes, reboot, and require a consistent state whose credit is
// at least the last completed commit and never more than was receipted.
import Testing
import WispTestSupport
import WispCore

@Suite struct JournalPowerLossTests {
  static let circuits = 6

  /// What the workload knew when power went out.
  struct Outcome {
    /// Per circuit: the amount as of the last commit that returned.
    var committed = [UInt64](repeating: 0, count: circuits)
    /// Per circuit: every amount handed to the journal (all genuinely signed).
    var issued = [[UInt64]](repeating: [], count: circuits)
    var finished = false
  }

  static func client(_ c: Int) -> UInt8 { UInt8(c % 3) }
  static func serial(_ c: Int) -> UInt64 { UInt64(100 + c) }

  static func snapshot(_ l: CreditLedger) -> [UInt64] {
    (0..<circuits).map { c in l.receipted(payer: clientFP(client(c)), binding: Binding(hi: 0, lo: serial(c))) }
  }

  /// Receipts for six circuits over simulated time, with interval and threshold
  /// commits, automatic and explicit compactions, and a clean close.
  static func workload(_ disk: EmulatedDisk) -> Outcome {
    var out = Outcome()
    var policy = CommitPolicy()
    policy.interval = 30
    policy.threshold = 6000
    policy.compactAtBytes = 3000
    var amounts = [UInt64](repeating: 0, count: circuits)
    do {
      var j = try Journal.open(storage: EmulatedJournalStorage(disk: disk), node: testNode, verifier: FakeVerifier(),
                               now: 1000, policy: policy)
      out.committed = snapshot(j.ledger)
      var seq = j.commitSequence
      var now: UInt64 = 1000
      for step in 0..<90 {
        let c = (step * 5) % circuits
        amounts[c] += UInt64(500 + step * 37)
        out.issued[c].append(amounts[c])
        _ = try j.record(receipt(client(c), serial: serial(c), bytes: amounts[c], epoch: now), now: now)
        if j.commitSequence != seq { seq = j.commitSequence; out.committed = snapshot(j.ledger) }
        now += 9
        try j.tick(now: now)
        if j.commitSequence != seq { seq = j.commitSequence; out.committed = snapshot(j.ledger) }
        if step == 25 || step == 70 {
          try j.compact(now: now)
          seq = j.commitSequence; out.committed = snapshot(j.ledger)
        }
      }
      try j.close(now: now)
      out.committed = snapshot(j.ledger)
      out.finished = true
    } catch {
      #expect(error == .storage(StorageError(.powerCut)), "unexpected \(error)")
    }
    return out
  }

  /// Reboots from `disk`, checks the invariants, then proves the journal still works.
  static func checkRecovery(_ disk: EmulatedDisk, _ out: Outcome, _ label: String) {
    do {
      let j = try Journal.open(storage: EmulatedJournalStorage(disk: disk), node: testNode, verifier: FakeVerifier(), now: 5000)
      let got = snapshot(j.ledger)
      for c in 0..<circuits {
        #expect(got[c] >= out.committed[c], "\(label): circuit \(c) lost committed credit \(got[c]) < \(out.committed[c])")
        #expect(got[c] == 0 || out.issued[c].contains(got[c]), "\(label): circuit \(c) has credit \(got[c]) never receipted")
      }
      #expect(j.ledger.receiptCount == got.filter { $0 > 0 }.count, "\(label): unexpected circuits")
      // After the repair the file is clean and takes new commits.
      #expect(JournalScan.scan(disk.durable, node: testNode, verifier: FakeVerifier()).stop == nil, "\(label): tail left")
      var k = j
      let more = (out.issued[0].last ?? 0) + 1
      _ = try k.record(receipt(client(0), serial: serial(0), bytes: more), now: 5001)
      try k.close(now: 5002)
      let again = JournalScan.scan(disk.durable, node: testNode, verifier: FakeVerifier())
      #expect(again.stop == nil && snapshot(again.ledger)[0] == more, "\(label): append after recovery")
    } catch {
      Issue.record("\(label): recovery failed: \(error)")
    }
  }

  @Test func workloadWithoutCutCompletes() {
    let disk = EmulatedDisk()
    let out = Self.workload(disk)
    #expect(out.finished)
    #expect(disk.operations > 20)
    Self.checkRecovery(disk.afterPowerLoss(.torn, seed: 0), out, "no cut")
  }

  @Test func tornLastWriteAfterEveryWrite() {
    let total = { let d = EmulatedDisk(); _ = Self.workload(d); return d.operations }()
    var cases = 0
    var tornTails = 0
    #expect(total > 40)
    for n in 1...total {
      for seed in 0..<3 as Range<UInt64> {
        let disk = EmulatedDisk(cutAt: n)
        let out = Self.workload(disk)
        #expect(!out.finished)
        let rebooted = disk.afterPowerLoss(.torn, seed: seed &* 7919 &+ UInt64(n))
        if JournalScan.scan(rebooted.durable, node: testNode, verifier: FakeVerifier()).tailBytes > 0 { tornTails += 1 }
        Self.checkRecovery(rebooted, out, "torn n=\(n) seed=\(seed)")
        cases += 1
      }
    }
    #expect(cases == total * 3)
    #expect(tornTails > total / 4, "only \(tornTails) of \(cases) cuts left a torn tail")
    print("power-loss torn: \(total) writes, \(cases) cuts, \(tornTails) torn tails repaired")
  }

  @Test func reorderedAndLostUnsyncedWritesAfterEveryWrite() {
    let total = { let d = EmulatedDisk(); _ = Self.workload(d); return d.operations }()
    print("power-loss reorder: \(total) writes, \(total * 5) cuts")
    for n in 1...total {
      for seed in 0..<5 as Range<UInt64> {
        let disk = EmulatedDisk(cutAt: n)
        let out = Self.workload(disk)
        Self.checkRecovery(disk.afterPowerLoss(.reorder, seed: seed &* 104_729 &+ UInt64(n)), out, "reorder n=\(n) seed=\(seed)")
      }
    }
  }

  /// A second cut while the first recovery repairs the file.
  @Test func cutDuringRecovery() {
    let total = { let d = EmulatedDisk(); _ = Self.workload(d); return d.operations }()
    for n in stride(from: 1, through: total, by: 3) {
      let disk = EmulatedDisk(cutAt: n)
      let out = Self.workload(disk)
      let rebooted = disk.afterPowerLoss(.torn, seed: UInt64(n))
      for m in 1...3 {
        let image = rebooted.durable
        let second = EmulatedDisk(image: image, cutAt: m)
        _ = try? Journal.open(storage: EmulatedJournalStorage(disk: second), node: testNode, verifier: FakeVerifier(), now: 4000)
        Self.checkRecovery(second.afterPowerLoss(.reorder, seed: UInt64(m)), out, "recovery cut n=\(n) m=\(m)")
      }
    }
  }
}
