// Where a run stands (epoch, steps, sampler position, learning rate, best accuracy), as the
// `training.` metadata of a run's checkpoint, read back with every value checked against its bounds.

/// Where a run stands, saved with every checkpoint so a resumed run continues at the exact next step.
///
/// It travels as string metadata (the safetensors `__metadata__` map), under keys prefixed
/// `training.` so they do not collide with the model's own metadata.
package struct TrainingState: Sendable, Equatable {
    /// The epoch the next step belongs to (0-based); equals the number of finished epochs when
    /// `stepInEpoch` is 0.
    package var epoch: Int
    /// Optimizer steps taken since the start of the run.
    package var globalStep: Int
    /// Steps already taken in `epoch`.
    package var stepInEpoch: Int
    /// `general.seed` of the run.
    package var seed: UInt64
    /// Position in the epoch's sample permutation of the next sample to read (over all ranks).
    package var samplerPosition: Int
    /// The learning rate of the last step taken.
    package var learningRate: Double
    /// The best validation top-1 accuracy so far, or nil before the first evaluation.
    package var bestAccuracy: Double?
    /// The checkpoint file holding the best accuracy, kept by ``CheckpointDirectory/prune(keepingAlso:)``.
    package var bestCheckpoint: String?
    /// The number of ranks that wrote the state.
    package var worldSize: Int
    /// The job's virtual shards (`runtime.virtual_ranks`): what the data is sharded over, kept by
    /// a resume on any number of ranks so the job's course stays that of the first launch.
    package var virtualRanks: Int
    /// The precision of the run's matrix products (`fp32` or `bf16`); the checkpoint's tensors are the fp32
    /// master weights either way. Absent in older checkpoints: `fp32`.
    package var precision: String

    /// The spellings of ``precision``.
    package static let precisions = ["fp32", "bf16"]

    /// - Parameter virtualRanks: nil for one per rank (`worldSize`).
    package init(
        epoch: Int = 0, globalStep: Int = 0, stepInEpoch: Int = 0, seed: UInt64, samplerPosition: Int = 0,
        learningRate: Double, bestAccuracy: Double? = nil, bestCheckpoint: String? = nil, worldSize: Int,
        virtualRanks: Int? = nil, precision: String = "fp32"
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
        self.virtualRanks = virtualRanks ?? worldSize
        self.precision = precision
    }

    /// The version of this metadata layout, written as `training.format`.
    package static let formatVersion = "1"

    /// The state as string metadata. Doubles use Swift's shortest round-trip spelling, so reading
    /// them back gives the identical value.
    package var metadata: [String: String] {
        var metadata = [
            "training.format": Self.formatVersion,
            "training.epoch": "\(epoch)",
            "training.global_step": "\(globalStep)",
            "training.step_in_epoch": "\(stepInEpoch)",
            "training.seed": "\(seed)",
            "training.sampler_position": "\(samplerPosition)",
            "training.learning_rate": "\(learningRate)",
            "training.world_size": "\(worldSize)",
            "training.virtual_ranks": "\(virtualRanks)",
            "training.precision": precision,
        ]
        if let bestAccuracy { metadata["training.best_accuracy"] = "\(bestAccuracy)" }
        if let bestCheckpoint { metadata["training.best_checkpoint"] = bestCheckpoint }
        return metadata
    }

    /// The most ranks a checkpoint may record.
    package static let worldSizeRange = 1...(1 << 20)

    /// Reads the state from checkpoint metadata; other keys are ignored.
    ///
    /// Counts must lie in ``Checkpoint/countRange``, the world size and the virtual ranks (absent in
    /// checkpoints older than virtual shards: the world size) in ``worldSizeRange``, the
    /// learning rate must be finite and non-negative, the best accuracy within 0…1, and the best
    /// checkpoint a checkpoint file name.
    ///
    /// - Throws: ``TrainingStateError`` naming the first missing, malformed or out-of-bounds key.
    package init(metadata: [String: String]) throws(TrainingStateError) {
        func value(_ key: String) throws(TrainingStateError) -> String {
            guard let text = metadata[key] else { throw TrainingStateError(key: key, value: nil, expected: "present") }
            return text
        }
        func count(_ key: String, in range: ClosedRange<Int> = Checkpoint.countRange) throws(TrainingStateError) -> Int
        {
            let text = try value(key)
            guard let number = Int(text), range.contains(number) else {
                throw TrainingStateError(
                    key: key, value: text, expected: "an integer in \(range.lowerBound)…\(range.upperBound)")
            }
            return number
        }
        func real(_ text: String, _ key: String, in range: ClosedRange<Double>, _ expected: String)
            throws(TrainingStateError) -> Double
        {
            guard let number = Double(text), number.isFinite, range.contains(number) else {
                throw TrainingStateError(key: key, value: text, expected: expected)
            }
            return number
        }
        let format = try value("training.format")
        guard format == Self.formatVersion else {
            throw TrainingStateError(key: "training.format", value: format, expected: Self.formatVersion)
        }
        let precision = metadata["training.precision"] ?? "fp32"
        guard Self.precisions.contains(precision) else {
            throw TrainingStateError(key: "training.precision", value: precision, expected: "fp32 or bf16")
        }
        let seedText = try value("training.seed")
        guard let seed = UInt64(seedText) else {
            throw TrainingStateError(key: "training.seed", value: seedText, expected: "an unsigned 64-bit integer")
        }
        self.init(
            epoch: try count("training.epoch"),
            globalStep: try count("training.global_step"),
            stepInEpoch: try count("training.step_in_epoch"),
            seed: seed,
            samplerPosition: try count("training.sampler_position"),
            learningRate: try real(
                try value("training.learning_rate"), "training.learning_rate", in: 0...Double.greatestFiniteMagnitude,
                "a finite number ≥ 0"),
            bestAccuracy: try metadata["training.best_accuracy"].map { text throws(TrainingStateError) in
                try real(text, "training.best_accuracy", in: 0...1, "a number in 0…1")
            },
            bestCheckpoint: try metadata["training.best_checkpoint"].map { name throws(TrainingStateError) in
                guard CheckpointDirectory.parse(modelFileName: name) != nil else {
                    throw TrainingStateError(
                        key: "training.best_checkpoint", value: name,
                        expected: "a checkpoint file name such as ckpt-e0003-s000120.safetensors")
                }
                return name
            },
            worldSize: try count("training.world_size", in: Self.worldSizeRange),
            virtualRanks: metadata["training.virtual_ranks"] == nil
                ? nil : try count("training.virtual_ranks", in: Self.worldSizeRange),
            precision: precision)
    }
}

/// Checkpoint metadata that does not describe a training state.
package struct TrainingStateError: Error, Sendable, Equatable, CustomStringConvertible {
    package var key: String
    /// The value found, or nil when the key is missing.
    package var value: String?
    package var expected: String

    package init(key: String, value: String?, expected: String) {
        self.key = key
        self.value = value
        self.expected = expected
    }

    package var description: String {
        if let value { return "checkpoint metadata \(key) is \"\(value)\"; expected \(expected)" }
        return "checkpoint metadata has no \(key)"
    }
}
