//===----------------------------------------------------------------------===//
// ghostnet-d — Training
//===----------------------------------------------------------------------===//

import Distributed
import GhostNet
import ImageData
import TensorEngine

/// Accuracy and loss of a model on the whole validation split.
public struct ValidationMetrics: Sendable {
    /// The fraction of images whose label has the highest logit.
    public var top1: Double
    /// The fraction of images whose label is among the five highest logits (all of them when
    /// there are at most five classes).
    public var top5: Double
    /// The mean cross-entropy over all images.
    public var loss: Double
    /// The number of validation images, over all ranks.
    public var imageCount: Int
}

/// Evaluation of a model on the validation split, sharded over the ranks of a communicator.
///
/// Rank r reads images r, r+W, r+2W, … of the split (no padding, so every image counts exactly
/// once); each rank sums its correct counts and losses and one all-reduce adds the sums, so every
/// rank returns the same metrics for the whole split.
public struct ShardedEvaluation {
    public let loader: ShardedLoader
    public let communicator: any Communicator

    /// - Parameters:
    ///   - dataset: The dataset whose `val/` split is read.
    ///   - batchSize: Images per forward pass on each rank.
    ///   - imageSize: The side of the centre crop fed to the network.
    ///   - threads: Decoding threads per rank.
    ///   - seed: The loader's seed (validation reading is not random; it keys bad-image replacements).
    ///   - strictData: Make an unreadable image an error instead of replacing it.
    ///   - reportBadImage: Called once per bad file (see ``ShardedLoader``).
    public init(
        dataset: DatasetIndex, batchSize: Int, imageSize: Int, threads: Int, seed: UInt64, strictData: Bool,
        communicator: any Communicator,
        reportBadImage: @escaping @Sendable (DataError) -> Void = ShardedLoader.warnOnStandardError
    ) {
        loader = ShardedLoader(
            dataset: dataset, split: .validation, rank: communicator.rank, worldSize: communicator.size,
            batchSize: batchSize, seed: seed, imageSize: imageSize,
            options: LoaderOptions(threadCount: threads, strictData: strictData), reportBadImage: reportBadImage)
        self.communicator = communicator
    }

    /// Evaluates `model` in inference mode (running statistics; nothing in the model changes).
    ///
    /// - Throws: ``TrainingError`` of kind `.data` for an unreadable image in strict mode, `.model`
    ///   when the network refuses a batch, `.communication` when the reduction fails.
    public func evaluate(_ model: inout GhostNetModel) throws(TrainingError) -> ValidationMetrics {
        let classes = model.structure.configuration.classes
        // [top-1 correct, top-5 correct, loss sum, images], summed over ranks in Double (exact for counts).
        var sums = [Double](repeating: 0, count: 4)
        let iterator = loader.makeEpoch(epoch: 0)
        while true {
            let batch: Batch?
            do {
                batch = try iterator.next()
            } catch {
                throw TrainingError(.data, "validation data: \(error)")
            }
            guard let batch else { break }
            let logits: Tensor
            do {
                logits = try model.evaluate(images: batch.images)
            } catch {
                throw TrainingError(.model, "evaluation: \(error)")
            }
            let labels = batch.labels.map(Int.init)
            let (top1, top5) = Self.correctCounts(logits: logits, labels: labels, classes: classes)
            sums[0] += Double(top1)
            sums[1] += Double(top5)
            sums[2] += softmaxCrossEntropy(logits: logits, labels: labels).loss * Double(labels.count)
            sums[3] += Double(labels.count)
        }
        do {
            try sums.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
                try communicator.allreduceSum(buffer)
            }
        } catch {
            throw TrainingError(.communication, "reducing validation metrics: \(error)")
        }
        let images = sums[3]
        guard images > 0 else { throw TrainingError(.data, "the validation split has no images") }
        return ValidationMetrics(top1: sums[0] / images, top5: sums[1] / images, loss: sums[2] / images, imageCount: Int(images))
    }

    /// How many rows of `logits` rank their label first, and among the first five.
    ///
    /// A label counts as within the top k when fewer than k classes score strictly higher.
    ///
    /// - Parameter logits: `[N, classes]`.
    static func correctCounts(logits: Tensor, labels: [Int], classes: Int) -> (top1: Int, top5: Int) {
        logits.withUnsafeBufferPointer { scores in
            var top1 = 0, top5 = 0
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
