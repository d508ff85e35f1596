// Fine-tuning controls of the training loop: `trainer.freeze` applied to the settled replica, and the
// weights' moving average (`trainer.ema_decay`): started or shared from rank 0, updated after every
// optimizer step, its statistics synchronised like the model's, and evaluated beside it.

import Checkpoints
import Distributed
import GhostNet
import Logging

extension Trainer {
    /// The parameter slots `trainer.freeze` names (validated against the network when the
    /// configuration was read).
    var frozenSlots: Set<Int> {
        FrozenParameters.indices(step.trainer.freeze, names: model.parameterSlots.map(\.name))
    }

    /// Once the replica is settled (fresh, from `init_from`, or resumed): freezes `trainer.freeze`'s
    /// parameters and makes rank 0's weight average every rank's. Rank 0's average is the resumed
    /// checkpoint's, or else starts at the settled weights.
    func settleFineTuning() throws(TrainingError) {
        model.freeze(frozenSlots)
        guard step.trainer.emaDecay > 0 else {
            average = nil
            return
        }
        if average == nil {
            if runtime.resume, rank == 0, state.globalStep > 0 {
                output.logger.warning(
                    "resume: the checkpoint holds no weight average (ema.*); the average starts at its weights")
            }
            average = WeightEMA(decay: step.trainer.emaDecay, startingAt: model)
        }
        guard communicator.size > 1 else { return }
        try collective("broadcasting rank 0's weight average") { () throws(CommunicatorError) in
            var parameters = average!.model.parameters
            try communicator.broadcastParameters(&parameters)
            var statistics = average!.model.runningStatistics
            try communicator.broadcastParameters(&statistics)
            average!.model.updateParameters { slot, tensor in tensor = parameters[slot.index] }
            average!.model.updateRunningStatistics { slot, tensor in tensor = statistics[slot.index] }
        }
    }

    /// Replaces every rank's running statistics of the weight average by their average over ranks
    /// (rank 0's with `reproducible_reduction`), as ``synchronizeRunningStatistics()`` does for the model.
    func synchronizeAverageStatistics() throws(TrainingError) {
        guard communicator.size > 1, average != nil else { return }
        try collective("synchronising the weight average's batch-norm statistics") { () throws(CommunicatorError) in
            var statistics = average!.model.runningStatistics
            if runtime.reproducibleReduction {
                try communicator.broadcastParameters(&statistics)
            } else {
                try communicator.averageAcrossRanks(&statistics)
            }
            average!.model.updateRunningStatistics { slot, tensor in tensor = statistics[slot.index] }
        }
    }

    /// Evaluates the weight average on the validation split and logs it; nil without an average.
    func evaluateAverage() throws(TrainingError) -> ValidationMetrics? {
        guard average != nil else { return nil }
        let metrics = try data.validation.evaluate(&average!.model)
        output.logger.info("validation of the weight average (EMA) after epoch \(state.epoch): \(metrics.summary)")
        return metrics
    }
}
