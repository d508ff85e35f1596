// A validated training or evaluation configuration as the Trainer reads it: typed sections built
// from the value tree through ``ConfigurationKeys``. Loading and validation: TrainingConfiguration+Loading.swift.

import Distributed
import Foundation
import GhostNet
import TensorEngine

/// A validated training or evaluation configuration, read from the seed's YAML structure.
///
/// The file follows the reference `ghostnet_d.yml`: `general`, `pipeline: [fully_train]` and a
/// `fully_train` step with `pipe_step`, `model.model_desc`, `trainer` and `dataset` (an evaluation
/// file uses an `eval` step, whose `pipe_step.models_folder` names the checkpoints). Our own keys live
/// in the top-level `runtime` section. Every key has a default except the model type and
/// `dataset.common.data_path`.
///
/// Relative paths (`data_path`, `models_folder`, `checkpoint_dir`, `log_dir`) are resolved against the
/// current directory of the process that loads the file, not the file's folder, so
/// `ghostnet-d train --config conf/demo.yml` run from the repository root uses `./demo-run/…`.
package struct TrainingConfiguration: Sendable {
    /// The `general` section.
    package struct General: Sendable {
        /// Recorded for compatibility with the seed's files; every backend runs on the CPU engine.
        package var backend: String
        package var parallelFullyTrain: Bool
        package var seed: UInt64
    }

    /// A step of `pipeline`.
    package enum PipelineStep: String, Sendable, CaseIterable {
        case fullyTrain = "fully_train"
        case eval
    }

    /// `model.model_desc`.
    package struct Model: Sendable {
        /// The network `model.model_desc.type` names (`ghostnet_d.ghostnet101` is
        /// ``GhostNetArchitecture/ghostnet101``).
        package var architecture: GhostNetArchitecture
        /// Stem channels (64 in the full-size network).
        package var width: Int
        package var classCount: Int
        /// Input side length the FLOPs are reported at.
        package var imageSize: Int
        /// Residual blocks per stage (four stages).
        package var blocks: [Int]
    }

    /// `trainer.optimizer`: SGD with momentum and weight decay.
    package struct Optimizer: Sendable {
        package var learningRate: Double
        package var momentum: Double
        package var weightDecay: Double
        /// Parameter-name fragments (e.g. `bn`, `bias`) whose tensors get no weight decay.
        package var noWeightDecay: [String]
    }

    /// `trainer.lr_scheduler`: cosine annealing.
    package struct Scheduler: Sendable {
        /// True: the rate changes once per epoch; false: continuously, every step.
        package var byEpoch: Bool
        /// The annealing period in epochs.
        package var periodEpochs: Int
        package var minimumLearningRate: Double
    }

    /// `trainer`.
    package struct Trainer: Sendable {
        package var epochs: Int
        package var mixup: Bool
        package var mixupAlpha: Double
        package var labelSmoothing: Double
        package var warmupEpochs: Int
        /// Parameter-name prefixes that are not trained (see ``FrozenParameters``).
        package var freeze: [String]
        /// The decay of the weights' moving average; 0 keeps none (see ``WeightEMA``).
        package var emaDecay: Double
        /// `trainer.precision`: the matrix products' precision as configured (``PrecisionChoice/resolved``).
        package var precision: PrecisionChoice
        package var optimizer: Optimizer
        package var scheduler: Scheduler
        /// `loss.params.sparse`: labels are class indices.
        package var sparseLabels: Bool
    }

    /// `dataset`.
    package struct Dataset: Sendable {
        /// Absolute path of the ImageNet-layout folder (`train/`, `val/`).
        package var dataPath: String
        /// Images per rank per step (the global batch is this times the world size).
        package var batchSize: Int
        package var classCount: Int
        /// Decoding threads per rank; 0 chooses automatically.
        package var workers: Int
        package var imageSize: Int
        package var colorJitter: Bool
        package var dropLast: Bool
        /// The smallest area fraction of the random-resized crop (torchvision: 0.08); the largest is 1.
        package var cropMinimumScale: Double
        package var validationBatchSize: Int
    }

    /// One pipeline step (`fully_train` or `eval`).
    package struct Step: Sendable {
        /// `pipe_step.models_folder`: the checkpoints an evaluation reads.
        package var modelsFolder: String?
        package var model: Model
        package var trainer: Trainer
        package var dataset: Dataset
    }

    /// The `runtime` section: ghostnet-d's own keys.
    package struct Runtime: Sendable {
        package var checkpointDirectory: String
        /// Checkpoints kept besides the best one.
        package var keepCheckpoints: Int
        /// Also checkpoint every this many steps; 0 checkpoints only at the end of each epoch.
        package var saveSteps: Int
        package var logDirectory: String
        package var coordinatorURL: String?
        /// The CA file an `https://` coordinator is verified with.
        package var coordinatorCA: String?
        package var jobName: String
        /// Steps between progress lines.
        package var reportInterval: Int
        /// Epochs between evaluations.
        package var evalInterval: Int
        /// Fail on an unreadable image instead of replacing it.
        package var strictData: Bool
        /// Seconds a collective may take before the job is aborted.
        package var collectiveTimeout: Double
        /// All-reduce bucket size in MiB.
        package var bucketMebibytes: Double
        /// Steps between cross-rank parameter checksums; 0 never.
        package var checksumInterval: Int
        /// OpenBLAS threads per rank; 0 chooses automatically.
        package var threads: Int
        package var resume: Bool
        /// The weights file a new run starts from (`runtime.init_from`); nil starts from the seed.
        package var initFrom: String?
        /// Load the matching tensors of `initFrom` even when others do not match.
        package var initPartial: Bool
        /// Train with batch norm in inference mode: normalise with the running statistics and never
        /// update them, so every sample's gradient is independent of the rest of its batch (fine-tuning,
        /// and the check that 2 ranks × batch B equal 1 rank × batch 2B).
        package var freezeBatchNorm: Bool
        /// Start even when ranks load different kernel families or thread counts (logged as a warning).
        package var allowMixedKernels: Bool
        /// Images per forward/backward pass (gradients accumulate over a batch's micro-batches);
        /// nil runs the whole batch at once.
        package var microBatchSize: Int?
        /// The most micro-batches that run at the same time (`runtime.concurrent_micro_batches`).
        package var concurrentMicroBatches: Int
        /// The memory ceiling of one rank (`runtime.memory_limit`).
        package var memoryLimit: MemoryLimit
        /// `runtime.virtual_ranks`: the virtual shards, or nil for the first launch's world size.
        package var virtualRanks: Int?
        /// `runtime.reproducible_reduction`: exact fixed-point gradient sums.
        package var reproducibleReduction: Bool
        /// `runtime.gradient_dtype`: the float reduction's wire format.
        package var gradientWireFormat: GradientWireFormat
    }

    /// The file the configuration was read from, as given.
    package let file: String
    package let general: General
    package let pipeline: [PipelineStep]
    package let fullyTrain: Step?
    package let eval: Step?
    package let runtime: Runtime
    /// Every key with its value, defaults and derived values filled in.
    package let resolved: ConfigurationValue

    /// The resolved configuration as block YAML, every key on its own line.
    package var resolvedYAML: String {
        resolved.yamlLines().joined(separator: "\n") + "\n"
    }

    /// The named step.
    ///
    /// - Throws: ``ConfigurationError`` when the file has no such section.
    package func step(_ name: PipelineStep) throws(ConfigurationError) -> Step {
        let step = name == .fullyTrain ? fullyTrain : eval
        guard let step else {
            throw ConfigurationError(
                file: file,
                issues: [
                    ConfigurationIssue(
                        kind: .missingKey, keyPath: name.rawValue, origin: file,
                        message: "this command needs a `\(name.rawValue)` section (and `pipeline: [\(name.rawValue)]`)")
                ])
        }
        return step
    }

    /// The typed view of a validated tree (see ``parse(yaml:file:overrides:currentDirectory:)``).
    init(file: String, pipeline: [PipelineStep], tree: ConfigurationValue) {
        typealias Key = ConfigurationKeys
        self.file = file
        self.pipeline = pipeline
        self.resolved = tree
        general = General(
            backend: tree.value(Key.backend), parallelFullyTrain: tree.value(Key.parallelFullyTrain),
            seed: UInt64(tree.value(Key.seed)))
        fullyTrain = tree[PipelineStep.fullyTrain.rawValue] == nil ? nil : Step(tree, .fullyTrain)
        eval = tree[PipelineStep.eval.rawValue] == nil ? nil : Step(tree, .eval)
        runtime = Runtime(
            checkpointDirectory: tree.value(Key.checkpointDirectory),
            keepCheckpoints: tree.value(Key.keepCheckpoints),
            saveSteps: tree.value(Key.saveSteps),
            logDirectory: tree.value(Key.logDirectory),
            coordinatorURL: tree.value(Key.coordinatorURL),
            coordinatorCA: tree.value(Key.coordinatorCA),
            jobName: tree.value(Key.jobName),
            reportInterval: tree.value(Key.reportInterval),
            evalInterval: tree.value(Key.evalInterval),
            strictData: tree.value(Key.strictData),
            collectiveTimeout: tree.value(Key.collectiveTimeout),
            bucketMebibytes: tree.value(Key.bucketMebibytes),
            checksumInterval: tree.value(Key.checksumInterval),
            threads: tree.value(Key.threads),
            resume: tree.value(Key.resume),
            initFrom: tree.value(Key.initFrom),
            initPartial: tree.value(Key.initPartial),
            freezeBatchNorm: tree.value(Key.freezeBatchNorm),
            allowMixedKernels: tree.value(Key.allowMixedKernels),
            microBatchSize: tree.value(Key.microBatchSize),
            concurrentMicroBatches: tree.value(Key.concurrentMicroBatches),
            // The schema admitted only spellings MemoryLimit reads.
            memoryLimit: MemoryLimit(tree.value(Key.memoryLimit)) ?? .automatic,
            virtualRanks: tree.value(Key.virtualRanks),
            reproducibleReduction: tree.value(Key.reproducibleReduction),
            gradientWireFormat: GradientWireFormat(rawValue: tree.value(Key.gradientDType))!)
    }
}

