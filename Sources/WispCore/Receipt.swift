// Signed receipts: a payer's statement that a node relayed `bytes` in total on one circuit
// half the node bound. Runs on host and device. Formats: WIRE-PROTOCOL.md ("RECEIPT") and
// JOURNAL-FORMAT.md ("Receipt").
//
// Version 2 (`Receipt`, what nodes take live since issue 15): the PAYER signs (ECDSA
// P-256, SHA-256, DER) the canonical message, 112 bytes, big-endian:
//
//   "wisp-receipt-v2" 0x00 | node fp (32) | payer fp (32) | binding (16) | bytes u64 | epoch u64
//
// and the encoding is
//
//   node fp (32) | payer fp (32) | binding (16) | bytes u64 | epoch u64 |
//   key len u8 (65) | payer key (65) | sig len u8 (8..72) | DER sig        (171..235 bytes)
//
// The binding is 16 random bytes the node drew for the circuit half (sent to the client in
// BIND); cumulative `bytes` start at 0 for each binding, and a first receipt may say 0 (it
// binds the circuit to its payer). The payer fingerprint must equal SHA-256(key).
//
// Version 1 (`ReceiptV1`, written by nodes before issue 15): signed by a client key of its
// own, bound to a serial the client chose. Still read from old journals and exported as
// such; never taken live.

/// The 16-byte value a node draws for each circuit half it holds; receipts carry it.
public struct Binding: Equatable, Hashable, Sendable {
  public var hi: UInt64, lo: UInt64
  public init(hi: UInt64, lo: UInt64) { self.hi = hi; self.lo = lo }
  public static let zero = Binding(hi: 0, lo: 0)
  public static let size = 16

  public init?(_ bytes: [UInt8]) {
    guard bytes.count == Binding.size else { return nil }
    var hi: UInt64 = 0, lo: UInt64 = 0
    for i in 0..<8 { hi = hi << 8 | UInt64(bytes[i]) }
    for i in 8..<16 { lo = lo << 8 | UInt64(bytes[i]) }
    self.hi = hi; self.lo = lo
  }

  /// Parses 32 hex digits; nil for anything else.
  public init?(hex: String) {
    guard let b = bytesFromHex(hex.utf8), let v = Binding(b) else { return nil }
    self = v
  }

  public var bytes: [UInt8] {
    var w = ByteWriter(capacity: 16)
    w.u64(hi); w.u64(lo)
    return w.bytes
  }

  /// Lower-case hex, 32 digits.
  public var hex: String { bytes.withUnsafeBytes { hexString($0) } }
}

public struct Receipt: Equatable {
  /// Fingerprint of the node that relayed.
  public var node: Fingerprint
  /// Fingerprint of the payer that signed (SHA-256 of `payerKey`).
  public var payer: Fingerprint
  /// The node's binding of the circuit half (BIND).
  public var binding: Binding
  /// Cumulative bytes relayed on the binding, as the client counts them.
  public var bytes: UInt64
  /// Seconds since the Unix epoch when the client signed.
  public var epoch: UInt64
  /// The payer's public key: a 65-byte uncompressed P-256 point.
  public var payerKey: [UInt8]
  /// DER ECDSA signature over `signedMessage`, at most 72 bytes.
  public var signature: [UInt8]

