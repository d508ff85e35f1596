// The memory planner (issue 14): which micro-batch a rank runs under `runtime.memory_limit` — the
// fastest that fits, from the memory model — or why no micro-batch fits, before training starts.

import GhostNet
import TensorEngine

/// How one rank runs its batch under its memory limit.
package struct MemoryPlan: Sendable, Equatable {
    /// Images per forward/backward pass (the largest pass of a batch).
    package let microBatchSize: Int
    /// Forward/backward passes per optimizer step.
    package let passes: Int
    /// Passes that run at the same time, each on its share of the rank's threads
    /// (`runtime.concurrent_micro_batches`, ``MicroBatchPlan/lanes``).
    package let lanes: Int
    /// The memory model's peak resident bytes of the rank.
    package let predictedPeakBytes: Int
    /// The rank's limit in bytes.
    package let limitBytes: Int
    /// Images per rank per optimizer step.
    package let batchSize: Int
    /// The weight average's share of the prediction (`trainer.ema_decay`; 0 without one).
    package let weightAverageBytes: Int
    /// The bf16 converted-weight cache's share of the prediction (0 in fp32).
    package let convertedWeightBytes: Int

    /// The micro-batch that runs fastest at 224²: of 4, 8, 16 and 32 images, `bench train` of the seed's
    /// batch of 128 ran 16 fastest on 2026-12-07 (docs/PERFORMANCE.md; one pass of 128 is about as fast at
    /// 17.5 GB); a noisier run on 2026-12-08 put 32 ahead, at 5.1 GB, where 16 keeps the seed config
    /// under 4 GB. Two at a time, 16 each ran faster than 8 each. The GEMMs' long side is micro-batch ×
    /// pixels, so at other image sizes the fastest micro-batch keeps 16 × 224² pixels (see
    /// ``fastestMicroBatch(imageSize:)``).
    package static let fastestMicroBatchAt224 = 16

    /// The micro-batch with as many pixels per pass as 16 images of 224².
    package static func fastestMicroBatch(imageSize: Int) -> Int {
        max(1, fastestMicroBatchAt224 * 224 * 224 / max(1, imageSize * imageSize))
    }

    /// The plan for a batch of `batchSize` images per rank, with up to `lanes` passes at a time.
    ///
    /// With `requested` (`runtime.micro_batch_size`) that micro-batch runs; otherwise the fastest
    /// one (``fastestMicroBatch(imageSize:)``, at most the batch), or the largest below it that fits.
    /// Passes run in as many of the `lanes` as there are passes and as fit the limit with passes of
    /// at least `minimumSize` images; lanes give way before the micro-batch shrinks below the fastest.
    ///
    /// - Parameters:
    ///   - microBatches: How a batch splits into passes (balanced sizes, a minimum per pass).
    /// - Throws: ``MemoryPlanError`` when the fixed part, one pass of the smallest size, or the
    ///   requested micro-batch does not fit `limitBytes`.
    package static func plan(
        model: MemoryModel, imageSize: Int, batchSize: Int, requested: Int?, minimumSize: Int, limitBytes: Int,
        lanes: Int = 1
    ) throws(MemoryPlanError) -> MemoryPlan {
        func plan(_ micro: Int, lanes: Int) -> MemoryPlan {
            let sizes = MicroBatchPlan(microBatchSize: micro, minimumSize: minimumSize).sizes(of: batchSize)
            let largest = sizes.max() ?? batchSize
            let lanes = min(lanes, sizes.count)
            return MemoryPlan(
                microBatchSize: largest, passes: sizes.count, lanes: lanes,
                predictedPeakBytes: model.peakBytes(microBatch: largest, lanes: lanes), limitBytes: limitBytes,
                batchSize: batchSize, weightAverageBytes: model.weightAverageBytes,
                convertedWeightBytes: model.convertedWeightBytes)
        }
        let smallest = min(minimumSize, batchSize)
        guard model.fixedBytes < limitBytes else {
            throw MemoryPlanError(.belowFixedPart, limitBytes: limitBytes, neededBytes: model.fixedBytes)
        }
        let laneCounts = stride(from: max(1, lanes), through: 1, by: -1)
        if let requested {
            if let fitting = laneCounts.lazy.map({ plan(requested, lanes: $0) }).first(where: {
                $0.predictedPeakBytes <= limitBytes
            }) {
                return fitting
            }
            throw MemoryPlanError(
                .requestedTooLarge, limitBytes: limitBytes, neededBytes: plan(requested, lanes: 1).predictedPeakBytes,
                microBatch: requested)
        }
        guard model.peakBytes(microBatch: smallest) <= limitBytes else {
            throw MemoryPlanError(
                .noImageFits, limitBytes: limitBytes, neededBytes: model.peakBytes(microBatch: smallest),
                microBatch: smallest)
        }
        let fastest = min(fastestMicroBatch(imageSize: imageSize), batchSize)
        // The most lanes whose passes of the fastest size fit; else one lane of the largest that fits.
        for lanes in laneCounts where lanes > 1 {
            let chosen = plan(fastest, lanes: lanes)
            if chosen.predictedPeakBytes <= limitBytes { return chosen }
        }
        let fitting = (limitBytes - model.fixedBytes) / max(1, model.bytesPerImage)
        return plan(max(smallest, min(fastest, fitting)), lanes: 1)
    }

    /// `micro-batch 16 × 8 pass(es) per step, 2 at a time, predicted peak 5.75 GB per rank (limit 19.2 GB)`, with
    /// `, of which the weight average (trainer.ema_decay) 154 MB, bf16 weight cache 224 MB` for the
    /// parts a run has.
    package var description: String {
        let parts = [
            (weightAverageBytes, "the weight average (trainer.ema_decay)"), (convertedWeightBytes, "bf16 weight cache"),
        ].filter { $0.0 > 0 }.map { "\($0.1) \(MemoryLimit.describe($0.0))" }
        let included = parts.isEmpty ? "" : ", of which " + parts.joined(separator: ", ")
        let together = lanes > 1 ? ", \(lanes) at a time" : ""
        return "micro-batch \(microBatchSize) × \(passes) pass(es) per step\(together), predicted peak "
            + "\(MemoryLimit.describe(predictedPeakBytes)) per rank\(included) "
            + "(limit \(MemoryLimit.describe(limitBytes)))"
    }
}

