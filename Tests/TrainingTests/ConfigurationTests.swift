// Configuration files: the shipped files load with the reference values, every kind of mistake is reported
// with its key and a suggestion, `--set` overrides are typed, and missing folders are found.

import Foundation
import GhostNet
import Testing
import Training
import _TestSupport

/// A minimal valid training file; tests append or replace lines to make it wrong (lines 1-8).
let minimalTraining = """
    pipeline: [fully_train]
    fully_train:
        model:
            model_desc:
                type: ghostnet_d.ghostnet50
        dataset:
            common:
                data_path: /data/imagenet
    """

/// What relative paths in test configurations resolve against.
let configurationRunDirectory = URL(fileURLWithPath: "/work/run")

/// Parses `yaml` expecting failure; returns the issues.
private func issues(
    _ yaml: String, overrides: [ConfigurationOverride] = [], sourceLocation: SourceLocation = #_sourceLocation
) -> [ConfigurationIssue] {
    do {
        let configuration = try TrainingConfiguration.parse(
            yaml: yaml, file: "bad.yml", overrides: overrides, currentDirectory: configurationRunDirectory)
        Issue.record(
            "expected an error, got a configuration:\n\(configuration.resolvedYAML)", sourceLocation: sourceLocation)
        return []
    } catch {
        #expect(error.file == "bad.yml", sourceLocation: sourceLocation)
        #expect(error.description.contains("bad.yml"), sourceLocation: sourceLocation)
        return error.issues
    }
}

@Suite struct ShippedConfigurationTests {
    private func load(_ name: String) throws -> TrainingConfiguration {
        try TrainingConfiguration.load(
            contentsOf: BuiltProducts.packageRoot.appendingPathComponent("conf/\(name)").path,
            currentDirectory: configurationRunDirectory)
    }

    @Test func seedTrainingFileCarriesTheReferenceValues() throws {
        let configuration = try load("ghostnet_d.yml")
        #expect(configuration.pipeline == [.fullyTrain])
        #expect(configuration.general.parallelFullyTrain)
        let step = try configuration.step(.fullyTrain)
        #expect(step.model.architecture == .ghostnet101)
        #expect(step.model.blocks == [3, 4, 23, 3])
        #expect(step.model.width == 64 && step.model.classCount == 1000 && step.model.imageSize == 224)
        #expect(step.trainer.epochs == 120 && step.trainer.mixup)
        expectClose(step.trainer.mixupAlpha, 0.2)
        expectClose(step.trainer.optimizer.learningRate, 0.001)
        expectClose(step.trainer.optimizer.momentum, 0.9)
        expectClose(step.trainer.optimizer.weightDecay, 0.0001)
        #expect(step.trainer.scheduler.byEpoch && step.trainer.scheduler.periodEpochs == 120)
        expectClose(step.trainer.scheduler.minimumLearningRate, 0)
        #expect(step.trainer.sparseLabels)
        #expect(step.dataset.dataPath == "/cache/datasets/ILSVRC/Data/CLS-LOC")
        #expect(
            step.dataset.batchSize == 128 && step.dataset.classCount == 1000 && step.dataset.validationBatchSize == 128)
        #expect(configuration.runtime.keepCheckpoints == 3)
        #expect(configuration.runtime.checkpointDirectory == "/work/run/output/checkpoints")
        #expect(configuration.runtime.coordinatorURL == "http://127.0.0.1:8470")
    }

    @Test func evalFileNamesTheModelsFolder() throws {
        let configuration = try load("eval.yml")
        #expect(configuration.pipeline == [.eval])
        #expect(configuration.fullyTrain == nil)
        let step = try configuration.step(.eval)
        #expect(step.modelsFolder == "/work/run/output/checkpoints")
        #expect(step.model.architecture == .ghostnet101)
        #expect(step.dataset.classCount == 1000)
        #expect(throws: ConfigurationError.self) { try configuration.step(.fullyTrain) }
    }

    @Test func demoFileIsATinyVariantOnRelativePaths() throws {
        let configuration = try load("demo.yml")
        let step = try configuration.step(.fullyTrain)
        #expect(step.model.classCount == 10 && step.model.imageSize == 32 && step.model.width == 16)
        #expect(step.model.blocks == [2, 2, 3, 2])
        #expect(step.dataset.imageSize == 32)
        #expect(step.dataset.dataPath == "/work/run/demo-run/data")
        #expect(configuration.runtime.logDirectory == "/work/run/demo-run/logs")
        #expect(!step.trainer.mixup)
        expectClose(step.trainer.optimizer.learningRate, 0.1)
        // make demo names its coordinator in $GHOSTNET_COORDINATOR instead.
        #expect(configuration.runtime.coordinatorURL == nil)
    }

    @Test func resolvedOutputListsEveryKeyAndParsesBackToTheSameTree() throws {
        let configuration = try load("demo.yml")
        let text = configuration.resolvedYAML
        for line in [
            "  trainer:", "    epochs: 30", "        T_max: 30", "    mixup_alpha: 0.2",
            "  resume: False", "  collective_timeout: 600.0", "        no_weight_decay: []",
        ] {
            #expect(text.contains(line + "\n"), "missing \(line) in\n\(text)")
        }
        let reparsed = try TrainingConfiguration.parse(
            yaml: text, file: "resolved.yml", currentDirectory: configurationRunDirectory)
        #expect(reparsed.resolved == configuration.resolved)
    }

    @Test func theSeedsPathQualifiedModelTypeIsAccepted() throws {
        let yaml = minimalTraining.replacingOccurrences(
            of: "ghostnet_d.ghostnet50", with: "./src/ghostnet_d.ghostnet101")
        let configuration = try TrainingConfiguration.parse(
            yaml: yaml, file: "seed.yml", currentDirectory: configurationRunDirectory)
        #expect(try configuration.step(.fullyTrain).model.architecture == .ghostnet101)
    }
}

