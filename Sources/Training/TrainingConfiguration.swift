//===----------------------------------------------------------------------===//
// ghostnet-d — Training
//===----------------------------------------------------------------------===//

import Foundation

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
public struct TrainingConfiguration: Sendable {
    /// The `general` section.
    public struct General: Sendable {
        /// Recorded for compatibility with the seed's files; every backend runs on the CPU engine.
        public var backend: String
        public var parallelFullyTrain: Bool
        public var seed: UInt64
    }

    /// A step of `pipeline`.
    public enum PipelineStep: String, Sendable, CaseIterable {
        case fullyTrain = "fully_train"
        case eval
    }

    /// The network named by `model.model_desc.type`.
    public enum Architecture: String, Sendable, CaseIterable {
        case ghostnet101 = "ghostnet_d.ghostnet101"
        case ghostnet50 = "ghostnet_d.ghostnet50"

        /// Residual blocks per stage of the full-size network.
        public var standardBlocks: [Int] {
            switch self {
            case .ghostnet101: [3, 4, 23, 3]
            case .ghostnet50: [3, 4, 6, 3]
            }
        }
    }

    /// `model.model_desc`.
    public struct Model: Sendable {
        public var architecture: Architecture
        /// Stem channels (64 in the full-size network).
        public var width: Int
        public var classCount: Int
        /// Input side length the FLOPs are reported at.
        public var imageSize: Int
        /// Residual blocks per stage (four stages).
        public var blocks: [Int]
    }

    /// `trainer.optimizer`: SGD with momentum and weight decay.
    public struct Optimizer: Sendable {
        public var learningRate: Double
        public var momentum: Double
        public var weightDecay: Double
        /// Parameter-name fragments (e.g. `bn`, `bias`) whose tensors get no weight decay.
        public var noWeightDecay: [String]
    }

    /// `trainer.lr_scheduler`: cosine annealing.
    public struct Scheduler: Sendable {
        /// True: the rate changes once per epoch; false: continuously, every step.
        public var byEpoch: Bool
        /// The annealing period in epochs.
        public var periodEpochs: Int
        public var minimumLearningRate: Double
    }

    /// `trainer`.
    public struct Trainer: Sendable {
        public var epochs: Int
        public var mixup: Bool
        public var mixupAlpha: Double
        public var labelSmoothing: Double
        public var warmupEpochs: Int
        public var optimizer: Optimizer
        public var scheduler: Scheduler
        /// `loss.params.sparse`: labels are class indices.
        public var sparseLabels: Bool
    }

    /// `dataset`.
    public struct Dataset: Sendable {
        /// Absolute path of the ImageNet-layout folder (`train/`, `val/`).
        public var dataPath: String
        /// Images per rank per step (the global batch is this times the world size).
        public var batchSize: Int
        public var classCount: Int
        /// Decoding threads per rank; 0 chooses automatically.
        public var workers: Int
        public var imageSize: Int
        public var colorJitter: Bool
        public var dropLast: Bool
        /// The smallest area fraction of the random-resized crop (torchvision: 0.08); the largest is 1.
        public var cropMinimumScale: Double
        public var validationBatchSize: Int
    }

    /// One pipeline step (`fully_train` or `eval`).
    public struct Step: Sendable {
        /// `pipe_step.models_folder`: the checkpoints an evaluation reads.
        public var modelsFolder: String?
        public var model: Model
        public var trainer: Trainer
        public var dataset: Dataset
    }

    /// The `runtime` section: ghostnet-d's own keys.
    public struct Runtime: Sendable {
        public var checkpointDirectory: String
        /// Checkpoints kept besides the best one.
        public var keepCheckpoints: Int
        /// Also checkpoint every this many steps; 0 checkpoints only at the end of each epoch.
        public var saveSteps: Int
        public var logDirectory: String
        public var coordinatorURL: String?
        public var jobName: String
        /// Steps between progress lines.
        public var reportInterval: Int
        /// Epochs between evaluations.
        public var evalInterval: Int
        /// Fail on an unreadable image instead of replacing it.
        public var strictData: Bool
        /// Seconds a collective may take before the job is aborted.
        public var collectiveTimeout: Double
        /// All-reduce bucket size in MiB.
        public var bucketMebibytes: Double
        /// Steps between cross-rank parameter checksums; 0 never.
        public var checksumInterval: Int
        /// OpenBLAS threads per rank; 0 chooses automatically.
        public var threads: Int
        public var resume: Bool
        /// Train with batch norm in inference mode: normalise with the running statistics and never
        /// update them, so every sample's gradient is independent of the rest of its batch (fine-tuning,
        /// and the check that 2 ranks × batch B equal 1 rank × batch 2B).
        public var freezeBatchNorm: Bool
    }

