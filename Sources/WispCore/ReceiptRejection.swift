// Why a receipt added no credit, and the counters that record it. Runs on host and device.

public enum ReceiptRejection: Int, CaseIterable, Error {
  case malformed = 0     // bad lengths or encoding (security)
  case wrongNode         // signed for another node (security)
  case keyMismatch       // client fingerprint is not SHA-256 of the carried key (security)
  case badSignature      // signature does not verify (security)
  case replay            // the same amount again for (client, serial)
  case notHigher         // a lower amount than the latest for (client, serial)
  case wrongCircuit      // serial belongs to another client's circuit (security)
  case unknownCircuit    // no open circuit with this serial (live only)
  case exceedsRelayed    // more bytes than this node relayed on the circuit (security)

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
    }
  }

  public static let count = 9
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
