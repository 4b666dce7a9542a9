// Writing text to stdout and stderr without stdio buffering surprises. Runs on host and device.
import CPosix

public enum Console {
  /// Writes `text` and a newline to standard output.
  public static func out(_ text: String) { write(1, text + "\n") }
  /// Writes `text` and a newline to standard error.
  public static func err(_ text: String) { write(2, text + "\n") }

  /// Writes all bytes of `text` to `fd`, retrying short writes and EINTR.
  public static func write(_ fd: Int32, _ text: String) {
    var text = text
    text.withUTF8 { buf in
      var off = 0
      while off < buf.count {
        let n = CPosix.write(fd, buf.baseAddress! + off, buf.count - off)
        if n < 0 { if wisp_errno() == EINTR { continue } else { return } }
        off += n
      }
    }
  }
}

public enum ProcessInfo {
  /// argv without the program name.
  public static func arguments() -> [String] {
    let argc = Int(wisp_argc())
    guard let argv = wisp_argv(), argc > 1 else { return [] }
    var out: [String] = []
    for i in 1..<argc {
      if let p = argv[i] { out.append(String(cString: p)) }
    }
    return out
  }

  /// The value of an environment variable.
  public static func environment(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    return String(cString: p)
  }

  /// Ends the process with `code` (stdio flushed).
  public static func exit(_ code: Int32) -> Never {
    CPosix.exit(code)
  }

  /// Peak resident set size in KiB (VmHWM), or -1.
  public static func peakRSSKiB() -> Int { Int(wisp_peak_rss_kb()) }
}
