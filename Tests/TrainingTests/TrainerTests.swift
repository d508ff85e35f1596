// The Trainer on a tiny job with thread ranks: scheduled learning rates, bit-identical resume (also from
// mid-epoch and past a truncated checkpoint), clean stops on non-finite loss or unwritable checkpoints.

import Checkpoints
import Distributed
import Foundation
import GhostNet
import ImageData
import Logging
import TensorEngine
import Testing
import Training
import _TestSupport

/// A tiny training job: a synthetic dataset of 4 classes × 6 small JPEGs (2 val each), a
/// ghostnet50-shaped network of width 4 at 16×16, batch 4 per rank.
struct TinyJob {
    static let dataset = TinyDatasets.make(trainPerClass: 6, prefix: "ghostnet-trainer-data")

    let folder: URL

    init() throws {
        folder = try TemporaryDirectory.make(prefix: "ghostnet-trainer-run")
    }

    var checkpointFolder: URL { folder.appendingPathComponent("checkpoints") }

    /// The configuration with `overrides` (`key.path=value`) applied.
    func configuration(_ overrides: [String] = []) throws -> TrainingConfiguration {
        let yaml = """
            general:
                seed: 3
            pipeline: [fully_train]
            fully_train:
                model:
                    model_desc:
                        type: ghostnet_d.ghostnet50
                        width: 4
                        image_size: 16
                        blocks: [2, 2, 2, 2]
                trainer:
                    epochs: 4
                    mixup: True
                    optimizer:
                        type: SGD
                        params:
                            lr: 0.05
                            momentum: 0.9
                            weight_decay: 0.0001
                    lr_scheduler:
                        type: CosineAnnealingLR
                        by_epoch: False
                        params:
                            T_max: 4
                dataset:
                    common:
                        data_path: \(Self.dataset)
                        batch_size: 4
                        n_class: 4
                        workers: 1
                    train:
                        crop_min_scale: 0.5
            runtime:
                checkpoint_dir: \(checkpointFolder.path)
                log_dir: \(folder.appendingPathComponent("logs").path)
                keep_checkpoints: 2
                report_interval: 3
                checksum_interval: 2
            """
        return try TrainingConfiguration.parse(
            yaml: yaml, file: "tiny.yml", overrides: try overrides.map(ConfigurationOverride.init(assignment:)))
    }

    /// A trainer for rank `communicator.rank`, logging to `<folder>/logs/train-rank<r>.log`.
    func trainer(_ overrides: [String] = [], communicator: any Communicator = LocalCommunicator.group(size: 1)[0])
        throws -> Trainer
    {
        let configuration = try configuration(overrides)
        let sink = try TrainingLogSink(
            logDirectory: URL(fileURLWithPath: configuration.runtime.logDirectory), rank: communicator.rank,
            echoToStandardOutput: false)
        let logger = Logger(label: "test") { _ in TrainingLogHandler(sink: sink) }
        let (index, _) = try DatasetIndex.load(dataPath: Self.dataset, cache: .disabled)
        return try Trainer(configuration: configuration, dataset: index, communicator: communicator, logger: logger)
    }

    func log(rank: Int = 0) -> String {
        (try? String(contentsOf: folder.appendingPathComponent("logs/train-rank\(rank).log"), encoding: .utf8)) ?? ""
    }
}

/// The trained state of a model as bit patterns: parameters, then running statistics.
func modelBits(_ model: GhostNetModel) -> [[UInt32]] {
    bitPatterns((model.parameters + model.runningStatistics).map(\.scalars))
}

