// The small values the ranks of a job agree on: resume state, checkpoint status, the per-step
// check (finiteness), bad-image counts and validation sums. Each is a pure value that encodes its
// contribution into the Int64/Double buffers a sum all-reduce takes, and decodes the agreed value
// from the sums; `Communicator.agree` (Communicator+Agreement.swift) is the only code that moves them.

import Checkpoints

/// A value every rank contributes to and every rank learns, through one sum all-reduce per buffer.
package protocol Agreement {
    /// What every rank holds once the sums are in (often the type itself).
    associatedtype Outcome
    /// Writes this rank's contribution; every rank must write the same number of values.
    func encode(into encoder: inout AgreementEncoder)
    /// Reads the agreed value from the summed buffers, in the order ``encode(into:)`` wrote them.
    static func decode(from decoder: inout AgreementDecoder) -> Outcome
}

/// Writes a contribution: integers are summed exactly, reals in float64.
package struct AgreementEncoder {
    package let rank: Int
    package let worldSize: Int
    package private(set) var integers: [Int64] = []
    package private(set) var reals: [Double] = []

    package init(rank: Int, worldSize: Int) {
        self.rank = rank
        self.worldSize = worldSize
    }

    package mutating func add(_ value: Int) { integers.append(Int64(value)) }
    package mutating func add(_ value: Double) { reals.append(value) }

    /// One slot per rank, this rank's holding `value` and the others zero: the sum gathers every
    /// rank's value in rank order.
    package mutating func addPerRank(_ value: Int) {
        integers += (0..<worldSize).map { $0 == rank ? Int64(value) : 0 }
    }
}

/// Reads the summed buffers back, value by value.
package struct AgreementDecoder {
    package let worldSize: Int
    private var integers: ArraySlice<Int64>
    private var reals: ArraySlice<Double>

    package init(integers: [Int64], reals: [Double], worldSize: Int) {
        self.integers = integers[...]
        self.reals = reals[...]
        self.worldSize = worldSize
    }

    package mutating func integer() -> Int { Int(integers.removeFirst()) }
    package mutating func real() -> Double { reals.removeFirst() }
    package mutating func perRank() -> [Int] { (0..<worldSize).map { _ in integer() } }
}

// MARK: - Resume

/// Where rank 0's newest valid checkpoint puts the run, shared so every rank continues there.
///
/// Only rank 0 reads the folder; every other rank contributes ``startAfresh``, which encodes as
/// zeros, so the sums are rank 0's values exactly (x + 0 = x, also for the learning rate).
package enum ResumeAgreement: Agreement, Equatable {
    /// No checkpoint: start from the beginning.
    case startAfresh
    /// Continue from this state (its seed and best-checkpoint name stay rank 0's business).
    case resume(ResumePoint)
    /// Rank 0 could not read the folder; every rank stops.
    case failed

    package func encode(into encoder: inout AgreementEncoder) {
        let point: ResumePoint
        switch self {
        case .startAfresh:
            encoder.add(0)
            point = ResumePoint()
        case .resume(let saved):
            encoder.add(1)
            point = saved
        case .failed:
            encoder.add(2)
            point = ResumePoint()
        }
        encoder.add(point.epoch)
        encoder.add(point.globalStep)
        encoder.add(point.stepInEpoch)
        encoder.add(point.samplerPosition)
        encoder.add(point.worldSize)
        encoder.add(point.virtualRanks)
        encoder.add(point.rankStatistics)
        encoder.add(point.bestAccuracy == nil ? 0 : 1)
        encoder.add(point.learningRate)
        encoder.add(point.bestAccuracy ?? 0)
    }

    package static func decode(from decoder: inout AgreementDecoder) -> ResumeAgreement {
        let status = decoder.integer()
        var point = ResumePoint()
        point.epoch = decoder.integer()
        point.globalStep = decoder.integer()
        point.stepInEpoch = decoder.integer()
        point.samplerPosition = decoder.integer()
        point.worldSize = decoder.integer()
        point.virtualRanks = decoder.integer()
        point.rankStatistics = decoder.integer()
        let hasBest = decoder.integer() == 1
        point.learningRate = decoder.real()
        let best = decoder.real()
        point.bestAccuracy = hasBest ? best : nil
        switch status {
        case 0: return .startAfresh
        case 1: return .resume(point)
        default: return .failed
        }
    }
}

/// The numeric part of a ``TrainingState`` that a resume shares.
package struct ResumePoint: Sendable, Equatable {
    package var epoch = 0
    package var globalStep = 0
    package var stepInEpoch = 0
    package var samplerPosition = 0
    package var worldSize = 0
    package var virtualRanks = 0
    package var learningRate = 0.0
    package var bestAccuracy: Double?
    /// The number of ranks whose own running statistics the checkpoint holds (a preemption
    /// checkpoint's; 0 otherwise).
    package var rankStatistics = 0

    package init() {}

    package init(_ checkpoint: TrainingCheckpoint) {
        self.init(checkpoint.state)
        rankStatistics = checkpoint.rankStatistics.count
    }

    package init(_ state: TrainingState) {
        epoch = state.epoch
        globalStep = state.globalStep
        stepInEpoch = state.stepInEpoch
        samplerPosition = state.samplerPosition
        worldSize = state.worldSize
        virtualRanks = state.virtualRanks
        learningRate = state.learningRate
        bestAccuracy = state.bestAccuracy
    }
}