extension TrainingConfiguration.Runtime {
    /// The all-reduce bucket size in bytes.
    package var bucketCapacityBytes: Int { ConfigurationKeys.bucketCapacityBytes(mebibytes: bucketMebibytes) }
}

extension TrainingConfiguration.Step {
    fileprivate init(_ tree: ConfigurationValue, _ step: TrainingConfiguration.PipelineStep) {
        typealias Key = ConfigurationKeys
        func value<V>(_ key: ConfigurationKey<V>) -> V { tree.value(key, in: step) }
        modelsFolder = value(Key.modelsFolder)
        guard let architecture = ConfigurationKeys.architecture(modelType: value(Key.modelType)) else {
            preconditionFailure("\(Key.modelType.path(in: step)) holds no known architecture")
        }
        model = TrainingConfiguration.Model(
            architecture: architecture, width: value(Key.width), classCount: value(Key.numClasses),
            imageSize: value(Key.modelImageSize), blocks: value(Key.blocks))
        trainer = TrainingConfiguration.Trainer(
            epochs: value(Key.epochs),
            mixup: value(Key.mixup),
            mixupAlpha: value(Key.mixupAlpha),
            labelSmoothing: value(Key.labelSmoothing),
            warmupEpochs: value(Key.warmupEpochs),
            freeze: value(Key.freeze),
            emaDecay: value(Key.emaDecay),
            precision: PrecisionChoice(rawValue: value(Key.precision))!,
            optimizer: TrainingConfiguration.Optimizer(
                learningRate: value(Key.learningRate), momentum: value(Key.momentum),
                weightDecay: value(Key.weightDecay), noWeightDecay: value(Key.noWeightDecay)),
            scheduler: TrainingConfiguration.Scheduler(
                byEpoch: value(Key.byEpoch), periodEpochs: value(Key.periodEpochs),
                minimumLearningRate: value(Key.minimumLearningRate)),
            sparseLabels: value(Key.sparseLabels))
        dataset = TrainingConfiguration.Dataset(
            dataPath: value(Key.dataPath),
            batchSize: value(Key.batchSize),
            classCount: value(Key.nClass),
            workers: value(Key.workers),
            imageSize: value(Key.datasetImageSize),
            colorJitter: value(Key.colorJitter),
            dropLast: value(Key.dropLast),
            cropMinimumScale: value(Key.cropMinimumScale),
            validationBatchSize: value(Key.validationBatchSize))
    }
}

// The tree has passed validation, so a missing key or a wrong type here is a schema bug, not user input.
extension ConfigurationValue {
    /// The value of `key` (in `step`, for a step key).
    func value<V>(_ key: ConfigurationKey<V>, in step: TrainingConfiguration.PipelineStep? = nil) -> V {
        let path = key.path(in: step)
        guard let node = self[path], let value = V(configurationValue: node) else {
            preconditionFailure("configuration key \(path) does not hold a \(V.self)")
        }
        return value
    }
}
