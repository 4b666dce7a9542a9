// Certificates whose self-signature already verified, by SHA-256 of their DER. Runs on
// host and device.
//
// A full handshake from a known peer would otherwise pay one extra ECDSA verification
// (PeerVerification step 2) every time. The cache has a fixed number of entries (a ring:
// the oldest is forgotten first), allocated once with the configuration; a hit needs the
// exact same certificate bytes, so it can never accept a certificate that would fail.
import CMbedTLS

public final class VerifiedCertificates {
  public static let capacity = 128
  var digests: [Digest]
  var next = 0

  struct Digest: Equatable {
    var a: UInt64 = 0, b: UInt64 = 0, c: UInt64 = 0, d: UInt64 = 0
  }

  init() {
    digests = [Digest](repeating: Digest(), count: VerifiedCertificates.capacity)
  }

  /// SHA-256 of `len` bytes at `p`.
  static func digest(_ p: UnsafeMutablePointer<UInt8>?, _ len: Int) -> Digest {
    var d = Digest()
    withUnsafeMutableBytes(of: &d) { out in
      _ = wisp_sha256(p, len, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }
    return d
  }

  func contains(_ d: Digest) -> Bool {
    if d == Digest() { return false }
    for e in digests where e == d { return true }
    return false
  }

  func insert(_ d: Digest) {
    if contains(d) { return }
    digests[next] = d
    next = (next + 1) % VerifiedCertificates.capacity
  }
}
