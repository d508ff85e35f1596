//===----------------------------------------------------------------------===//
// ghostnet-d — Training
//===----------------------------------------------------------------------===//

/// Why a training or evaluation run stopped.
public struct TrainingError: Error, Sendable, CustomStringConvertible {
    /// The class of failure.
    public enum Kind: Sendable, Equatable {
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
    }

    public var kind: Kind
    public var message: String
    /// Whether every rank raised this error at the same point of the run, having agreed on it
    /// through a collective, so the job can end cleanly (`MPI_Finalize`) instead of aborting.
    public var isCollective: Bool

    public init(_ kind: Kind, _ message: String, isCollective: Bool = false) {
        self.kind = kind
        self.message = message
        self.isCollective = isCollective
    }

    public var description: String { message }
}
