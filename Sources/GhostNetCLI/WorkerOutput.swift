// How the command line shows what a worker reports: its start-up notes and the error that ended a
// run, on standard error where they must not mix with a command's output; which commands are workers.

import ArgumentParser
import Training

#if canImport(Glibc)
import Glibc
#endif

/// The commands a job runs on every rank (under `mpirun`, `ghostnet-d launch` or a scheduler): every
/// way they end is a ``WorkerExitStatus``, whose class tells the supervisor whether to restart them.
protocol WorkerCommand {}

extension TrainCommand: WorkerCommand {}
extension EvalCommand: WorkerCommand {}

/// Diagnostics that must not mix with a command's standard output.
enum StandardError {
    static func print(_ line: String) {
        let text = line + "\n"
        _ = text.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    }
}

extension StartupNote {
    /// `warning: <message>` for a warning, the message alone otherwise.
    var line: String { severity == .warning ? "warning: \(message)" : message }
}

extension WorkerLaunch {
    /// Prints every note on standard error (bench and diagnose, whose standard output is the report).
    func printNotes() {
        for note in notes { StandardError.print(note.line) }
    }
}

extension RunLaunch {
    /// The run's log already holds the notes, and rank 0 echoes it to standard output; another
    /// rank's warnings go to standard error too, where `mpirun` shows them.
    func printNotes() {
        guard rank != 0 else { return }
        for note in worker.notes where note.severity == .warning { StandardError.print(note.line) }
    }

    /// Ends this rank after `error` (see ``RunLaunch/stop(after:)``) with the status of its kind
    /// (``WorkerExitStatus``); ranks other than 0 also print the error on standard error.
    func exit(after error: TrainingError) throws -> Never {
        stop(after: error)
        if rank != 0 {
            let label = error.kind == .preempted ? "note" : "error"
            StandardError.print("\(label): rank \(rank): \(error.message)")
        }
        throw ExitCode(WorkerExitStatus(error.kind).rawValue)
    }
}
