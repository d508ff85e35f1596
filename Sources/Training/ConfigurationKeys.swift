// The configuration file's keys, each spelled once with its type, range and default. The schema,
// the reader, the command-line flags and the error messages all take their key paths from this table.

import Distributed
import GhostNet
import TensorEngine

/// A Swift value a configuration key can hold.
package protocol ConfigurationValueConvertible: Sendable {
    /// The value of a validated tree, or nil when `value` has another type.
    init?(configurationValue value: ConfigurationValue)
    var configurationValue: ConfigurationValue { get }
}

extension Int: ConfigurationValueConvertible {
    package init?(configurationValue value: ConfigurationValue) {
        guard case .integer(let integer) = value else { return nil }
        self = integer
    }
    package var configurationValue: ConfigurationValue { .integer(self) }
}

extension Double: ConfigurationValueConvertible {
    package init?(configurationValue value: ConfigurationValue) {
        guard case .real(let real) = value else { return nil }
        self = real
    }
    package var configurationValue: ConfigurationValue { .real(self) }
}

extension Bool: ConfigurationValueConvertible {
    package init?(configurationValue value: ConfigurationValue) {
        guard case .boolean(let boolean) = value else { return nil }
        self = boolean
    }
    package var configurationValue: ConfigurationValue { .boolean(self) }
}

extension String: ConfigurationValueConvertible {
    package init?(configurationValue value: ConfigurationValue) {
        guard case .text(let text) = value else { return nil }
        self = text
    }
    package var configurationValue: ConfigurationValue { .text(self) }
}

/// An optional key: `nil` is a key that was not given (`null` in the resolved YAML).
extension Optional: ConfigurationValueConvertible where Wrapped: ConfigurationValueConvertible {
    package init?(configurationValue value: ConfigurationValue) {
        if case .absent = value {
            self = .none
        } else if let wrapped = Wrapped(configurationValue: value) {
            self = .some(wrapped)
        } else {
            return nil
        }
    }
    package var configurationValue: ConfigurationValue { map(\.configurationValue) ?? .absent }
}

extension Array: ConfigurationValueConvertible where Element: ConfigurationValueConvertible {
    package init?(configurationValue value: ConfigurationValue) {
        guard case .list(let items) = value else { return nil }
        var elements: [Element] = []
        for item in items {
            guard let element = Element(configurationValue: item) else { return nil }
            elements.append(element)
        }
        self = elements
    }
    package var configurationValue: ConfigurationValue { .list(map(\.configurationValue)) }
}

/// One key of the configuration file whose resolved value has the Swift type `Value`.
package struct ConfigurationKey<Value: ConfigurationValueConvertible>: Sendable {
    /// The dotted path: from the file's root, or for a step key from the step (`trainer.epochs`).
    package let path: String
    /// True for keys inside a pipeline step (`fully_train` or `eval`).
    package let isStepKey: Bool
    let kind: SchemaKind
    let defaultValue: DefaultValue

    fileprivate init(_ path: String, step: Bool, _ kind: SchemaKind, _ defaultValue: DefaultValue) {
        self.path = path
        self.isStepKey = step
        self.kind = kind
        self.defaultValue = defaultValue
    }

    /// The full dotted path, e.g. `fully_train.trainer.epochs`; `step` is ignored for root keys.
    package func path(in step: TrainingConfiguration.PipelineStep?) -> String {
        guard isStepKey, let step else { return path }
        return "\(step.rawValue).\(path)"
    }

    /// The value used when the file does not give the key (only for keys with a fixed default).
    package var defaultSetting: Value {
        guard case .value(let value) = defaultValue, let setting = Value(configurationValue: value) else {
            preconditionFailure("configuration key \(path) has no fixed default")
        }
        return setting
    }

    /// What the key accepts, e.g. `a number in (0, 86400]`.
    package var expectation: String { kind.expectation }

    /// What is wrong with `value` for this key ("expected an integer in [1, 1024], got 0"), or nil
    /// when it is acceptable: the range check a command-line flag shares with the file's key.
    package func problem(with value: Value) -> String? {
        let given = value.configurationValue
        let fits: Bool
        switch (kind, given) {
        case (.integer(let bounds), .integer(let integer)): fits = bounds.contains(Double(integer))
        case (.real(let bounds), .real(let real)): fits = bounds.contains(real)
        default: return nil
        }
        return fits ? nil : "expected \(kind.expectation), got \(given.yamlScalar)"
    }

    var entry: SchemaEntry { SchemaEntry(path: path, kind: kind, defaultValue: defaultValue) }
}

