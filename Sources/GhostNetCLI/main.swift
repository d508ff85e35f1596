// The `ghostnet-d` entry point: stderr buffering, OpenBLAS kernel selection, then the command tree,
// with any Foundation file error that reaches the top told as `PATH: reason`, and a run's own error
// (or a worker's configuration error) ending with its `WorkerExitStatus`.

import ArgumentParser
@preconcurrency import Glibc
import Training

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
    var parsed: (any ParsableCommand)?
    do {
        var command = try GhostNetCommand.parseAsRoot()
        parsed = command
        if var asyncCommand = command as? AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
    } catch let error as TrainingError {
        // A run stopped before its first step (a bad configuration, worlds that differ) still ends
        // with its kind's status: `ghostnet-d launch` restarts only what a restart can cure.
        exitWorker(error.message, status: WorkerExitStatus(error.kind))
    } catch let error as ConfigurationError where parsed is WorkerCommand {
        // Raised before the run exists (the file, a --set value, a path it names): as hopeless to restart.
        exitWorker("\(error)", status: .configuration)
    } catch {
        GhostNetCommand.exit(withError: FoundationFileError(error) ?? error)
    }
}

/// Prints `message` as ArgumentParser prints an error and exits with a worker's `status`.
func exitWorker(_ message: String, status: WorkerExitStatus) -> Never {
    fputs("Error: \(message)\n", stderr)
    exit(status.rawValue)
}
