// What a REFUSED frame's reason byte means, for people. Runs on host and device.
import WispCore

public enum RefusalText {
  public static func of(_ r: UInt8) -> String {
    switch RefuseReason(rawValue: r) {
    case .tableFull: return "circuit table full"
    case .quotaReached: return "the node's quota is reached"
    case .exitNotAllowed: return "the exit does not serve that destination (its exit policy), or no sealed exit"
    case .noService: return "no such service"
    case .rateLimited: return "rate limited"
    case .malformed: return "malformed request"
    case .unreachable: return "next hop unreachable: an address range the node does not send to"
    case .version: return "the node speaks another protocol version (this one: v2)"
    case .busy: return "the node is busy (its budget for key agreements or its worker is used up); try again"
    case .none: return "unknown"
    }
  }
}
