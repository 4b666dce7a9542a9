// Errors from the operating system, as a typed value. Runs on host and device.
import CPosix

/// An `errno` value from a failed system call.
public struct Errno: Error, Equatable {
  public let code: Int32
  public init(_ code: Int32) { self.code = code }

  /// The current thread's errno.
  public static var current: Errno { Errno(wisp_errno()) }

  public static let interrupted = Errno(EINTR)
  public static let wouldBlock = Errno(EAGAIN)

  /// strerror(3) text.
  public var description: String {
    guard let p = strerror(code) else { return "errno \(code)" }
    return String(cString: p)
  }
}

/// Calls `body` until it does not fail with EINTR; a negative result becomes `Errno`.
/// Every system call in WispOS goes through here or `retryingNegErrno`.
@inline(__always)
public func retryingEINTR<T: BinaryInteger>(_ body: () -> T) throws(Errno) -> T {
  while true {
    let r = body()
    if r >= 0 { return r }
    let e = wisp_errno()
    if e != EINTR { throw Errno(e) }
  }
}

/// For shim functions that return -errno instead of setting errno.
@inline(__always)
public func retryingNegErrno(_ body: () -> Int32) throws(Errno) -> Int32 {
  while true {
    let r = body()
    if r >= 0 { return r }
    if -r != EINTR { throw Errno(-r) }
  }
}
