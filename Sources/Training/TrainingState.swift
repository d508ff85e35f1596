//===----------------------------------------------------------------------===//
// ghostnet-d — Training
//===----------------------------------------------------------------------===//

/// Where a run stands, saved with every checkpoint so a resumed run continues at the exact next step.
///
/// It travels as string metadata (the safetensors `__metadata__` map), under keys prefixed
/// `training.` so they do not collide with the model's own metadata.
public struct TrainingState: Sendable, Equatable {
    /// The epoch the next step belongs to (0-based); equals the number of finished epochs when
    /// `stepInEpoch` is 0.
    public var epoch: Int
    /// Optimizer steps taken since the start of the run.
    public var globalStep: Int
    /// Steps already taken in `epoch`.
    public var stepInEpoch: Int
    /// `general.seed` of the run.
    public var seed: UInt64
    /// Position in the epoch's sample permutation of the next sample to read (over all ranks).
    public var samplerPosition: Int
    /// The learning rate of the last step taken.
    public var learningRate: Double
    /// The best validation top-1 accuracy so far, or nil before the first evaluation.
    public var bestAccuracy: Double?
    /// The checkpoint file holding the best accuracy, kept by ``CheckpointDirectory/prune(keepingAlso:)``.
    public var bestCheckpoint: String?
    /// The number of ranks; resuming is exact only with the same world size.
    public var worldSize: Int

    public init(
        epoch: Int = 0, globalStep: Int = 0, stepInEpoch: Int = 0, seed: UInt64, samplerPosition: Int = 0,
        learningRate: Double, bestAccuracy: Double? = nil, bestCheckpoint: String? = nil, worldSize: Int
    ) {
        self.epoch = epoch
        self.globalStep = globalStep
        self.stepInEpoch = stepInEpoch
        self.seed = seed
        self.samplerPosition = samplerPosition
        self.learningRate = learningRate
        self.bestAccuracy = bestAccuracy
        self.bestCheckpoint = bestCheckpoint
        self.worldSize = worldSize
    }

    /// The version of this metadata layout, written as `training.format`.
    public static let formatVersion = "1"

    /// The state as string metadata. Doubles use Swift's shortest round-trip spelling, so reading
    /// them back gives the identical value.
    public var metadata: [String: String] {
        var metadata = [
            "training.format": Self.formatVersion,
            "training.epoch": "\(epoch)",
            "training.global_step": "\(globalStep)",
            "training.step_in_epoch": "\(stepInEpoch)",
            "training.seed": "\(seed)",
            "training.sampler_position": "\(samplerPosition)",
            "training.learning_rate": "\(learningRate)",
            "training.world_size": "\(worldSize)",
        ]
        if let bestAccuracy { metadata["training.best_accuracy"] = "\(bestAccuracy)" }
        if let bestCheckpoint { metadata["training.best_checkpoint"] = bestCheckpoint }
        return metadata
    }

    /// Reads the state from checkpoint metadata; other keys are ignored.
    ///
    /// - Throws: ``TrainingStateError`` naming the first missing or malformed key.
    public init(metadata: [String: String]) throws(TrainingStateError) {
        func value(_ key: String) throws(TrainingStateError) -> String {
            guard let text = metadata[key] else { throw TrainingStateError(key: key, value: nil, expected: "present") }
            return text
        }
        func count(_ key: String) throws(TrainingStateError) -> Int {
            let text = try value(key)
            guard let number = Int(text), number >= 0 else {
                throw TrainingStateError(key: key, value: text, expected: "a non-negative integer")
            }
            return number
        }
        func real(_ text: String, _ key: String) throws(TrainingStateError) -> Double {
            guard let number = Double(text), number.isFinite else {
                throw TrainingStateError(key: key, value: text, expected: "a finite number")
            }
            return number
        }
        let format = try value("training.format")
        guard format == Self.formatVersion else {
            throw TrainingStateError(key: "training.format", value: format, expected: Self.formatVersion)
        }
        let seedText = try value("training.seed")
        guard let seed = UInt64(seedText) else {
            throw TrainingStateError(key: "training.seed", value: seedText, expected: "an unsigned 64-bit integer")
        }
        let worldSize = try count("training.world_size")
        guard worldSize >= 1 else { throw TrainingStateError(key: "training.world_size", value: "0", expected: "at least 1") }
        self.init(
            epoch: try count("training.epoch"),
            globalStep: try count("training.global_step"),
            stepInEpoch: try count("training.step_in_epoch"),
            seed: seed,
            samplerPosition: try count("training.sampler_position"),
            learningRate: try real(try value("training.learning_rate"), "training.learning_rate"),
            bestAccuracy: try metadata["training.best_accuracy"].map { text throws(TrainingStateError) in
                try real(text, "training.best_accuracy")
            },
            bestCheckpoint: metadata["training.best_checkpoint"],
            worldSize: worldSize)
    }
}

/// Checkpoint metadata that does not describe a training state.
public struct TrainingStateError: Error, Sendable, CustomStringConvertible {
    public var key: String
    /// The value found, or nil when the key is missing.
    public var value: String?
    public var expected: String

    public var description: String {
        if let value { return "checkpoint metadata \(key) is \"\(value)\"; expected \(expected)" }
        return "checkpoint metadata has no \(key)"
    }
}