  public init(node: Fingerprint, payer: Fingerprint, binding: Binding, bytes: UInt64, epoch: UInt64,
              payerKey: [UInt8], signature: [UInt8]) {
    self.node = node; self.payer = payer; self.binding = binding; self.bytes = bytes
    self.epoch = epoch; self.payerKey = payerKey; self.signature = signature
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

  // MARK: protocol constants (WIRE-PROTOCOL.md, JOURNAL-FORMAT.md)
  public static let domain: StaticString = "wisp-receipt-v2"  // then one 0x00 byte
  public static let messageSize = 16 + 32 + 32 + 16 + 8 + 8     // 112
  public static let keySize = 65                                // uncompressed P-256 point
  public static let maxSignature = 72                           // DER ECDSA P-256
  public static let minSignature = 8
  public static let fixedSize = 32 + 32 + 16 + 8 + 8            // 96: the signed fields
  public static let minEncoded = fixedSize + 1 + keySize + 1 + minSignature  // 171
  public static let maxEncoded = fixedSize + 1 + keySize + 1 + maxSignature  // 235
  /// Seconds a live receipt's epoch may differ from the node's synchronised clock.
  public static let epochTolerance: UInt64 = 600

  /// The exact bytes the payer signs.
  public var signedMessage: [UInt8] {
    var w = ByteWriter(capacity: Receipt.messageSize)
    w.raw(Receipt.domain)
    w.u8(0)
    w.fingerprint(node)
    w.fingerprint(payer)
    w.u64(binding.hi); w.u64(binding.lo)
    w.u64(bytes)
    w.u64(epoch)
    return w.bytes
  }

  /// Appends the encoded receipt: the signed fields, then key and signature with 1-byte lengths.
  public func encode(into w: inout ByteWriter) {
    w.fingerprint(node)
    w.fingerprint(payer)
    w.u64(binding.hi); w.u64(binding.lo)
    w.u64(bytes)
    w.u64(epoch)
    w.u8(UInt8(payerKey.count))
    w.raw(payerKey)
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
    guard let node = r.fingerprint(), let payer = r.fingerprint(), let hi = r.u64(), let lo = r.u64(),
          let bytes = r.u64(), let epoch = r.u64(),
          let kl = r.u8(), Int(kl) == keySize, let key = r.raw(Int(kl)),
          let sl = r.u8(), Int(sl) >= minSignature, Int(sl) <= maxSignature, let sig = r.raw(Int(sl))
    else { return nil }
    return Receipt(node: node, payer: payer, binding: Binding(hi: hi, lo: lo), bytes: bytes, epoch: epoch,
                   payerKey: key, signature: sig)
  }

  /// Checks everything a receipt says about itself: lengths, the node it names,
  /// the key binding and the signature. Returns nil when valid.
  public func check<V: SignatureVerifier>(node expected: Fingerprint, verifier: V) -> ReceiptRejection? {
    if payerKey.count != Receipt.keySize || signature.count < Receipt.minSignature
      || signature.count > Receipt.maxSignature { return .malformed }
    if node != expected { return .wrongNode }
    if verifier.fingerprint(ofKey: payerKey) != payer { return .keyMismatch }
    if !verifier.verify(key: payerKey, message: signedMessage, signature: signature) { return .badSignature }
    return nil
  }

  /// Whether `epoch` lies within `tolerance` seconds of `now`.
  @inline(__always)
  public static func epochAcceptable(_ epoch: UInt64, now: UInt64, tolerance: UInt64 = epochTolerance) -> Bool {
    epoch >= now ? epoch - now <= tolerance : now - epoch <= tolerance
  }

  /// Builds and signs a receipt with the payer key (what a client does; used by tests).
  public static func make<S: MessageSigner, V: SignatureVerifier>(
    signer: inout S, verifier: V, node: Fingerprint, binding: Binding, bytes: UInt64, epoch: UInt64
  ) -> Receipt? {
    let key = signer.publicKey
    var r = Receipt(node: node, payer: verifier.fingerprint(ofKey: key), binding: binding, bytes: bytes,
                    epoch: epoch, payerKey: key, signature: [])
    guard let sig = signer.sign(r.signedMessage) else { return nil }
    r.signature = sig
    return r
  }
}

// MARK: version 1

/// A version 1 receipt: signed by a client key of its own, for the client's serial.
/// Read from journals written before issue 15; never taken live.
//
// The client signed (ECDSA P-256, SHA-256, DER) the canonical message
//
//   "wisp-receipt-v1" 0x00 | node fp (32) | client fp (32) | serial u64 | bytes u64 | epoch u64
//
// (big-endian, 104 bytes). The receipt carries the client's public key so that it
// verifies with nothing else: the client fingerprint must equal SHA-256(key).
public struct ReceiptV1: Equatable {
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
  public static func acceptable(relayed: UInt64) -> UInt64 { Receipt.acceptable(relayed: relayed) }

  // MARK: protocol constants (JOURNAL-FORMAT.md)
  public static let domain: StaticString = "wisp-receipt-v1"  // then one 0x00 byte
  public static let messageSize = 16 + 32 + 32 + 8 + 8 + 8      // 104
  public static let keySize = 65                                // uncompressed P-256 point
  public static let maxSignature = 72                           // DER ECDSA P-256
  public static let minSignature = 8
  public static let maxEncoded = 88 + 1 + keySize + 1 + maxSignature  // 227

  /// The exact bytes the client signs.
  public var signedMessage: [UInt8] {
    var w = ByteWriter(capacity: ReceiptV1.messageSize)
    w.raw(ReceiptV1.domain)
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
    var w = ByteWriter(capacity: ReceiptV1.maxEncoded)
    encode(into: &w)
    return w.bytes
  }

  /// Decodes one receipt; nil if a length is out of bounds.
  public static func decode(_ r: inout ByteReader) -> ReceiptV1? {
    guard let node = r.fingerprint(), let client = r.fingerprint(), let serial = r.u64(),
          let bytes = r.u64(), let epoch = r.u64(),
          let kl = r.u8(), Int(kl) == keySize, let key = r.raw(Int(kl)),
          let sl = r.u8(), Int(sl) >= minSignature, Int(sl) <= maxSignature, let sig = r.raw(Int(sl))
    else { return nil }
    return ReceiptV1(node: node, client: client, serial: serial, bytes: bytes, epoch: epoch,
                   clientKey: key, signature: sig)
  }

  /// Checks everything a receipt says about itself: lengths, the node it names,
  /// the key binding and the signature. Returns nil when valid.
  public func check<V: SignatureVerifier>(node expected: Fingerprint, verifier: V) -> ReceiptRejection? {
    if clientKey.count != ReceiptV1.keySize || signature.count < ReceiptV1.minSignature
      || signature.count > ReceiptV1.maxSignature { return .malformed }
    if node != expected { return .wrongNode }
    if verifier.fingerprint(ofKey: clientKey) != client { return .keyMismatch }
    if !verifier.verify(key: clientKey, message: signedMessage, signature: signature) { return .badSignature }
    return nil
  }

  /// Builds and signs a receipt (what a client does; used by tests and `selftest-fill`).
  public static func make<S: MessageSigner, V: SignatureVerifier>(
    signer: inout S, verifier: V, node: Fingerprint, serial: UInt64, bytes: UInt64, epoch: UInt64
  ) -> ReceiptV1? {
    let key = signer.publicKey
    var r = ReceiptV1(node: node, client: verifier.fingerprint(ofKey: key), serial: serial, bytes: bytes,
                    epoch: epoch, clientKey: key, signature: [])
    guard let sig = signer.sign(r.signedMessage) else { return nil }
    r.signature = sig
    return r
  }
}
