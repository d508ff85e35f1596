// The optimizer: SGD with momentum and selective weight decay over the model's tensors, in PyTorch's
// semantics, and the per-tensor momentum buffers checkpoints save.

import GhostNet
import TensorEngine

/// Stochastic gradient descent with momentum and L2 weight decay, in PyTorch's `torch.optim.SGD`
/// semantics (dampening 0, no Nesterov):
///
///     d = g + wd·w          (only for tensors that take weight decay)
///     v = μ·v + d           (on the first step v = d: PyTorch initialises the buffer with d)
///     w = w − lr·v
///
/// The optimizer works on flat float buffers, so it serves any parameter layout; the momentum buffer
/// of each tensor has the tensor's element count and is part of the checkpointed optimizer state.
package struct SGDOptimizer: Sendable {
    /// The learning rate of the next update; the schedule sets it before each step.
    package var learningRate: Float
    package let momentum: Float
    package let weightDecay: Float
    /// Parameter-name fragments whose tensors take no weight decay (e.g. `bn`, `.bias`).
    package let noWeightDecay: [String]

    package init(learningRate: Float, momentum: Float, weightDecay: Float, noWeightDecay: [String] = []) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.noWeightDecay = noWeightDecay
    }

    /// The optimizer of the `trainer.optimizer` section.
    package init(_ configuration: TrainingConfiguration.Optimizer) {
        self.init(
            learningRate: Float(configuration.learningRate), momentum: Float(configuration.momentum),
            weightDecay: Float(configuration.weightDecay), noWeightDecay: configuration.noWeightDecay)
    }

    /// Whether the parameter called `name` (e.g. `layer1.base.bn1.weight`) takes weight decay: true
    /// unless its name contains one of ``noWeightDecay``.
    package func appliesWeightDecay(to name: String) -> Bool {
        !noWeightDecay.contains { name.contains($0) }
    }

    /// Updates one parameter tensor in place.
    ///
    /// - Parameters:
    ///   - weights: The parameter's elements, any layout; updated in place.
    ///   - gradients: ∂loss/∂weights, same layout and count (already averaged over ranks).
    ///   - momentumBuffer: The velocity `v`, same count; written on every call.
    ///   - bufferIsInitialized: False on the first update of this tensor, when `v` is set to `d`.
    ///   - decays: Whether this tensor takes weight decay (see ``appliesWeightDecay(to:)``).
    /// - Precondition: All three buffers have the same count.
    package func update(
        weights: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>,
        momentumBuffer: UnsafeMutableBufferPointer<Float>, bufferIsInitialized: Bool, decays: Bool
    ) {
        sgdMomentumUpdate(
            weights: weights, gradients: gradients, velocity: momentumBuffer, learningRate: learningRate,
            momentum: momentum, weightDecay: decays ? weightDecay : 0, initializeVelocity: !bufferIsInitialized)
    }

    /// Updates the parameter tensor `weights` (any shape) with `gradients` of the same shape.
    ///
    /// - Parameters:
    ///   - state: The tensor's momentum; created on the first call.
    ///   - name: The parameter's name, matched against ``noWeightDecay``.
    package func update(weights: inout Tensor, gradients: Tensor, state: inout SGDMomentum, name: String) {
        precondition(
            weights.shape == gradients.shape,
            "SGD: \(name) has shape \(weights.shape) but its gradient \(gradients.shape)")
        let initialized = state.buffer != nil
        var buffer = state.buffer ?? Tensor(shape: weights.shape)
        let decays = appliesWeightDecay(to: name)
        weights.withUnsafeMutableBufferPointer { weightElements in
            gradients.withUnsafeBufferPointer { gradientElements in
                buffer.withUnsafeMutableBufferPointer { velocity in
                    update(
                        weights: weightElements, gradients: gradientElements, momentumBuffer: velocity,
                        bufferIsInitialized: initialized, decays: decays)
                }
            }
        }
        state.buffer = buffer
    }
}

extension SGDOptimizer {
    /// Updates every parameter of `model` from `gradients`, all gradients concatenated at the
    /// parameter slots' offsets (the layout of the gradient exchange's flat buffer). Frozen
    /// parameters (``GhostNetModel/frozenParameters``) are skipped: no update, no weight decay, and
    /// their momentum buffers stay as they are.
    ///
    /// - Parameters:
    ///   - momentum: One momentum buffer per parameter slot, in slot order.
    ///   - buffersAreInitialized: False on the first update, when each buffer is set to `d`.
    package func update(
        _ model: inout GhostNetModel, gradients: UnsafeBufferPointer<Float>, momentum: inout [Tensor],
        buffersAreInitialized: Bool
    ) {
        let frozen = model.frozenParameters
        model.updateParameters { slot, weights in
            guard !frozen.contains(slot.index) else { return }
            let gradient = UnsafeBufferPointer(rebasing: gradients[slot.offset..<slot.offset + slot.scalarCount])
            let decays = appliesWeightDecay(to: slot.name)
            weights.withUnsafeMutableBufferPointer { weights in
                momentum[slot.index].withUnsafeMutableBufferPointer { velocity in
                    update(
                        weights: weights, gradients: gradient, momentumBuffer: velocity,
                        bufferIsInitialized: buffersAreInitialized, decays: decays)
                }
            }
        }
    }
}

/// The momentum buffer of one parameter tensor; nil until the first update.
package struct SGDMomentum: Sendable {
    package var buffer: Tensor?

    package init(buffer: Tensor? = nil) {
        self.buffer = buffer
    }
}
