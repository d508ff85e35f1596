// One optimizer step of the training loop: batch, forward/backward with the overlapped all-reduce,
// the per-step check every rank agrees on, the SGD update and the periodic parameter checksum.

import Checkpoints
import Distributed
import Foundation
import GhostNet
import ImageData
import TensorEngine

extension Trainer {
    /// What one step took, in seconds, and its loss.
    struct StepTiming {
        var loss: Double
        var dataWait: Double
        var compute: Double
        var communication: Double
    }

    /// One optimizer step: next batch, forward/backward of each micro-batch with gradients
    /// accumulated in place and the all-reduce overlapped with the last one's backward, the agreed
    /// finiteness check, SGD update, periodic checksum.
    func trainStep(epoch: Int, iterator: EpochIterator) throws(TrainingError) -> StepTiming {
        let started = ContinuousClock.now
        let batch = try nextBatch(epoch: epoch, iterator: iterator)
        let loaded = ContinuousClock.now

        let learningRate = optimizer.startStep(epoch: epoch, stepInEpoch: state.stepInEpoch)
        var outcome = try forwardBackward(batch, epoch: epoch)
        let finishStarted = ContinuousClock.now
        do {
            try exchange.finish()
        } catch {
            throw TrainingError(.communication, "rank \(rank): gradient exchange: \(error)")
        }
        try stopIfNotFinite(outcome, epoch: epoch)
        outcome.communication += finishStarted.duration(to: .now)

        exchange.withGradients { gradients in
            optimizer.update(&model, gradients: gradients, isFirstStep: state.globalStep == 0)
        }
        state.globalStep += 1
        state.stepInEpoch += 1
        state.samplerPosition = state.stepInEpoch * step.dataset.batchSize * communicator.size
        state.learningRate = learningRate
        outcome.communication += try verifyParametersIfDue()

        let dataWait = started.duration(to: loaded)
        let compute = started.duration(to: .now) - dataWait - outcome.communication
        return StepTiming(
            loss: outcome.loss, dataWait: dataWait.inSeconds, compute: compute.inSeconds,
            communication: outcome.communication.inSeconds)
    }

    private func nextBatch(epoch: Int, iterator: EpochIterator) throws(TrainingError) -> Batch {
        let next: Batch?
        do {
            next = try iterator.next()
        } catch {
            throw TrainingError(.data, "rank \(rank), epoch \(epoch + 1), step \(state.stepInEpoch + 1): \(error)")
        }
        guard let next else {
            throw TrainingError(
                .data, "rank \(rank): epoch \(epoch + 1) ended after \(state.stepInEpoch) of \(stepsPerEpoch) batches")
        }
        return next
    }

    /// Forward, loss and backward of each micro-batch; each gradient is accumulated into the
    /// exchange as backward produces it, and is tested for NaN and infinity on the way.
    private func forwardBackward(_ batch: Batch, epoch: Int) throws(TrainingError) -> MicroBatchPlan.Accumulation {
        let outcome: MicroBatchPlan.Accumulation
        do {
            outcome = try data.microBatches.accumulate(
                images: batch.images, labels: batch.labels.map(Int.init), into: exchange
            ) { pass, index, gradientReady throws(GhostNetModelError) in
                try data.trainingStep(
                    &model, pass: pass, index: index, epoch: epoch, stepInEpoch: state.stepInEpoch, rank: rank,
                    gradientReady: gradientReady
                ).loss
            }
        } catch {
            throw TrainingError(.model, "rank \(rank), epoch \(epoch + 1), step \(state.stepInEpoch + 1): \(error)")
        }
        if let exchangeError = outcome.exchangeError {
            throw TrainingError(.communication, "rank \(rank): gradient exchange: \(exchangeError)")
        }
        return outcome
    }

    /// Stops every rank, before the update, when any rank's loss or gradient is not finite; the
    /// agreed flags name every rank that failed and what.
    private func stopIfNotFinite(_ outcome: MicroBatchPlan.Accumulation, epoch: Int) throws(TrainingError) {
        var flags: StepFlags = []
        if !outcome.loss.isFinite { flags.insert(.nonFiniteLoss) }
        if !outcome.gradientIsFinite { flags.insert(.nonFiniteGradient) }
        let agreed = try collective("reducing the finiteness flags") { () throws(CommunicatorError) in
            try communicator.agree(flags)
        }
        let failed = agreed.indices.filter { !agreed[$0].isEmpty }
        guard !failed.isEmpty else { return }
        let ranks = failed.map { failedRank in
            let value = failedRank == rank && !outcome.loss.isFinite ? " \(outcome.loss)" : ""
            return "rank \(failedRank) (\(agreed[failedRank].nonFiniteParts)\(value))"
        }
        throw TrainingError(
            .nonFinite,
            "non-finite values at epoch \(epoch + 1), step \(state.stepInEpoch + 1) "
                + "(global step \(state.globalStep + 1)) on \(ranks.joined(separator: ", ")); "
                + "stopping before the update, checkpoints in \(checkpoints.url.path) are left as they were (lower "
                + "the learning rate and resume)",
            isCollective: true)
    }

    /// Compares the parameters across ranks when the exchange's checksum cadence says so.
    ///
    /// - Returns: The time it took (communication).
    private func verifyParametersIfDue() throws(TrainingError) -> Duration {
        guard exchange.isChecksumDue else { return .zero }
        let started = ContinuousClock.now
        do {
            try exchange.verifyParametersIfDue(model.parameters)
        } catch {
            throw TrainingError(.communication, "\(error)", isCollective: true)
        }
        return started.duration(to: .now)
    }

    static func isFinite(_ tensor: Tensor) -> Bool {
        tensor.withUnsafeBufferPointer { values in
            // x·0 is 0 for every finite x and NaN otherwise, so one sum tests the whole tensor.
            var probe: Float = 0
            for value in values { probe += value * 0 }
            return probe == 0
        }
    }
}
