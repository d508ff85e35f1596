// How a rank's batch runs as micro-batches (gradient accumulation): the split of a batch into
// forward/backward passes, each pass's images and labels, its weight in the step's loss, and the
// lanes that run passes at the same time, one thread each.

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
///
/// With several ``lanes``, that many passes run at the same time, each on its own share of the
/// rank's threads (one each on a 2-core rank): one pass's kernels on one thread run at 83–91 % of
/// the one-thread sgemm peak, where one pass's kernels split over two threads reach 66–80 % of the
/// two-thread peak (docs/PERFORMANCE.md).
package struct MicroBatchPlan: Sendable, Equatable {
    /// The most images one pass holds; nil runs every batch in one pass.
    package let microBatchSize: Int?
    /// The fewest images a pass may hold: 2 when batch norm normalises with batch statistics
    /// (one image per channel has no spread), else 1.
    package let minimumSize: Int
    /// The most passes that run at the same time.
    package let lanes: Int

    /// - Precondition: `microBatchSize`, if given, is at least 1; `minimumSize` and `lanes` are at least 1.
    package init(microBatchSize: Int?, minimumSize: Int, lanes: Int = 1) {
        precondition(microBatchSize.map { $0 >= 1 } ?? true, "a micro-batch holds at least one image")
        precondition(minimumSize >= 1, "a pass holds at least one image")
        precondition(lanes >= 1, "passes run in at least one lane")
        self.microBatchSize = microBatchSize
        self.minimumSize = minimumSize
        self.lanes = lanes
    }

    /// The lanes a batch of `count` images runs in: no more than its passes.
    package func laneCount(of count: Int) -> Int { min(lanes, sizes(of: count).count) }

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

    /// Forward, loss and backward of one pass (its index given) on the model given, calling the
    /// handler with each parameter gradient as backward produces it; returns the pass's mean loss.
    package typealias Pass = (
        inout GhostNetModel, MicroBatch, Int, (TensorSlot, Tensor) -> Void
    ) throws(GhostNetModelError) -> Double

    /// Runs every pass of a batch, accumulating its gradients in place into `exchange`'s flat
    /// buffer, weighted by the pass's share of the batch; the exchange tests the sums for NaN and
    /// infinity once, on the last pass. Only the last pass marks parameters ready, so the bucketed
    /// all-reduce overlaps the last pass's backward and runs once per step; the caller then calls
    /// ``GradientExchange/finish()``.
    ///
    /// With several lanes the passes run at the same time instead (``laneCount(of:)``): lane ℓ runs
    /// passes ℓ, ℓ + lanes, … in order on its own copy of `model`, lane 0 accumulating into the
    /// exchange and every other lane into sums of its own, which are added to the exchange after
    /// the last pass (so the all-reduce starts then). The copies record their batch statistics,
    /// which `model` then applies in pass order, exactly as passes run one after another would.
    /// The gradient sums differ from one lane's only in the order of their additions.
    package func accumulate(
        images: Tensor, labels: [Int], model: inout GhostNetModel, into exchange: GradientExchange, runPass: Pass
    ) throws(GhostNetModelError) -> Accumulation {
        let passes = passes(images: images, labels: labels)
        let sizes = passes.map(\.labels.count)
        // The tensor block cache keeps blocks by size class, so passes of two sizes would keep two
        // sets of activations (measured: +1.27 GB for ghostnet101 passes of 11 and 10 images).
        // Returning the cache where the size changes keeps the peak at the memory plan's.
        let uneven = Set(sizes).count > 1
        let lanes = laneCount(of: labels.count)
        if lanes > 1 {
            if uneven { _ = TensorAllocations.releaseCachedBlocks() }
            return try accumulateInLanes(lanes, passes: passes, model: &model, into: exchange, runPass: runPass)
        }
        var outcome = Accumulation()
        for (index, pass) in passes.enumerated() {
            if uneven, index == 0 || sizes[index] != sizes[index - 1] {
                _ = TensorAllocations.releaseCachedBlocks()
            }
            let handOff = HandOff(
                exchange: exchange, weight: pass.weight, isFirst: index == 0, isLast: index == passes.count - 1)
            let loss = try runPass(&model, pass, index) { handOff.take($1, of: $0, into: &outcome) }
            outcome.loss += Double(pass.weight) * loss
        }
        return outcome
    }

    /// How one pass hands each gradient to the exchange, timing the hand-off and keeping its outcome.
    fileprivate struct HandOff {
        let exchange: GradientExchange
        let weight: Float
        let isFirst: Bool
        let isLast: Bool

        func take(_ gradient: Tensor, of slot: TensorSlot, into outcome: inout Accumulation) {
            guard outcome.exchangeError == nil else { return }
            let started = ContinuousClock.now
            do throws(CommunicatorError) {
                let isFinite = try exchange.accumulate(
                    gradient, forParameter: slot.index, weight: weight, isFirst: isFirst, isLast: isLast)
                if !isFinite { outcome.gradientIsFinite = false }
            } catch {
                outcome.exchangeError = error
            }
            outcome.communication += started.duration(to: .now)
        }
    }

    /// What one lane's passes left: their losses and batch statistics by pass index, and (lanes
    /// after the first) the lane's weighted gradient sums by parameter index.
    fileprivate struct Lane {
        var model: GhostNetModel
        var losses: [Int: Double] = [:]
        var statistics: [Int: PassStatistics] = [:]
        var sums: [Int: Tensor] = [:]
        var outcome = Accumulation()
        var error: GhostNetModelError?
    }

    private func accumulateInLanes(
        _ laneCount: Int, passes: [MicroBatch], model: inout GhostNetModel, into exchange: GradientExchange,
        runPass: Pass
    ) throws(GhostNetModelError) -> Accumulation {
        var copy = model
        copy.deferRunningStatistics()
        let lanes = UnsafeMutableBufferPointer<Lane>.allocate(capacity: laneCount)
        lanes.initialize(repeating: Lane(model: copy))
        defer { lanes.deinitialize().deallocate() }
        let threadsPerLane = max(1, GEMM.threadCount / laneCount)
        inParallel(laneCount) { index in
            GEMM.withThreadCount(threadsPerLane) {
                lanes[index].run(
                    passes: Array(stride(from: index, to: passes.count, by: laneCount)), of: passes,
                    handingOffTo: index == 0 ? exchange : nil, runPass: runPass)
            }
        }
        if let error = lanes.lazy.compactMap(\.error).first { throw error }
        var outcome = lanes[0].outcome
        for index in passes.indices {
            let lane = lanes[index % laneCount]
            outcome.loss += Double(passes[index].weight) * lane.losses[index]!
            model.applyRunningStatistics(lane.statistics[index]!)
        }
        // The other lanes' sums join lane 0's, the last one marking each parameter ready, from the
        // last parameter back as backward announces them.
        for parameter in model.parameterSlots.indices.reversed() where outcome.exchangeError == nil {
            for lane in 1..<laneCount {
                let handOff = HandOff(exchange: exchange, weight: 1, isFirst: false, isLast: lane == laneCount - 1)
                handOff.take(lanes[lane].sums[parameter]!, of: model.parameterSlots[parameter], into: &outcome)
            }
        }
        return outcome
    }
}

