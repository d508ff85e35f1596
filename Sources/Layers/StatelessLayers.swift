//===----------------------------------------------------------------------===//
// ghostnet-d — Layers
//===----------------------------------------------------------------------===//

import TensorEngine

// Layers without parameters. Elementwise add, channel concatenation and split, broadcast add and
// the cross-entropy losses need no cache, so models call TensorEngine's functions directly:
// `add`, `concatenateChannels` / `splitChannels` (each other's gradient), `broadcastAdd` (+
// `sumOverPixels` for the addend's gradient) and `softmaxCrossEntropy`.

/// `max(0, x)`; any shape.
public struct ReLU: Sendable {
    /// The output, from which the gradient mask is read.
    public struct Cache: Sendable {
        let output: Tensor
    }

    public init() {}

    public func forward(_ input: Tensor, mode: Mode) -> (output: Tensor, cache: Cache) {
        let output = relu(input)
        return (output, Cache(output: output))
    }

    public func backward(_ gradOutput: Tensor, cache: Cache) -> Tensor {
        reluBackward(gradOutput: gradOutput, output: cache.output)
    }
}

/// Max-pooling over square windows, `[N, H, W, C]` → `[N, OH, OW, C]` (ResNet stem: 3, 2, 1).
public struct MaxPool2D: Sendable {
    /// Where each output came from.
    public struct Cache: Sendable {
        let indices: MaxPoolIndices
    }

    public let kernelSize: Int
    public let stride: Int
    public let padding: Int

    public init(kernelSize: Int = 3, stride: Int = 2, padding: Int = 1) {
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
    }

    public func forward(_ input: Tensor, mode: Mode) -> (output: Tensor, cache: Cache) {
        let (output, indices) = maxPool(input, kernelSize: kernelSize, stride: stride, padding: padding)
        return (output, Cache(indices: indices))
    }

    public func backward(_ gradOutput: Tensor, cache: Cache) -> Tensor {
        maxPoolBackward(gradOutput: gradOutput, indices: cache.indices)
    }
}

/// The mean over pixels, `[N, H, W, C]` → `[N, 1, 1, C]`.
public struct GlobalAveragePool2D: Sendable {
    /// The input's shape.
    public struct Cache: Sendable {
        let inputShape: [Int]
    }

    public init() {}

    public func forward(_ input: Tensor, mode: Mode) -> (output: Tensor, cache: Cache) {
        (globalAveragePool(input), Cache(inputShape: input.shape))
    }

    public func backward(_ gradOutput: Tensor, cache: Cache) -> Tensor {
        globalAveragePoolBackward(gradOutput: gradOutput, inputShape: cache.inputShape)
    }
}
