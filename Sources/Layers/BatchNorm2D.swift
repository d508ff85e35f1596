// The batch-norm layer: its parameters and running averages, normalisation with batch or running
// statistics (PyTorch's conventions), and its backward pass over TensorEngine's batch-norm kernels.

import TensorEngine

/// Batch normalisation over the channels of NHWC activations, with PyTorch's conventions.
///
/// Training normalises with the batch's mean and biased variance and moves the running averages
/// towards the batch's mean and *unbiased* variance by `momentum`; inference normalises with the
/// running averages. Input and output are `[N, H, W, channels]`.
package struct BatchNorm2D: Sendable {
    /// The trainable tensors: `weight` (γ) and `bias` (β), `[channels]` each.
    package typealias Parameters = WeightAndBias

    /// What ``backward(_:cache:)`` needs: the input and the normalisation applied (shared
    /// references, not copies). A fused ReLU's gate is recomputed from the input.
    package struct Cache: Sendable {
        let input: Tensor
        let normalization: BatchNormNormalization
    }

    package let channels: Int
    /// The weight of each new batch in the running averages.
    package let momentum: Float
    /// Added to the variance before the square root.
    package let epsilon: Float
    package var parameters: Parameters
    /// The running mean, `[channels]` (PyTorch buffer `running_mean`).
    package var runningMean: Tensor
    /// The running unbiased variance, `[channels]` (PyTorch buffer `running_var`).
    package var runningVariance: Tensor
    /// Training-mode forward passes so far (PyTorch buffer `num_batches_tracked`).
    package var batchesTracked: Int = 0
    /// When not nil, training forward passes append their batch statistics here instead of moving
    /// the running averages, for ``applyRunningStatistics(from:)`` to apply later in a chosen order
    /// (passes that run at the same time on copies of the model).
    package var deferredStatistics: [BatchNormNormalization]?

    /// Creates a batch norm with γ = 1, β = 0, running mean 0 and running variance 1 (PyTorch's
    /// initial state).
    package init(channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        self.init(
            channels: channels, momentum: momentum, epsilon: epsilon,
            parameters: Parameters(weight: Tensor(shape: [channels], repeating: 1), bias: Tensor(shape: [channels])),
            runningMean: Tensor(shape: [channels]), runningVariance: Tensor(shape: [channels], repeating: 1))
    }

    /// Creates a batch norm with explicit parameters and running statistics, all `[channels]`.
    package init(
        channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5,
        parameters: Parameters, runningMean: Tensor, runningVariance: Tensor
    ) {
        for (name, tensor) in [
            ("weight", parameters.weight), ("bias", parameters.bias),
            ("running mean", runningMean), ("running variance", runningVariance),
        ] {
            ensure(tensor.shape == [channels], "BatchNorm2D: \(name) \(tensor.shape) is not [\(channels)]")
        }
        ensure(momentum >= 0 && momentum <= 1, "BatchNorm2D: momentum \(momentum) is outside [0, 1]")
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        self.parameters = parameters
        self.runningMean = runningMean
        self.runningVariance = runningVariance
    }

    /// Normalises `input` (`[N, H, W, channels]`), optionally applying ReLU in the same pass.
    ///
    /// In training this updates the running statistics (or records the batch's, see
    /// ``deferredStatistics``), and needs more than one value per channel
    /// (`N·H·W > 1`); `batchStatistics`, when given, are the batch's mean and biased variance
    /// already computed (see ``Conv2D/forwardWithChannelMoments(_:)``). Inference ignores them.
    /// With `residual`, the output is `ReLU(normalised + residual)` (a residual block's sum) in the
    /// same pass; ``backward(_:cache:)`` then expects the gradient of that sum, with the ReLU
    /// already differentiated, since the shortcut needs the same gradient.
    package mutating func forward(
        _ input: Tensor, mode: Mode, fusingReLU: Bool = false,
        batchStatistics: (mean: Tensor, variance: Tensor)? = nil, addingThenClamping residual: Tensor? = nil
    ) -> (output: Tensor, cache: Cache) {
        let running = mode == .inference ? (mean: runningMean, variance: runningVariance) : nil
        let (output, normalization) = batchNorm(
            input, weight: parameters.weight, bias: parameters.bias, running: running,
            epsilon: epsilon, fusingReLU: fusingReLU || residual != nil,
            batchStatistics: mode == .training ? batchStatistics : nil, residual: residual)
        if mode == .training {
            if deferredStatistics != nil {
                deferredStatistics!.append(normalization)
            } else {
                applyRunningStatistics(from: normalization)
            }
        }
        return (output, Cache(input: input, normalization: normalization))
    }

    /// Moves the running averages towards one training pass's batch statistics by ``momentum``
    /// and counts the pass.
    package mutating func applyRunningStatistics(from normalization: BatchNormNormalization) {
        updateRunningStatistics(
            runningMean: &runningMean, runningVariance: &runningVariance, from: normalization, momentum: momentum)
        batchesTracked += 1
    }

    /// The input gradient `[N, H, W, channels]` and the gradients of γ and β; in training mode
    /// the input gradient includes the paths through the batch statistics.
    /// Inference's normalisation as `y = x·scale + shift` per channel, from the running statistics.
    package var inferenceAffine: (scale: Tensor, shift: Tensor) {
        batchNormAffine(
            weight: parameters.weight, bias: parameters.bias, mean: runningMean, variance: runningVariance,
            epsilon: epsilon)
    }

    package func backward(_ gradOutput: Tensor, cache: Cache) -> (input: Tensor, parameters: Parameters) {
        let gradients = batchNormBackward(
            gradOutput: gradOutput, input: cache.input, weight: parameters.weight,
            normalization: cache.normalization)
        return (gradients.input, Parameters(weight: gradients.weight, bias: gradients.bias))
    }
}
