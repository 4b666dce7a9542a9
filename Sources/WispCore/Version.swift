// Version and build identity of this binary. Runs on host and device.

public enum Build {
  /// The release version, also used for package names.
  public static let version = "0.2.0"

  /// The GNU triple this binary was compiled for.
  public static var triple: String {
    #if arch(x86_64)
      return "x86_64-linux-gnu"
    #elseif arch(arm64)
      return "aarch64-linux-gnu"
    #elseif arch(arm)
      return "arm-linux-gnueabihf"
    #else
      return "unknown"
    #endif
  }

  /// `embedded` for the firmware build, `host` for the full-Swift build used by `swift test`.
  public static var flavour: String {
    #if hasFeature(Embedded)
      return "embedded"
    #else
      return "host"
    #endif
  }
}
