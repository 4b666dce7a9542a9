// `wisp run`: reads the options and the config file, then runs a Node (WispNode).
import WispCore
import WispOS
import WispNode

enum RunCommand {
  static func main(_ inv: Invocation) -> Int32 {
    let config: RunConfig
    switch ConfigLoader.forRun(inv) {
    case .success(let c): config = c
    case .failure(let f):
      Console.err("wisp: \(f.message)")
      if f.exitCode == 2 { Console.err(Arguments.usage(.run)) }
      return f.exitCode
    }
    Log.name = "wisp[\(config.name)]"
    if config.limits.labAddresses {
      Log.warn("lab addresses on: this node extends and exits to loopback, private and other special addresses (tests only)",
               "lab_addresses=yes")
    } else {
      Log.info("address policy", "lab_addresses=no extends_and_exits_to=public_unicast_only")
    }
    do throws(Errno) {
      return try Node(config: config).run()
    } catch {
      Log.error("cannot create the node's control mailbox", "error=\"\(error.description)\"")
      return 1
    }
  }
}
