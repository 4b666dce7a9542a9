// The I/O seam of a relay loop: batches of datagrams in and out. Runs on host and device.
//
// A relay loop (RelayLoop.swift) is generic over this small interface and specialised for
// each implementation, so the hot path calls it directly (no existential, one call per
// batch). Exit circuits add one socket each (`openExit`), watched by the loop. `UDPBatchIO` is the real one (a UDP socket: recvmmsg with GRO, sendmmsg with
// GSO); tests use an in-memory one (WispTestSupport) to wire whole nodes together in one
// process. The loop owns every buffer: it posts receive slots that point into its packet
// pool or GRO areas, and hands over send entries that point into them.
import WispCore

/// One receive slot: where the next datagram goes, and what arrived.
public struct RxSlot {
  /// Where the datagram is written (the loop keeps headroom before it).
  public var base: UnsafeMutableRawPointer
  /// Bytes that fit at `base`.
  public var capacity: Int
  /// Bytes received (out).
  public var length = 0
  /// The sender (out).
  public var from = Endpoint(ip: 0, port: 0)
  /// GRO: the size of each datagram in a coalesced run (0: one datagram) (out).
  public var segment = 0
  /// The datagram was larger than `capacity` and cut short (out).
  public var truncated = false

  public init(base: UnsafeMutableRawPointer, capacity: Int) {
    self.base = base
    self.capacity = capacity
  }
}

/// One datagram to send.
public struct TxEntry {
  public var bytes: UnsafeMutableRawPointer
  public var length: Int
  public var to: Endpoint
  public init(bytes: UnsafeMutableRawPointer, length: Int, to: Endpoint) {
    self.bytes = bytes
    self.length = length
    self.to = to
  }
}

/// Batches of datagrams on one local port.
public protocol DatagramIO: AnyObject {
  /// Readable when datagrams wait (the loop watches it with epoll).
  var fd: Int32 { get }
  /// Whether a receive slot may hold a coalesced run of datagrams (GRO): the loop then
  /// posts 64 KB slots and handles each segment on its own.
  var coalesces: Bool { get }
  /// Datagrams sent as parts of GSO runs, and received as parts of GRO runs (status).
  var gsoSegments: UInt64 { get }
  var groSegments: UInt64 { get }
  /// Receives up to `count` datagrams into `slots` without waiting; returns how many.
  func receive(_ slots: UnsafeMutablePointer<RxSlot>, count: Int) -> Int
  /// Sends `count` datagrams (runs of equal-size datagrams to one destination may go as
  /// one GSO send); what cannot be sent is counted in `drops`. The bytes are free again
  /// when it returns.
  func send(_ entries: UnsafePointer<TxEntry>, count: Int, drops: inout DropCounters)

  // Exit circuits: each has a socket of its own, connected to its destination.
  /// Opens an exit circuit's socket connected to `to`: a descriptor the loop watches with
  /// epoll (readable while replies wait), or -errno.
  func openExit(to: Endpoint) -> Int32
  /// Closes an exit circuit's socket (which also leaves the loop's epoll set).
  func closeExit(_ fd: Int32)
  /// Receives up to `count` replies from exit socket `fd` (GRO runs as on the shared socket
  /// when `coalesces`).
  func receiveExit(_ fd: Int32, _ slots: UnsafeMutablePointer<RxSlot>, count: Int) -> Int
  /// Sends one datagram on exit socket `fd`; false when it was not sent.
  func sendExit(_ fd: Int32, _ p: UnsafeRawPointer, _ length: Int) -> Bool
}
