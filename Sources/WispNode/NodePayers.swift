// The node's payer list (PAYER-LIST.md): loaded at start, reloaded on SIGHUP, handed to
// the credit side as a check (NodeCredit.payerGate). Runs on the control thread.
//
// A list takes effect only when at least `settlement_threshold` distinct pinned
// settlement keys signed it validly (mbedTLS, P256Verifier). On reload a list replaces
// the one in force only when its version is higher; an older or equal version, a file
// that does not parse or verify, or one that cannot be read is refused with a log line
// that says why, and the list in force stays. At start a list that cannot be loaded stops
// the node (a node told to check payers must not run without a list).
//
// Memory: the parsed list is a sorted array of PayerEntry (about 64 bytes each: 6.4 MB for
// PayerList.maxPayers = 10^5), shared by the check the credit worker calls.
import CPosix
import WispCore
import WispOS
import WispTLS

extension Node {
  /// Reads and verifies the payer list of `config`; the reason it is unusable otherwise.
  public static func loadPayers(_ config: RunConfig) -> Result<PayerList, PayerLoadError> {
    guard let path = config.payersPath else { return .failure(PayerLoadError("no payer list configured")) }
    if let p = config.payerSettingsProblem { return .failure(PayerLoadError(p)) }
    let bytes: [UInt8]
    do throws(Errno) { bytes = try Files.read(path, limit: PayerList.maxFileSize) } catch {
      return .failure(PayerLoadError("cannot read \(path): \(error.description)"))
    }
    let list: PayerList
    do throws(PayerListError) { list = try PayerList.parse(bytes) } catch {
      return .failure(PayerLoadError("\(path): \(error.text)"))
    }
    if let e = list.verify(pinned: config.settlementKeys, threshold: config.settlementThreshold, verifier: P256Verifier()) {
      return .failure(PayerLoadError("\(path): \(e.text)"))
    }
    return .success(list)
  }

  /// Puts `list` in force for the credit side.
  func install(payers list: PayerList, required: Bool) {
    payers = list
    credit?.setPayers(list, required: required)
    Log.info("payer list in force", "version=\(list.version) created=\(list.created) payers=\(list.count)"
               + " require_payers=\(required ? "yes" : "no")")
  }

  /// At start: false (logged) when a configured list cannot be used.
  func startPayers() -> Bool {
    guard config.payersPath != nil else {
      if credit != nil { Log.info("no payer list: payers unverified") }
      return true
    }
    switch Node.loadPayers(config) {
    case .failure(let e):
      Log.error("cannot load the payer list", "error=\"\(Log.quote(e.message))\"")
      return false
    case .success(let list):
      install(payers: list, required: config.payersRequired)
      return true
    }
  }

  /// SIGHUP: a newer valid list replaces the one in force; anything else is refused.
  func reloadPayers(_ settings: RunConfig) {
    guard settings.payersPath != nil else {
      if payers != nil { Log.warn("payer list no longer configured: keeping the one in force until restart") }
      return
    }
    switch Node.loadPayers(settings) {
    case .failure(let e):
      Log.error("payer list refused, keeping the one in force",
                "error=\"\(Log.quote(e.message))\" version_in_force=\(payers.map { "\($0.version)" } ?? "none")")
    case .success(let list):
      if let old = payers, list.version <= old.version {
        Log.error("payer list refused, keeping the one in force",
                  "error=\"version \(list.version) is not newer than \(old.version)\" version_in_force=\(old.version)")
        return
      }
      install(payers: list, required: settings.payersRequired)
    }
  }

  /// The payer list's figures for status.
  func payerStatus(_ s: inout StatusSnapshot) {
    guard let p = payers else { return }
    s.payersVersion = p.version
    let now = UInt64(max(0, wisp_realtime_s()))
    s.payersAgeSec = now > p.created ? now - p.created : 0
    s.payersCount = p.count
    s.payersRequired = credit?.requirePayers ?? false
  }
}

/// Why a payer list could not be used.
public struct PayerLoadError: Error {
  public let message: String
  public init(_ m: String) { message = m }
}
