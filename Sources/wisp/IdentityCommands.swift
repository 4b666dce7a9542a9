// `wisp keygen` and `wisp id`: the node identity in its state directory. Runs on host and device.
import WispCore
import WispNode
import WispClient
import WispOS
import WispTLS

enum IdentityCommands {
  static func store(_ inv: Invocation) -> IdentityStore {
    IdentityStore(directory: inv.value("--state-dir") ?? IdentityStore.defaultDirectory)
  }

  static func random() -> RandomGenerator? {
    do { return try RandomGenerator() } catch {
      Console.err("wisp: cannot seed the random generator: \(error.description)")
      return nil
    }
  }

  /// Creates node.key (0600) and node.crt; refuses to replace a key without --force.
  static func keygen(_ inv: Invocation) -> Int32 {
    guard let random = random() else { return 1 }
    let s = store(inv)
    do {
      let (identity, backup) = try s.generate(force: inv.has("--force"), epochSeconds: Clock.epochSeconds(), random: random)
      if let backup { Console.out("previous key kept as \(backup)") }
      Console.out("key \(s.keyPath)")
      Console.out("certificate \(s.certificatePath)")
      Console.out("fingerprint \(identity.fingerprint.hex)")
      return 0
    } catch {
      Console.err("wisp: \(error.description)")
      return 1
    }
  }

  /// Prints the fingerprint peers pin and the certificate, from an existing key.
  static func id(_ inv: Invocation) -> Int32 {
    guard let random = random() else { return 1 }
    let s = store(inv)
    do {
      let identity = try s.load(random: random)
      Console.out("fingerprint \(identity.fingerprint.hex)")
      Console.write(1, String(decoding: identity.certificatePEM, as: UTF8.self))
      return 0
    } catch {
      if case .io(_, let e) = error, e == Errno(2) {  // ENOENT
        Console.err("wisp: no node key in \(s.directory): run 'wisp keygen --state-dir \(s.directory)'")
      } else {
        Console.err("wisp: \(error.description)")
      }
      return 1
    }
  }
}
