// The fully connected layer's kernels: `y = x · weightᵀ + bias` as one GEMM, and its three gradients (the
// weight's products through GEMM's weight operands, whose bf16 conversions are cached).

/// A fully connected layer, `y = x · weightᵀ + bias`, as one GEMM.
///
/// - Parameters:
///   - input: `[..., in]`: every leading axis is a batch axis (e.g. `[N, in]` or `[N, 1, 1, in]`).
///   - weight: `[out, in]` (PyTorch's layout).
///   - bias: `[out]`.
/// - Returns: `[..., out]`.
package func linear(_ input: Tensor, weight: Tensor, bias: Tensor) -> Tensor {
    KernelProfiler.measure(.fullyConnected) {
        let (rows, features) = linearShapes(input: input.shape, weight: weight.shape, bias: bias.shape)
        let outputs = weight.shape[0]
        return Tensor(shape: input.shape.dropLast() + [outputs]) { output in
            bias.withUnsafeBufferPointer { bias in
                for row in 0..<rows {
                    (output.baseAddress! + row * outputs).initialize(from: bias.baseAddress!, count: outputs)
                }
            }
            input.withUnsafeBufferPointer { input in
                GEMM.multiply(
                    m: rows, a: input.baseAddress!, weight: weight, transposeB: true, k: features, n: outputs, beta: 1,
                    c: output.baseAddress!)
            }
        }
    }
}

/// The gradients of ``linear(_:weight:bias:)``.
///
/// - Parameters:
///   - gradOutput: `[..., out]`.
///   - input: The forward input `[..., in]`.
///   - weight: `[out, in]`.
/// - Returns: Gradients of the input `[..., in]`, weight `[out, in]` and bias `[out]`.
package func linearBackward(
    gradOutput: Tensor, input: Tensor, weight: Tensor
) -> (input: Tensor, weight: Tensor, bias: Tensor) {
    KernelProfiler.measure(.fullyConnected) {
        let (rows, features) = linearShapes(input: input.shape, weight: weight.shape, bias: [weight.shape.first ?? 0])
        let outputs = weight.shape[0]
        ensure(
            gradOutput.shape == input.shape.dropLast() + [outputs],
            "linear backward: gradient \(gradOutput.shape) does not match input \(input.shape) "
                + "and weight \(weight.shape)")
        let flatGradOutput = gradOutput.reshaped(to: [rows, outputs])
        let gradInput = Tensor(shape: input.shape) { gradInput in
            flatGradOutput.withUnsafeBufferPointer { gradOutput in
                GEMM.multiply(
                    m: rows, a: gradOutput.baseAddress!, weight: weight, transposeB: false, k: outputs, n: features,
                    c: gradInput.baseAddress!)
            }
        }
        let gradWeight = matmul(flatGradOutput, input.reshaped(to: [rows, features]), transposeA: true)
        // The bias gradient sums over rows: the rows viewed as the pixels of one image.
        let gradBias = sumOverPixels(flatGradOutput.reshaped(to: [1, 1, rows, outputs])).reshaped(to: [outputs])
        return (gradInput, gradWeight, gradBias)
    }
}

/// Checks a linear layer's shapes; returns the number of input rows and features.
private func linearShapes(input: [Int], weight: [Int], bias: [Int]) -> (rows: Int, features: Int) {
    ensure(weight.count == 2, "linear: weight \(weight) must be [out, in]")
    ensure(
        input.count >= 1 && input.last == weight[1],
        "linear: input \(input) has \(input.last ?? 0) features but weight expects \(weight[1]) (weight \(weight))")
    ensure(bias == [weight[0]], "linear: bias \(bias) must be [\(weight[0])] for weight \(weight)")
    return (input.dropLast().reduce(1, *), weight[1])
}
