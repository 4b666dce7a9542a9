// WispGPIO — the one module that talks to libgpiod (1.6 or 2.x, through CGpiod's shim).
import CGpiod

public enum GPIOLibrary {
  /// libgpiod's version string as linked ("1.6.3", "2.2.1").
  public static var version: String {
    guard let p = wisp_gpiod_version() else { return "unknown" }
    return String(cString: p)
  }
}
