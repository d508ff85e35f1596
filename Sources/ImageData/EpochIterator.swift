// The batches of one epoch, decoded ahead by background threads in step order, with image buffers
// recycled between steps: the loader's threading, apart from ShardedLoader.swift's per-batch work.

import Foundation
import TensorEngine

/// The batches of one epoch of a `ShardedLoader`, produced ahead by background threads.
///
/// Worker threads claim whole batches in step order, at most `prefetchDepth` ahead of the
/// consumer, and fill them with their own `SamplePipeline`. A batch's image buffer goes back to the
/// pool when the consumer asks for the next batch: if the consumer has dropped it by then, the
/// next batch is decoded into the same memory; if it still holds it, copy-on-write keeps the
/// consumer's data intact. Dropping the iterator stops and joins the threads.
package final class EpochIterator {
    package let epoch: Int
    private let production: EpochProduction
    private var nextStep: Int
    private let endStep: Int
    private var handedOut: Tensor?

    init(loader: ShardedLoader, epoch: Int, firstStep: Int) {
        self.epoch = epoch
        self.nextStep = firstStep
        self.endStep = loader.batchesPerEpoch
        let samples = loader.plan.samples(epoch: epoch)
        let threadCount = max(1, min(loader.options.threadCount, endStep - firstStep))
        let depth = max(loader.options.prefetchDepth, 2, threadCount)
        production = EpochProduction(firstStep: firstStep, endStep: endStep, depth: depth)
        guard firstStep < endStep else { return }
        production.runningWorkers = threadCount
        for _ in 0..<threadCount {
            let production = self.production
            let thread = Thread {
                var pipeline = SamplePipeline(maximumSide: loader.options.maximumSide)
                while let (step, buffer) = production.claim() {
                    var replacements = 0
                    let result: Result<Batch, DataError>
                    do throws(DataError) {
                        result = .success(
                            try loader.makeBatch(
                                step: step, epoch: epoch, samples: samples, buffer: buffer, pipeline: &pipeline,
                                replacements: &replacements))
                    } catch {
                        result = .failure(error)
                    }
                    production.deliver(step: step, result, replacements: replacements)
                }
                production.workerExited()
            }
            thread.name = "ghostnet-d.loader"
            thread.start()
        }
    }

    deinit { production.cancelAndJoin() }

    /// Samples of this epoch replaced so far because their image was bad.
    package var replacedSampleCount: Int { production.replacedSamples }

    /// The next batch, or nil after the last one.
    ///
    /// - Throws: `DataError` for a bad image in strict mode, or when no replacement is readable;
    ///   the epoch is then over.
    package func next() throws(DataError) -> Batch? {
        guard nextStep < endStep else { return nil }
        let result = production.take(step: nextStep, returning: handedOut)
        handedOut = nil
        nextStep += 1
        switch result {
        case .success(let batch):
            handedOut = batch.images
            return batch
        case .failure(let error):
            nextStep = endStep
            production.cancelAndJoin()
            throw error
        case nil:
            nextStep = endStep
            return nil
        }
    }
}

/// The state the consumer and the worker threads share, guarded by one condition variable.
private final class EpochProduction: @unchecked Sendable {
    private let condition = NSCondition()
    private let endStep: Int
    private let depth: Int
    private var nextClaim: Int
    /// The first step the consumer has not taken yet; workers stay within `depth` of it.
    private var consumerStep: Int
    private var finished: [Int: Result<Batch, DataError>] = [:]
    private var spareBuffers: [Tensor] = []
    private var cancelled = false
    var runningWorkers = 0
    private var replaced = 0

    init(firstStep: Int, endStep: Int, depth: Int) {
        self.nextClaim = firstStep
        self.consumerStep = firstStep
        self.endStep = endStep
        self.depth = depth
    }

    /// The next step for a worker and a buffer to fill, or nil when the worker should exit.
    func claim() -> (step: Int, buffer: Tensor?)? {
        condition.lock()
        defer { condition.unlock() }
        while !cancelled && nextClaim < endStep && nextClaim >= consumerStep + depth {
            condition.wait()
        }
        guard !cancelled && nextClaim < endStep else { return nil }
        defer { nextClaim += 1 }
        return (nextClaim, spareBuffers.popLast())
    }

    func deliver(step: Int, _ result: Result<Batch, DataError>, replacements: Int) {
        condition.lock()
        finished[step] = result
        replaced += replacements
        condition.broadcast()
        condition.unlock()
    }

    func workerExited() {
        condition.lock()
        runningWorkers -= 1
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for batch `step` (nil only when cancelled), first recycling `previous`'s buffer.
    func take(step: Int, returning previous: Tensor?) -> Result<Batch, DataError>? {
        condition.lock()
        defer { condition.unlock() }
        if let previous { spareBuffers.append(previous) }
        consumerStep = step
        condition.broadcast()
        while finished[step] == nil && !cancelled && runningWorkers > 0 {
            condition.wait()
        }
        guard let result = finished.removeValue(forKey: step) else { return nil }
        consumerStep = step + 1
        condition.broadcast()
        return result
    }

    var replacedSamples: Int {
        condition.lock()
        defer { condition.unlock() }
        return replaced
    }

    /// Tells the workers to stop after their current batch and waits until they have exited.
    func cancelAndJoin() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        while runningWorkers > 0 { condition.wait() }
        condition.unlock()
    }
}
