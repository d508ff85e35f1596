// The `ghostnet-d` entry point: stderr buffering, OpenBLAS kernel selection, then the command tree,
// with any Foundation file error that reaches the top told as `PATH: reason`.

import ArgumentParser
@preconcurrency import Glibc

// ArgumentParser writes its error message to stderr one byte at a time; on an unbuffered stderr
// the lines of ranks that fail together (a divergence every rank detects) interleave under mpirun.
// Line buffering makes each line one write, so every line arrives whole.
setvbuf(stderr, nil, _IOLBF, Int(BUFSIZ))

// Before anything touches OpenBLAS: make sure it loaded the kernels that fit this CPU.
KernelSelection.reexecWithPreferredKernelsIfNeeded()
await runGhostNetCommand()

/// Parses and runs the command as `AsyncParsableCommand.main()` does, in an async function so that
/// async subcommands run (top-level code would pick the synchronous `main()`, which prints their help).
func runGhostNetCommand() async {
    do {
        var command = try GhostNetCommand.parseAsRoot()
        if var asyncCommand = command as? AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
    } catch {
        GhostNetCommand.exit(withError: FoundationFileError(error) ?? error)
    }
}