@Suite struct ConfigurationErrorTests {
    @Test func unknownKeyNamesItsPathAndTheClosestSibling() {
        let found = issues(minimalTraining + "\n    trainer:\n        epoch: 3\n")
        #expect(found.count == 1)
        #expect(found.first?.kind == .unknownKey)
        #expect(found.first?.keyPath == "fully_train.trainer.epoch")
        #expect(found.first?.suggestion == "fully_train.trainer.epochs")
        #expect(found.first?.origin == "bad.yml:10:16")
    }

    @Test func misplacedKeySuggestsWhereItBelongs() {
        let found = issues(minimalTraining + "\n    trainer:\n        lr: 0.1\n")
        #expect(found.first?.keyPath == "fully_train.trainer.lr")
        #expect(found.first?.suggestion == "fully_train.trainer.optimizer.params.lr")
    }

    @Test(arguments: [
        ("trainer:\n        epochs: 0", "fully_train.trainer.epochs", ConfigurationIssue.Kind.outOfRange),
        ("trainer:\n        epochs: three", "fully_train.trainer.epochs", .wrongType),
        ("trainer:\n        epochs: 2.5", "fully_train.trainer.epochs", .wrongType),
        ("trainer:\n        mixup: maybe", "fully_train.trainer.mixup", .wrongType),
        (
            "trainer:\n        optimizer:\n            params:\n                lr: -0.1",
            "fully_train.trainer.optimizer.params.lr", .outOfRange
        ),
        (
            "trainer:\n        optimizer:\n            params:\n                momentum: 1.0",
            "fully_train.trainer.optimizer.params.momentum", .outOfRange
        ),
        ("trainer:\n        optimizer:\n            type: Adam", "fully_train.trainer.optimizer.type", .unknownChoice),
        (
            "trainer:\n        lr_scheduler:\n            type: StepLR", "fully_train.trainer.lr_scheduler.type",
            .unknownChoice
        ),
        ("trainer:\n        loss:\n            type: MSELoss", "fully_train.trainer.loss.type", .unknownChoice),
        ("trainer:\n        label_smoothing: 1", "fully_train.trainer.label_smoothing", .outOfRange),
        ("trainer: 5", "fully_train.trainer", .wrongType),
    ])
    func badValueNamesItsPathAndWhatWasExpected(snippet: String, keyPath: String, kind: ConfigurationIssue.Kind) {
        let found = issues(minimalTraining + "\n    " + snippet + "\n")
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.keyPath == keyPath)
        #expect(found.first?.kind == kind)
        #expect(found.first?.message.contains("expected") == true, "\(found)")
    }

    @Test func batchSizeZeroIsOutOfRange() {
        let found = issues(minimalTraining + "\n            batch_size: 0\n")
        #expect(found.first?.keyPath == "fully_train.dataset.common.batch_size")
        #expect(found.first?.kind == .outOfRange)
        #expect(found.first?.description.contains("expected an integer in [1, 65536], got `0`") == true, "\(found)")
    }

    @Test func unknownModelTypeSuggestsTheClosestOne() {
        let found = issues(
            minimalTraining.replacingOccurrences(of: "ghostnet_d.ghostnet50", with: "ghostnet_d.ghostnet10"))
        #expect(found.first?.keyPath == "fully_train.model.model_desc.type")
        #expect(found.first?.kind == .unknownChoice)
        #expect(found.first?.suggestion == "ghostnet_d.ghostnet101")
    }

    @Test func missingRequiredKeysAreAllReported() {
        let found = issues("pipeline: [fully_train]\nfully_train:\n    trainer:\n        epochs: 2\n")
        #expect(
            Set(found.compactMap(\.keyPath)) == [
                "fully_train.model.model_desc.type", "fully_train.dataset.common.data_path",
            ])
        #expect(found.allSatisfy { $0.kind == .missingKey })
    }

    @Test func pipelineAndSectionsMustAgree() {
        let missing = issues(
            "pipeline: [fully_train, eval]\n"
                + minimalTraining.split(separator: "\n").dropFirst().joined(separator: "\n"))
        #expect(missing.first?.kind == .inconsistent && missing.first?.keyPath == "pipeline")
        let unlisted = issues(
            minimalTraining.replacingOccurrences(of: "pipeline: [fully_train]", with: "pipeline: [eval]"))
        #expect(unlisted.contains { $0.keyPath == "pipeline" && $0.kind == .inconsistent })
        #expect(unlisted.contains { $0.keyPath == "fully_train" && $0.kind == .inconsistent })
        let misspelt = issues(
            minimalTraining.replacingOccurrences(of: "pipeline: [fully_train]", with: "pipeline: [fully_trian]"))
        #expect(misspelt.first?.kind == .unknownChoice && misspelt.first?.suggestion == "fully_train")
    }

    @Test func classCountsMustAgree() {
        let found = issues(
            minimalTraining.replacingOccurrences(
                of: "type: ghostnet_d.ghostnet50", with: "type: ghostnet_d.ghostnet50\n            num_classes: 10"))
        #expect(found.first?.kind == .inconsistent)
        #expect(found.first?.keyPath == "fully_train.model.model_desc.num_classes")
    }

    @Test func malformedYAMLNamesTheFile() {
        let found = issues("pipeline: [fully_train\n")
        #expect(found.first?.kind == .malformedYAML)
        #expect(found.first?.origin == "bad.yml")
    }

    @Test func anUnreadableFileIsReported() {
        #expect {
            try TrainingConfiguration.load(contentsOf: "/nonexistent/conf.yml")
        } throws: { error in
            let error = error as! ConfigurationError
            return error.issues.first?.kind == .unreadableFile && error.description.contains("/nonexistent/conf.yml")
        }
    }
}

