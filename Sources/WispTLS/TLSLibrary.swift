// WispTLS — the one module that talks to mbedTLS (2.28 today; 3.6 later touches only here).
import CMbedTLS

public enum TLSLibrary {
  /// "mbed TLS 2.28.3" as the linked library reports it.
  public static var version: String {
    var buf = [CChar](repeating: 0, count: 32)
    mbedtls_version_get_string_full(&buf)
    return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
  }

  /// SHA-256 of `data` (used for identity fingerprints).
  public static func sha256(_ data: UnsafeRawBufferPointer) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 32)
    _ = wisp_sha256(data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count, &out)
    return out
  }
}
