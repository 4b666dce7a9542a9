// The clock a node trusts (ClockSyncMode.swift, WispOS ClockSync): `clock_sync` in wisp.conf
// and `--clock-sync`, what a kernel reading means, and one real read-only adjtimex.
import Testing
@testable import WispCore
import WispOS

@Suite struct ClockSyncTests {
  @Test func theDefaultIsTheKernelsWord() {
    #expect(RunConfig().clockSync == .kernel)
  }

  @Test func configKeyAndOption() throws {
    #expect(try ConfigFile.apply("clock_sync = assume\n", to: RunConfig()).clockSync == .assume)
    let file = try ConfigFile.apply("clock_sync = kernel\n", to: RunConfig())
    #expect(file.clockSync == .kernel)
    // The command line wins over the file.
    let inv = try Arguments.parse(["run", "--clock-sync", "assume"])
    #expect(try RunConfig.from(inv, over: file).clockSync == .assume)
    let back = try Arguments.parse(["run", "--clock-sync=kernel"])
    #expect(try RunConfig.from(back, over: RunConfig.from(inv)).clockSync == .kernel)
  }

  @Test func badValuesNameTheKeyAndTheChoices() throws {
    do {
      _ = try ConfigFile.apply("name = x\nclock_sync = ntp\n", to: RunConfig())
      Issue.record("accepted clock_sync = ntp")
    } catch {
      #expect(error.line == 2 && error.message == "'clock_sync' must be kernel or assume, not 'ntp'")
    }
    let inv = try Arguments.parse(["run", "--clock-sync", "yes"])
    #expect(throws: UsageError("option '--clock-sync' must be kernel or assume, not 'yes'", command: .run)) {
      try RunConfig.from(inv)
    }
  }

  @Test func whatAKernelReadingMeans() {
    // This machine's kernel (and CI's): TIME_ERROR with STA_UNSYNC.
    #expect(!KernelClockReading(state: 5, status: 0x40).synchronised)
    // Synchronised by a time client: TIME_OK, STA_PLL (0x1) and no STA_UNSYNC.
    #expect(KernelClockReading(state: 0, status: 0x1).synchronised)
    // A leap second announced (TIME_INS) is still synchronised.
    #expect(KernelClockReading(state: 1, status: 0x11).synchronised)
    // STA_UNSYNC alone, TIME_ERROR alone, or the call refused (EPERM from a sandbox): not.
    #expect(!KernelClockReading(state: 0, status: 0x41).synchronised)
    #expect(!KernelClockReading(state: 5, status: 0).synchronised)
    #expect(!KernelClockReading(state: -1, status: 0).synchronised)
    #expect(KernelClockReading(state: 5, status: 0x40).text == "adjtimex=5 status=0x40")
    #expect(KernelClockReading(state: 0, status: 0x2001).text == "adjtimex=0 status=0x2001")
    #expect(KernelClockReading(state: -1, status: 0).text == "adjtimex_errno=1")
  }

  @Test func whatTheNodeSays() {
    let unsynced = KernelClockReading(state: 5, status: 0x40)
    let synced = KernelClockReading(state: 0, status: 0x1)
    #expect(ClockState(mode: .kernel, kernel: unsynced) == .unsynced)
    #expect(ClockState(mode: .kernel, kernel: synced) == .synced)
    #expect(ClockState(mode: .kernel, kernel: nil) == .unsynced)
    #expect(ClockState(mode: .assume, kernel: unsynced) == .assumed)
    #expect(ClockState.synced.trusted && ClockState.assumed.trusted && !ClockState.unsynced.trusted)
    #expect("\(ClockState.unsynced.name)" == "unsynced" && "\(ClockState.assumed.name)" == "assumed")
    #expect(ClockSyncMode(name: "assume") == .assume && ClockSyncMode(name: "Kernel") == nil)
  }

  @Test func theKernelAnswersARead() {
    // A read needs no privilege and changes nothing: it works wherever the tests run; what
    // it says (synchronised or not) depends on the machine.
    let r = ClockSync.read()
    #expect(r.state >= 0 && r.state <= 5, "adjtimex: \(r.text)")
  }
}