/// Why no micro-batch of the batch fits the memory limit.
package struct MemoryPlanError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Code: Sendable, Equatable {
        /// Parameters, optimizer state and buffers alone exceed the limit.
        case belowFixedPart
        /// Not even the smallest micro-batch fits.
        case noImageFits
        /// `runtime.micro_batch_size` does not fit.
        case requestedTooLarge
    }

    package let code: Code
    /// The limit and what the failing plan needs, in bytes.
    package let limitBytes: Int
    package let neededBytes: Int
    package let microBatch: Int?

    init(_ code: Code, limitBytes: Int, neededBytes: Int, microBatch: Int? = nil) {
        self.code = code
        self.limitBytes = limitBytes
        self.neededBytes = neededBytes
        self.microBatch = microBatch
    }

    package var description: String {
        let limit = "runtime.memory_limit: the limit of \(MemoryLimit.describe(limitBytes)) per rank"
        let needed = MemoryLimit.describe(neededBytes)
        switch code {
        case .belowFixedPart:
            return "\(limit) is below the model's fixed part (parameters, gradients, momentum, buffers and "
                + "any weight average) of \(needed); raise the limit or run fewer ranks per server"
        case .noImageFits:
            return "\(limit) does not fit even \(microBatch ?? 1) image(s) per pass; "
                + "the minimum needed is \(needed); raise the limit or lower the image size"
        case .requestedTooLarge:
            return "\(limit) does not fit runtime.micro_batch_size \(microBatch ?? 0), which needs \(needed); "
                + "lower runtime.micro_batch_size or raise the limit"
        }
    }
}

extension TrainingConfiguration {
    /// The memory plan of `step`'s training on one of `ranksOnServer` ranks of a server with
    /// `threads` threads, its minimum pass size set by the batch-norm mode
    /// (`runtime.freeze_batch_norm`), with the weight average and frozen prefixes of `step.trainer`,
    /// and up to `runtime.concurrent_micro_batches` passes at a time (no more than the threads). A
    /// reproducible reduction runs its passes one at a time: the lanes would follow the threads,
    /// which follow the ranks per server, and the lanes set the order of the gradient sums.
    package func memoryPlan(
        for step: Step, structure: GhostNetStructure, ranksOnServer: Int, threads: Int
    ) throws(MemoryPlanError) -> MemoryPlan {
        let model = MemoryModel(
            structure: structure, imageSize: step.dataset.imageSize,
            pipelineImages: MemoryModel.batchesInFlight * step.dataset.batchSize,
            options: MemoryModel.Options(
                keepsWeightAverage: step.trainer.emaDecay > 0,
                frozenSlots: FrozenParameters.indices(
                    step.trainer.freeze, names: FrozenParameters.parameterNames(of: structure)),
                precision: step.trainer.precision.resolved))
        return try MemoryPlan.plan(
            model: model, imageSize: step.dataset.imageSize, batchSize: step.dataset.batchSize,
            requested: runtime.microBatchSize, minimumSize: runtime.freezeBatchNorm ? 1 : 2,
            limitBytes: runtime.memoryLimit.bytes(ranksOnServer: ranksOnServer),
            lanes: runtime.reproducibleReduction ? 1 : min(runtime.concurrentMicroBatches, threads))
    }

    /// The plan of evaluating `structure` in batches of `batchSize` (`eval`) on one of
    /// `ranksOnServer` ranks: passes of at most `runtime.micro_batch_size` images, else the planner's
    /// choice under `runtime.memory_limit`. The training model bounds inference, which keeps no
    /// activations for backward and no optimizer state, so a plan that fits here leaves room.
    package func evaluationPlan(
        batchSize: Int, structure: GhostNetStructure, ranksOnServer: Int
    ) throws(MemoryPlanError) -> MemoryPlan {
        let imageSize = structure.configuration.imageSize
        let model = MemoryModel(
            structure: structure, imageSize: imageSize, pipelineImages: MemoryModel.batchesInFlight * batchSize)
        return try MemoryPlan.plan(
            model: model, imageSize: imageSize, batchSize: batchSize, requested: runtime.microBatchSize,
            minimumSize: 1, limitBytes: runtime.memoryLimit.bytes(ranksOnServer: ranksOnServer))
    }
}
