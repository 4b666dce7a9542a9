// A non-blocking IPv4 UDP socket for the client side and services (the relay loop uses
// recvmmsg/sendmmsg directly). Runs on host and device.
import CPosix
import WispCore

/// One datagram at a time, for clients and services: what a `CircuitClient` talks
/// through (a UDP socket here; an in-memory endpoint in tests).
public protocol DatagramSocket {
  /// Sends one datagram; false if it was refused.
  @discardableResult
  func send(_ p: UnsafeRawPointer, _ length: Int, to e: Endpoint) -> Bool
  /// Receives one datagram if one is waiting; nil otherwise.
  func receive(into p: UnsafeMutableRawPointer, capacity: Int) -> (Int, Endpoint)?
  /// Waits up to `ms` for input.
  func wait(ms: Int32) -> Bool
  func close()
}

public struct UDPSocket: DatagramSocket {
  public let fd: Int32

  /// Binds ip:port (port 0 = any free port).
  public init(bind e: Endpoint, bufferBytes: Int32 = 1 << 20) throws(Errno) {
    let r = wisp_udp_open(e.ip, e.port, 0, bufferBytes)
    if r < 0 { throw Errno(-r) }
    fd = r
  }

  public var localPort: UInt16 { UInt16(truncatingIfNeeded: wisp_local_port(fd)) }

  /// Sends one datagram; false if the kernel refused it.
  @discardableResult
  public func send(_ p: UnsafeRawPointer, _ length: Int, to e: Endpoint) -> Bool {
    wisp_sendto(fd, p, length, e.ip, e.port) == length
  }

  /// Receives one datagram if one is waiting; nil otherwise.
  public func receive(into p: UnsafeMutableRawPointer, capacity: Int) -> (Int, Endpoint)? {
    var ip: UInt32 = 0
    var port: UInt16 = 0
    let n = wisp_recvfrom(fd, p, capacity, &ip, &port)
    if n < 0 { return nil }
    return (Int(n), Endpoint(ip: ip, port: port))
  }

  /// Waits up to `ms` for input.
  public func wait(ms: Int32) -> Bool { wisp_poll_in(fd, ms) > 0 }

  public func close() { _ = CPosix.close(fd) }
}

public enum Clock {
  /// Monotonic nanoseconds.
  @inline(__always) public static func nowNs() -> UInt64 { wisp_monotonic_ns() }
  /// Seconds since the epoch.
  public static func epochSeconds() -> Int64 { wisp_realtime_s() }
  /// CPU time of the calling thread in nanoseconds (CLOCK_THREAD_CPUTIME_ID; benchmarks).
  public static func threadCPUNs() -> UInt64 { wisp_thread_cpu_ns() }
  /// Sleeps `ms` milliseconds.
  public static func sleep(ms: Int) { _ = wisp_poll_in(-1, Int32(ms)) }
}
