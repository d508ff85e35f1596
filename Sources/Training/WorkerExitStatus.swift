// The exit statuses a worker ends with, one per class of ending, so that `ghostnet-d launch` (and any
// scheduler) can tell a failure a restart may cure from one that would only repeat. docs/RELIABILITY.md
// lists them; the values follow sysexits.h where one fits.

/// How a worker process ended, as its exit status.
package enum WorkerExitStatus: Int32, Sendable, CaseIterable {
    /// The run finished.
    case finished = 0
    /// The configuration, rank table or command line is wrong (ArgumentParser's own usage status).
    case configuration = 64
    /// Training or validation input could not be read under the strict data policy.
    case data = 65
    /// A loss or gradient became NaN or infinite.
    case nonFinite = 66
    /// A checkpoint could not be written (a full disk, a read-only directory) or none could be read.
    case checkpoint = 73
    /// A collective failed or timed out, or a peer was lost.
    case communication = 69
    /// `MPI_Abort` ended the job after a peer stopped answering (``MPICommunicator/abort(reason:)``).
    case aborted = 70
    /// A SIGTERM or SIGUSR1 asked the job to stop; a step-exact checkpoint was written first.
    case preempted = 75

    /// The status a run that stopped with `error` ends with.
    package init(_ kind: TrainingError.Kind) {
        switch kind {
        case .configuration: self = .configuration
        case .data: self = .data
        case .model: self = .configuration
        case .communication: self = .communication
        case .nonFinite: self = .nonFinite
        case .checkpoint: self = .checkpoint
        case .preempted: self = .preempted
        }
    }

    /// Whether running the same job again can end differently: a lost peer or a timeout can heal, a
    /// wrong configuration or a diverged loss cannot.
    package var isRestartable: Bool {
        switch self {
        case .communication, .aborted: true
        case .finished, .configuration, .data, .nonFinite, .checkpoint, .preempted: false
        }
    }
}
