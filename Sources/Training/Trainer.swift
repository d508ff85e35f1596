// The training loop of one rank: what `ghostnet-d train` runs on every rank of a job. `run()` reads
// top to bottom; the step is in Trainer+Step.swift, checkpoints and resume in
// Trainer+Checkpoints.swift, evaluation and what the run logs in Trainer+Reporting.swift.

import Checkpoints
import CoordinatorClient
import Distributed
import Foundation
import GhostNet
import ImageData
import Logging
import PerformanceRecords
import TensorEngine

/// The training daemon's loop on one rank: what `ghostnet-d train` runs on every rank of a job.
///
/// Every rank holds a full replica of the network and reads its own shard of the training split.
/// Before the first step the parameters are broadcast from rank 0 (or, with `resume`, rank 0's
/// newest valid checkpoint is loaded and broadcast; with `init_from`, rank 0 loads the weights of
/// that file and they are broadcast). Each step then
///
/// 1. takes the next batch of the rank's shard (NHWC images, labels);
/// 2. with mixup, mixes the images with a permutation of the batch and turns the labels into soft
///    targets (λ and the permutation keyed by seed, epoch, step and rank);
/// 3. runs forward, loss and backward; each gradient is handed to the ``GradientExchange`` as soon
///    as backward produces it, so the bucketed all-reduce overlaps the rest of backward;
/// 4. waits for the averaged gradients, and stops every rank if any rank's loss or gradient is
///    NaN or infinite (the per-step check, agreed by all ranks);
/// 5. applies SGD with the scheduled learning rate, and every `checksum_interval` steps compares
///    a checksum of the parameters across ranks.
///
/// After every `eval_interval` epochs (and the last), the batch-norm running statistics are
/// averaged across ranks and the validation split is evaluated sharded; rank 0 logs and reports the
/// record. After every epoch (and every `save_steps` steps) rank 0 writes a checkpoint and prunes
/// old ones, and every rank waits for the outcome. The run is a pure function of the configuration,
/// the dataset and the world size: a run resumed from a checkpoint ends bit-identical to one that
/// was never interrupted.
///
/// If a checkpoint cannot be written (folder unwritable, disk full), the run stops on every rank
/// with an error naming the file; the previous checkpoints stay intact, so the job can be resumed
/// from the last one once the folder is fixed.
package final class Trainer {
    package let configuration: TrainingConfiguration
    package let communicator: any Communicator
    /// The network being trained; after ``run()``, the trained one.
    package internal(set) var model: GhostNetModel
    /// Where the run stands.
    package internal(set) var state: TrainingState
    /// The weights' moving average (`trainer.ema_decay`); nil without one, and until the run starts.
    package internal(set) var average: WeightEMA?
    /// What progress reporting has cost this rank's training threads in this process.
    package internal(set) var progressOverhead = ProgressOverhead()

    let step: TrainingConfiguration.Step
    /// The input side: the rank's virtual shards of the training split, the sharded validation, mixup.
    /// A resume that keeps the checkpoint's virtual shards rebuilds it (Trainer+VirtualShards.swift).
    var data: TrainingData
    /// The exchange side: the bucketed gradient all-reduce and the parameter-checksum cadence.
    var exchange: GradientExchange
    /// SGD, its schedule and the momentum buffers.
    var optimizer: OptimizerState
    let checkpoints: CheckpointDirectory
    /// The output side: log lines, the progress display and rank 0's records.
    let output: TrainingOutput
    /// Why this rank should stop at the next step boundary ("SIGTERM"), or nil; asked once per step.
    /// The command line hands in ``PreemptionSignal/received``.
    package var preemptionRequest: () -> String? = { nil }

    /// Optimizer steps per epoch (the same on every rank).
    package var stepsPerEpoch: Int { data.stepsPerEpoch }
    var rank: Int { communicator.rank }
    var epochs: Int { step.trainer.epochs }
    var seed: UInt64 { configuration.general.seed }
    var runtime: TrainingConfiguration.Runtime { configuration.runtime }

    /// Builds the network, loaders, optimizer and gradient exchange of one rank. Nothing here
    /// communicates.
    ///
    /// - Parameters:
    ///   - configuration: A configuration with a `fully_train` step.
    ///   - dataset: The dataset `fully_train.dataset.common.data_path` names.
    ///   - communicator: This rank's group.
    ///   - logger: Receives the run's log lines.
    ///   - progressSink: The sink that shows progress (a live bar on a terminal); rank 0 only.
    ///   - coordinator: Where rank 0 sends records, or nil to log the Best values line at the end.
    ///   - ranksOnServer: The ranks sharing this server, which share an `auto` memory limit.
    /// - Throws: ``TrainingError`` of kind `.configuration` when the configuration does not fit the
    ///   dataset (class count, too few images), describes no valid network, or no micro-batch fits
    ///   `runtime.memory_limit`.
    package init(
        configuration: TrainingConfiguration, dataset: DatasetIndex, communicator: any Communicator,
        logger: Logger, progressSink: TrainingLogSink? = nil, coordinator: CoordinatorClientConfiguration? = nil,
        ranksOnServer: Int = 1
    ) throws(TrainingError) {
        let step = try Self.fullyTrainStep(of: configuration, dataset: dataset)
        let network = try Self.network(of: step, file: configuration.file)
        let model = GhostNetModel(configuration: network, seed: configuration.general.seed)
        self.configuration = configuration
        self.step = step
        self.communicator = communicator
        self.model = model
        output = TrainingOutput(
            logger: logger, progressSink: progressSink,
            reporter: communicator.rank == 0 ? PerformanceReporter(coordinator: coordinator, logger: logger) : nil,
            figures: PerformanceReporter.modelFigures(of: model.structure))
        let virtualShards = configuration.runtime.virtualRanks ?? communicator.size
        data = try TrainingData(
            configuration: configuration, step: step, dataset: dataset, communicator: communicator, logger: logger,
            structure: model.structure, ranksOnServer: ranksOnServer, virtualShards: virtualShards)
        exchange = Self.makeExchange(
            for: model, communicator: communicator, runtime: configuration.runtime, virtualShards: virtualShards)
        optimizer = OptimizerState(step.trainer, slots: model.parameterSlots, stepsPerEpoch: data.stepsPerEpoch)
        checkpoints = CheckpointDirectory(
            url: URL(fileURLWithPath: configuration.runtime.checkpointDirectory),
            keep: configuration.runtime.keepCheckpoints)
        state = TrainingState(
            seed: configuration.general.seed, learningRate: step.trainer.optimizer.learningRate,
            worldSize: communicator.size, virtualRanks: virtualShards,
            precision: step.trainer.precision.resolved.rawValue)
    }

    // MARK: - The run

    /// Trains to `fully_train.trainer.epochs`, from the start or (with `runtime.resume`) from the
    /// newest valid checkpoint.
    ///
    /// - Returns: The metrics of the last evaluation (nil if there was none in this process).
    /// - Throws: ``TrainingError``; see the type's discussion for what stops a run.
    @discardableResult
    package func run() throws(TrainingError) -> ValidationMetrics? {
        do {
            return try train()
        } catch {
            // Rank 0 tells the coordinator, and delivers what it can, before the error ends the process.
            output.reporter?.reportEnd(error.kind == .preempted ? .preempted : .failed)
            output.reporter?.finish(logBestValues: false)
            throw error
        }
    }

    private func train() throws(TrainingError) -> ValidationMetrics? {
        logStart()
        if runtime.resume {
            try resume()
        } else {
            if let initFrom = runtime.initFrom { try startFromInitialWeights(initFrom) }
            try shareRankZeroReplica()
        }
        try settleFineTuning()
        let hosts = try announceStart()
        var lastMetrics: ValidationMetrics?
        // The ranks that asked to stop, once agreed: the run checkpoints and ends at the next boundary.
        var preemption: [Int] = []
        var tracker = ProgressTracker(
            epochs: epochs, stepsPerEpoch: stepsPerEpoch, globalBatchSize: step.dataset.batchSize * virtualShards)
        while state.epoch < epochs {
            let epoch = state.epoch
            let iterators = data.loaders.map { $0.makeEpoch(epoch: epoch, startingAtStep: state.stepInEpoch) }
            tracker.startEpoch()
            while state.stepInEpoch < stepsPerEpoch {
                let endsWindow = isProgressDue(afterStep: state.stepInEpoch + 1)
                let timing = try trainStep(
                    epoch: epoch, iterators: iterators, reportWindow: endsWindow ? tracker.window : nil)
                tracker.record(
                    loss: timing.loss, dataWait: timing.dataWait, compute: timing.compute,
                    communication: timing.communication)
                progressOverhead.addStep(seconds: timing.dataWait + timing.compute + timing.communication)
                if let rankStepSeconds = timing.rankStepSeconds {
                    reportProgress(&tracker, hosts: hosts, rankStepSeconds: rankStepSeconds)
                }
                preemption = timing.preemptingRanks
                // At an epoch's end the epoch's own evaluation and checkpoint come first.
                if !preemption.isEmpty && state.stepInEpoch < stepsPerEpoch {
                    try stopForPreemption(requestedBy: preemption, checkpointWritten: false)
                }
                if isMidEpochCheckpointDue {
                    try synchronizeRunningStatistics()
                    try saveCheckpoint()
                }
            }
            output.progressSink?.finishProgress()
            try summarizeBadImages(epoch: epoch, iterators: iterators)
            logProgressOverhead()
            state.startNextEpoch()
            try synchronizeRunningStatistics()
            if state.epoch % runtime.evalInterval == 0 || state.epoch == epochs {
                lastMetrics = try evaluateAndReport()
            }
            try saveCheckpoint()
            if !preemption.isEmpty && state.epoch < epochs {
                try stopForPreemption(requestedBy: preemption, checkpointWritten: true)
            }
        }
        logFinish()
        output.reporter?.reportEnd(.finished)
        output.reporter?.finish()
        return lastMetrics
    }

    /// Every `report_interval` steps and at the end of the epoch (`stepInEpoch` counts from 1), every
    /// rank shares its step time in that step's check and rank 0 shows and posts progress.
    private func isProgressDue(afterStep stepInEpoch: Int) -> Bool {
        stepInEpoch % runtime.reportInterval == 0 || stepInEpoch == stepsPerEpoch
    }

    /// Every `save_steps` global steps, except at the end of an epoch (which checkpoints anyway).
    private var isMidEpochCheckpointDue: Bool {
        runtime.saveSteps > 0 && state.globalStep % runtime.saveSteps == 0 && state.stepInEpoch < stepsPerEpoch
    }

    // MARK: - Building a rank

    private static func fullyTrainStep(
        of configuration: TrainingConfiguration, dataset: DatasetIndex
    ) throws(TrainingError) -> TrainingConfiguration.Step {
        let step: TrainingConfiguration.Step
        do {
            step = try configuration.step(.fullyTrain)
        } catch {
            throw TrainingError(.configuration, "\(error)")
        }
        let classes = dataset.classNames.count
        guard classes == step.dataset.classCount else {
            throw TrainingError(
                .configuration,
                "\(configuration.file): fully_train.dataset.common.n_class is \(step.dataset.classCount) "
                    + "but \(dataset.root) has \(classes) classes")
        }
        return step
    }

    private static func network(
        of step: TrainingConfiguration.Step, file: String
    ) throws(TrainingError) -> GhostNetConfiguration {
        do {
            return try GhostNetConfiguration(
                blocksPerStage: step.model.blocks, width: step.model.width, classes: step.model.classCount,
                imageSize: step.model.imageSize)
        } catch {
            throw TrainingError(.configuration, "\(file): fully_train.model.model_desc: \(error)")
        }
    }

    /// Runs a collective, turning its failure into a ``TrainingError`` that names what it was for.
    func collective<Result>(
        _ what: String, _ body: () throws(CommunicatorError) -> Result
    ) throws(TrainingError) -> Result {
        do {
            return try body()
        } catch {
            throw TrainingError(.communication, "rank \(rank): \(what): \(error)")
        }
    }
}

extension TrainingState {
    /// Moves to the first step of the next epoch.
    mutating func startNextEpoch() {
        epoch += 1
        stepInEpoch = 0
        samplerPosition = 0
    }
}
