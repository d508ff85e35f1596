// One optimizer step of the training loop: batch, forward/backward with the overlapped all-reduce,
// the per-step check every rank agrees on (finiteness, preemption requests and, on a step that ends a
// progress report's window, every rank's step time), the SGD update and the periodic parameter checksum.

import Checkpoints
import Distributed
import Foundation
import GhostNet
import ImageData
import Logging
import TensorEngine

extension Trainer {
    /// What one step took, in seconds, its loss, the ranks that asked the job to stop after it, and
    /// on a step that ends a progress report's window every rank's mean step time over the window.
    struct StepTiming {
        var loss: Double
        var dataWait: Double
        var compute: Double
        var communication: Double
        var preemptingRanks: [Int]
        var rankStepSeconds: [Double]?
    }

    /// One optimizer step: next batch, forward/backward of each micro-batch with gradients
    /// accumulated in place and the all-reduce overlapped with the last one's backward, the agreed
    /// finiteness check (which also carries preemption requests), SGD update, periodic checksum.
    /// `reportWindow`: on a step that ends a progress report's window, the window's steps before this
    /// one and their seconds, so the check also gathers every rank's mean step time.
    func trainStep(
        epoch: Int, iterators: [EpochIterator], reportWindow: (steps: Int, seconds: Double)?
    ) throws(TrainingError) -> StepTiming {
        let started = ContinuousClock.now
        var batches: [Batch] = []
        for iterator in iterators { batches.append(try nextBatch(epoch: epoch, iterator: iterator)) }
        let loaded = ContinuousClock.now

        let learningRate = optimizer.startStep(epoch: epoch, stepInEpoch: state.stepInEpoch)
        var outcome = try withPrecision(precision) { () throws(TrainingError) in
            try forwardBackward(batches, epoch: epoch)
        }
        let finishStarted = ContinuousClock.now
        do {
            try exchange.finish()
        } catch {
            throw TrainingError(.communication, "rank \(rank): gradient exchange: \(error)")
        }
        // This step's time so far stands in for its whole (the update below is the same on every rank).
        let stepSeconds = reportWindow.map {
            ($0.seconds + started.duration(to: .now).inSeconds) / Double($0.steps + 1)
        }
        let check = try agreeOnStep(outcome, stepSeconds: stepSeconds, epoch: epoch)
        outcome.communication += finishStarted.duration(to: .now)

        exchange.withGradients { gradients in
            optimizer.update(&model, gradients: gradients, isFirstStep: state.globalStep == 0)
        }
        average?.update(from: model)
        state.globalStep += 1
        state.stepInEpoch += 1
        state.samplerPosition = state.stepInEpoch * step.dataset.batchSize * virtualShards
        state.learningRate = learningRate
        outcome.communication += try verifyParametersIfDue()

        let dataWait = started.duration(to: loaded)
        let compute = started.duration(to: .now) - dataWait - outcome.communication
        return StepTiming(
            loss: outcome.loss, dataWait: dataWait.inSeconds, compute: compute.inSeconds,
            communication: outcome.communication.inSeconds,
            preemptingRanks: check.flags.indices.filter { check.flags[$0].contains(.preempt) },
            rankStepSeconds: check.stepSeconds)
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

    /// The per-step check, one agreement: stops every rank, before the update, when any rank's loss
    /// or gradient is not finite (the agreed flags name every rank that failed and what); otherwise
    /// learns which ranks were asked to stop (SIGTERM, SIGUSR1) and, with `stepSeconds`, every rank's.
    private func agreeOnStep(
        _ outcome: MicroBatchPlan.Accumulation, stepSeconds: Double?, epoch: Int
    ) throws(TrainingError) -> StepCheck.Outcome {
        var flags: StepFlags = []
        if !outcome.loss.isFinite { flags.insert(.nonFiniteLoss) }
        if !outcome.gradientIsFinite { flags.insert(.nonFiniteGradient) }
        if let signal = preemptionRequest() {
            flags.insert(.preempt)
            output.logger.warning("rank \(rank): \(signal) received; stopping after this step with a checkpoint")
        }
        let check = try collective("reducing the finiteness and preemption flags") { () throws(CommunicatorError) in
            try communicator.agree(StepCheck(flags: flags, stepSeconds: stepSeconds))
        }
        let agreed = check.flags
        let failed = agreed.indices.filter { !agreed[$0].isDisjoint(with: .nonFinite) }
        guard !failed.isEmpty else { return check }
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

    /// The matrix products' precision of this run's steps (`trainer.precision` resolved on this CPU); the
    /// master weights, optimizer, batch norm statistics, loss and all-reduce stay fp32 whatever it is.
    var precision: Precision { step.trainer.precision.resolved }
}