    /// The file the configuration was read from, as given.
    public let file: String
    public let general: General
    public let pipeline: [PipelineStep]
    public let fullyTrain: Step?
    public let eval: Step?
    public let runtime: Runtime
    /// Every key with its value, defaults and derived values filled in.
    public let resolved: ConfigurationValue

    /// The resolved configuration as block YAML, every key on its own line.
    public var resolvedYAML: String {
        resolved.yamlLines().joined(separator: "\n") + "\n"
    }

    /// The named step.
    ///
    /// - Throws: ``ConfigurationError`` when the file has no such section.
    public func step(_ name: PipelineStep) throws(ConfigurationError) -> Step {
        let step = name == .fullyTrain ? fullyTrain : eval
        guard let step else {
            throw ConfigurationError(file: file, issues: [ConfigurationIssue(
                kind: .missingKey, keyPath: name.rawValue, origin: file,
                message: "this command needs a `\(name.rawValue)` section (and `pipeline: [\(name.rawValue)]`)")])
        }
        return step
    }

    // MARK: - Loading

    /// Reads and validates the configuration file at `path`, then applies `overrides` in order.
    ///
    /// - Parameters:
    ///   - path: The YAML file; named in every error.
    ///   - overrides: Values replacing the file's (`--set` and named flags), typed by their key's schema.
    ///   - currentDirectory: What relative paths in the file are resolved against.
    /// - Throws: ``ConfigurationError`` listing every problem found.
    public static func load(
        contentsOf path: String, overrides: [ConfigurationOverride] = [],
        currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    ) throws(ConfigurationError) -> TrainingConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: ConfigurationValidator.absolutePath(path, relativeTo: currentDirectory), encoding: .utf8)
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw ConfigurationError(file: path, issues: [ConfigurationIssue(
                kind: .unreadableFile, origin: path, message: "cannot read the configuration file: \(reason)")])
        }
        return try parse(yaml: text, file: path, overrides: overrides, currentDirectory: currentDirectory)
    }

    /// Validates the configuration text `yaml`, naming `file` in errors. See ``load(contentsOf:overrides:currentDirectory:)``.
    public static func parse(
        yaml: String, file: String, overrides: [ConfigurationOverride] = [],
        currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    ) throws(ConfigurationError) -> TrainingConfiguration {
        var raw: RawNode
        do {
            raw = try RawNode.parse(yaml: yaml, origin: file)
            for override in overrides {
                let (path, node) = try override.rawNode()
                raw = raw.replacing(path[...], with: node)
            }
        } catch {
            throw ConfigurationError(file: file, issues: [error])
        }
        var validator = ConfigurationValidator(file: file, currentDirectory: currentDirectory)
        var tree = validator.section(ConfigurationSchema.root, raw, path: "")
        guard validator.issues.isEmpty else { throw ConfigurationError(file: file, issues: validator.issues) }

        var issues: [ConfigurationIssue] = []
        let pipeline = tree.textList("pipeline").compactMap(PipelineStep.init(rawValue:))
        if pipeline.isEmpty {
            issues.append(ConfigurationIssue(
                kind: .outOfRange, keyPath: "pipeline", origin: validator.origins["pipeline"] ?? file,
                message: "expected at least one step, e.g. [fully_train]"))
        }
        for step in PipelineStep.allCases {
            let listed = pipeline.contains(step), present = tree[step.rawValue] != nil
            if listed && !present {
                issues.append(ConfigurationIssue(
                    kind: .inconsistent, keyPath: "pipeline", origin: validator.origins["pipeline"] ?? file,
                    message: "names `\(step.rawValue)` but the file has no `\(step.rawValue)` section"))
            } else if present && !listed {
                issues.append(ConfigurationIssue(
                    kind: .inconsistent, keyPath: step.rawValue, origin: validator.origins[step.rawValue] ?? file,
                    message: "the section is not named in `pipeline`; add it there or remove the section"))
            } else if present {
                issues += fillDerivedValues(of: step.rawValue, in: &tree, origins: validator.origins, file: file)
            }
        }
        guard issues.isEmpty else { throw ConfigurationError(file: file, issues: issues) }
        return TrainingConfiguration(file: file, pipeline: pipeline, tree: tree)
    }

    /// Fills the derived keys of the step section `prefix` and checks values that depend on each other.
    private static func fillDerivedValues(
        of prefix: String, in tree: inout ConfigurationValue, origins: [String: String], file: String
    ) -> [ConfigurationIssue] {
        func fill(_ key: String, from source: ConfigurationValue) {
            if tree["\(prefix).\(key)"] == .absent {
                tree.replace(at: "\(prefix).\(key)".split(separator: ".")[...], with: source)
            }
        }
        let architecture = Architecture(rawValue: tree.text("\(prefix).model.model_desc.type"))!
        fill("model.model_desc.blocks", from: .list(architecture.standardBlocks.map(ConfigurationValue.integer)))
        fill("model.model_desc.num_classes", from: tree["\(prefix).dataset.common.n_class"]!)
        fill("trainer.lr_scheduler.params.T_max", from: tree["\(prefix).trainer.epochs"]!)
        fill("dataset.common.image_size", from: tree["\(prefix).model.model_desc.image_size"]!)
        fill("dataset.val.batch_size", from: tree["\(prefix).dataset.common.batch_size"]!)

        var issues: [ConfigurationIssue] = []
        func check(_ holds: Bool, _ key: String, _ message: String) {
            let path = "\(prefix).\(key)"
            if !holds {
                issues.append(ConfigurationIssue(kind: .inconsistent, keyPath: path, origin: origins[path] ?? file, message: message))
            }
        }
        let classes = tree.integer("\(prefix).model.model_desc.num_classes")
        let datasetClasses = tree.integer("\(prefix).dataset.common.n_class")
        check(classes == datasetClasses, "model.model_desc.num_classes",
              "is \(classes) but dataset.common.n_class is \(datasetClasses); they must agree")
        let period = tree.integer("\(prefix).trainer.lr_scheduler.params.T_max")
        let warmup = tree.integer("\(prefix).trainer.warmup_epochs")
        check(warmup < period || warmup == 0, "trainer.warmup_epochs",
              "is \(warmup) but must be less than lr_scheduler.params.T_max (\(period))")
        let learningRate = tree.real("\(prefix).trainer.optimizer.params.lr")
        let minimum = tree.real("\(prefix).trainer.lr_scheduler.params.eta_min")
        check(minimum <= learningRate, "trainer.lr_scheduler.params.eta_min",
              "is \(minimum) but must not exceed optimizer.params.lr (\(learningRate))")
        return issues
    }

    private init(file: String, pipeline: [PipelineStep], tree: ConfigurationValue) {
        self.file = file
        self.pipeline = pipeline
        self.resolved = tree
        general = General(
            backend: tree.text("general.backend"),
            parallelFullyTrain: tree.boolean("general.parallel_fully_train"),
            seed: UInt64(tree.integer("general.seed")))
        fullyTrain = tree["fully_train"] == nil ? nil : Step(tree, prefix: "fully_train")
        eval = tree["eval"] == nil ? nil : Step(tree, prefix: "eval")
        runtime = Runtime(
            checkpointDirectory: tree.text("runtime.checkpoint_dir"),
            keepCheckpoints: tree.integer("runtime.keep_checkpoints"),
            saveSteps: tree.integer("runtime.save_steps"),
            logDirectory: tree.text("runtime.log_dir"),
            coordinatorURL: tree.optionalText("runtime.coordinator_url"),
            jobName: tree.text("runtime.job_name"),
            reportInterval: tree.integer("runtime.report_interval"),
            evalInterval: tree.integer("runtime.eval_interval"),
            strictData: tree.boolean("runtime.strict_data"),
            collectiveTimeout: tree.real("runtime.collective_timeout"),
            bucketMebibytes: tree.real("runtime.bucket_mib"),
            checksumInterval: tree.integer("runtime.checksum_interval"),
            threads: tree.integer("runtime.threads"),
            resume: tree.boolean("runtime.resume"),
            freezeBatchNorm: tree.boolean("runtime.freeze_batch_norm"))
    }
}

