// `TrainingError`, why a training or evaluation run stopped: its kind, the message, and whether all ranks
// agreed on it (so the job can end cleanly instead of aborting).

/// Why a training or evaluation run stopped.
package struct TrainingError: Error, Sendable, CustomStringConvertible {
    /// The class of failure.
    package enum Kind: Sendable, Equatable {
        /// The configuration does not fit the dataset or the checkpoint.
        case configuration
        /// A training or validation image could not be read (strict data, or no replacement).
        case data
        /// The model refused its input.
        case model
        /// A collective failed, timed out, or ranks hold different parameters.
        case communication
        /// A loss or gradient became NaN or infinite.
        case nonFinite
        /// A checkpoint could not be written, or none could be read to resume from.
        case checkpoint
        /// SIGTERM or SIGUSR1 asked the job to stop; a step-exact checkpoint was written first. Not
        /// a failure: `--resume` continues as if nothing had happened.
        case preempted
    }

    package var kind: Kind
    package var message: String
    /// Whether every rank raised this error at the same point of the run, having agreed on it
    /// through a collective, so the job can end cleanly (`MPI_Finalize`) instead of aborting.
    package var isCollective: Bool

    package init(_ kind: Kind, _ message: String, isCollective: Bool = false) {
        self.kind = kind
        self.message = message
        self.isCollective = isCollective
    }

    package var description: String { message }
}
