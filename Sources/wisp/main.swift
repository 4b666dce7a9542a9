// wisp — entry point: parse the command line, dispatch, exit.
//
// Exit codes: 0 success, 1 runtime failure, 2 bad command line.
import WispCore
import WispNode
import WispClient
import WispOS

let args = ProcessInfo.arguments()
let invocation: Invocation
do {
  invocation = try Arguments.parse(args)
} catch {
  Console.err("wisp: \(error.message)")
  Console.err(Arguments.usage(error.command))
  ProcessInfo.exit(2)
}
ProcessInfo.exit(Commands.dispatch(invocation))