extension TrainingConfiguration.Step {
    fileprivate init(_ tree: ConfigurationValue, prefix: String) {
        let model = "\(prefix).model.model_desc", trainer = "\(prefix).trainer", dataset = "\(prefix).dataset"
        modelsFolder = tree.optionalText("\(prefix).pipe_step.models_folder")
        self.model = TrainingConfiguration.Model(
            architecture: TrainingConfiguration.Architecture(rawValue: tree.text("\(model).type"))!,
            width: tree.integer("\(model).width"),
            classCount: tree.integer("\(model).num_classes"),
            imageSize: tree.integer("\(model).image_size"),
            blocks: tree.integerList("\(model).blocks"))
        self.trainer = TrainingConfiguration.Trainer(
            epochs: tree.integer("\(trainer).epochs"),
            mixup: tree.boolean("\(trainer).mixup"),
            mixupAlpha: tree.real("\(trainer).mixup_alpha"),
            labelSmoothing: tree.real("\(trainer).label_smoothing"),
            warmupEpochs: tree.integer("\(trainer).warmup_epochs"),
            optimizer: TrainingConfiguration.Optimizer(
                learningRate: tree.real("\(trainer).optimizer.params.lr"),
                momentum: tree.real("\(trainer).optimizer.params.momentum"),
                weightDecay: tree.real("\(trainer).optimizer.params.weight_decay"),
                noWeightDecay: tree.textList("\(trainer).optimizer.params.no_weight_decay")),
            scheduler: TrainingConfiguration.Scheduler(
                byEpoch: tree.boolean("\(trainer).lr_scheduler.by_epoch"),
                periodEpochs: tree.integer("\(trainer).lr_scheduler.params.T_max"),
                minimumLearningRate: tree.real("\(trainer).lr_scheduler.params.eta_min")),
            sparseLabels: tree.boolean("\(trainer).loss.params.sparse"))
        self.dataset = TrainingConfiguration.Dataset(
            dataPath: tree.text("\(dataset).common.data_path"),
            batchSize: tree.integer("\(dataset).common.batch_size"),
            classCount: tree.integer("\(dataset).common.n_class"),
            workers: tree.integer("\(dataset).common.workers"),
            imageSize: tree.integer("\(dataset).common.image_size"),
            colorJitter: tree.boolean("\(dataset).train.color_jitter"),
            dropLast: tree.boolean("\(dataset).train.drop_last"),
            cropMinimumScale: tree.real("\(dataset).train.crop_min_scale"),
            validationBatchSize: tree.integer("\(dataset).val.batch_size"))
    }
}

