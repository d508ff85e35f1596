// The fully connected layer (the classifier head): weight and bias in PyTorch's layout and initialisation,
// forward and backward over TensorEngine's `linear`.

import TensorEngine

/// A fully connected layer `y = x · weightᵀ + bias`.
///
/// Input `[..., inputFeatures]` (e.g. `[N, C]` or pooled `[N, 1, 1, C]`), output
/// `[..., outputFeatures]`; weight `[outputFeatures, inputFeatures]` as in PyTorch.
package struct Linear: Sendable {
    /// The trainable tensors: `weight` `[out, in]` and `bias` `[out]`.
    package typealias Parameters = WeightAndBias

    /// What ``backward(_:cache:)`` needs: the forward input (a shared reference).
    package struct Cache: Sendable {
        let input: Tensor
    }

    package let inputFeatures: Int
    package let outputFeatures: Int
    package var parameters: Parameters

    /// Creates a linear layer with explicit parameters.
    /// - Precondition: `weight` is `[outputFeatures, inputFeatures]` and `bias` `[outputFeatures]`.
    package init(inputFeatures: Int, outputFeatures: Int, weight: Tensor, bias: Tensor) {
        ensure(
            weight.shape == [outputFeatures, inputFeatures] && bias.shape == [outputFeatures],
            "Linear: weight \(weight.shape) and bias \(bias.shape) do not match "
                + "\(inputFeatures) → \(outputFeatures) features")
        self.inputFeatures = inputFeatures
        self.outputFeatures = outputFeatures
        self.parameters = Parameters(weight: weight, bias: bias)
    }

    /// Creates a linear layer with weight and bias uniform in `±1/√inputFeatures` (PyTorch's default).
    package init(inputFeatures: Int, outputFeatures: Int, random: inout SeededRandom) {
        let bound = 1 / Double(inputFeatures).squareRoot()
        func uniform(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape) { values in
                for index in values.indices { values[index] = Float((2 * random.nextUnitDouble() - 1) * bound) }
            }
        }
        let weight = uniform([outputFeatures, inputFeatures])
        self.init(
            inputFeatures: inputFeatures, outputFeatures: outputFeatures, weight: weight,
            bias: uniform([outputFeatures]))
    }

    package func forward(_ input: Tensor, mode: Mode) -> (output: Tensor, cache: Cache) {
        (linear(input, weight: parameters.weight, bias: parameters.bias), Cache(input: input))
    }

    /// The input gradient `[..., inputFeatures]` and the weight and bias gradients.
    package func backward(_ gradOutput: Tensor, cache: Cache) -> (input: Tensor, parameters: Parameters) {
        let gradients = linearBackward(gradOutput: gradOutput, input: cache.input, weight: parameters.weight)
        return (gradients.input, Parameters(weight: gradients.weight, bias: gradients.bias))
    }
}
