// Where the node identity lives: a state directory (default /var/lib/wisp) holding
//   node.key               the private key, PEM, mode 0600 — never silently replaced
//   node.crt               the self-signed certificate, PEM, mode 0644 — derived, re-made freely
//   node.key.bak-<epoch>   an earlier key, left by `wisp keygen --force`
// Runs on host and device. Every write is durable (Files.writeDurably).
//
// The one loader of node.key: the DTLS identity (`load`, `loadOrCreate`) and the signer of
// receipts and claims (`signer`) read it through `readKey`, which refuses a key that group
// or others may read or write. A key that does not parse is an error, never replaced;
// only `wisp keygen --force` replaces a key, and it keeps the old one.
import CMbedTLS
import WispCore
import WispOS

public struct IdentityStore {
  public static let defaultDirectory = "/var/lib/wisp"
  public let directory: String

  public init(directory: String) { self.directory = directory }

  public var keyPath: String { directory + "/node.key" }
  public var certificatePath: String { directory + "/node.crt" }

  /// The identity in the directory, created on first start (directory 0700, key 0600).
  public func loadOrCreate(random: RandomGenerator) throws(IdentityError) -> (identity: Identity, created: Bool) {
    if !Files.exists(keyPath) {
      return (try create(random: random), true)
    }
    return (try load(random: random), false)
  }

  /// The existing identity; an absent key is an `.io(path, ENOENT)` error.
  public func load(random: RandomGenerator) throws(IdentityError) -> Identity {
    var pem = try readKey()
    defer { for i in 0..<pem.count { pem[i] = 0 } }
    let cert: [UInt8]? = try? Files.read(certificatePath, limit: 64 * 1024)
    let identity = try Identity(keyPEM: pem, certificatePEM: cert, path: keyPath, random: random)
    if identity.certificateIsNew { try storeCertificate(identity) }
    return identity
  }

  /// The node key as the signer of receipts and claims, under the same checks as `load`.
  /// With `create`, a missing key is made first (with its certificate, as on a node's first
  /// start); otherwise an absent key is an `.io(path, ENOENT)` error. Nothing else is written.
  public func signer(create: Bool) throws(IdentityError) -> P256Signer {
    if create && !Files.exists(keyPath) {
      let random: RandomGenerator
      do { random = try RandomGenerator() } catch { throw IdentityError.crypto(error) }
      _ = try self.create(random: random)
    }
    var pem = try readKey()
    defer { for i in 0..<pem.count { pem[i] = 0 } }
    switch P256Signer.parse(pem) {
    case .success(let k): return k
    case .failure(let e):
      guard case .mbedtls(_, let code) = e else { throw IdentityError.crypto(e) }
      throw IdentityError.corruptKey(keyPath, code)
    }
  }

  /// The key file's bytes, if only its owner may read and write it (mode 0600 or 0400).
  func readKey() throws(IdentityError) -> [UInt8] {
    let mode: UInt32
    do { mode = try Files.permissions(keyPath) } catch { throw IdentityError.io(keyPath, error) }
    if mode & 0o077 != 0 { throw IdentityError.permissions(keyPath, mode) }
    do { return try Files.read(keyPath, limit: 16 * 1024) } catch { throw IdentityError.io(keyPath, error) }
  }

  /// `wisp keygen`: a new key unless one exists; with `force`, the old key is first renamed to
  /// `node.key.bak-<epochSeconds>` (returned).
  public func generate(force: Bool, epochSeconds: Int64, random: RandomGenerator)
    throws(IdentityError) -> (identity: Identity, backup: String?)
  {
    var backup: String? = nil
    if Files.exists(keyPath) {
      if !force { throw IdentityError.exists(keyPath) }
      var name = keyPath + ".bak-\(epochSeconds)"
      var n = 1
      while Files.exists(name) { name = keyPath + ".bak-\(epochSeconds)-\(n)"; n += 1 }
      do { try Files.renameDurably(keyPath, name) } catch { throw IdentityError.io(keyPath, error) }
      backup = name
    }
    return (try create(random: random), backup)
  }

  private func create(random: RandomGenerator) throws(IdentityError) -> Identity {
    do { try Files.makeDirectory(directory, mode: 0o700) } catch { throw IdentityError.io(directory, error) }
    var pem = try Identity.generateKeyPEM(random: random)
    defer { for i in 0..<pem.count { pem[i] = 0 } }
    // The certificate is made (and checked to parse) before the key is stored.
    let identity = try Identity(keyPEM: pem, certificatePEM: nil, path: keyPath, random: random)
    do { try Files.writeDurably(keyPath, pem, mode: 0o600) } catch { throw IdentityError.io(keyPath, error) }
    try storeCertificate(identity)
    return identity
  }

  private func storeCertificate(_ identity: Identity) throws(IdentityError) {
    do { try Files.writeDurably(certificatePath, identity.certificatePEM, mode: 0o644) }
    catch { throw IdentityError.io(certificatePath, error) }
  }
}
