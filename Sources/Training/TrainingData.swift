// The input side of a training run on one rank: its shard of the training split, the sharded
// validation, and the mixup / label-smoothing recipe that turns a batch into the network's inputs.

import Distributed
import GhostNet
import ImageData
import Layers
import Logging
import TensorEngine

/// What one rank reads and how a batch becomes the network's input.
struct TrainingData {
    let loader: ShardedLoader
    let validation: ShardedEvaluation
    let mixup: Mixup
    /// Batch statistics while training, unless `runtime.freeze_batch_norm`.
    let batchNormMode: Mode
    /// Whether batches go through mixup or label smoothing (soft targets) instead of hard labels.
    let usesSoftTargets: Bool
    let usesMixup: Bool
    /// How each batch runs as forward/backward passes (`runtime.micro_batch_size`, else the
    /// memory planner's choice under `runtime.memory_limit`).
    let microBatches: MicroBatchPlan
    /// The micro-batch, passes and predicted peak memory of this rank.
    let memoryPlan: MemoryPlan

    /// Optimizer steps per epoch: the shard plan's batches (the same on every rank).
    var stepsPerEpoch: Int { loader.batchesPerEpoch }

    /// - Throws: ``TrainingError`` of kind `.configuration` when the shard holds no full step.
    init(
        configuration: TrainingConfiguration, step: TrainingConfiguration.Step, dataset: DatasetIndex,
        communicator: any Communicator, logger: Logger, structure: GhostNetStructure, ranksOnServer: Int
    ) throws(TrainingError) {
        let threads = max(1, step.dataset.workers)
        // Bad files go to the training log (once each, with their path), not only to stderr.
        let reportBadImage: @Sendable (DataError) -> Void = { [logger] error in
            logger.warning("bad image skipped: \(error)")
        }
        batchNormMode = configuration.runtime.freezeBatchNorm ? .inference : .training
        let minimumSize = batchNormMode == .training ? 2 : 1
        do throws(MemoryPlanError) {
            memoryPlan = try configuration.memoryPlan(for: step, structure: structure, ranksOnServer: ranksOnServer)
        } catch {
            throw TrainingError(.configuration, "\(configuration.file): \(error.description)")
        }
        microBatches = MicroBatchPlan(microBatchSize: memoryPlan.microBatchSize, minimumSize: minimumSize)
        // Batch statistics cannot normalise a batch of one image per channel: such a last batch is left out.
        let options = LoaderOptions(
            threadCount: threads, dropLast: step.dataset.dropLast, minimumBatchSize: batchNormMode == .training ? 2 : 1,
            strictData: configuration.runtime.strictData, cropScale: step.dataset.cropMinimumScale...1,
            colorJitter: step.dataset.colorJitter ? ColorJitter() : nil)
        loader = ShardedLoader(
            dataset: dataset, split: .train, rank: communicator.rank, worldSize: communicator.size,
            batchSize: step.dataset.batchSize, seed: configuration.general.seed, imageSize: step.dataset.imageSize,
            options: options, reportBadImage: reportBadImage)
        validation = ShardedEvaluation(
            dataset: dataset, batchSize: step.dataset.validationBatchSize, imageSize: step.dataset.imageSize,
            threads: threads, seed: configuration.general.seed, strictData: configuration.runtime.strictData,
            communicator: communicator, reportBadImage: reportBadImage)
        mixup = Mixup(
            alpha: step.trainer.mixupAlpha, seed: configuration.general.seed,
            labelSmoothing: Float(step.trainer.labelSmoothing))
        usesMixup = step.trainer.mixup
        usesSoftTargets = step.trainer.mixup || step.trainer.labelSmoothing > 0
        guard loader.batchesPerEpoch >= 1 else {
            throw TrainingError(
                .configuration,
                "\(dataset.root) has \(dataset.train.count) training images: too few for one step "
                    + "of 2 images per rank on \(communicator.size) rank(s)")
        }
    }

    /// Forward, loss and backward of one micro-batch on `model`: with mixup within the micro-batch
    /// (λ and permutation keyed by seed, epoch, step, rank and micro-batch) or label smoothing
    /// against soft targets, else against the labels. Batch norm normalises the micro-batch with
    /// its own statistics and updates the running statistics once.
    func trainingStep(
        _ model: inout GhostNetModel, pass: MicroBatch, index: Int, epoch: Int, stepInEpoch: Int, rank: Int,
        gradientReady: (TensorSlot, Tensor) -> Void
    ) throws(GhostNetModelError) -> TrainingStepResult {
        guard usesSoftTargets else {
            return try model.trainingStep(
                images: pass.images, labels: pass.labels, batchNormMode: batchNormMode, gradientReady: gradientReady)
        }
        let draw =
            usesMixup
            ? mixup.draw(epoch: epoch, step: stepInEpoch, rank: rank, microBatch: index, batchSize: pass.labels.count)
            : nil
        var images = pass.images
        if let draw { Mixup.mixImages(&images, with: draw) }
        let targets = mixup.softTargets(
            labels: pass.labels, classCount: model.structure.configuration.classes, draw: draw)
        return try model.trainingStep(
            images: images, targets: targets, batchNormMode: batchNormMode, gradientReady: gradientReady)
    }
}
