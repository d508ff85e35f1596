//===----------------------------------------------------------------------===//
// ghostnet-d — Training
//===----------------------------------------------------------------------===//

import Distributed
import Foundation
import GhostNet
import ImageData
import Layers
import Logging
import PerformanceRecords
import TensorEngine

/// The training daemon's loop on one rank: what `ghostnet-d train` runs on every rank of a job.
///
/// Every rank holds a full replica of the network and reads its own shard of the training split.
/// Before the first step the parameters are broadcast from rank 0 (or, with `resume`, rank 0's
/// newest valid checkpoint is loaded and broadcast). Each step then
///
/// 1. takes the next batch of the rank's shard (NHWC images, labels);
/// 2. with mixup, mixes the images with a permutation of the batch and turns the labels into soft
///    targets (λ and the permutation keyed by seed, epoch, step and rank);
/// 3. runs forward, loss and backward; each gradient is handed to the ``GradientExchange`` as soon
///    as backward produces it, so the bucketed all-reduce overlaps the rest of backward;
/// 4. waits for the averaged gradients, and stops every rank if any rank's loss or gradient is
///    NaN or infinite (a reduced flag, so all ranks agree);
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
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let communicator: any Communicator
    /// The network being trained; after ``run()``, the trained one.
    public private(set) var model: GhostNetModel
    /// Where the run stands.
    public private(set) var state: TrainingState
    /// Optimizer steps per epoch (the same on every rank).
    public let stepsPerEpoch: Int

    let step: TrainingConfiguration.Step
    let logger: Logger
    let progressSink: TrainingLogSink?
    let reporter: PerformanceReporter?
    let trainLoader: ShardedLoader
    let evaluation: ShardedEvaluation
    let exchange: GradientExchange
    let schedule: LearningRateSchedule
    let mixup: Mixup
    let checkpoints: CheckpointDirectory
    var optimizer: SGDOptimizer
    /// Velocity of every parameter, slot order, internal layout.
    var momentum: [Tensor]
    let batchNormMode: Mode
    let figures: (flops: Double, params: Double)

    var rank: Int { communicator.rank }
    var epochs: Int { step.trainer.epochs }
    var seed: UInt64 { configuration.general.seed }

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
    /// - Throws: ``TrainingError`` of kind `.configuration` when the configuration does not fit the
    ///   dataset (class count) or describes no valid network.
    public init(
        configuration: TrainingConfiguration, dataset: DatasetIndex, communicator: any Communicator,
        logger: Logger, progressSink: TrainingLogSink? = nil, coordinator: CoordinatorClientConfiguration? = nil
    ) throws(TrainingError) {
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
                "\(configuration.file): fully_train.dataset.common.n_class is \(step.dataset.classCount) but \(dataset.root) has \(classes) classes")
        }
        let networkConfiguration: GhostNetConfiguration
        do {
            networkConfiguration = try GhostNetConfiguration(
                blocksPerStage: step.model.blocks, width: step.model.width, classes: step.model.classCount,
                imageSize: step.model.imageSize)
        } catch {
            throw TrainingError(.configuration, "\(configuration.file): fully_train.model.model_desc: \(error)")
        }
        self.configuration = configuration
        self.step = step
        self.communicator = communicator
        self.logger = logger
        self.progressSink = progressSink
        model = GhostNetModel(configuration: networkConfiguration, seed: configuration.general.seed)
        figures = PerformanceReporter.modelFigures(of: model.structure)
        reporter = communicator.rank == 0 ? PerformanceReporter(coordinator: coordinator, logger: logger) : nil

        let threads = max(1, step.dataset.workers)
        // Bad files go to the training log (once each, with their path), not only to stderr.
        let reportBadImage: @Sendable (DataError) -> Void = { [logger] error in
            logger.warning("bad image skipped: \(error)")
        }
        trainLoader = ShardedLoader(
            dataset: dataset, split: .train, rank: communicator.rank, worldSize: communicator.size,
            batchSize: step.dataset.batchSize, seed: configuration.general.seed, imageSize: step.dataset.imageSize,
            options: LoaderOptions(
                threadCount: threads, dropLast: step.dataset.dropLast, strictData: configuration.runtime.strictData,
                cropScale: step.dataset.cropMinimumScale...1, colorJitter: step.dataset.colorJitter ? ColorJitter() : nil),
            reportBadImage: reportBadImage)
        evaluation = ShardedEvaluation(
            dataset: dataset, batchSize: step.dataset.validationBatchSize, imageSize: step.dataset.imageSize,
            threads: threads, seed: configuration.general.seed, strictData: configuration.runtime.strictData,
            communicator: communicator, reportBadImage: reportBadImage)
        batchNormMode = configuration.runtime.freezeBatchNorm ? .inference : .training
        stepsPerEpoch = Self.stepsPerEpoch(
            samples: trainLoader.samplesPerEpoch, batchSize: step.dataset.batchSize,
            batchNormMode: batchNormMode)
        guard stepsPerEpoch >= 1 else {
            throw TrainingError(
                .configuration,
                "\(dataset.root) has \(dataset.train.count) training images: too few for one step of 2 images per rank on \(communicator.size) rank(s)")
        }
        exchange = GradientExchange(
            parameterShapes: model.parameterSlots.map(\.shape), communicator: communicator,
            configuration: GradientExchange.Configuration(
                bucketCapacityBytes: max(4, Int(configuration.runtime.bucketMebibytes * 1_048_576)),
                checksumInterval: configuration.runtime.checksumInterval))
        schedule = LearningRateSchedule(step.trainer, stepsPerEpoch: stepsPerEpoch)
        mixup = Mixup(
            alpha: step.trainer.mixupAlpha, seed: configuration.general.seed,
            labelSmoothing: Float(step.trainer.labelSmoothing))
        checkpoints = CheckpointDirectory(
            url: URL(fileURLWithPath: configuration.runtime.checkpointDirectory), keep: configuration.runtime.keepCheckpoints)
        optimizer = SGDOptimizer(step.trainer.optimizer)
        momentum = model.parameterSlots.map { Tensor(shape: $0.shape) }
        state = TrainingState(
            seed: configuration.general.seed, learningRate: step.trainer.optimizer.learningRate,
            worldSize: communicator.size)
    }

    /// The steps of an epoch whose shard has `samples` samples: one per batch, except that a last
    /// batch of a single image is left out when batch norm uses batch statistics (it would
    /// normalise one value per channel).
    static func stepsPerEpoch(samples: Int, batchSize: Int, batchNormMode: Mode) -> Int {
        let batches = (samples + batchSize - 1) / batchSize
        let last = samples - (batches - 1) * batchSize
        return batchNormMode == .training && batches > 0 && last < 2 ? batches - 1 : batches
    }

    // MARK: - The run

    /// Trains to `fully_train.trainer.epochs`, from the start or (with `runtime.resume`) from the
    /// newest valid checkpoint.
    ///
    /// - Returns: The metrics of the last evaluation (nil if there was none in this process).
    /// - Throws: ``TrainingError``; see the type's discussion for what stops a run.
    @discardableResult
    public func run() throws(TrainingError) -> ValidationMetrics? {
        logStart()
        if configuration.runtime.resume {
            try resume()
        } else {
            try collective("broadcasting the initial parameters") { () throws(CommunicatorError) in
                var parameters = model.parameters
                try communicator.broadcastParameters(&parameters)
                model.updateParameters { slot, tensor in tensor = parameters[slot.index] }
            }
        }
        var lastMetrics: ValidationMetrics?
        var tracker = ProgressTracker(
            epochs: epochs, stepsPerEpoch: stepsPerEpoch, globalBatchSize: step.dataset.batchSize * communicator.size)
        while state.epoch < epochs {
            let epoch = state.epoch
            let iterator = trainLoader.makeEpoch(epoch: epoch, startingAtStep: state.stepInEpoch)
            tracker.startEpoch()
            while state.stepInEpoch < stepsPerEpoch {
                let timing = try trainStep(epoch: epoch, iterator: iterator)
                tracker.record(
                    loss: timing.loss, dataWait: timing.dataWait, compute: timing.compute,
                    communication: timing.communication)
                if rank == 0, state.stepInEpoch % configuration.runtime.reportInterval == 0 || state.stepInEpoch == stepsPerEpoch {
                    let report = tracker.report(epoch: epoch, stepInEpoch: state.stepInEpoch, learningRate: state.learningRate)
                    showProgress(report)
                }
                if configuration.runtime.saveSteps > 0, state.globalStep % configuration.runtime.saveSteps == 0,
                    state.stepInEpoch < stepsPerEpoch
                {
                    try synchronizeRunningStatistics()
                    try saveCheckpoint()
                }
            }
            progressSink?.finishProgress()
            try summarizeData(epoch: epoch, iterator: iterator)
            state.epoch = epoch + 1
            state.stepInEpoch = 0
            state.samplerPosition = 0
            try synchronizeRunningStatistics()
            if state.epoch % configuration.runtime.evalInterval == 0 || state.epoch == epochs {
                lastMetrics = try evaluateAndReport()
            }
            try saveCheckpoint()
        }
        let hex = String(type(of: communicator).checksum(model.parameters), radix: 16)
        let checksum = String(repeating: "0", count: 16 - hex.count) + hex
        logger.info("training finished: epoch \(state.epoch), global step \(state.globalStep), parameter checksum \(checksum)")
        reporter?.finish()
        return lastMetrics
    }

    /// What one step took.
    struct StepTiming {
        var loss: Double
        var dataWait: Double
        var compute: Double
        var communication: Double
    }

    /// One optimizer step: batch, forward/backward with overlapped all-reduce, finiteness check,
    /// SGD update, periodic checksum.
    private func trainStep(epoch: Int, iterator: EpochIterator) throws(TrainingError) -> StepTiming {
        let stepInEpoch = state.stepInEpoch
        let started = ContinuousClock.now
        let next: Batch?
        do {
            next = try iterator.next()
        } catch {
            throw TrainingError(.data, "rank \(rank), epoch \(epoch + 1), step \(stepInEpoch + 1): \(error)")
        }
        guard let batch = next else {
            throw TrainingError(.data, "rank \(rank): epoch \(epoch + 1) ended after \(stepInEpoch) of \(stepsPerEpoch) batches")
        }
        let loaded = ContinuousClock.now

        let learningRate = schedule.learningRate(epoch: epoch, stepInEpoch: stepInEpoch)
        optimizer.learningRate = Float(learningRate)
        let labels = batch.labels.map(Int.init)
        var communication = Duration.zero
        var exchangeError: CommunicatorError?
        var localGradientIsFinite = true
        let gradientReady: (TensorSlot, Tensor) -> Void = { [exchange] slot, gradient in
            if localGradientIsFinite, !Self.isFinite(gradient) { localGradientIsFinite = false }
            guard exchangeError == nil else { return }
            let storeStarted = ContinuousClock.now
            do throws(CommunicatorError) {
                try exchange.store(gradient, forParameter: slot.index)
            } catch {
                exchangeError = error
            }
            communication += storeStarted.duration(to: .now)
        }
        let result: TrainingStepResult
        do {
            if step.trainer.mixup || step.trainer.labelSmoothing > 0 {
                var images = batch.images
                let draw = step.trainer.mixup ? mixup.draw(epoch: epoch, step: stepInEpoch, rank: rank, batchSize: batch.count) : nil
                if let draw { Mixup.mixImages(&images, with: draw) }
                let targets = mixup.softTargets(labels: labels, classCount: step.model.classCount, draw: draw)
                result = try model.trainingStep(
                    images: images, targets: targets, batchNormMode: batchNormMode, gradientReady: gradientReady)
            } else {
                result = try model.trainingStep(
                    images: batch.images, labels: labels, batchNormMode: batchNormMode, gradientReady: gradientReady)
            }
        } catch {
            throw TrainingError(.model, "rank \(rank), epoch \(epoch + 1), step \(stepInEpoch + 1): \(error)")
        }
        if let exchangeError {
            throw TrainingError(.communication, "rank \(rank): gradient exchange: \(exchangeError)")
        }
        let finishStarted = ContinuousClock.now
        do {
            try exchange.finish()
        } catch {
            throw TrainingError(.communication, "rank \(rank): gradient exchange: \(error)")
        }
        try stopIfNotFinite(loss: result.loss, gradientIsFinite: localGradientIsFinite, epoch: epoch)
        communication += finishStarted.duration(to: .now)

        applyUpdate()
        state.globalStep += 1
        state.stepInEpoch = stepInEpoch + 1
        state.samplerPosition = state.stepInEpoch * step.dataset.batchSize * communicator.size
        state.learningRate = learningRate
        if configuration.runtime.checksumInterval > 0, state.globalStep % configuration.runtime.checksumInterval == 0 {
            let checkStarted = ContinuousClock.now
            do {
                try communicator.verifyIdenticalParameters(model.parameters, step: state.globalStep)
            } catch {
                throw TrainingError(.communication, "\(error)", isCollective: true)
            }
            communication += checkStarted.duration(to: .now)
        }
        let total = started.duration(to: .now)
        let dataWait = started.duration(to: loaded)
        return StepTiming(
            loss: result.loss, dataWait: dataWait.inSeconds, compute: (total - dataWait - communication).inSeconds,
            communication: communication.inSeconds)
    }

    /// SGD on every parameter with the averaged gradients from the exchange's flat buffer (the
    /// exchange orders parameters like the model's slots, at the slots' offsets).
    private func applyUpdate() {
        let initialized = state.globalStep > 0
        exchange.withGradients { gradients in
            model.updateParameters { slot, weights in
                let gradient = UnsafeBufferPointer(rebasing: gradients[slot.offset..<slot.offset + slot.scalarCount])
                let decays = optimizer.appliesWeightDecay(to: slot.name)
                weights.withUnsafeMutableBufferPointer { weights in
                    momentum[slot.index].withUnsafeMutableBufferPointer { velocity in
                        optimizer.update(
                            weights: weights, gradients: gradient, momentumBuffer: velocity,
                            bufferIsInitialized: initialized, decays: decays)
                    }
                }
            }
        }
    }

    /// Stops every rank when any rank's loss or gradient is not finite: each rank contributes a
    /// flag in its own slot (1 loss, 2 gradient), and the sum tells every rank who failed.
    private func stopIfNotFinite(loss: Double, gradientIsFinite: Bool, epoch: Int) throws(TrainingError) {
        var flags = [Int64](repeating: 0, count: communicator.size)
        flags[rank] = (loss.isFinite ? 0 : 1) | (gradientIsFinite ? 0 : 2)
        try collective("reducing the finiteness flags") { () throws(CommunicatorError) in
            try flags.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
                try communicator.allreduceSum(buffer)
            }
        }
        let failed = flags.indices.filter { flags[$0] != 0 }
        guard !failed.isEmpty else { return }
        let what = failed.map { failedRank in
            let kinds = [flags[failedRank] & 1 != 0 ? "loss" : nil, flags[failedRank] & 2 != 0 ? "gradient" : nil].compactMap { $0 }
            return "rank \(failedRank) (\(kinds.joined(separator: " and "))\(failedRank == rank && !loss.isFinite ? " \(loss)" : ""))"
        }
        throw TrainingError(
            .nonFinite,
            "non-finite values at epoch \(epoch + 1), step \(state.stepInEpoch + 1) (global step \(state.globalStep + 1)) on "
                + what.joined(separator: ", ") + "; stopping before the update, checkpoints in "
                + "\(checkpoints.url.path) are left as they were (lower the learning rate and resume)",
            isCollective: true)
    }

    static func isFinite(_ tensor: Tensor) -> Bool {
        tensor.withUnsafeBufferPointer { values in
            // x·0 is 0 for every finite x and NaN otherwise, so one sum tests the whole tensor.
            var probe: Float = 0
            for value in values { probe += value * 0 }
            return probe == 0
        }
    }

    /// Logs (rank 0) how many samples of the epoch were replaced because their files were bad, and
    /// how many distinct bad files the job has met, both summed over ranks.
    private func summarizeData(epoch: Int, iterator: EpochIterator) throws(TrainingError) {
        var counts: [Int64] = [Int64(iterator.replacedSampleCount), Int64(trainLoader.badImageErrors.count)]
        try collective("summing bad-image counts") { () throws(CommunicatorError) in
            try counts.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
                try communicator.allreduceSum(buffer)
            }
        }
        if rank == 0 {
            logger.info("epoch \(epoch + 1) data: \(counts[0]) sample(s) replaced for bad files; \(counts[1]) bad file(s) met by the ranks so far")
        }
    }

    // MARK: - Evaluation, records, checkpoints

    /// Replaces every rank's batch-norm running statistics by their average over ranks, so every
    /// rank evaluates and checkpoints the same model.
    private func synchronizeRunningStatistics() throws(TrainingError) {
        guard communicator.size > 1 else { return }
        try collective("averaging batch-norm statistics") { () throws(CommunicatorError) in
            var statistics = model.runningStatistics
            try communicator.averageAcrossRanks(&statistics)
            model.updateRunningStatistics { slot, tensor in tensor = statistics[slot.index] }
        }
    }

    /// Evaluates on the validation split; rank 0 logs and reports the record. Updates the best
    /// accuracy (on every rank: the metrics are the same everywhere).
    private func evaluateAndReport() throws(TrainingError) -> ValidationMetrics {
        let metrics = try evaluation.evaluate(&model)
        logger.info(
            "validation after epoch \(state.epoch): top-1 \(PerformanceReporter.formatted(metrics.top1)) top-5 \(PerformanceReporter.formatted(metrics.top5)) loss \(PerformanceReporter.formatted(metrics.loss)) (\(metrics.imageCount) images)")
        if let reporter, metrics.loss.isFinite {
            reporter.report(PerformanceRecord(
                workerID: "0", rank: rank, epoch: state.epoch, step: state.globalStep,
                performance: PerformanceMetrics([
                    ("accuracy_top1", metrics.top1), ("accuracy_top5", metrics.top5), ("loss", metrics.loss),
                    ("flops", figures.flops), ("params", figures.params),
                ]),
                timestamp: LogTimestamp.now()))
        }
        if metrics.top1 > (state.bestAccuracy ?? -1) {
            state.bestAccuracy = metrics.top1
            state.bestCheckpoint = checkpoints.entry(epoch: state.epoch, globalStep: state.globalStep).name
        }
        return metrics
    }

    /// Rank 0 writes the checkpoint of the current state and prunes old ones; every rank learns
    /// whether it worked (the reduction doubles as the barrier after the save).
    ///
    /// - Throws: ``TrainingError`` of kind `.checkpoint` on every rank when rank 0 could not write.
    private func saveCheckpoint() throws(TrainingError) {
        let entry = checkpoints.entry(epoch: state.epoch, globalStep: state.globalStep)
        var failure: String?
        if rank == 0 {
            do {
                try FileManager.default.createDirectory(at: checkpoints.url, withIntermediateDirectories: true)
                try TrainingCheckpoint(parameters: model.exportedParameters, momentum: momentum, state: state)
                    .write(to: entry, slots: model.parameterSlots, seed: seed)
                let pruned = try checkpoints.prune(keepingAlso: state.bestCheckpoint)
                logger.info("checkpoint \(entry.modelURL.path)\(pruned.isEmpty ? "" : " (removed \(pruned.map(\.name).joined(separator: ", ")))")")
            } catch {
                failure = "\(error)"
            }
        }
        var status: [Int64] = [failure == nil ? 0 : 1]
        try collective("waiting for the checkpoint") { () throws(CommunicatorError) in
            try status.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
                try communicator.allreduceSum(buffer)
            }
        }
        guard status[0] == 0 else {
            let previous = (try? checkpoints.list().first?.modelURL.path) ?? nil
            let reason = failure ?? "see rank 0's log"
            throw TrainingError(
                .checkpoint,
                "cannot write checkpoint \(entry.name) at epoch \(state.epoch), global step \(state.globalStep): \(reason); "
                    + (previous.map { "the previous checkpoint \($0) is intact; resume from it with --resume once the folder is writable" }
                        ?? "no earlier checkpoint exists"),
                isCollective: true)
        }
    }

    /// Loads rank 0's newest valid checkpoint on every rank: rank 0 reads and verifies the files,
    /// then broadcasts model, running statistics, momentum and state, so the other ranks need no
    /// access to the checkpoint folder.
    private func resume() throws(TrainingError) {
        var loaded: TrainingCheckpoint?
        var failure: String?
        if rank == 0 {
            do {
                loaded = try newestValidCheckpoint()
            } catch {
                failure = "\(error)"
            }
        }
        // [status: 0 nothing to resume, 1 loaded, 2 failed; epoch, global step, step in epoch,
        //  sampler position, world size, has best accuracy]
        var integers = [Int64](repeating: 0, count: 7)
        var reals = [Double](repeating: 0, count: 2)
        if let failure {
            integers[0] = 2
            logger.error("cannot resume: \(failure)")
        } else if let loaded {
            let saved = loaded.state
            integers = [1, Int64(saved.epoch), Int64(saved.globalStep), Int64(saved.stepInEpoch), Int64(saved.samplerPosition),
                        Int64(saved.worldSize), saved.bestAccuracy == nil ? 0 : 1]
            reals = [saved.learningRate, saved.bestAccuracy ?? 0]
        }
        try collective("sharing the resume state") { () throws(CommunicatorError) in
            try integers.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in try communicator.allreduceSum(buffer) }
            try reals.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in try communicator.allreduceSum(buffer) }
        }
        switch integers[0] {
        case 0:
            logger.info("resume: no checkpoint in \(checkpoints.url.path); starting from the beginning")
            try collective("broadcasting the initial parameters") { () throws(CommunicatorError) in
                var parameters = model.parameters
                try communicator.broadcastParameters(&parameters)
                model.updateParameters { slot, tensor in tensor = parameters[slot.index] }
            }
            return
        case 1:
            break
        default:
            throw TrainingError(.checkpoint, "cannot resume: \(failure ?? "rank 0 could not read its checkpoint (see its log)")", isCollective: true)
        }
        if let loaded { model = GhostNetModel(loaded.parameters) }
        try collective("broadcasting the checkpoint") { () throws(CommunicatorError) in
            var parameters = model.parameters
            try communicator.broadcastParameters(&parameters)
            model.updateParameters { slot, tensor in tensor = parameters[slot.index] }
            var statistics = model.runningStatistics
            try communicator.broadcastParameters(&statistics)
            model.updateRunningStatistics { slot, tensor in tensor = statistics[slot.index] }
            var velocities = loaded?.momentum ?? momentum
            try communicator.broadcastParameters(&velocities)
            momentum = velocities
        }
        let savedWorld = Int(integers[5])
        state = TrainingState(
            epoch: Int(integers[1]), globalStep: Int(integers[2]), stepInEpoch: Int(integers[3]), seed: seed,
            samplerPosition: Int(integers[4]), learningRate: reals[0],
            bestAccuracy: integers[6] == 1 ? reals[1] : nil, bestCheckpoint: loaded?.state.bestCheckpoint,
            worldSize: communicator.size)
        if savedWorld != communicator.size {
            // The sampler position counts samples over all ranks; restart at the batch that holds it.
            state.stepInEpoch = min(state.samplerPosition / (step.dataset.batchSize * communicator.size), stepsPerEpoch)
            logger.warning(
                "resume: the checkpoint was written by \(savedWorld) rank(s), this job has \(communicator.size); continuing at step \(state.stepInEpoch) of epoch \(state.epoch + 1), not bit-identical to an uninterrupted run")
        }
        if state.stepInEpoch >= stepsPerEpoch {
            state.epoch += 1
            state.stepInEpoch = 0
            state.samplerPosition = 0
        }
        logger.info(
            "resume: continuing at epoch \(state.epoch + 1), step \(state.stepInEpoch + 1) (global step \(state.globalStep + 1)), lr \(ProgressReport.significant(state.learningRate))")
    }

    /// Rank 0: the newest checkpoint in the folder that reads, verifies, and holds this run's
    /// network; corrupt or partial ones are skipped with a warning.
    private func newestValidCheckpoint() throws -> TrainingCheckpoint? {
        var loaded: TrainingCheckpoint?
        let slots = model.parameterSlots
        let entry = try checkpoints.newestValid(
            validate: { entry in loaded = try TrainingCheckpoint(contentsOf: entry, slots: slots) },
            warn: { logger.warning("\($0)") })
        guard let entry, let loaded else { return nil }
        let expected = model.structure.configuration, found = loaded.parameters.structure.configuration
        guard expected == found else {
            throw TrainingError(
                .checkpoint,
                "\(entry.modelURL.path) holds a \(found.architectureName) network (blocks \(found.blocksText), width \(found.width), \(found.classes) classes) but \(configuration.file) describes blocks \(expected.blocksText), width \(expected.width), \(expected.classes) classes")
        }
        logger.info("resume: reading \(entry.modelURL.path)")
        return loaded
    }

    // MARK: - Logging

    private func logStart() {
        let dataset = step.dataset
        let structure = model.structure
        logger.info(
            "model \(structure.configuration.architectureName) blocks \(structure.configuration.blocksText) width \(structure.configuration.width), \(structure.configuration.classes) classes, \(dataset.imageSize)×\(dataset.imageSize) input: params \(structure.parametersInThousands) K, flops \(structure.multiplyAccumulatesInBillions) G")
        logger.info(
            "batch \(dataset.batchSize) per rank × \(communicator.size) rank(s) = effective global batch \(dataset.batchSize * communicator.size); \(stepsPerEpoch) steps per epoch, \(epochs) epochs")
        if stepsPerEpoch < trainLoader.batchesPerEpoch {
            logger.warning("the last batch of each epoch would hold 1 image per rank, too few for batch statistics; it is left out (set drop_last or change the batch size)")
        }
        logger.info(
            "SGD lr \(step.trainer.optimizer.learningRate) momentum \(step.trainer.optimizer.momentum) weight decay \(step.trainer.optimizer.weightDecay); cosine T_max \(step.trainer.scheduler.periodEpochs) warm-up \(step.trainer.warmupEpochs)\(step.trainer.mixup ? "; mixup α \(step.trainer.mixupAlpha)" : "")\(configuration.runtime.freezeBatchNorm ? "; batch norm frozen" : "")")
        if rank == 0, !configuration.runtime.resume, let existing = try? checkpoints.list(), !existing.isEmpty {
            logger.warning("\(checkpoints.url.path) already holds \(existing.count) checkpoint(s); this run starts afresh and its checkpoints replace them (use --resume to continue instead)")
        }
    }

    private func showProgress(_ report: ProgressReport) {
        guard let progressSink else {
            logger.info("\(report.line)")
            return
        }
        progressSink.showProgress(progressSink.showsLiveBar ? report.bar() : report.line)
    }

    /// Runs a collective, turning its failure into a ``TrainingError`` that names what it was for.
    private func collective(_ what: String, _ body: () throws(CommunicatorError) -> Void) throws(TrainingError) {
        do {
            try body()
        } catch {
            throw TrainingError(.communication, "rank \(rank): \(what): \(error)")
        }
    }
}

extension Duration {
    /// The duration in seconds.
    var inSeconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}