@Suite struct ConfigurationOverrideTests {
    @Test func overridesAreTypedByTheTargetKey() throws {
        let overrides = try [
            "fully_train.trainer.epochs=3", "fully_train.trainer.mixup=True",
            "fully_train.trainer.optimizer.params.lr=0.05", "fully_train.model.model_desc.blocks=[2, 2, 2, 2]",
            "runtime.coordinator_url=http://127.0.0.1:9000", "fully_train.dataset.common.data_path=relative/data",
        ].map { assignment throws(ConfigurationIssue) in try ConfigurationOverride(assignment: assignment) }
        let configuration = try TrainingConfiguration.parse(
            yaml: minimalTraining, file: "base.yml", overrides: overrides, currentDirectory: configurationRunDirectory)
        let step = try configuration.step(.fullyTrain)
        #expect(step.trainer.epochs == 3 && step.trainer.scheduler.periodEpochs == 3)
        #expect(step.trainer.mixup)
        expectClose(step.trainer.optimizer.learningRate, 0.05)
        #expect(step.model.blocks == [2, 2, 2, 2])
        #expect(step.dataset.dataPath == "/work/run/relative/data")
        #expect(configuration.runtime.coordinatorURL == "http://127.0.0.1:9000")
    }

    @Test func aBadOverrideNamesTheFlag() throws {
        let wrongType = issues(
            minimalTraining, overrides: [try ConfigurationOverride(assignment: "fully_train.trainer.epochs=abc")])
        #expect(wrongType.first?.origin == "--set fully_train.trainer.epochs=abc")
        #expect(wrongType.first?.kind == .wrongType)
        #expect(wrongType.first?.keyPath == "fully_train.trainer.epochs")

        let unknown = issues(
            minimalTraining, overrides: [try ConfigurationOverride(assignment: "fully_train.trainer.epohcs=3")])
        #expect(unknown.first?.kind == .unknownKey)
        #expect(unknown.first?.suggestion == "fully_train.trainer.epochs")

        #expect(throws: ConfigurationIssue.self) { try ConfigurationOverride(assignment: "no-equals-sign") }
        let named = ConfigurationOverride(
            keyPath: "runtime.keep_checkpoints", value: "0", origin: "--keep-checkpoints 0")
        let range = issues(minimalTraining, overrides: [named])
        #expect(range.first?.origin == "--keep-checkpoints 0" && range.first?.kind == .outOfRange)
    }
}

@Suite struct EnvironmentValidationTests {
    @Test func missingDataAndModelsFoldersAreReported() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let configuration = try TrainingConfiguration.parse(
            yaml: minimalTraining, file: "env.yml",
            overrides: [
                ConfigurationOverride(keyPath: "fully_train.dataset.common.data_path", value: "data", origin: "test")
            ], currentDirectory: folder)
        let missing = configuration.environmentIssues()
        #expect(missing.count == 1 && missing.first?.kind == .environment)
        #expect(missing.first?.keyPath == "fully_train.dataset.common.data_path")
        #expect(missing.first?.message.contains("does not exist") == true)

        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("data/val"), withIntermediateDirectories: true)
        #expect(configuration.environmentIssues().first?.message.contains("no train/ folder") == true)
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("data/train"), withIntermediateDirectories: true)
        try configuration.validateEnvironment()
    }
}
