// How a rank's batch runs as micro-batches (gradient accumulation): the split of a batch into
// forward/backward passes, each pass's images and labels, and its weight in the step's loss.

import Distributed
import GhostNet
import TensorEngine

/// How one rank's batch runs as micro-batches: several forward/backward passes whose gradients
/// accumulate into one optimizer step.
///
/// A batch of `count` images runs as ⌈count / microBatchSize⌉ passes of balanced sizes (they
/// differ by at most one image, larger first), so no pass is needlessly tiny; with batch
/// statistics no pass holds fewer than ``minimumSize`` images. Pass j's loss is the mean over its
/// mⱼ images and weighs mⱼ / count, so the accumulated gradient is that of the mean loss over the
/// whole batch.
package struct MicroBatchPlan: Sendable, Equatable {
    /// The most images one pass holds; nil runs every batch in one pass.
    package let microBatchSize: Int?
    /// The fewest images a pass may hold: 2 when batch norm normalises with batch statistics
    /// (one image per channel has no spread), else 1.
    package let minimumSize: Int

    /// - Precondition: `microBatchSize`, if given, is at least 1; `minimumSize` is at least 1.
    package init(microBatchSize: Int?, minimumSize: Int) {
        precondition(microBatchSize.map { $0 >= 1 } ?? true, "a micro-batch holds at least one image")
        precondition(minimumSize >= 1, "a pass holds at least one image")
        self.microBatchSize = microBatchSize
        self.minimumSize = minimumSize
    }

    /// The sizes of the passes a batch of `count` images runs as, in order; they sum to `count`.
    package func sizes(of count: Int) -> [Int] {
        guard let microBatchSize, count > microBatchSize else { return [count] }
        let passes = max(1, min((count + microBatchSize - 1) / microBatchSize, count / minimumSize))
        let base = count / passes
        let larger = count % passes
        return (0..<passes).map { $0 < larger ? base + 1 : base }
    }

    /// The passes of a batch: the images and labels of each, and its weight (size / batch size).
    /// A batch that runs in one pass is handed on as it is, without a copy.
    ///
    /// - Parameters:
    ///   - images: `[count, …]`, the batch dimension outermost.
    ///   - labels: `count` labels.
    package func passes(images: Tensor, labels: [Int]) -> [MicroBatch] {
        let count = labels.count
        precondition(images.shape.first == count, "\(labels.count) labels for a batch of \(images.shape)")
        let sizes = sizes(of: count)
        guard sizes.count > 1 else { return [MicroBatch(images: images, labels: labels, weight: 1)] }
        let sampleSize = count == 0 ? 0 : images.count / count
        var start = 0
        return sizes.map { size in
            defer { start += size }
            let part = Tensor(shape: [size] + images.shape.dropFirst()) { destination in
                images.withUnsafeBufferPointer { source in
                    _ = destination.update(fromContentsOf: source[start * sampleSize..<(start + size) * sampleSize])
                }
            }
            return MicroBatch(
                images: part, labels: Array(labels[start..<start + size]), weight: Float(size) / Float(count))
        }
    }
}

/// One forward/backward pass of an optimizer step.
package struct MicroBatch: Sendable {
    /// `[size, …]`.
    package let images: Tensor
    package let labels: [Int]
    /// This pass's share of the step's batch: its size / the batch size.
    package let weight: Float
}

extension MicroBatchPlan {
    /// What the passes of one optimizer step left behind on this rank.
    package struct Accumulation: Sendable {
        /// The mean loss over the whole batch (each pass's loss weighted by its share).
        package var loss: Double = 0
        package var gradientIsFinite = true
        /// Time spent handing gradients to the exchange.
        package var communication = Duration.zero
        /// The first collective failure (the remaining gradients were not handed on).
        package var exchangeError: CommunicatorError?
    }

    /// Runs every pass of a batch, accumulating its gradients in place into `exchange`'s flat
    /// buffer, weighted by the pass's share of the batch; the exchange tests the sums for NaN and
    /// infinity once, on the last pass. Only the last pass marks parameters ready, so the bucketed
    /// all-reduce overlaps the last pass's backward and runs once per step; the caller then calls
    /// ``GradientExchange/finish()``.
    ///
    /// - Parameters:
    ///   - runPass: Forward, loss and backward of one pass (its index given), calling the handler
    ///     with each parameter gradient as backward produces it; returns the pass's mean loss.
    package func accumulate(
        images: Tensor, labels: [Int], into exchange: GradientExchange,
        runPass: (MicroBatch, Int, (TensorSlot, Tensor) -> Void) throws(GhostNetModelError) -> Double
    ) throws(GhostNetModelError) -> Accumulation {
        var outcome = Accumulation()
        let passes = passes(images: images, labels: labels)
        let sizes = passes.map(\.labels.count)
        let uneven = Set(sizes).count > 1
        for (index, pass) in passes.enumerated() {
            // The tensor block cache keeps blocks by size class, so passes of two sizes would keep two
            // sets of activations (measured: +1.27 GB for ghostnet101 passes of 11 and 10 images).
            // Returning the cache where the size changes keeps the peak at the memory plan's.
            if uneven, index == 0 || sizes[index] != sizes[index - 1] {
                _ = TensorAllocations.releaseCachedBlocks()
            }
            let isFirst = index == 0
            let isLast = index == passes.count - 1
            let gradientReady: (TensorSlot, Tensor) -> Void = { slot, gradient in
                guard outcome.exchangeError == nil else { return }
                let started = ContinuousClock.now
                do throws(CommunicatorError) {
                    let isFinite = try exchange.accumulate(
                        gradient, forParameter: slot.index, weight: pass.weight, isFirst: isFirst, isLast: isLast)
                    if !isFinite { outcome.gradientIsFinite = false }
                } catch {
                    outcome.exchangeError = error
                }
                outcome.communication += started.duration(to: .now)
            }
            outcome.loss += Double(pass.weight) * (try runPass(pass, index, gradientReady))
        }
        return outcome
    }
}