// MARK: - Checkpoints

/// Whether a checkpoint was written (by rank 0) or read (by every rank): the number of ranks that
/// failed. The reduction doubles as the barrier after a save.
package struct CheckpointStatus: Agreement, Equatable {
    package var failedRanks: Int

    package init(failed: Bool) { failedRanks = failed ? 1 : 0 }

    package var succeeded: Bool { failedRanks == 0 }

    package func encode(into encoder: inout AgreementEncoder) { encoder.add(failedRanks) }

    package static func decode(from decoder: inout AgreementDecoder) -> CheckpointStatus {
        var status = CheckpointStatus(failed: false)
        status.failedRanks = decoder.integer()
        return status
    }
}

// MARK: - The per-step check

/// What one rank found in its step that stops the job, agreed before the update so every rank
/// stops at the same step: a non-finite loss or gradient (stop before the update), or a preemption
/// request (finish the step, checkpoint, stop). One integer per rank, so the preemption request
/// costs no collective of its own.
package struct StepFlags: OptionSet, Sendable, Agreement {
    package let rawValue: Int
    package init(rawValue: Int) { self.rawValue = rawValue }

    package static let nonFiniteLoss = StepFlags(rawValue: 1)
    package static let nonFiniteGradient = StepFlags(rawValue: 2)
    /// The rank received SIGTERM or SIGUSR1 (``PreemptionSignal``).
    package static let preempt = StepFlags(rawValue: 4)
    /// The flags that stop the job before the update.
    package static let nonFinite: StepFlags = [.nonFiniteLoss, .nonFiniteGradient]

    /// Each rank's flags, in rank order.
    package typealias Outcome = [StepFlags]

    package func encode(into encoder: inout AgreementEncoder) { encoder.addPerRank(rawValue) }

    package static func decode(from decoder: inout AgreementDecoder) -> [StepFlags] {
        decoder.perRank().map(StepFlags.init(rawValue:))
    }

    /// "loss", "gradient" or "loss and gradient".
    package var nonFiniteParts: String {
        [contains(.nonFiniteLoss) ? "loss" : nil, contains(.nonFiniteGradient) ? "gradient" : nil]
            .compactMap { $0 }.joined(separator: " and ")
    }
}

/// The per-step check, and on the steps that end a progress report's window every rank's mean step
/// time over that window: the report's step times ride on the collective every step already makes,
/// so progress reporting adds none of its own. Every rank knows which steps end a window, so every
/// rank encodes the same layout.
package struct StepCheck: Agreement {
    package var flags: StepFlags
    /// This rank's mean step time over the report window, on a step that ends one; otherwise nil.
    package var stepSeconds: Double?

    package init(flags: StepFlags, stepSeconds: Double?) {
        self.flags = flags
        self.stepSeconds = stepSeconds
    }

    /// Each rank's flags, and each rank's step time on a step that ends a report window (rank order).
    package struct Outcome {
        package var flags: [StepFlags]
        package var stepSeconds: [Double]?
    }

    package func encode(into encoder: inout AgreementEncoder) {
        flags.encode(into: &encoder)
        encoder.add(stepSeconds == nil ? 0 : 1)
        if let stepSeconds { StepTimeAgreement(seconds: stepSeconds).encode(into: &encoder) }
    }

    package static func decode(from decoder: inout AgreementDecoder) -> Outcome {
        let flags = StepFlags.decode(from: &decoder)
        let endsWindow = decoder.integer() > 0
        return Outcome(flags: flags, stepSeconds: endsWindow ? StepTimeAgreement.decode(from: &decoder) : nil)
    }
}

// MARK: - Data

/// An epoch's bad input, summed over ranks: samples replaced because their files were bad, and
/// distinct bad files met so far.
package struct BadImageCounts: Agreement, Equatable {
    package var replacedSamples: Int
    package var badFiles: Int

    package init(replacedSamples: Int, badFiles: Int) {
        self.replacedSamples = replacedSamples
        self.badFiles = badFiles
    }

    package func encode(into encoder: inout AgreementEncoder) {
        encoder.add(replacedSamples)
        encoder.add(badFiles)
    }

    package static func decode(from decoder: inout AgreementDecoder) -> BadImageCounts {
        BadImageCounts(replacedSamples: decoder.integer(), badFiles: decoder.integer())
    }
}

/// Validation counts and losses of one rank's shard, summed over ranks (in float64: exact for
/// counts below 2⁵³).
package struct ValidationSums: Agreement, Equatable {
    package var top1Correct = 0.0
    package var top5Correct = 0.0
    package var lossSum = 0.0
    package var images = 0.0

    package init() {}

    package func encode(into encoder: inout AgreementEncoder) {
        encoder.add(top1Correct)
        encoder.add(top5Correct)
        encoder.add(lossSum)
        encoder.add(images)
    }

    package static func decode(from decoder: inout AgreementDecoder) -> ValidationSums {
        var sums = ValidationSums()
        sums.top1Correct = decoder.real()
        sums.top5Correct = decoder.real()
        sums.lossSum = decoder.real()
        sums.images = decoder.real()
        return sums
    }
}
