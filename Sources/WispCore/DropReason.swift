// Why a datagram was dropped, and the counters that record it. Runs on host and device.

/// Every reason a node drops a datagram. Security-relevant ones are marked.
public enum DropReason: Int, CaseIterable, Error {
  case truncated = 0        // shorter than its header or declared body
  case lengthMismatch       // bytes after the declared body
  case oversized            // larger than Wire.maxDatagram
  case notWisp              // first byte is neither DTLS nor a wisp frame
  case badVersion           // a wisp frame of another version
  case badType              // unknown frame type
  case badBody              // body size or content wrong for its type
  case unknownCircuit       // no such circuit, or from the wrong link (security)
  case circuitPending       // DATA before the circuit's CREATED
  case dtlsUnsupported      // a DTLS record (sessions not enabled)
  case receiptUnsupported   // a RECEIPT (journal not enabled)
  case rateLimited          // over the node or circuit rate cap
  case quotaReached         // over the monthly quota
  case poolExhausted        // no free packet buffer (back-pressure)
  case sendQueueFull        // send batch could not take it (back-pressure)
  case sendFailed           // the kernel refused the send
  case linkTableFull        // too many peers (security)
  case refusedCreate        // a CREATE we answered with REFUSED
  case exitNotAllowed       // exit to a destination the policy forbids (security)
  case unexpectedReply      // CREATED/REFUSED nobody asked for (security)
  case unpaid               // circuit ran its credit window beyond its last receipt
  case badSeal              // a sealed payload that does not open, or a replayed one (security)
  case workerBusy           // the credit worker's queue was full: a receipt refused (back-pressure)
  case oldVersion           // a v1 frame (answered with REFUSED 8 when it is a CREATE)
  case overBudget           // expensive work (signature, key agreement) over its budget (security)
  case sourceLimit          // a source's share of circuits or pending circuits is used up (security)
  case exitSocketsFull      // no exit socket left in the budget (back-pressure)
  case staleReceipt         // a receipt acknowledging no more than the circuit's receipts already do
  case forbiddenAddress     // a CREATE naming an address the node does not send to (AddressPolicy; security)
  case exitPolicy           // a CREATE to an exit destination the exit policy rejects (ExitPolicy; security)

  /// Name used in status, metrics and logs.
  public var name: StaticString {
    switch self {
    case .truncated: return "truncated"
    case .lengthMismatch: return "length_mismatch"
    case .oversized: return "oversized"
    case .notWisp: return "not_wisp"
    case .badVersion: return "bad_version"
    case .badType: return "bad_type"
    case .badBody: return "bad_body"
    case .unknownCircuit: return "unknown_circuit"
    case .circuitPending: return "circuit_pending"
    case .dtlsUnsupported: return "dtls_unsupported"
    case .receiptUnsupported: return "receipt_unsupported"
    case .rateLimited: return "rate_limited"
    case .quotaReached: return "quota_reached"
    case .poolExhausted: return "pool_exhausted"
    case .sendQueueFull: return "send_queue_full"
    case .sendFailed: return "send_failed"
    case .linkTableFull: return "link_table_full"
    case .refusedCreate: return "refused_create"
    case .exitNotAllowed: return "exit_not_allowed"
    case .unexpectedReply: return "unexpected_reply"
    case .unpaid: return "unpaid"
    case .badSeal: return "bad_seal"
    case .workerBusy: return "worker_busy"
    case .oldVersion: return "old_version"
    case .overBudget: return "over_budget"
    case .sourceLimit: return "source_limit"
    case .exitSocketsFull: return "exit_sockets_full"
    case .staleReceipt: return "stale_receipt"
    case .forbiddenAddress: return "forbidden_address"
    case .exitPolicy: return "exit_policy"
    }
  }

  public static let count = 30
}

/// Fixed-size drop counters, indexed by reason; no allocation after init.
public struct DropCounters {
  public private(set) var values: [UInt64] = [UInt64](repeating: 0, count: DropReason.count)

  public init() {}

  @inline(__always)
  public mutating func count(_ reason: DropReason, _ n: UInt64 = 1) {
    values.withUnsafeMutableBufferPointer { $0[reason.rawValue] &+= n }
  }

  public subscript(_ reason: DropReason) -> UInt64 { values[reason.rawValue] }

  public var total: UInt64 { values.reduce(0, &+) }

  /// "reason=n ..." for the non-zero counters.
  public var summary: String {
    var s = ""
    for r in DropReason.allCases where values[r.rawValue] > 0 {
      if !s.isEmpty { s += " " }
      s += "\(r.name)=\(values[r.rawValue])"
    }
    return s.isEmpty ? "none" : s
  }
}
