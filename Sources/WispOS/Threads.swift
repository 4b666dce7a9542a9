// Threads for a node's shards and workers. Runs on host and device.
import CPosix

/// One POSIX thread running a Swift closure.
public enum Threads {
  final class Body {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
  }

  /// Starts `body` on a new thread; its handle (for `join`), or the error.
  public static func spawn(_ body: @escaping () -> Void) -> Result<UInt, Errno> {
    let ctx = Unmanaged.passRetained(Body(body)).toOpaque()
    var handle: UInt = 0
    let r = wisp_thread_spawn({ ctx in
      Unmanaged<Body>.fromOpaque(ctx!).takeRetainedValue().run()
      return nil
    }, ctx, &handle)
    if r < 0 {
      Unmanaged<Body>.fromOpaque(ctx).release()
      return .failure(Errno(-r))
    }
    return .success(handle)
  }

  /// Waits for a thread to end.
  public static func join(_ handle: UInt) { _ = wisp_thread_join(handle) }
}
