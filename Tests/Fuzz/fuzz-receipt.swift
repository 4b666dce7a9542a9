// Fuzz target: ReceiptV1.decode (the body of a RECEIPT frame and of a journal receipt
// record), then the checks and the ledger a decoded receipt meets on a node. Checked: a
// decoded receipt re-encodes to exactly the bytes it was read from.
import WispCore

func fuzzOne(_ input: UnsafeRawBufferPointer) {
  var r = ByteReader(input)
  guard let receipt = ReceiptV1.decode(&r) else { return }
  let used = input.count - r.remaining
  invariant(receipt.encoded == [UInt8](UnsafeRawBufferPointer(rebasing: input[0..<used])), "re-encoding differs")
  let verifier = FakeVerifier()
  _ = receipt.check(node: fuzzNode, verifier: verifier)
  var ledger = CreditLedger(node: fuzzNode, window: 4096)
  ledger.open(client: receipt.client, serial: receipt.serial)
  _ = ledger.relayed(serial: receipt.serial, bytes: 1000)
  _ = ledger.accept(receipt, verifier: verifier, requireOpen: true)
  _ = ledger.accept(receipt, verifier: verifier, requireOpen: false)  // the replay
  _ = ledger.allowance(serial: receipt.serial)
  ledger.close(serial: receipt.serial)
}

func fuzzSeeds() -> [[UInt8]] {
  var wrongNode = fuzzReceipt(3, serial: 5, bytes: 1)
  wrongNode.node = Fingerprint(w0: 1, w1: 2, w2: 3, w3: 4)
  return [
    fuzzReceipt(9, serial: 1, bytes: 4096).encoded,
    fuzzReceipt(10, serial: UInt64.max, bytes: UInt64.max, epoch: 0).encoded,
    wrongNode.encoded,
  ]
}
