// Max-pooling of NHWC tensors (the stem's 3×3/2 window) and its backward pass, which routes each gradient to
// the input element the forward pass chose.

/// Where each output of a max-pool came from, kept for its backward pass.
package struct MaxPoolIndices: Sendable {
    /// The forward input's shape `[N, H, W, C]`.
    package let inputShape: [Int]
    /// For each output element (NHWC order), the flat index of the chosen input element.
    let sources: [Int32]
}

/// Max-pooling over square windows of an NHWC tensor; padding never wins (PyTorch pads with −∞).
///
/// Ties go to the first maximum in row-major window order, as in PyTorch.
///
/// - Parameters:
///   - input: `[N, H, W, C]`.
///   - kernelSize, stride, padding: The window (ResNet stems use 3, 2, 1).
/// - Returns: The output `[N, OH, OW, C]`, `OH = (H + 2·padding − kernelSize) / stride + 1`, and
///   the indices ``maxPoolBackward(gradOutput:indices:)`` needs.
package func maxPool(
    _ input: Tensor, kernelSize: Int = 3, stride: Int = 2, padding: Int = 1
) -> (output: Tensor, indices: MaxPoolIndices) {
    KernelProfiler.measure(.pool) {
        ensure(input.shape.count == 4, "maxPool: input \(input.shape) must be NHWC [N, H, W, C]")
        ensure(
            kernelSize >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= kernelSize,
            "maxPool: invalid window \(kernelSize)×\(kernelSize)/\(stride) pad \(padding)")
        ensure(input.count < Int(Int32.max), "maxPool: input \(input.shape) has too many elements for 32-bit indices")
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        ensure(
            height + 2 * padding >= kernelSize && width + 2 * padding >= kernelSize,
            "maxPool: input \(input.shape) is smaller than the \(kernelSize)×\(kernelSize) window")
        let outputHeight = (height + 2 * padding - kernelSize) / stride + 1
        let outputWidth = (width + 2 * padding - kernelSize) / stride + 1
        let outputShape = [batch, outputHeight, outputWidth, channels]
        var sources = [Int32](repeating: 0, count: Tensor.elementCount(of: outputShape))
        let output = Tensor(shape: outputShape) { output in
            input.withUnsafeBufferPointer { input in
                sources.withUnsafeMutableBufferPointer { sources in
                    inRowBands(rows: batch, rowLength: height * width * channels) { images in
                        for n in images {
                            for oh in 0..<outputHeight {
                                let rows =
                                    max(0, oh * stride - padding)..<min(height, oh * stride - padding + kernelSize)
                                for ow in 0..<outputWidth {
                                    let columns =
                                        max(0, ow * stride - padding)..<min(width, ow * stride - padding + kernelSize)
                                    let outputBase = ((n * outputHeight + oh) * outputWidth + ow) * channels
                                    windowMaximum(
                                        input.baseAddress!, imageOffset: n * height * width * channels,
                                        width: width, channels: channels, rows: rows, columns: columns,
                                        maximum: output.baseAddress! + outputBase,
                                        source: sources.baseAddress! + outputBase)
                                }
                            }
                        }
                    }
                }
            }
        }
        return (output, MaxPoolIndices(inputShape: input.shape, sources: sources))
    }
}

/// The gradient of ``maxPool(_:kernelSize:stride:padding:)``: each output's gradient is added to
/// the input element it was taken from.
///
/// - Parameters:
///   - gradOutput: `[N, OH, OW, C]`.
///   - indices: What the forward pass returned.
/// - Returns: `[N, H, W, C]`.
package func maxPoolBackward(gradOutput: Tensor, indices: MaxPoolIndices) -> Tensor {
    KernelProfiler.measure(.pool) {
        ensure(
            gradOutput.count == indices.sources.count && gradOutput.shape.count == 4
                && gradOutput.shape[0] == indices.inputShape[0] && gradOutput.shape[3] == indices.inputShape[3],
            "maxPool backward: gradient \(gradOutput.shape) does not match the pooling of input \(indices.inputShape)")
        var gradInput = Tensor(shape: indices.inputShape)
        gradInput.withUnsafeMutableBufferPointer { gradInput in
            gradOutput.withUnsafeBufferPointer { gradOutput in
                indices.sources.withUnsafeBufferPointer { sources in
                    // An output's source lies in its own image, so threads taking whole images never collide.
                    let imageOutputs = gradOutput.count / max(indices.inputShape[0], 1)
                    inRowBands(rows: indices.inputShape[0], rowLength: imageOutputs) { images in
                        for index in (images.lowerBound * imageOutputs)..<(images.upperBound * imageOutputs) {
                            gradInput[Int(sources[index])] += gradOutput[index]
                        }
                    }
                }
            }
        }
        return gradInput
    }
}