extension MicroBatchPlan.Lane {
    /// Runs the passes at `indices` of `passes` in order on this lane's model: lane 0's gradients go
    /// to `exchange`, the others' into ``sums``.
    mutating func run(
        passes indices: [Int], of passes: [MicroBatch], handingOffTo exchange: GradientExchange?,
        runPass: MicroBatchPlan.Pass
    ) {
        var (sums, outcome) = (self.sums, self.outcome)
        defer { (self.sums, self.outcome) = (sums, outcome) }
        for index in indices {
            let pass = passes[index]
            let isFirst = index == indices[0]
            do throws(GhostNetModelError) {
                losses[index] = try runPass(&model, pass, index) { slot, gradient in
                    if let exchange {
                        MicroBatchPlan.HandOff(exchange: exchange, weight: pass.weight, isFirst: isFirst, isLast: false)
                            .take(gradient, of: slot, into: &outcome)
                    } else {
                        Self.add(gradient, weight: pass.weight, to: &sums[slot.index], isFirst: isFirst)
                    }
                }
            } catch {
                self.error = error
                return
            }
            statistics[index] = model.takePassStatistics()
        }
    }

    /// `sum = weight × gradient` on the lane's first pass, `sum += weight × gradient` after.
    private static func add(_ gradient: Tensor, weight: Float, to sum: inout Tensor?, isFirst: Bool) {
        if isFirst { sum = Tensor(shape: gradient.shape, initializingWith: { _ in }) }
        gradient.withUnsafeBufferPointer { source in
            sum!.withUnsafeMutableBufferPointer { sum in
                GradientExchange.accumulate(source, into: sum, scale: weight, overwriting: isFirst)
            }
        }
    }
}
