// `trainer.ema_decay`: the exponential moving average of a model's weights (timm's ModelEmaV2), kept
// as a second fp32 model that is evaluated beside the trained one and checkpointed under `ema.` names.

import GhostNet
import TensorEngine

/// An exponential moving average of a model's weights, updated after every optimizer step:
///
///     ema ← d·ema + (1 − d)·w        (each element, in fp32; d = `trainer.ema_decay`)
///
/// as timm's `ModelEmaV2` does, for every tensor of the `state_dict`: the parameters and, like timm,
/// the batch-norm running means and variances too, so the average model normalises with averaged
/// statistics. It starts as a copy of the model it follows (fresh or initial weights; a resume reads
/// it from the checkpoint). An element whose average already equals the weight is left as it is, so
/// a frozen parameter's average stays bit-identical to it instead of drifting by rounding.
package struct WeightEMA: Sendable {
    /// `d`, in [0, 1).
    package let decay: Float
    /// The averaged network: evaluate it as any model.
    package var model: GhostNetModel

    /// An average that starts at `model`'s tensors.
    ///
    /// - Precondition: `decay` is in [0, 1).
    package init(decay: Double, startingAt model: GhostNetModel) {
        ensure((0..<1).contains(decay), "EMA decay must be in [0, 1), got \(decay)")
        self.decay = Float(decay)
        self.model = model
    }

    /// Folds `live`'s current parameters and running statistics into the average.
    ///
    /// - Precondition: `live` has the structure of ``model``.
    package mutating func update(from live: GhostNetModel) {
        ensure(live.parameterSlots == model.parameterSlots, "EMA: the model's parameters do not match the average's")
        let parameters = live.parameters
        let statistics = live.runningStatistics
        let (d, complement) = (decay, 1 - decay)
        func blend(_ average: inout Tensor, _ current: Tensor) {
            average.withUnsafeMutableBufferPointer { average in
                current.withUnsafeBufferPointer { current in
                    for index in average.indices where average[index] != current[index] {
                        average[index] = d * average[index] + complement * current[index]
                    }
                }
            }
        }
        model.updateParameters { slot, average in blend(&average, parameters[slot.index]) }
        model.updateRunningStatistics { slot, average in blend(&average, statistics[slot.index]) }
    }
}
