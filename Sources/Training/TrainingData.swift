// The input side of a training run on one rank: its virtual shards of the training split, the sharded
// validation, and the mixup / label-smoothing recipe that turns a batch into the network's inputs.

import Distributed
import GhostNet
import ImageData
import Layers
import Logging
import TensorEngine

/// What one rank reads and how a batch becomes the network's input.
struct TrainingData {
    /// Which virtual shards this rank runs (see ``VirtualShardPlan``).
    private(set) var shardPlan: VirtualShardPlan
    /// The virtual shards this rank runs, in order.
    private(set) var shards: Range<Int>
    /// One loader per shard in ``shards``: shard s reads what rank s of a `virtualShards`-rank job would.
    private(set) var loaders: [ShardedLoader]
    /// Builds the loader of virtual shard `shard` of `virtualShards`, with `threads` decode threads.
    private let makeLoader: @Sendable (_ shard: Int, _ virtualShards: Int, _ threads: Int) -> ShardedLoader
    /// Decode threads of the rank (`dataset.common.workers`), shared by its shards' loaders.
    private let threads: Int
    private let rank: Int
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

    /// Optimizer steps per epoch: the shard plan's batches (the same on every shard and rank).
    var stepsPerEpoch: Int { loaders[0].batchesPerEpoch }

    /// - Parameter virtualShards: The job's virtual shards (see ``VirtualShardPlan``).
    /// - Throws: ``TrainingError`` of kind `.configuration` when the shard holds no full step or
    ///   there are more ranks than virtual shards.
    init(
        configuration: TrainingConfiguration, step: TrainingConfiguration.Step, dataset: DatasetIndex,
        communicator: any Communicator, logger: Logger, structure: GhostNetStructure, ranksOnServer: Int,
        virtualShards: Int
    ) throws(TrainingError) {
        let threads = max(1, step.dataset.workers)
        self.threads = threads
        rank = communicator.rank
        // Bad files go to the training log (once each, with their path), not only to stderr.
        let reportBadImage: @Sendable (DataError) -> Void = { [logger] error in
            logger.warning("bad image skipped: \(error)")
        }
        batchNormMode = configuration.runtime.freezeBatchNorm ? .inference : .training
        let minimumSize = batchNormMode == .training ? 2 : 1
        do throws(MemoryPlanError) {
            memoryPlan = try configuration.memoryPlan(
                for: step, structure: structure, ranksOnServer: ranksOnServer, threads: OpenBLASRuntime.threadCount)
        } catch {
            throw TrainingError(.configuration, "\(configuration.file): \(error.description)")
        }
        microBatches = MicroBatchPlan(
            microBatchSize: memoryPlan.microBatchSize, minimumSize: minimumSize, lanes: memoryPlan.lanes)
        let runtime = configuration.runtime
        if runtime.reproducibleReduction, runtime.microBatchSize == nil, runtime.memoryLimit == .automatic {
            // `auto` divides the server's memory by its ranks: a shrunk job could plan other micro-batches.
            logger.warning(
                """
                \(configuration.file): runtime.reproducible_reduction is on but the micro-batch comes from \
                runtime.memory_limit auto, which depends on the ranks per server; set runtime.micro_batch_size \
                (now \(memoryPlan.microBatchSize)) to stay bit-identical \
                after a shrink
                """)
        }
        // Batch statistics cannot normalise a batch of one image per channel: such a last batch is left out.
        let options = LoaderOptions(
            threadCount: threads, dropLast: step.dataset.dropLast, minimumBatchSize: batchNormMode == .training ? 2 : 1,
            strictData: configuration.runtime.strictData, cropScale: step.dataset.cropMinimumScale...1,
            colorJitter: step.dataset.colorJitter ? ColorJitter() : nil)
        let (batchSize, seed, imageSize) = (step.dataset.batchSize, configuration.general.seed, step.dataset.imageSize)
        let makeLoader: @Sendable (Int, Int, Int) -> ShardedLoader = { shard, virtualShards, threads in
            var shardOptions = options
            shardOptions.threadCount = threads
            return ShardedLoader(
                dataset: dataset, split: .train, rank: shard, worldSize: virtualShards, batchSize: batchSize,
                seed: seed, imageSize: imageSize, options: shardOptions, reportBadImage: reportBadImage)
        }
        self.makeLoader = makeLoader
        shardPlan = try VirtualShardPlan(
            virtualShards: virtualShards, ranks: communicator.size, file: configuration.file)
        shards = shardPlan.shards(ofRank: rank)
        loaders = Self.loaders(of: shards, plan: shardPlan, threads: threads, makeLoader)
        validation = ShardedEvaluation(
            dataset: dataset, batchSize: step.dataset.validationBatchSize, imageSize: step.dataset.imageSize,
            threads: threads, seed: configuration.general.seed, strictData: configuration.runtime.strictData,
            communicator: communicator,
            // Inference holds less per image than training, so the training micro-batch fits.
            microBatches: MicroBatchPlan(microBatchSize: memoryPlan.microBatchSize, minimumSize: 1),
            reportBadImage: reportBadImage)
        mixup = Mixup(
            alpha: step.trainer.mixupAlpha, seed: configuration.general.seed,
            labelSmoothing: Float(step.trainer.labelSmoothing))
        usesMixup = step.trainer.mixup
        usesSoftTargets = step.trainer.mixup || step.trainer.labelSmoothing > 0
        guard stepsPerEpoch >= 1 else {
            throw TrainingError(
                .configuration,
                "\(dataset.root) has \(dataset.train.count) training images: too few for one step "
                    + "of 2 images per virtual shard over \(virtualShards) shard(s)")
        }
    }

