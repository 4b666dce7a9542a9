// The CSPRNG every mbedTLS operation draws from: CTR_DRBG seeded from mbedTLS's entropy
// collector (getrandom on Linux). Runs on host and device.
import CMbedTLS

public final class RandomGenerator {
  let entropy: UnsafeMutablePointer<mbedtls_entropy_context>
  let drbg: UnsafeMutablePointer<mbedtls_ctr_drbg_context>

  public init() throws(TLSError) {
    entropy = .allocate(capacity: 1)
    drbg = .allocate(capacity: 1)
    mbedtls_entropy_init(entropy)
    mbedtls_ctr_drbg_init(drbg)
    let personal: StaticString = "wisp node"
    let r = mbedtls_ctr_drbg_seed(drbg, mbedtls_entropy_func, entropy, personal.utf8Start, personal.utf8CodeUnitCount)
    // On failure deinit frees the contexts (the object is fully initialised here).
    if r != 0 { throw TLSError.mbedtls("mbedtls_ctr_drbg_seed", r) }
  }

  deinit { free() }

  private func free() {
    mbedtls_ctr_drbg_free(drbg)
    mbedtls_entropy_free(entropy)
    drbg.deallocate()
    entropy.deallocate()
  }

  /// `count` random bytes (nil if the DRBG fails, which it does only when reseeding fails).
  public func bytes(_ count: Int) -> [UInt8]? {
    var out = [UInt8](repeating: 0, count: count)
    let r = out.withUnsafeMutableBufferPointer { mbedtls_ctr_drbg_random(context, $0.baseAddress, count) }
    return r == 0 ? out : nil
  }

  /// The context pointer to pass next to `mbedtls_ctr_drbg_random`.
  var context: UnsafeMutableRawPointer { UnsafeMutableRawPointer(drbg) }
}
