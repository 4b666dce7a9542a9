// WispGPIO — the one module that talks to libgpiod (v1.6 API).
import CGpiod

public enum GPIOLibrary {
  /// libgpiod's version string as linked ("1.6.3").
  public static var version: String {
    guard let p = gpiod_version_string() else { return "unknown" }
    return String(cString: p)
  }
}
