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
    /// batch of 128 ran 16 fastest (docs/PERFORMANCE.md; one pass of 128 is about as fast at 17.5 GB). The
    /// GEMMs' long side is micro-batch × pixels, so at other image sizes the fastest micro-batch keeps
    /// 16 × 224² pixels (see ``fastestMicroBatch(imageSize:)``).
    package static let fastestMicroBatchAt224 = 16

    /// The micro-batch with as many pixels per pass as 16 images of 224².
    package static func fastestMicroBatch(imageSize: Int) -> Int {
        max(1, fastestMicroBatchAt224 * 224 * 224 / max(1, imageSize * imageSize))
    }

    /// The plan for a batch of `batchSize` images per rank.
    ///
    /// With `requested` (`runtime.micro_batch_size`) that micro-batch runs; otherwise the fastest
    /// one (``fastestMicroBatch(imageSize:)``, at most the batch), or the largest below it that fits.
    ///
    /// - Parameters:
    ///   - microBatches: How a batch splits into passes (balanced sizes, a minimum per pass).
    /// - Throws: ``MemoryPlanError`` when the fixed part, one pass of the smallest size, or the
    ///   requested micro-batch does not fit `limitBytes`.
    package static func plan(
        model: MemoryModel, imageSize: Int, batchSize: Int, requested: Int?, minimumSize: Int, limitBytes: Int
    ) throws(MemoryPlanError) -> MemoryPlan {
        func plan(_ micro: Int) -> MemoryPlan {
            let sizes = MicroBatchPlan(microBatchSize: micro, minimumSize: minimumSize).sizes(of: batchSize)
            let largest = sizes.max() ?? batchSize
            return MemoryPlan(
                microBatchSize: largest, passes: sizes.count, predictedPeakBytes: model.peakBytes(microBatch: largest),
                limitBytes: limitBytes, batchSize: batchSize, weightAverageBytes: model.weightAverageBytes,
                convertedWeightBytes: model.convertedWeightBytes)
        }
        let smallest = min(minimumSize, batchSize)
        guard model.fixedBytes < limitBytes else {
            throw MemoryPlanError(.belowFixedPart, limitBytes: limitBytes, neededBytes: model.fixedBytes)
        }
        if let requested {
            let chosen = plan(requested)
            guard chosen.predictedPeakBytes <= limitBytes else {
                throw MemoryPlanError(
                    .requestedTooLarge, limitBytes: limitBytes, neededBytes: chosen.predictedPeakBytes,
                    microBatch: requested)
            }
            return chosen
        }
        guard model.peakBytes(microBatch: smallest) <= limitBytes else {
            throw MemoryPlanError(
                .noImageFits, limitBytes: limitBytes, neededBytes: model.peakBytes(microBatch: smallest),
                microBatch: smallest)
        }
        let fitting = (limitBytes - model.fixedBytes) / max(1, model.bytesPerImage)
        let micro = max(smallest, min(fastestMicroBatch(imageSize: imageSize), batchSize, fitting))
        return plan(micro)
    }

    /// `micro-batch 16 × 8 pass(es) per step, predicted peak 3.10 GB per rank (limit 19.2 GB)`, with
    /// `, of which the weight average (trainer.ema_decay) 154 MB, bf16 weight cache 224 MB` for the
    /// parts a run has.
    package var description: String {
        let parts = [
            (weightAverageBytes, "the weight average (trainer.ema_decay)"), (convertedWeightBytes, "bf16 weight cache"),
        ].filter { $0.0 > 0 }.map { "\($0.1) \(MemoryLimit.describe($0.0))" }
        let included = parts.isEmpty ? "" : ", of which " + parts.joined(separator: ", ")
        return "micro-batch \(microBatchSize) × \(passes) pass(es) per step, predicted peak "
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
    /// The memory plan of `step`'s training on one of `ranksOnServer` ranks of a server, its
    /// minimum pass size set by the batch-norm mode (`runtime.freeze_batch_norm`), with the weight
    /// average and frozen prefixes of `step.trainer`.
    package func memoryPlan(
        for step: Step, structure: GhostNetStructure, ranksOnServer: Int
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
            limitBytes: runtime.memoryLimit.bytes(ranksOnServer: ranksOnServer))
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
