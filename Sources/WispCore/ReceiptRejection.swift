// Why a receipt added no credit, and the counters that record it. Runs on host and device.

public enum ReceiptRejection: Int, CaseIterable, Error {
  case malformed = 0     // bad lengths or encoding (security)
  case wrongNode         // signed for another node (security)
  case keyMismatch       // signer (payer or v1 client) fingerprint is not SHA-256 of the carried key (security)
  case badSignature      // signature does not verify (security)
  case replay            // the same amount again for its key (payer, binding)
  case notHigher         // a lower amount than the latest for its key
  case wrongCircuit      // the circuit is bound to another payer (security)
  case unknownCircuit    // no open circuit for it (live only)
  case exceedsRelayed    // more bytes than this node relayed on the circuit (security)
  case epoch             // epoch more than Receipt.epochTolerance from the node's synchronised clock (live only)
  case unlistedPayer     // payer not on the payer list, or not valid at the receipt's epoch (require_payers)
  case wrongBinding      // names a binding that is neither the circuit's nor a closed circuit's of that payer (security)
  case payersFull        // the node's payer table is full (live only)

  public var name: StaticString {
    switch self {
    case .malformed: return "malformed"
    case .wrongNode: return "wrong_node"
    case .keyMismatch: return "key_mismatch"
    case .badSignature: return "bad_signature"
    case .replay: return "replay"
    case .notHigher: return "not_higher"
    case .wrongCircuit: return "wrong_circuit"
    case .unknownCircuit: return "unknown_circuit"
    case .exceedsRelayed: return "exceeds_relayed"
    case .epoch: return "epoch"
    case .unlistedPayer: return "unlisted_payer"
    case .wrongBinding: return "wrong_binding"
    case .payersFull: return "payers_full"
    }
  }

  public static let count = 13
}

/// Fixed-size rejection counters, indexed by reason.
public struct RejectionCounters {
  public private(set) var values = [UInt64](repeating: 0, count: ReceiptRejection.count)
  public init() {}
  public mutating func count(_ r: ReceiptRejection) { values[r.rawValue] &+= 1 }
  public subscript(_ r: ReceiptRejection) -> UInt64 { values[r.rawValue] }
  public var total: UInt64 { values.reduce(0, &+) }

  /// "reason=n ..." for the non-zero counters, or "none".
  public var summary: String {
    var s = ""
    for r in ReceiptRejection.allCases where values[r.rawValue] > 0 {
      if !s.isEmpty { s += " " }
      s += "\(r.name)=\(values[r.rawValue])"
    }
    return s.isEmpty ? "none" : s
  }
}
