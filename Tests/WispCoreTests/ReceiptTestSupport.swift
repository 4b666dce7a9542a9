// A deterministic stand-in for ECDSA in WispCore tests: the "signature" is a 16-byte
// keyed hash of key and message. It proves the journal's and ledger's logic, not the
// cryptography (that is ReceiptCryptoTests in WispTLSTests, with mbedTLS).
import WispCore

func fnv(_ seed: UInt64, _ parts: [[UInt8]]) -> UInt64 {
  var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
  for p in parts { for b in p { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 } }
  return h
}

struct FakeVerifier: SignatureVerifier {
  func fingerprint(ofKey key: UnsafeRawBufferPointer) -> Fingerprint {
    let k = [UInt8](key)
    return Fingerprint(w0: fnv(1, [k]), w1: fnv(2, [k]), w2: fnv(3, [k]), w3: fnv(4, [k]))
  }
  func verify(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer, signature: UnsafeRawBufferPointer) -> Bool {
    [UInt8](signature) == FakeVerifier.tag([UInt8](key), [UInt8](message))
  }
  static func tag(_ key: [UInt8], _ message: [UInt8]) -> [UInt8] {
    var w = ByteWriter()
    w.u64(fnv(11, [key, message]))
    w.u64(fnv(12, [message, key]))
    return w.bytes
  }
}

struct FakeSigner: MessageSigner {
  let publicKey: [UInt8]
  init(_ n: UInt8) {
    var k = [UInt8](repeating: n, count: 65)
    k[0] = 4
    publicKey = k
  }
  mutating func sign(_ message: UnsafeRawBufferPointer) -> [UInt8]? { FakeVerifier.tag(publicKey, [UInt8](message)) }
}

let testNode = FakeVerifier().fingerprint(ofKey: FakeSigner(200).publicKey)

/// A v2 receipt of payer `client` for the binding numbered `serial` (fake signature).
func receipt(_ client: UInt8, serial: UInt64, bytes: UInt64, epoch: UInt64 = 1_700_000_000,
             node: Fingerprint = testNode) -> Receipt {
  var s = FakeSigner(client)
  return Receipt.make(signer: &s, verifier: FakeVerifier(), node: node, binding: Binding(hi: 0, lo: serial), bytes: bytes,
                      epoch: epoch)!
}

/// A v1 receipt (what journals before issue 15 hold).
func receiptV1(_ client: UInt8, serial: UInt64, bytes: UInt64, epoch: UInt64 = 1_700_000_000,
               node: Fingerprint = testNode) -> ReceiptV1 {
  var s = FakeSigner(client)
  return ReceiptV1.make(signer: &s, verifier: FakeVerifier(), node: node, serial: serial, bytes: bytes, epoch: epoch)!
}

func clientFP(_ client: UInt8) -> Fingerprint { FakeVerifier().fingerprint(ofKey: FakeSigner(client).publicKey) }

/// A v2 receipt signed by payer `payer` (fake signature) for `binding`.
func receiptV2(_ payer: UInt8, binding: Binding, bytes: UInt64, epoch: UInt64 = 1_700_000_000,
               node: Fingerprint = testNode) -> Receipt {
  var s = FakeSigner(payer)
  return Receipt.make(signer: &s, verifier: FakeVerifier(), node: node, binding: binding, bytes: bytes, epoch: epoch)!
}

func bindingOf(_ n: UInt64) -> Binding { Binding(hi: 0xB1D, lo: n) }