/// Records an issue naming the first tensor and element whose bit patterns differ.
func expectBitIdentical(_ actual: [[UInt32]], _ expected: [[UInt32]], sourceLocation: SourceLocation = #_sourceLocation)
{
    guard actual.count == expected.count else {
        Issue.record("\(actual.count) tensors vs expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    for (index, (tensor, reference)) in zip(actual, expected).enumerated() where tensor != reference {
        let shared = min(tensor.count, reference.count)
        let element = (0..<shared).first { tensor[$0] != reference[$0] } ?? shared
        let found = element < tensor.count ? "\(Float(bitPattern: tensor[element]))" : "nothing"
        let wanted = element < reference.count ? "\(Float(bitPattern: reference[element]))" : "nothing"
        Issue.record(
            "tensor \(index) differs first at element \(element): \(found) vs \(wanted)", sourceLocation: sourceLocation
        )
        return
    }
}

@Suite(.serialized) struct TrainerTests {
    @Test func everyStepUsesTheScheduledLearningRate() throws {
        let job = try TinyJob()
        let trainer = try job.trainer(["fully_train.trainer.epochs=2", "fully_train.trainer.warmup_epochs=1"])
        try trainer.run()
        let steps = trainer.stepsPerEpoch
        let schedule = LearningRateSchedule(
            baseLearningRate: 0.05, periodEpochs: 4, warmupEpochs: 1, byEpoch: false, stepsPerEpoch: steps)
        let checkpoints = try CheckpointDirectory(url: job.checkpointFolder, keep: 2).list()
        #expect(checkpoints.map(\.epoch) == [2, 1])
        for entry in checkpoints {
            let saved = try TrainingCheckpoint(contentsOf: entry, slots: trainer.model.parameterSlots).state
            #expect(saved.globalStep == entry.epoch * steps)
            #expect(saved.stepInEpoch == 0 && saved.epoch == entry.epoch)
            // The rate of the epoch's last step: warm-up ramp in epoch 1, cosine in epoch 2.
            expectClose(
                saved.learningRate, schedule.learningRate(epoch: entry.epoch - 1, stepInEpoch: steps - 1), relative: 0,
                absolute: 0)
        }
        expectClose(schedule.learningRate(epoch: 0, stepInEpoch: steps - 1), 0.05, relative: 1e-12)
        #expect(job.log().contains("effective global batch 4"))
        #expect(job.log().contains("validation after epoch 2: top-1"))
    }

    @Test func resumedRunEndsBitIdenticalToAnUninterruptedOne() throws {
        let uninterrupted = try TinyJob().trainer()
        try uninterrupted.run()

        let job = try TinyJob()
        try job.trainer(["fully_train.trainer.epochs=2"]).run()
        let resumed = try job.trainer(["runtime.resume=True"])
        try resumed.run()
        #expect(job.log().contains("resume: continuing at epoch 3, step 1"), "\(job.log())")
        #expect(resumed.state.globalStep == uninterrupted.state.globalStep)
        expectBitIdentical(modelBits(resumed.model), modelBits(uninterrupted.model))
        // The saved momentum of the last checkpoints is the same too.
        let slots = resumed.model.parameterSlots
        let last = try CheckpointDirectory(url: job.checkpointFolder, keep: 2).list()[0]
        let reference = try TrainingCheckpoint(
            contentsOf: CheckpointDirectory(url: TinyJob.checkpoints(of: uninterrupted), keep: 2).list()[0],
            slots: slots)
        let momentum = try TrainingCheckpoint(contentsOf: last, slots: slots).momentum
        expectBitIdentical(bitPatterns(momentum.map(\.scalars)), bitPatterns(reference.momentum.map(\.scalars)))
    }

    /// A `save_steps` checkpoint in the middle of an epoch resumes at the next batch of the same
    /// epoch, with the same sampler order, mixup draws and learning rates; also when each batch
    /// of 4 runs as micro-batches of 2 with accumulated gradients, one after another or side by side.
    @Test(arguments: [
        [], ["runtime.micro_batch_size=2"], ["runtime.micro_batch_size=2", "runtime.concurrent_micro_batches=2"],
    ])
    func resumingFromAMidEpochCheckpointIsExact(microBatches: [String]) throws {
        let job = try TinyJob()
        let settings = ["runtime.save_steps=4", "runtime.keep_checkpoints=20"] + microBatches
        let uninterrupted = try job.trainer(settings)
        try uninterrupted.run()
        // Forget everything after global step 8 (epoch 2, step 2 of 6), as if the job died there.
        for entry in try CheckpointDirectory(url: job.checkpointFolder, keep: 20).list() where entry.globalStep > 8 {
            try FileManager.default.removeItem(at: entry.modelURL)
            try FileManager.default.removeItem(at: entry.optimizerURL)
        }
        let resumed = try job.trainer(settings + ["runtime.resume=True"])
        try resumed.run()
        #expect(
            job.log().contains("resume: reading \(job.checkpointFolder.path)/ckpt-e0001-s000008.safetensors"),
            "\(job.log())")
        #expect(job.log().contains("resume: continuing at epoch 2, step 3 (global step 9)"))
        expectBitIdentical(modelBits(resumed.model), modelBits(uninterrupted.model))
    }

    @Test func truncatedNewestCheckpointIsSkippedOnResume() throws {
        let job = try TinyJob()
        try job.trainer(["fully_train.trainer.epochs=2"]).run()
        let newest = try CheckpointDirectory(url: job.checkpointFolder, keep: 2).list()[0]
        #expect(newest.epoch == 2)
        let handle = try FileHandle(forWritingTo: newest.modelURL)
        try handle.truncate(atOffset: 1000)
        try handle.close()

        let resumed = try job.trainer(["runtime.resume=True", "fully_train.trainer.epochs=3"])
        try resumed.run()
        let log = job.log()
        #expect(log.contains("WARNING skipping checkpoint \(newest.modelURL.path):"), "\(log)")
        #expect(log.contains("resume: continuing at epoch 2, step 1"), "\(log)")
        #expect(resumed.state.epoch == 3)
    }

    @Test func nonFiniteLossStopsNamingStepAndRank() throws {
        let job = try TinyJob()
        // The largest learning rate and weight decay scale every weight by about -99 in one step; with
        // frozen batch norm nothing renormalises the activations, so the next forward pass overflows.
        let trainer = try job.trainer([
            "fully_train.trainer.optimizer.params.lr=100", "fully_train.trainer.optimizer.params.weight_decay=1",
            "runtime.freeze_batch_norm=True", "fully_train.trainer.epochs=1",
        ])
        let error = #expect(throws: TrainingError.self) { try trainer.run() }
        #expect(error?.kind == .nonFinite && error?.isCollective == true)
        #expect(error?.message.contains("non-finite values at epoch 1, step ") == true, "\(String(describing: error))")
        #expect(error?.message.contains(" on rank 0 (") == true, "\(String(describing: error))")
        #expect(try CheckpointDirectory(url: job.checkpointFolder, keep: 2).list().isEmpty)
    }

    /// The policy for a checkpoint folder that cannot be written: stop on every rank, name the
    /// file, and leave the earlier checkpoints alone.
    @Test func unwritableCheckpointFolderStopsTheRunCleanly() throws {
        let job = try TinyJob()
        let blocker = job.folder.appendingPathComponent("not-a-folder")
        try Data("x".utf8).write(to: blocker)
        let trainer = try job.trainer([
            "fully_train.trainer.epochs=1", "runtime.checkpoint_dir=\(blocker.path)/checkpoints",
        ])
        let error = #expect(throws: TrainingError.self) { try trainer.run() }
        #expect(error?.kind == .checkpoint && error?.isCollective == true)
        #expect(
            error?.message.contains(
                "cannot write checkpoint ckpt-e0001-s000006.safetensors at epoch 1, global step 6: ") == true,
            "\(String(describing: error))")
        #expect(error?.message.contains("no earlier checkpoint exists") == true)
    }

    @Test(arguments: [
        [], ["runtime.micro_batch_size=3"], ["runtime.micro_batch_size=3", "runtime.concurrent_micro_batches=2"],
    ])
    func twoThreadRanksKeepIdenticalReplicas(microBatches: [String]) throws {
        let job = try TinyJob()
        let communicators = LocalCommunicator.group(size: 2, collectiveTimeout: .seconds(120))
        let results = runOnThreads(2) { rank in
            let trainer = try job.trainer(
                ["fully_train.trainer.epochs=2", "runtime.checksum_interval=1"] + microBatches,
                communicator: communicators[rank])
            let metrics = try trainer.run()
            return (modelBits(trainer.model), trainer.state.globalStep, metrics?.imageCount ?? 0)
        }
        let outcomes = try results.map { try $0.get() }
        expectBitIdentical(outcomes[1].0, outcomes[0].0)
        // 24 images over 2 ranks in batches of 4: 3 steps per epoch.
        #expect(outcomes[0].1 == 6)
        #expect(outcomes.allSatisfy { $0.2 == 8 })
        #expect(job.log(rank: 0).contains("effective global batch 8"))
        if !microBatches.isEmpty {
            // With two threads, concurrent_micro_batches runs a rank's two micro-batches side by side.
            let sideBySide = microBatches.count > 1 && OpenBLASRuntime.threadCount > 1
            let together = sideBySide ? ", 2 at a time" : ""
            #expect(
                job.log(rank: 0).contains("batch 4 per rank (2 micro-batches of 2\(together), gradients accumulated)"))
        }
    }
}

extension TinyJob {
    /// The checkpoint folder a trainer writes to.
    static func checkpoints(of trainer: Trainer) -> URL {
        URL(fileURLWithPath: trainer.configuration.runtime.checkpointDirectory)
    }
}
