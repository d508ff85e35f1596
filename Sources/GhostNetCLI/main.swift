//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser

// Before anything touches OpenBLAS: make sure it loaded the kernels that fit this CPU.
KernelSelection.reexecWithPreferredKernelsIfNeeded()
await runGhostNetCommand()

/// Top-level code resolves `GhostNetCommand.main()` to the synchronous `ParsableCommand.main()`,
/// which refuses async subcommands (it prints their help); inside an async function the
/// `AsyncParsableCommand` overload is chosen.
func runGhostNetCommand() async {
    await GhostNetCommand.main()
}
