// Validation of a model on the val split, sharded over the ranks: each rank runs its shard's
// batches as micro-batches under the memory plan, sums counts and losses, and one agreement adds
// the sums.

import Distributed
import GhostNet
import ImageData
import TensorEngine

/// Accuracy and loss of a model on the whole validation split.
package struct ValidationMetrics: Sendable {
    /// The fraction of images whose label has the highest logit.
    package var top1: Double
    /// The fraction of images whose label is among the five highest logits (all of them when
    /// there are at most five classes).
    package var top5: Double
    /// The mean cross-entropy over all images.
    package var loss: Double
    /// The number of validation images, over all ranks.
    package var imageCount: Int

    /// `top-1 … top-5 … loss … (N images)`, six significant digits, for log lines.
    package var summary: String {
        "top-1 \(PerformanceReporter.formatted(top1)) top-5 \(PerformanceReporter.formatted(top5)) "
            + "loss \(PerformanceReporter.formatted(loss)) (\(imageCount) images)"
    }
}

/// Evaluation of a model on the validation split, sharded over the ranks of a communicator.
///
/// Rank r reads images r, r+W, r+2W, … of the split (no padding, so every image counts exactly
/// once); each rank sums its correct counts and losses and one all-reduce adds the sums, so every
/// rank returns the same metrics for the whole split. Each batch runs as ``microBatches``' passes:
/// in inference mode every image's logits depend on that image alone, so the split changes only
/// the order of float sums, not the metrics.
package struct ShardedEvaluation {
    package let loader: ShardedLoader
    package let communicator: any Communicator
    /// How each batch runs as forward passes (the memory plan's micro-batch).
    package let microBatches: MicroBatchPlan

    /// - Parameters:
    ///   - dataset: The dataset whose `val/` split is read.
    ///   - batchSize: Images per forward pass on each rank.
    ///   - imageSize: The side of the centre crop fed to the network.
    ///   - threads: Decoding threads per rank.
    ///   - seed: The loader's seed (validation reading is not random; it keys bad-image replacements).
    ///   - strictData: Make an unreadable image an error instead of replacing it.
    ///   - microBatches: How a batch splits into forward passes; by default one pass per batch.
    ///   - reportBadImage: Called once per bad file (see ``ShardedLoader``).
    package init(
        dataset: DatasetIndex, batchSize: Int, imageSize: Int, threads: Int, seed: UInt64, strictData: Bool,
        communicator: any Communicator,
        microBatches: MicroBatchPlan = MicroBatchPlan(microBatchSize: nil, minimumSize: 1),
        reportBadImage: @escaping @Sendable (DataError) -> Void = ShardedLoader.warnOnStandardError
    ) {
        loader = ShardedLoader(
            dataset: dataset, split: .validation, rank: communicator.rank, worldSize: communicator.size,
            batchSize: batchSize, seed: seed, imageSize: imageSize,
            options: LoaderOptions(threadCount: threads, strictData: strictData), reportBadImage: reportBadImage)
        self.communicator = communicator
        self.microBatches = microBatches
    }

    /// Evaluates `model` in inference mode (running statistics; nothing in the model changes).
    ///
    /// - Throws: ``TrainingError`` of kind `.data` for an unreadable image in strict mode, `.model`
    ///   when the network refuses a batch, `.communication` when the reduction fails.
    package func evaluate(_ model: inout GhostNetModel) throws(TrainingError) -> ValidationMetrics {
        let classes = model.structure.configuration.classes
        // Training's cached blocks (by size class) would stay beside evaluation's, and evaluation's
        // beside training's afterwards: return them at both ends so neither phase raises the other's peak.
        _ = TensorAllocations.releaseCachedBlocks()
        defer { _ = TensorAllocations.releaseCachedBlocks() }
        var sums = ValidationSums()
        let iterator = loader.makeEpoch(epoch: 0)
        while true {
            let batch: Batch?
            do {
                batch = try iterator.next()
            } catch {
                throw TrainingError(.data, "validation data: \(error)")
            }
            guard let batch else { break }
            for pass in microBatches.passes(images: batch.images, labels: batch.labels.map(Int.init)) {
                let logits: Tensor
                do {
                    logits = try model.evaluate(images: pass.images)
                } catch {
                    throw TrainingError(.model, "evaluation: \(error)")
                }
                let (top1, top5) = Self.correctCounts(logits: logits, labels: pass.labels, classes: classes)
                sums.top1Correct += Double(top1)
                sums.top5Correct += Double(top5)
                let count = Double(pass.labels.count)
                sums.lossSum += softmaxCrossEntropy(logits: logits, labels: pass.labels).loss * count
                sums.images += count
            }
        }
        let total: ValidationSums
        do {
            total = try communicator.agree(sums)
        } catch {
            throw TrainingError(.communication, "reducing validation metrics: \(error)")
        }
        guard total.images > 0 else { throw TrainingError(.data, "the validation split has no images") }
        return ValidationMetrics(
            top1: total.top1Correct / total.images, top5: total.top5Correct / total.images,
            loss: total.lossSum / total.images, imageCount: Int(total.images))
    }

    /// How many rows of `logits` rank their label first, and among the first five.
    ///
    /// A label counts as within the top k when fewer than k classes score strictly higher.
    ///
    /// - Parameter logits: `[N, classes]`.
    static func correctCounts(logits: Tensor, labels: [Int], classes: Int) -> (top1: Int, top5: Int) {
        logits.withUnsafeBufferPointer { scores in
            var top1 = 0
            var top5 = 0
            for (row, label) in labels.enumerated() {
                let base = row * classes
                let own = scores[base + label]
                var higher = 0
                for column in 0..<classes where scores[base + column] > own { higher += 1 }
                if higher == 0 { top1 += 1 }
                if higher < 5 { top5 += 1 }
            }
            return (top1, top5)
        }
    }
}
