// Status LEDs on GPIO lines through libgpiod v1.6. Runs on the device (and on
// any Linux host with GPIO chips).
//
//   1. find the chip whose label is the board's `gpio_chip` (pinctrl-bcm2835 …);
//      a chip name, path or number (gpiochip0, /dev/gpiochip0, 0) works too;
//   2. find each line by name (GPIO17) or take it by offset (17);
//   3. request every line as an output, off, with consumer "wisp"
//      (active-low wiring is the kernel's business: GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW);
//   4. hold the lines for the life of the process; `release` switches every
//      LED off first, then gives the lines and the chip back.
//
// Any failure (no chip, unknown line, line busy, no permission) is one
// `GPIOError` whose text says what to do; the caller carries on headless.
import CGpiod
import WispCore

/// Why the LEDs could not be set up, in one line for a person.
public struct GPIOError: Error {
  public let message: String
  public init(_ message: String) { self.message = message }
}

/// Requested LED lines on one GPIO chip.
public struct GPIOLEDs: LEDOutput {
  var chip: OpaquePointer?
  var lines: [OpaquePointer]
  public var count: Int { lines.count }
  /// The chip's kernel name and label, for messages ("gpiochip0 [pinctrl-bcm2835]").
  public let chipDescription: String

  /// Opens `chip` (label, name, path or number) and requests `lines` as outputs, off.
  public init(chip label: String, lines refs: [LineRef], activeLow: Bool) throws(GPIOError) {
    guard let c = GPIOLEDs.openChip(label) else {
      let e = wisp_gpiod_errno()
      if e == EACCES || e == EPERM {
        throw GPIOError("cannot open GPIO chips: permission denied (run as root or add the user to group 'gpio')")
      }
      throw GPIOError("no GPIO chip labelled '\(label)' (see 'gpiodetect'; set gpio_chip in the board file or --chip)")
    }
    chip = c
    chipDescription = "\(GPIOLEDs.text(gpiod_chip_name(c))) [\(GPIOLEDs.text(gpiod_chip_label(c)))]"
    lines = []
    let flags = activeLow ? Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) : 0
    for ref in refs {
      let line: OpaquePointer?
      let shown: String
      switch ref {
      case .name(let n): line = gpiod_chip_find_line(c, n); shown = n
      case .offset(let o): line = gpiod_chip_get_line(c, o); shown = "offset \(o)"
      }
      guard let line else {
        release()
        throw GPIOError("GPIO line \(shown) not found on \(chipDescription)")
      }
      // gpiod_line_request_output_flags(3): consumer, flags, default value 0 (LED off).
      if gpiod_line_request_output_flags(line, "wisp", flags, 0) != 0 {
        let e = wisp_gpiod_errno()
        release()
        if e == EBUSY {
          throw GPIOError("GPIO line \(shown) on \(chipDescription) is busy: another program or a kernel driver holds it (see 'gpioinfo')")
        }
        if e == EACCES || e == EPERM {
          throw GPIOError("GPIO line \(shown) on \(chipDescription): permission denied (run as root or add the user to group 'gpio')")
        }
        throw GPIOError("cannot request GPIO line \(shown) on \(chipDescription): \(GPIOLEDs.text(strerror(e)))")
      }
      lines.append(line)
    }
  }

  /// gpiod_line_set_value(3). Errors are ignored: the LEDs are advisory.
  public mutating func set(_ index: Int, on: Bool) {
    _ = gpiod_line_set_value(lines[index], on ? 1 : 0)
  }

  /// Switches every LED off, releases the lines (gpiod_line_release(3)) and
  /// closes the chip (gpiod_chip_close(3)). Safe to call twice.
  public mutating func release() {
    for line in lines {
      _ = gpiod_line_set_value(line, 0)
      gpiod_line_release(line)
    }
    lines = []
    if let c = chip { gpiod_chip_close(c) }
    chip = nil
  }

  /// The chip whose label is `label`, else the one gpiod_chip_open_lookup(3)
  /// finds by name, path or number; errno is set when nil.
  static func openChip(_ label: String) -> OpaquePointer? {
    if let iter = gpiod_chip_iter_new() {
      while let c = gpiod_chip_iter_next_noclose(iter) {
        if text(gpiod_chip_label(c)).same(label) {
          gpiod_chip_iter_free_noclose(iter)
          return c
        }
        gpiod_chip_close(c)
      }
      gpiod_chip_iter_free_noclose(iter)
    }
    return gpiod_chip_open_lookup(label)
  }

  static func text(_ p: UnsafePointer<CChar>?) -> String {
    guard let p else { return "?" }
    return String(cString: p)
  }
}
