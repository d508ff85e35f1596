// Loading a configuration: read the file, apply overrides, check every key against the schema, fill
// derived keys and check the keys that depend on each other. This is the one validator: `config check`
// and `train`/`eval` both run it, so `check` refuses exactly what `train` would.

import Foundation
import GhostNet
import TensorEngine

extension TrainingConfiguration {
    /// Reads and validates the configuration file at `path`, then applies `overrides` in order.
    ///
    /// - Parameters:
    ///   - path: The YAML file; named in every error.
    ///   - overrides: Values replacing the file's (`--set` and named flags), typed by their key's schema.
    ///   - currentDirectory: What relative paths in the file are resolved against.
    /// - Throws: ``ConfigurationError`` listing every problem found.
    package static func load(
        contentsOf path: String, overrides: [ConfigurationOverride] = [],
        currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    ) throws(ConfigurationError) -> TrainingConfiguration {
        let text: String
        let absolutePath = ConfigurationValidator.absolutePath(path, relativeTo: currentDirectory)
        do {
            text = try String(contentsOfFile: absolutePath, encoding: .utf8)
        } catch {
            throw ConfigurationError(
                file: path,
                issues: [
                    ConfigurationIssue(
                        kind: .unreadableFile, origin: path,
                        message:
                            "cannot read the configuration file: \(FileErrorText.reason(error, path: absolutePath))")
                ])
        }
        return try parse(yaml: text, file: path, overrides: overrides, currentDirectory: currentDirectory)
    }

    /// Validates the configuration text `yaml`, naming `file` in errors.
    /// See ``load(contentsOf:overrides:currentDirectory:)``.
    package static func parse(
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

        let origins = validator.origins
        func origin(_ keyPath: String) -> String { origins[keyPath] ?? file }
        var issues: [ConfigurationIssue] = []
        let pipelineKey = ConfigurationKeys.pipeline.path
        let pipeline = tree.value(ConfigurationKeys.pipeline).compactMap(PipelineStep.init(rawValue:))
        if pipeline.isEmpty {
            issues.append(
                ConfigurationIssue(
                    kind: .outOfRange, keyPath: pipelineKey, origin: origin(pipelineKey),
                    message: "expected at least one step, e.g. [fully_train]"))
        }
        for step in PipelineStep.allCases {
            let listed = pipeline.contains(step)
            let present = tree[step.rawValue] != nil
            if listed && !present {
                issues.append(
                    ConfigurationIssue(
                        kind: .inconsistent, keyPath: pipelineKey, origin: origin(pipelineKey),
                        message: "names `\(step.rawValue)` but the file has no `\(step.rawValue)` section"))
            } else if present && !listed {
                issues.append(
                    ConfigurationIssue(
                        kind: .inconsistent, keyPath: step.rawValue, origin: origin(step.rawValue),
                        message: "the section is not named in `pipeline`; add it there or remove the section"))
            } else if present {
                fillDerivedValues(of: step, in: &tree)
                issues += crossKeyIssues(of: step, in: tree, origin: origin)
            }
        }
        if tree.value(ConfigurationKeys.resume), tree.value(ConfigurationKeys.initFrom) != nil {
            let path = ConfigurationKeys.initFrom.path
            issues.append(
                ConfigurationIssue(
                    kind: .inconsistent, keyPath: path, origin: origin(path),
                    message: "is set together with \(ConfigurationKeys.resume.path) (--resume); init_from starts a "
                        + "new run from a file's weights (fresh optimizer, epoch 0), resume continues the run in "
                        + "runtime.checkpoint_dir (its weights, optimizer state and epoch); give one of them "
                        + "(to resume a run started from a file: --resume --set runtime.init_from=null)"))
        }
        guard issues.isEmpty else { throw ConfigurationError(file: file, issues: issues) }
        return TrainingConfiguration(file: file, pipeline: pipeline, tree: tree)
    }