/// A key of the table without its Swift type: what the schema tree is built from.
struct SchemaEntry: Sendable {
    let path: String
    let kind: SchemaKind
    let defaultValue: DefaultValue
}

// Shorthands for the table below.
private func root<V>(_ path: String, _ kind: SchemaKind, _ value: V) -> ConfigurationKey<V> {
    ConfigurationKey(path, step: false, kind, .value(value.configurationValue))
}
private func root<V>(_ path: String, _ kind: SchemaKind, _ defaultValue: DefaultValue) -> ConfigurationKey<V> {
    ConfigurationKey(path, step: false, kind, defaultValue)
}
private func step<V>(_ path: String, _ kind: SchemaKind, _ value: V) -> ConfigurationKey<V> {
    ConfigurationKey(path, step: true, kind, .value(value.configurationValue))
}
private func step<V>(_ path: String, _ kind: SchemaKind, _ defaultValue: DefaultValue) -> ConfigurationKey<V> {
    ConfigurationKey(path, step: true, kind, defaultValue)
}

/// Every key of a configuration file: the seed's structure plus ghostnet-d's `runtime` section.
///
/// Ranges are what the trainer can run, so that nothing that passes `config check` traps later:
/// counts and sizes stop far below the integer limits, and every number is finite.
package enum ConfigurationKeys {
    /// The `model.model_desc.type` spelling of each architecture.
    package static func modelType(_ architecture: GhostNetArchitecture) -> String {
        "ghostnet_d.\(architecture.rawValue)"
    }

    /// The architecture a validated `model.model_desc.type` names.
    package static func architecture(modelType: String) -> GhostNetArchitecture? {
        GhostNetArchitecture.allCases.first { self.modelType($0) == modelType }
    }

    /// The largest input batch, batch_size × 3 × image_size² floats (8 GiB), checked across keys.
    package static let maximumInputElements = 1 << 31

    /// The largest values GhostNet accepts for a network.
    private static let network = (
        classes: Double(GhostNetConfiguration.classesRange.upperBound),
        imageSize: Double(GhostNetConfiguration.imageSizeRange.upperBound),
        blocks: Double(GhostNetConfiguration.blocksRange.upperBound)
    )

    // MARK: general, pipeline

    static let backend: ConfigurationKey<String> = root(
        "general.backend", .text(.choice(["cpu", "mindspore", "pytorch"])), "cpu")
    package static let parallelFullyTrain: ConfigurationKey<Bool> = root("general.parallel_fully_train", .boolean, true)
    package static let seed: ConfigurationKey<Int> = root("general.seed", .integer(.between(0, 4_294_967_295)), 0)
    package static let pipeline: ConfigurationKey<[String]> = root(
        "pipeline", .textList(choices: TrainingConfiguration.PipelineStep.allCases.map(\.rawValue)), ["fully_train"])

    // MARK: a pipeline step

    static let pipeStepType: ConfigurationKey<String> = step(
        "pipe_step.type", .text(.choice(["TrainPipeStep"])), "TrainPipeStep")
    package static let modelsFolder: ConfigurationKey<String?> = step("pipe_step.models_folder", .text(.path), .absent)
    package static let modelType: ConfigurationKey<String> = step(
        "model.model_desc.type",
        .text(.choice(GhostNetArchitecture.allCases.map(modelType), lastPathComponent: true)), .required)
    package static let width: ConfigurationKey<Int> = step(
        "model.model_desc.width", .integer(.integers(GhostNetConfiguration.widthRange)),
        GhostNetConfiguration.defaultWidth)
    package static let numClasses: ConfigurationKey<Int> = step(
        "model.model_desc.num_classes", .integer(.between(2, network.classes)), .derived(nClass.path))
    package static let modelImageSize: ConfigurationKey<Int> = step(
        "model.model_desc.image_size", .integer(.between(8, network.imageSize)), GhostNetConfiguration.defaultImageSize)
    package static let blocks: ConfigurationKey<[Int]> = step(
        "model.model_desc.blocks", .integerList(.between(2, network.blocks), count: 4), .derived("the model type"))

    static let trainerType: ConfigurationKey<String> = step("trainer.type", .text(.choice(["Trainer"])), "Trainer")
    package static let epochs: ConfigurationKey<Int> = step("trainer.epochs", .integer(.between(1, 100_000)), 120)
    package static let mixup: ConfigurationKey<Bool> = step("trainer.mixup", .boolean, false)
    package static let mixupAlpha: ConfigurationKey<Double> = step(
        "trainer.mixup_alpha", .real(.between(0, 1000, lowerInclusive: false)), 0.2)
    package static let labelSmoothing: ConfigurationKey<Double> = step(
        "trainer.label_smoothing", .real(.unitHalfOpen), 0.0)
    package static let warmupEpochs: ConfigurationKey<Int> = step(
        "trainer.warmup_epochs", .integer(.between(0, 100_000)), 0)
    /// Parameter-name prefixes (`conv1`, `layer1`, `layer2.base`) that are not trained; see ``FrozenParameters``.
    package static let freeze: ConfigurationKey<[String]> = step("trainer.freeze", .textList(choices: nil), [String]())
    /// The decay of the weights' exponential moving average (``WeightEMA``); 0 keeps no average.
    package static let emaDecay: ConfigurationKey<Double> = step("trainer.ema_decay", .real(.unitHalfOpen), 0.0)
    /// The matrix products' precision (``PrecisionChoice``): `auto` is bf16 only with native bf16 dot products.
    package static let precision: ConfigurationKey<String> = step(
        "trainer.precision", .text(.choice(PrecisionChoice.allCases.map(\.rawValue))), "fp32")
    static let optimizerType: ConfigurationKey<String> = step("trainer.optimizer.type", .text(.choice(["SGD"])), "SGD")
    package static let learningRate: ConfigurationKey<Double> = step(
        "trainer.optimizer.params.lr", .real(.between(0, 100, lowerInclusive: false)), 0.001)
    package static let momentum: ConfigurationKey<Double> = step(
        "trainer.optimizer.params.momentum", .real(.unitHalfOpen), 0.9)
    package static let weightDecay: ConfigurationKey<Double> = step(
        "trainer.optimizer.params.weight_decay", .real(.between(0, 1)), 0.0001)
    package static let noWeightDecay: ConfigurationKey<[String]> = step(
        "trainer.optimizer.params.no_weight_decay", .textList(choices: nil), [String]())
    static let schedulerType: ConfigurationKey<String> = step(
        "trainer.lr_scheduler.type", .text(.choice(["CosineAnnealingLR"])), "CosineAnnealingLR")
    package static let byEpoch: ConfigurationKey<Bool> = step("trainer.lr_scheduler.by_epoch", .boolean, true)
    package static let periodEpochs: ConfigurationKey<Int> = step(
        "trainer.lr_scheduler.params.T_max", .integer(.between(1, 100_000)), .derived(epochs.path))
    package static let minimumLearningRate: ConfigurationKey<Double> = step(
        "trainer.lr_scheduler.params.eta_min", .real(.between(0, 100)), 0.0)
    static let lossType: ConfigurationKey<String> = step(
        "trainer.loss.type", .text(.choice(["CrossEntropyLoss"])), "CrossEntropyLoss")
    package static let sparseLabels: ConfigurationKey<Bool> = step("trainer.loss.params.sparse", .boolean, true)

    static let datasetType: ConfigurationKey<String> = step("dataset.type", .text(.choice(["Imagenet"])), "Imagenet")
    package static let dataPath: ConfigurationKey<String> = step("dataset.common.data_path", .text(.path), .required)
    package static let batchSize: ConfigurationKey<Int> = step(
        "dataset.common.batch_size", .integer(.between(1, 65_536)), 128)
    package static let nClass: ConfigurationKey<Int> = step(
        "dataset.common.n_class", .integer(.between(2, network.classes)), GhostNetConfiguration.defaultClasses)
    package static let workers: ConfigurationKey<Int> = step("dataset.common.workers", .integer(.between(0, 256)), 0)
    package static let datasetImageSize: ConfigurationKey<Int> = step(
        "dataset.common.image_size", .integer(.between(8, network.imageSize)), .derived(modelImageSize.path))
    package static let colorJitter: ConfigurationKey<Bool> = step("dataset.train.color_jitter", .boolean, false)
    package static let dropLast: ConfigurationKey<Bool> = step("dataset.train.drop_last", .boolean, false)
    package static let cropMinimumScale: ConfigurationKey<Double> = step(
        "dataset.train.crop_min_scale", .real(.between(0, 1, lowerInclusive: false)), 0.08)
    package static let validationBatchSize: ConfigurationKey<Int> = step(
        "dataset.val.batch_size", .integer(.between(1, 65_536)), .derived(batchSize.path))

    // MARK: runtime

    package static let checkpointDirectory: ConfigurationKey<String> = root(
        "runtime.checkpoint_dir", .text(.path), "checkpoints")
    package static let keepCheckpoints: ConfigurationKey<Int> = root(
        "runtime.keep_checkpoints", .integer(.between(1, 1000)), 3)
    package static let saveSteps: ConfigurationKey<Int> = root(
        "runtime.save_steps", .integer(.between(0, 1_000_000_000)), 0)
    package static let logDirectory: ConfigurationKey<String> = root("runtime.log_dir", .text(.path), "logs")
    package static let coordinatorURL: ConfigurationKey<String?> = root(
        "runtime.coordinator_url", .text(.httpURL), .absent)
    /// The PEM file of the CA an `https://` coordinator is verified with (else GHOSTNET_COORDINATOR_CA).
    package static let coordinatorCA: ConfigurationKey<String?> = root("runtime.coordinator_ca", .text(.path), .absent)
    package static let jobName: ConfigurationKey<String> = root("runtime.job_name", .text(.plain), "ghostnet-d")
    package static let reportInterval: ConfigurationKey<Int> = root(
        "runtime.report_interval", .integer(.between(1, 1_000_000_000)), 20)
    package static let evalInterval: ConfigurationKey<Int> = root(
        "runtime.eval_interval", .integer(.between(1, 100_000)), 1)
    package static let strictData: ConfigurationKey<Bool> = root("runtime.strict_data", .boolean, false)
    /// Seconds; the one default of the collective watchdog (`--collective-timeout` shows it too).
    package static let collectiveTimeout: ConfigurationKey<Double> = root(
        "runtime.collective_timeout", .real(.between(0, 86_400, lowerInclusive: false)),
        DistributedDefaults.collectiveTimeout.inSeconds)
    /// MiB, at most 4 GiB; see ``bucketCapacityBytes(mebibytes:)``.
    package static let bucketMebibytes: ConfigurationKey<Double> = root(
        "runtime.bucket_mib", .real(.between(0, 4096, lowerInclusive: false)),
        Double(DistributedDefaults.bucketCapacityBytes) / 1_048_576)

    /// A bucket size in bytes: at least one float, so a tiny `bucket_mib` still makes progress.
    package static func bucketCapacityBytes(mebibytes: Double) -> Int { max(4, Int(mebibytes * 1_048_576)) }
    package static let checksumInterval: ConfigurationKey<Int> = root(
        "runtime.checksum_interval", .integer(.between(0, 1_000_000_000)), 100)
    package static let threads: ConfigurationKey<Int> = root("runtime.threads", .integer(.between(0, 1024)), 0)
    package static let resume: ConfigurationKey<Bool> = root("runtime.resume", .boolean, false)
    /// The weights a new run starts from (`--init-from`): a ghostnet-d checkpoint, a PyTorch
    /// state_dict in safetensors or a MindSpore `.ckpt`; never together with `resume`.
    package static let initFrom: ConfigurationKey<String?> = root("runtime.init_from", .text(.path), .absent)
    /// Start from the tensors of `init_from` that match even when others do not (`--init-partial`).
    package static let initPartial: ConfigurationKey<Bool> = root("runtime.init_partial", .boolean, false)
    package static let freezeBatchNorm: ConfigurationKey<Bool> = root("runtime.freeze_batch_norm", .boolean, false)
    /// Images per forward/backward pass; the batch runs as micro-batches with gradient accumulation.
    /// Absent: the whole batch at once.
    package static let microBatchSize: ConfigurationKey<Int?> = root(
        "runtime.micro_batch_size", .integer(.between(1, 65_536)), .absent)
    /// Micro-batches that run at the same time, each on its share of the rank's threads (at most the
    /// threads; see ``MicroBatchPlan/lanes``).
    package static let concurrentMicroBatches: ConfigurationKey<Int> = root(
        "runtime.concurrent_micro_batches", .integer(.between(1, 1024)), 1)
    /// The memory ceiling of one rank, `auto` or a size in [1 MB, 1 PB] (`6GB`, `6GiB`; see
    /// ``MemoryLimit``); without `micro_batch_size` the planner picks the micro-batch under it.
    package static let memoryLimit: ConfigurationKey<String> = root("runtime.memory_limit", .text(.memorySize), "auto")
    /// The virtual shards the data is sharded over (absent: the first launch's world size, then the
    /// checkpoint's); a rank runs its share of them, so fewer ranks keep the job's course.
    package static let virtualRanks: ConfigurationKey<Int?> = root(
        "runtime.virtual_ranks", .integer(.between(1, 1_048_576)), .absent)
    /// Sum gradients exactly in 64-bit fixed point: bit-identical for any number of ranks.
    package static let reproducibleReduction: ConfigurationKey<Bool> = root(
        "runtime.reproducible_reduction", .boolean, false)
    /// The gradients' wire format: `bf16` all-gathers bf16 buckets (half the bytes on two ranks) and every
    /// rank sums them in fp32; the fixed-point reduction (`reproducible_reduction`) does not use it.
    package static let gradientDType: ConfigurationKey<String> = root(
        "runtime.gradient_dtype", .text(.choice(GradientWireFormat.allCases.map(\.rawValue))), "fp32")
    /// Kernel families and thread counts may differ between ranks (a warning, not a stop; issue 20).
    package static let allowMixedKernels: ConfigurationKey<Bool> = root("runtime.allow_mixed_kernels", .boolean, false)

    // MARK: The tables

    /// The keys of one pipeline step, in file order.
    static let stepTable: [SchemaEntry] = [
        pipeStepType.entry, modelsFolder.entry,
        modelType.entry, width.entry, numClasses.entry, modelImageSize.entry, blocks.entry,
        trainerType.entry, epochs.entry, mixup.entry, mixupAlpha.entry, labelSmoothing.entry, warmupEpochs.entry,
        freeze.entry, emaDecay.entry, precision.entry,
        optimizerType.entry, learningRate.entry, momentum.entry, weightDecay.entry, noWeightDecay.entry,
        schedulerType.entry, byEpoch.entry, periodEpochs.entry, minimumLearningRate.entry,
        lossType.entry, sparseLabels.entry,
        datasetType.entry, dataPath.entry, batchSize.entry, nClass.entry, workers.entry, datasetImageSize.entry,
        colorJitter.entry, dropLast.entry, cropMinimumScale.entry, validationBatchSize.entry,
    ]

    /// The whole file, in file order; each step section holds ``stepTable``.
    static let rootTable: [SchemaEntry] =
        [
            backend.entry, parallelFullyTrain.entry, seed.entry, pipeline.entry,
        ]
        + TrainingConfiguration.PipelineStep.allCases.map { step in
            SchemaEntry(path: step.rawValue, kind: .section(ConfigurationSchema.tree(stepTable)), defaultValue: .absent)
        } + [
            checkpointDirectory.entry, keepCheckpoints.entry, saveSteps.entry, logDirectory.entry, coordinatorURL.entry,
            coordinatorCA.entry, jobName.entry, reportInterval.entry, evalInterval.entry, strictData.entry,
            collectiveTimeout.entry,
            bucketMebibytes.entry, checksumInterval.entry, threads.entry, resume.entry, initFrom.entry,
            initPartial.entry, freezeBatchNorm.entry,
            allowMixedKernels.entry, microBatchSize.entry, concurrentMicroBatches.entry, memoryLimit.entry,
            virtualRanks.entry,
            reproducibleReduction.entry, gradientDType.entry,
        ]
}
