// `wisp credits selftest-fill [--state-dir DIR] [--receipts N] [--clients N] [--loop]`:
// fills a journal with receipts signed by fresh test clients (Tests/e2e/credits.sh, demos).
// A developer tool: in the host build only (DeveloperTools.swift), not in the device binary.
#if !hasFeature(Embedded)
import WispCore
import WispNode
import WispClient
import WispOS
import WispTLS

enum CreditsFill {
  /// Adds receipts from fresh test clients to the journal (for tests and demos).
  /// With --loop: one receipt and one commit per round until killed, printing
  /// "committed TOTAL" after each commit has returned.
  static func main(_ inv: Invocation) -> Int32 {
    let dir = CreditsCommands.stateDir(inv)
    let count = inv.value("--receipts").flatMap(parseDecimal) ?? 20
    let nClients = max(1, Int(inv.value("--clients").flatMap(parseDecimal) ?? 3))
    let loop = inv.has("--loop")
    guard let key = CreditsCommands.nodeKey(dir, create: true) else { return 1 }
    let v = P256Verifier()
    let node = v.fingerprint(ofKey: key.publicKey)
    let storage: FileJournalStorage
    do throws(Errno) { storage = try FileJournalStorage(directory: dir) } catch {
      Console.err("wisp: cannot open \(CreditsCommands.journalPath(dir)): \(error.description)")
      return 1
    }
    var j: Journal<FileJournalStorage, P256Verifier>
    do throws(JournalError) { j = try Journal.open(storage: storage, node: node, verifier: v, now: CreditsCommands.now()) } catch {
      Console.err("wisp: cannot open the journal: \(error.text)")
      return 1
    }
    var clients: [P256Signer] = []
    for _ in 0..<nClients {
      guard let c = P256Signer.generate() else { Console.err("wisp: key generation failed"); return 1 }
      clients.append(c)
    }
    // Bindings continue after the largest in the journal, so each run adds new circuits.
    var base: UInt64 = 0
    for c in j.ledger.circuits where c.key.version == 2 && c.key.lo > base { base = c.key.lo }
    var amounts = [UInt64](repeating: 0, count: nClients)
    var round: UInt64 = 0
    while loop || round < count {
      let i = Int(round % UInt64(nClients))
      amounts[i] += 1000 + round * 7
      let t = CreditsCommands.now()
      guard let r = Receipt.make(signer: &clients[i], verifier: v, node: node, binding: Binding(hi: 0, lo: base + 1 + UInt64(i)),
                                 bytes: amounts[i], epoch: t) else { Console.err("wisp: signing failed"); return 1 }
      do throws(JournalError) {
        _ = try j.record(r, now: t)
        if loop { try j.commit(now: t); Console.out("committed \(j.committedTotal)") }
      } catch {
        Console.err("wisp: journal: \(error.text)")
        return 1
      }
      round += 1
    }
    do throws(JournalError) { try j.close(now: CreditsCommands.now()) } catch {
      Console.err("wisp: journal: \(error.text)")
      return 1
    }
    Console.out("filled: \(count) receipts, journal total \(j.committedTotal) bytes, node \(node.hex)")
    return 0
  }
}
#endif
