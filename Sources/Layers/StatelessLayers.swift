// The layers without parameters that keep a cache for their backward pass: ReLU, max-pooling and global
// average pooling.

import TensorEngine

// Elementwise add, channel concatenation and split, broadcast add and
// the cross-entropy losses need no cache, so models call TensorEngine's functions directly:
// `add`, `concatenateChannels` / `splitChannels` (each other's gradient), `broadcastAdd` (+
// `sumOverPixels` for the addend's gradient) and `softmaxCrossEntropy`.

/// `max(0, x)`; any shape.
package struct ReLU: Sendable {
    /// The output, from which the gradient mask is read.
    package struct Cache: Sendable {
        let output: Tensor
    }

    package init() {}

    package func forward(_ input: Tensor, mode: Mode) -> (output: Tensor, cache: Cache) {
        let output = relu(input)
        return (output, Cache(output: output))
    }

    package func backward(_ gradOutput: Tensor, cache: Cache) -> Tensor {
        reluBackward(gradOutput: gradOutput, output: cache.output)
    }
}

/// Max-pooling over square windows, `[N, H, W, C]` → `[N, OH, OW, C]` (ResNet stem: 3, 2, 1).
package struct MaxPool2D: Sendable {
    /// Where each output came from.
    package struct Cache: Sendable {
        let indices: MaxPoolIndices
    }

    package let kernelSize: Int
    package let stride: Int
    package let padding: Int

    package init(kernelSize: Int = 3, stride: Int = 2, padding: Int = 1) {
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
    }

    package func forward(_ input: Tensor, mode: Mode) -> (output: Tensor, cache: Cache) {
        let (output, indices) = maxPool(input, kernelSize: kernelSize, stride: stride, padding: padding)
        return (output, Cache(indices: indices))
    }

    package func backward(_ gradOutput: Tensor, cache: Cache) -> Tensor {
        maxPoolBackward(gradOutput: gradOutput, indices: cache.indices)
    }
}

/// The mean over pixels, `[N, H, W, C]` → `[N, 1, 1, C]`.
package struct GlobalAveragePool2D: Sendable {
    /// The input's shape.
    package struct Cache: Sendable {
        let inputShape: [Int]
    }

    package init() {}

    package func forward(_ input: Tensor, mode: Mode) -> (output: Tensor, cache: Cache) {
        (globalAveragePool(input), Cache(inputShape: input.shape))
    }

    package func backward(_ gradOutput: Tensor, cache: Cache) -> Tensor {
        globalAveragePoolBackward(gradOutput: gradOutput, inputShape: cache.inputShape)
    }
}