    /// Fills the derived keys of `step` that the file left out.
    private static func fillDerivedValues(of step: PipelineStep, in tree: inout ConfigurationValue) {
        typealias Key = ConfigurationKeys
        func fill<V>(_ key: ConfigurationKey<V>, from value: ConfigurationValue) {
            let path = key.path(in: step)
            if tree[path] == .absent { tree.replace(at: path.split(separator: ".")[...], with: value) }
        }
        func fill<V>(_ key: ConfigurationKey<V>, from source: ConfigurationKey<V>) {
            fill(key, from: tree.value(source, in: step).configurationValue)
        }
        if let architecture = Key.architecture(modelType: tree.value(Key.modelType, in: step)) {
            fill(Key.blocks, from: architecture.blocksPerStage.configurationValue)
        }
        fill(Key.numClasses, from: Key.nClass)
        fill(Key.periodEpochs, from: Key.epochs)
        fill(Key.datasetImageSize, from: Key.modelImageSize)
        fill(Key.validationBatchSize, from: Key.batchSize)
    }

    /// Checks the values of `step` that depend on each other, and that they describe a network
    /// GhostNet can build and batches the trainer can allocate.
    private static func crossKeyIssues(
        of step: PipelineStep, in tree: ConfigurationValue, origin: (String) -> String
    ) -> [ConfigurationIssue] {
        typealias Key = ConfigurationKeys
        var issues: [ConfigurationIssue] = []
        func check<V>(_ holds: Bool, _ key: ConfigurationKey<V>, _ message: String) {
            let path = key.path(in: step)
            if !holds {
                issues.append(
                    ConfigurationIssue(kind: .inconsistent, keyPath: path, origin: origin(path), message: message))
            }
        }
        func value<V>(_ key: ConfigurationKey<V>) -> V { tree.value(key, in: step) }

        let classes = value(Key.numClasses)
        let datasetClasses = value(Key.nClass)
        check(
            classes == datasetClasses, Key.numClasses,
            "is \(classes) but \(Key.nClass.path) is \(datasetClasses); they must agree")
        let period = value(Key.periodEpochs)
        let warmup = value(Key.warmupEpochs)
        check(
            warmup < period || warmup == 0, Key.warmupEpochs,
            "is \(warmup) but must be less than \(Key.periodEpochs.path) (\(period))")
        let learningRate = value(Key.learningRate)
        let minimum = value(Key.minimumLearningRate)
        check(
            minimum <= learningRate, Key.minimumLearningRate,
            "is \(minimum) but must not exceed \(Key.learningRate.path) (\(learningRate))")
        do {
            let network = try GhostNetConfiguration(
                blocksPerStage: value(Key.blocks), width: value(Key.width), classes: classes,
                imageSize: value(Key.modelImageSize))
            let names = FrozenParameters.parameterNames(of: GhostNetStructure(configuration: network))
            for problem in FrozenParameters.problems(value(Key.freeze), names: names) {
                check(false, Key.freeze, problem)
            }
        } catch {
            let path = "\(step.rawValue).model.model_desc"
            issues.append(
                ConfigurationIssue(
                    kind: .outOfRange, keyPath: path, origin: origin(Key.modelType.path(in: step)),
                    message: "describes no network GhostNet can build: \(error.description)"))
        }
        if step == .fullyTrain, let micro = tree.value(Key.microBatchSize) {
            let batch = value(Key.batchSize)
            check(
                micro <= batch, Key.microBatchSize,
                "is \(micro) but \(Key.batchSize.path(in: step)) is \(batch); a micro-batch must not exceed the batch")
        }
        // Ranges bound each factor; the product is bounded here, before any buffer is allocated.
        let side = value(Key.datasetImageSize)
        for key in [Key.batchSize, Key.validationBatchSize] {
            let elements = value(key) * 3 * side * side
            check(
                elements <= Key.maximumInputElements, key,
                "is \(value(key)): a batch of \(value(key)) × 3 × \(side)² floats exceeds the limit of "
                    + "\(Key.maximumInputElements) (8 GiB); lower the batch size or image_size")
        }
        return issues
    }
}
