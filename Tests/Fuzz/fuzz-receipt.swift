// Fuzz target: Receipt.decode and ReceiptV1.decode (the body of a RECEIPT frame and of a
// journal receipt record, versions 2 and 1), then the checks and the ledger a decoded
// receipt meets on a node. Checked: a decoded receipt re-encodes to exactly the bytes it
// was read from.
import WispCore

func fuzzOne(_ input: UnsafeRawBufferPointer) {
  let verifier = FakeVerifier()
  var r = ByteReader(input)
  if let receipt = Receipt.decode(&r) {
    let used = input.count - r.remaining
    invariant(receipt.encoded == [UInt8](UnsafeRawBufferPointer(rebasing: input[0..<used])), "re-encoding differs")
    _ = receipt.check(node: fuzzNode, verifier: verifier)
    _ = Receipt.epochAcceptable(receipt.epoch, now: 1_700_000_000)
    var ledger = CreditLedger(node: fuzzNode)
    _ = ledger.accept(receipt, verifier: verifier)
    _ = ledger.accept(receipt, verifier: verifier)  // the replay
    var book = PayerBook(window: 4096)
    if book.open(receipt.payer) {
      let limit = book.grant(receipt.payer, headroom: 0, receipted: receipt.bytes, relayed: receipt.bytes / 2)
      book.close(receipt.payer, binding: receipt.binding, headroom: limit &- receipt.bytes, receipted: receipt.bytes,
                 relayed: receipt.bytes &+ 100)
      book.pay(receipt.payer, binding: receipt.binding, bytes: receipt.bytes &+ 50)
    }
  }
  var r1 = ByteReader(input)
  if let old = ReceiptV1.decode(&r1) {
    let used = input.count - r1.remaining
    invariant(old.encoded == [UInt8](UnsafeRawBufferPointer(rebasing: input[0..<used])), "v1 re-encoding differs")
    var ledger = CreditLedger(node: fuzzNode)
    _ = ledger.accept(v1: old, verifier: verifier)
  }
}

func fuzzSeeds() -> [[UInt8]] {
  var wrongNode = fuzzReceipt(3, serial: 5, bytes: 1)
  wrongNode.node = Fingerprint(w0: 1, w1: 2, w2: 3, w3: 4)
  return [
    fuzzReceipt(9, serial: 1, bytes: 4096).encoded,
    fuzzReceipt(10, serial: UInt64.max, bytes: UInt64.max, epoch: 0).encoded,
    fuzzReceipt(11, serial: 2, bytes: 0).encoded,
    wrongNode.encoded,
    fuzzReceiptV1(9, serial: 1, bytes: 4096).encoded,
  ]
}
