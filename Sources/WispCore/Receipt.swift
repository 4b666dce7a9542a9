// A signed receipt: a client's statement that a node relayed `bytes` in total on one
// circuit. Runs on host and device. Format: JOURNAL-FORMAT.md, "Receipt".
//
// The client signs (ECDSA P-256, SHA-256, DER) the canonical message
//
//   "wisp-receipt-v1" 0x00 | node fp (32) | client fp (32) | serial u64 | bytes u64 | epoch u64
//
// (big-endian, 104 bytes). The receipt carries the client's public key so that it
// verifies with nothing else: the client fingerprint must equal SHA-256(key).

public struct Receipt: Equatable {
  /// Fingerprint of the node that relayed.
  public var node: Fingerprint
  /// Fingerprint of the client that was served (and signed).
  public var client: Fingerprint
  /// The node's serial number of the circuit (unique per node).
  public var serial: UInt64
  /// Cumulative bytes relayed on the circuit, as the client counts them.
  public var bytes: UInt64
  /// Seconds since the Unix epoch when the client signed.
  public var epoch: UInt64
  /// The client's public key: a 65-byte uncompressed P-256 point.
  public var clientKey: [UInt8]
  /// DER ECDSA signature over `signedMessage`, at most 72 bytes.
  public var signature: [UInt8]

  public init(node: Fingerprint, client: Fingerprint, serial: UInt64, bytes: UInt64, epoch: UInt64,
              clientKey: [UInt8], signature: [UInt8]) {
    self.node = node; self.client = client; self.serial = serial; self.bytes = bytes
    self.epoch = epoch; self.clientKey = clientKey; self.signature = signature
  }

  /// The most a receipt may acknowledge on a circuit that relayed `relayed` bytes here:
  /// an eighth more, plus 64 KiB (bytes the client sent that were lost before this hop).
  /// A receipt beyond it is refused (`bad_body`).
  @inline(__always)
  public static func acceptable(relayed: UInt64) -> UInt64 {
    let (sum, overflow) = relayed.addingReportingOverflow(relayed / 8 &+ lossAllowance)
    return overflow ? UInt64.max : sum
  }
  public static let lossAllowance: UInt64 = 64 << 10

  // MARK: protocol constants (JOURNAL-FORMAT.md)
  public static let domain: StaticString = "wisp-receipt-v1"  // then one 0x00 byte
  public static let messageSize = 16 + 32 + 32 + 8 + 8 + 8      // 104
  public static let keySize = 65                                // uncompressed P-256 point
  public static let maxSignature = 72                           // DER ECDSA P-256
  public static let minSignature = 8
  public static let maxEncoded = 88 + 1 + keySize + 1 + maxSignature  // 227

  /// The exact bytes the client signs.
  public var signedMessage: [UInt8] {
    var w = ByteWriter(capacity: Receipt.messageSize)
    w.raw(Receipt.domain)
    w.u8(0)
    w.fingerprint(node)
    w.fingerprint(client)
    w.u64(serial)
    w.u64(bytes)
    w.u64(epoch)
    return w.bytes
  }

  /// Appends the encoded receipt: the signed fields, then key and signature with 1-byte lengths.
  public func encode(into w: inout ByteWriter) {
    w.fingerprint(node)
    w.fingerprint(client)
    w.u64(serial)
    w.u64(bytes)
    w.u64(epoch)
    w.u8(UInt8(clientKey.count))
    w.raw(clientKey)
    w.u8(UInt8(signature.count))
    w.raw(signature)
  }

  public var encoded: [UInt8] {
    var w = ByteWriter(capacity: Receipt.maxEncoded)
    encode(into: &w)
    return w.bytes
  }

  /// Decodes one receipt; nil if a length is out of bounds.
  public static func decode(_ r: inout ByteReader) -> Receipt? {
    guard let node = r.fingerprint(), let client = r.fingerprint(), let serial = r.u64(),
          let bytes = r.u64(), let epoch = r.u64(),
          let kl = r.u8(), Int(kl) == keySize, let key = r.raw(Int(kl)),
          let sl = r.u8(), Int(sl) >= minSignature, Int(sl) <= maxSignature, let sig = r.raw(Int(sl))
    else { return nil }
    return Receipt(node: node, client: client, serial: serial, bytes: bytes, epoch: epoch,
                   clientKey: key, signature: sig)
  }

  /// Checks everything a receipt says about itself: lengths, the node it names,
  /// the key binding and the signature. Returns nil when valid.
  public func check<V: SignatureVerifier>(node expected: Fingerprint, verifier: V) -> ReceiptRejection? {
    if clientKey.count != Receipt.keySize || signature.count < Receipt.minSignature
      || signature.count > Receipt.maxSignature { return .malformed }
    if node != expected { return .wrongNode }
    if verifier.fingerprint(ofKey: clientKey) != client { return .keyMismatch }
    if !verifier.verify(key: clientKey, message: signedMessage, signature: signature) { return .badSignature }
    return nil
  }

  /// Builds and signs a receipt (what a client does; used by tests and `selftest-fill`).
  public static func make<S: MessageSigner, V: SignatureVerifier>(
    signer: inout S, verifier: V, node: Fingerprint, serial: UInt64, bytes: UInt64, epoch: UInt64
  ) -> Receipt? {
    let key = signer.publicKey
    var r = Receipt(node: node, client: verifier.fingerprint(ofKey: key), serial: serial, bytes: bytes,
                    epoch: epoch, clientKey: key, signature: [])
    guard let sig = signer.sign(r.signedMessage) else { return nil }
    r.signature = sig
    return r
  }
}