// MARK: - Typed reads of a validated tree

// The tree has passed validation, so a missing key or wrong type here is a schema bug, not user input.
extension ConfigurationValue {
    fileprivate func integer(_ path: String) -> Int {
        guard case .integer(let value)? = self[path] else { preconditionFailure("\(path) is not an integer") }
        return value
    }

    fileprivate func real(_ path: String) -> Double {
        guard case .real(let value)? = self[path] else { preconditionFailure("\(path) is not a number") }
        return value
    }

    fileprivate func boolean(_ path: String) -> Bool {
        guard case .boolean(let value)? = self[path] else { preconditionFailure("\(path) is not a boolean") }
        return value
    }

    fileprivate func text(_ path: String) -> String {
        guard let value = optionalText(path) else { preconditionFailure("\(path) is not a text") }
        return value
    }

    fileprivate func optionalText(_ path: String) -> String? {
        guard case .text(let value)? = self[path] else { return nil }
        return value
    }

    fileprivate func integerList(_ path: String) -> [Int] {
        guard case .list(let items)? = self[path] else { preconditionFailure("\(path) is not a list") }
        return items.map { item in
            guard case .integer(let value) = item else { preconditionFailure("\(path) holds a non-integer") }
            return value
        }
    }

    fileprivate func textList(_ path: String) -> [String] {
        guard case .list(let items)? = self[path] else { preconditionFailure("\(path) is not a list") }
        return items.map { item in
            guard case .text(let value) = item else { preconditionFailure("\(path) holds a non-text") }
            return value
        }
    }
}
