// Status LEDs on GPIO lines through libgpiod (1.6 on bookworm, 2.x on trixie: the
// differences are in CGpiod's shim). Runs on the device (and on any Linux host with GPIO chips).
//
//   1. find the chip whose label is the board's `gpio_chip` (pinctrl-bcm2835, pinctrl-rp1 …;
//      on a Pi 5 the chip's number changed across kernels, its label did not);
//      a chip name, path or number (gpiochip0, /dev/gpiochip0, 0) works too;
//   2. find each line by name (GPIO17) or take it by offset (17);
//   3. request every line as an output, off, with consumer "wisp", in one request
//      (active-low wiring is the kernel's business: the request's active-low flag);
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
  var gpio: UnsafeMutablePointer<wisp_gpio>?
  public private(set) var count: Int
  /// The chip's kernel name and label, for messages ("gpiochip0 [pinctrl-bcm2835]").
  public let chipDescription: String

  /// Opens `chip` (label, name, path or number) and requests `lines` as outputs, off.
  public init(chip label: String, lines refs: [LineRef], activeLow: Bool) throws(GPIOError) {
    guard let g = wisp_gpio_open(label) else {
      let e = wisp_gpiod_errno()
      if e == EACCES || e == EPERM {
        throw GPIOError("cannot open GPIO chips: permission denied (run as root or add the user to group 'gpio')")
      }
      throw GPIOError("no GPIO chip labelled '\(label)' (see 'gpiodetect'; set gpio_chip in the board file or --chip)")
    }
    gpio = g
    count = 0
    chipDescription = "\(GPIOLEDs.text(wisp_gpio_chip_name(g))) [\(GPIOLEDs.text(wisp_gpio_chip_label(g)))]"
    var offsets: [UInt32] = []
    var shown: [String] = []
    for ref in refs {
      switch ref {
      case .name(let n):
        let o = wisp_gpio_line_offset(g, n)
        guard o >= 0 else {
          release()
          throw GPIOError("GPIO line \(n) not found on \(chipDescription)")
        }
        offsets.append(UInt32(o)); shown.append(n)
      case .offset(let o):
        guard o < wisp_gpio_num_lines(g) else {
          release()
          throw GPIOError("GPIO line offset \(o) not found on \(chipDescription)")
        }
        offsets.append(o); shown.append("offset \(o)")
      }
    }
    guard offsets.count <= Int(WISP_GPIO_MAX_LINES) else {
      release()
      throw GPIOError("at most \(WISP_GPIO_MAX_LINES) LED lines, \(offsets.count) given")
    }
    var names = shown.count == 1 ? "line" : "lines"
    for (i, n) in shown.enumerated() { names += (i == 0 ? " " : ", ") + n }
    let r = offsets.withUnsafeBufferPointer { wisp_gpio_request_outputs(g, $0.baseAddress, UInt32($0.count), activeLow ? 1 : 0) }
    if r != 0 {
      let e = wisp_gpiod_errno()
      release()
      if e == EBUSY {
        throw GPIOError("GPIO \(names) on \(chipDescription) busy: another program or a kernel driver holds one (see 'gpioinfo')")
      }
      if e == EACCES || e == EPERM {
        throw GPIOError("GPIO \(names) on \(chipDescription): permission denied (run as root or add the user to group 'gpio')")
      }
      throw GPIOError("cannot request GPIO \(names) on \(chipDescription): \(GPIOLEDs.text(strerror(e)))")
    }
    count = offsets.count
  }

  /// Sets one line (libgpiod's set-value). Errors are ignored: the LEDs are advisory.
  public mutating func set(_ index: Int, on: Bool) {
    guard let g = gpio, index >= 0, index < count else { return }
    _ = wisp_gpio_set(g, UInt32(index), on ? 1 : 0)
  }

  /// Switches every LED off, releases the lines and closes the chip. Safe to call twice.
  public mutating func release() {
    if let g = gpio { wisp_gpio_close(g) }
    gpio = nil
    count = 0
  }

  static func text(_ p: UnsafePointer<CChar>?) -> String {
    guard let p else { return "?" }
    return String(cString: p)
  }
}
