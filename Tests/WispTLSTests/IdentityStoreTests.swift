import Testing
import Glibc
@testable import WispTLS
import WispOS
import WispCore

/// A fresh directory under /tmp; the state directory is made inside it by the store.
func temporaryDirectory() -> String {
  var template = Array("/tmp/wisp-tls-test.XXXXXX".utf8CString)
  let p = mkdtemp(&template)!
  return String(cString: p)
}

func mode(_ path: String) -> UInt32 { (try? Files.permissions(path)) ?? 0xffff }

@Suite struct IdentityStoreTests {
  let random = try! RandomGenerator()

  @Test func firstStartCreatesPrivateKeyAndRestartKeepsIt() throws {
    let store = IdentityStore(directory: temporaryDirectory() + "/state")
    let (first, created) = try store.loadOrCreate(random: random)
    #expect(created)
    #expect(mode(store.keyPath) == 0o600)
    #expect(mode(store.directory) == 0o700)
    #expect(Files.exists(store.certificatePath))
    let keyBefore = try Files.read(store.keyPath)
    #expect(keyBefore.starts(with: Array("-----BEGIN EC PRIVATE KEY-----".utf8)))

    let (second, createdAgain) = try store.loadOrCreate(random: random)
    #expect(!createdAgain)
    #expect(second.fingerprint == first.fingerprint)
    #expect(second.certificatePEM == first.certificatePEM, "a matching certificate is kept as stored")
    #expect(try Files.read(store.keyPath) == keyBefore)
  }

  @Test func keygenRefusesToOverwriteWithoutForce() throws {
    let store = IdentityStore(directory: temporaryDirectory() + "/state")
    let (first, _) = try store.loadOrCreate(random: random)
    do {
      _ = try store.generate(force: false, epochSeconds: 1_700_000_000, random: random)
      Issue.record("keygen without force replaced the key")
    } catch {
      guard case .exists = error else { Issue.record("wrong error \(error.description)"); return }
    }
    #expect(try store.load(random: random).fingerprint == first.fingerprint)
  }

  @Test func forcedKeygenLeavesABackup() throws {
    let store = IdentityStore(directory: temporaryDirectory() + "/state")
    let (first, _) = try store.loadOrCreate(random: random)
    let oldKey = try Files.read(store.keyPath)
    let (second, backup) = try store.generate(force: true, epochSeconds: 1_700_000_000, random: random)
    #expect(backup == store.keyPath + ".bak-1700000000")
    #expect(try Files.read(backup!) == oldKey)
    #expect(second.fingerprint != first.fingerprint)
    #expect(try store.load(random: random).fingerprint == second.fingerprint)
    #expect(mode(store.keyPath) == 0o600)
    // A second force in the same second does not overwrite the first backup.
    let (_, backup2) = try store.generate(force: true, epochSeconds: 1_700_000_000, random: random)
    #expect(backup2 == store.keyPath + ".bak-1700000000-1")
    #expect(try Files.read(backup!) == oldKey)
  }

  @Test func corruptKeyIsATypedError() throws {
    let store = IdentityStore(directory: temporaryDirectory() + "/state")
    _ = try store.loadOrCreate(random: random)
    try Files.writeDurably(store.keyPath, Array("-----BEGIN EC PRIVATE KEY-----\ngarbage\n".utf8), mode: 0o600)
    do {
      _ = try store.loadOrCreate(random: random)
      Issue.record("a corrupt key loaded")
    } catch {
      guard case .corruptKey(let path, _) = error else { Issue.record("wrong error \(error.description)"); return }
      #expect(path == store.keyPath)
    }
    // Not silently replaced.
    #expect(try Files.read(store.keyPath) == Array("-----BEGIN EC PRIVATE KEY-----\ngarbage\n".utf8))
  }

  @Test func keyReadableByOthersIsRefused() throws {
    let store = IdentityStore(directory: temporaryDirectory() + "/state")
    _ = try store.loadOrCreate(random: random)
    chmod(store.keyPath, 0o644)
    do {
      _ = try store.load(random: random)
      Issue.record("a world-readable key loaded")
    } catch {
      guard case .permissions(_, let m) = error else { Issue.record("wrong error \(error.description)"); return }
      #expect(m == 0o644)
      #expect(error.description.contains("chmod 600"))
    }
  }

  @Test func unreadableKeyIsAnIOError() throws {
    let store = IdentityStore(directory: temporaryDirectory() + "/state")
    do {
      _ = try store.load(random: random)
      Issue.record("a missing key loaded")
    } catch {
      guard case .io(_, let e) = error else { Issue.record("wrong error \(error.description)"); return }
      #expect(e == Errno(ENOENT))
    }
  }

  @Test func damagedCertificateIsRemadeForTheSameKey() throws {
    let store = IdentityStore(directory: temporaryDirectory() + "/state")
    let (first, _) = try store.loadOrCreate(random: random)
    try Files.writeDurably(store.certificatePath, Array("not a certificate".utf8), mode: 0o644)
    let again = try store.load(random: random)
    #expect(again.certificateIsNew)
    #expect(again.fingerprint == first.fingerprint)
    #expect(try Files.read(store.certificatePath) == again.certificatePEM)
  }

  // The signer of receipts reads node.key through the same loader as the DTLS identity.

  @Test func signerIsTheIdentityKeyAndMadeOnFirstStart() throws {
    let store = IdentityStore(directory: temporaryDirectory() + "/state")
    let signer = try store.signer(create: true)
    #expect(mode(store.keyPath) == 0o600)
    #expect(Files.exists(store.certificatePath))
    let identity = try store.load(random: random)
    #expect(P256Verifier().fingerprint(ofKey: signer.publicKey) == identity.fingerprint)
    // A second start keeps the key.
    #expect(try store.signer(create: true).publicKey == signer.publicKey)
  }

  @Test func signerWithoutCreateLeavesAMissingKeyMissing() throws {
    let store = IdentityStore(directory: temporaryDirectory() + "/state")
    do {
      _ = try store.signer(create: false)
      Issue.record("a missing key loaded")
    } catch {
      guard case .io(_, let e) = error else { Issue.record("wrong error \(error.description)"); return }
      #expect(e == Errno(ENOENT))
    }
    #expect(!Files.exists(store.keyPath))
  }

  @Test func signerRefusesAKeyOthersCanRead() throws {
    let store = IdentityStore(directory: temporaryDirectory() + "/state")
    _ = try store.loadOrCreate(random: random)
    let before = try Files.read(store.keyPath)
    for m: UInt32 in [0o640, 0o604, 0o660] {
      chmod(store.keyPath, mode_t(m))
      do {
        _ = try store.signer(create: true)
        Issue.record("a key with mode \(m) loaded")
      } catch {
        guard case .permissions(_, let got) = error else { Issue.record("wrong error \(error.description)"); return }
        #expect(got == m)
      }
    }
    #expect(try Files.read(store.keyPath) == before, "never replaced")
  }

  @Test func signerNeverReplacesACorruptKey() throws {
    let store = IdentityStore(directory: temporaryDirectory() + "/state")
    _ = try store.loadOrCreate(random: random)
    let garbage = Array("-----BEGIN EC PRIVATE KEY-----\ngarbage\n".utf8)
    try Files.writeDurably(store.keyPath, garbage, mode: 0o600)
    do {
      _ = try store.signer(create: true)
      Issue.record("a corrupt key loaded")
    } catch {
      guard case .corruptKey(let path, _) = error else { Issue.record("wrong error \(error.description)"); return }
      #expect(path == store.keyPath)
    }
    #expect(try Files.read(store.keyPath) == garbage)
  }
}