    /// Switches to `plan` (a resume that keeps the checkpoint's virtual shards), rebuilding the loaders.
    mutating func assignShards(_ plan: VirtualShardPlan) {
        shardPlan = plan
        shards = plan.shards(ofRank: rank)
        loaders = Self.loaders(of: shards, plan: plan, threads: threads, makeLoader)
    }

    /// The loaders of `shards`, sharing the rank's decode threads (each at least one).
    private static func loaders(
        of shards: Range<Int>, plan: VirtualShardPlan, threads: Int,
        _ makeLoader: (Int, Int, Int) -> ShardedLoader
    ) -> [ShardedLoader] {
        let perLoader = max(1, threads / shards.count)
        return shards.map { makeLoader($0, plan.virtualShards, perLoader) }
    }

    /// Forward, loss and backward of one micro-batch on `model`: with mixup within the micro-batch
    /// (λ and permutation keyed by seed, epoch, step, virtual shard and micro-batch) or label smoothing
    /// against soft targets, else against the labels. Batch norm normalises the micro-batch with
    /// its own statistics and updates the running statistics once.
    func trainingStep(
        _ model: inout GhostNetModel, pass: MicroBatch, index: Int, epoch: Int, stepInEpoch: Int, shard: Int,
        gradientReady: (TensorSlot, Tensor) -> Void
    ) throws(GhostNetModelError) -> TrainingStepResult {
        guard usesSoftTargets else {
            return try model.trainingStep(
                images: pass.images, labels: pass.labels, batchNormMode: batchNormMode, gradientReady: gradientReady)
        }
        let draw =
            usesMixup
            ? mixup.draw(epoch: epoch, step: stepInEpoch, rank: shard, microBatch: index, batchSize: pass.labels.count)
            : nil
        var images = pass.images
        if let draw { Mixup.mixImages(&images, with: draw) }
        let targets = mixup.softTargets(
            labels: pass.labels, classCount: model.structure.configuration.classes, draw: draw)
        return try model.trainingStep(
            images: images, targets: targets, batchNormMode: batchNormMode, gradientReady: gradientReady)
    }
}
