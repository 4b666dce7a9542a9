// What the status LEDs say: the node's states, their names, and which one wins.
// Runs on host and device. The patterns for each state are in LEDPattern.swift,
// the specification (a table a person can read) in LED-PATTERNS.md.

/// A condition the LEDs can show. Several may hold at once (the node can be out
/// of quota and have no network); the LEDs show the one with the highest
/// `precedence`.
public enum LEDState: Equatable, Sendable {
  /// Power-on self-test: a lamp test while the node checks itself.
  case selfTest
  /// No usable network interface or no route to the mesh.
  case noNetwork
  /// Network up, joining the mesh (bootstrap, handshakes).
  case connecting
  /// In the mesh, waiting for traffic.
  case ready
  /// In the mesh and forwarding traffic: the activity LED follows the packets.
  case relaying
  /// The wall clock is not synchronised (no time client has set it yet): the node relays,
  /// but receipt epochs and payer validity wait, so credit is held, not recorded.
  case clockUnsynced
  /// A client's credit window is exhausted: relaying for it is paused until it pays.
  case unpaid
  /// The operator's bandwidth quota for this period is used up.
  case quotaReached
  /// The journal or configuration storage cannot be read or written.
  case storageError
  /// The node key or a TLS certificate is missing, invalid or rejected by peers.
  case identityError
  /// The node is stopping; the LEDs go dark when it has stopped.
  case shuttingDown

  /// Every state, in the order `wisp leds test` walks them (the order of LED-PATTERNS.md).
  public static let all: [LEDState] = [
    .selfTest, .noNetwork, .connecting, .ready, .relaying, .clockUnsynced,
    .unpaid, .quotaReached, .storageError, .identityError, .shuttingDown,
  ]

  /// Which state is shown when several hold: higher wins.
  ///
  /// Shutting down beats everything (it is the last thing the node says). The
  /// errors that need a person come next, most serious first, then the lamp
  /// test, then the normal life cycle, where the least advanced state wins
  /// (no network beats an unsynchronised clock beats connecting beats relaying beats
  /// ready). No network comes before the clock because it is the likely cause (the time
  /// client cannot reach a server); the clock comes before connecting, relaying and
  /// ready because until it is synchronised the node earns nothing.
  public var precedence: Int {
    switch self {
    case .shuttingDown: return 11
    case .identityError: return 10
    case .storageError: return 9
    case .unpaid: return 8
    case .quotaReached: return 7
    case .selfTest: return 6
    case .noNetwork: return 5
    case .clockUnsynced: return 4
    case .connecting: return 3
    case .relaying: return 2
    case .ready: return 1
    }
  }

  /// Whether this state means something needs attention (shown on the error LED).
  public var isError: Bool { blinkCode != nil }

  /// Number of short blinks in the state's blink code, for states that have one.
  /// The same number is used on every layout (error LED, status LED or ACT LED).
  public var blinkCode: Int? {
    switch self {
    case .noNetwork: return 2
    case .unpaid: return 3
    case .quotaReached: return 4
    case .storageError: return 5
    case .identityError: return 6
    default: return nil
    }
  }

  /// The name used on the command line and in logs (`wisp leds show NAME`).
  public var name: StaticString {
    switch self {
    case .selfTest: return "selftest"
    case .noNetwork: return "no-network"
    case .connecting: return "connecting"
    case .ready: return "ready"
    case .relaying: return "relaying"
    case .clockUnsynced: return "clock-unsynced"
    case .unpaid: return "unpaid"
    case .quotaReached: return "quota"
    case .storageError: return "storage-error"
    case .identityError: return "identity-error"
    case .shuttingDown: return "shutdown"
    }
  }

  /// One line for a person looking at the board.
  public var meaning: StaticString {
    switch self {
    case .selfTest: return "power-on self-test (lamp test)"
    case .noNetwork: return "no network: check the cable or Wi-Fi"
    case .connecting: return "joining the mesh"
    case .ready: return "in the mesh, idle"
    case .relaying: return "relaying traffic"
    case .clockUnsynced: return "clock unsynced: no time server reached yet; credit waits"
    case .unpaid: return "credit window exhausted: a client has not paid"
    case .quotaReached: return "bandwidth quota reached for this period"
    case .storageError: return "storage error: check the SD card / disk space"
    case .identityError: return "identity/TLS error: check the node key and certificates"
    case .shuttingDown: return "shutting down"
    }
  }

  /// The state named `name` (see `name`), or nil.
  public init?(name: String) {
    for s in LEDState.all where name.is(s.name) { self = s; return }
    return nil
  }

  /// Bit of this state in a set of conditions (`LEDEngine`).
  var bit: UInt16 {
    switch self {
    case .selfTest: return 1 << 0
    case .noNetwork: return 1 << 1
    case .connecting: return 1 << 2
    case .ready: return 1 << 3
    case .relaying: return 1 << 4
    case .unpaid: return 1 << 5
    case .quotaReached: return 1 << 6
    case .storageError: return 1 << 7
    case .identityError: return 1 << 8
    case .shuttingDown: return 1 << 9
    case .clockUnsynced: return 1 << 10
    }
  }
}
