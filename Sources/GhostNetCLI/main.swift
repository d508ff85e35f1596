//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser
@preconcurrency import Glibc

// ArgumentParser writes its error message to stderr one byte at a time; on an unbuffered stderr
// the lines of ranks that fail together (a divergence every rank detects) interleave under mpirun.
// Line buffering makes each line one write, so every line arrives whole.
setvbuf(stderr, nil, _IOLBF, Int(BUFSIZ))

// Before anything touches OpenBLAS: make sure it loaded the kernels that fit this CPU.
KernelSelection.reexecWithPreferredKernelsIfNeeded()
await runGhostNetCommand()

/// Top-level code resolves `GhostNetCommand.main()` to the synchronous `ParsableCommand.main()`,
/// which refuses async subcommands (it prints their help); inside an async function the
/// `AsyncParsableCommand` overload is chosen.
func runGhostNetCommand() async {
    await GhostNetCommand.main()
}
