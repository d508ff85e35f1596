// The convolution layer: a bias-free 2-D convolution that holds its OHWI weight, converts it from and to
// PyTorch's layout, and offers the forward variants the model fuses (batch norm, channel moments).

import TensorEngine

/// A 2-D convolution without bias over NHWC activations.
///
/// Input `[N, H, W, inputChannels]`, output `[N, OH, OW, outputChannels]`; the weight is stored
/// `[outputChannels, kernelSize, kernelSize, inputChannels]` (OHWI, see ``Convolution2DGeometry``).
/// Checkpoints in PyTorch's `[out, in, kh, kw]` layout go through
/// ``init(inputChannels:outputChannels:kernelSize:stride:padding:pytorchWeight:)`` and ``pytorchWeight``.
package struct Conv2D: Sendable {
    /// The trainable tensors: `weight`, OHWI.
    package struct Parameters: ParameterGroup {
        package var weight: Tensor

        package init(weight: Tensor) { self.weight = weight }

        package func forEachParameter(_ body: (String, Tensor) throws -> Void) rethrows {
            try body("weight", weight)
        }

        package mutating func updateEachParameter(_ body: (String, inout Tensor) throws -> Void) rethrows {
            try body("weight", &weight)
        }
    }

    /// What ``backward(_:cache:)`` needs: the forward input (a shared reference, not a copy).
    package struct Cache: Sendable {
        let input: Tensor
    }

    package let inputChannels: Int
    package let outputChannels: Int
    package let geometry: Convolution2DGeometry
    package var parameters: Parameters

    /// Creates a convolution with an explicit OHWI weight.
    ///
    /// - Precondition: `weight` is `[outputChannels, kernelSize, kernelSize, inputChannels]`.
    package init(
        inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        weight: Tensor
    ) {
        let geometry = Convolution2DGeometry(kernelSize: kernelSize, stride: stride, padding: padding)
        let expected = geometry.weightShape(inputChannels: inputChannels, outputChannels: outputChannels)
        ensure(
            weight.shape == expected,
            "Conv2D: weight \(weight.shape) does not match \(inputChannels) → \(outputChannels) channels "
                + "with a \(geometry) kernel (expected \(expected))")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.geometry = geometry
        self.parameters = Parameters(weight: weight)
    }

    /// Creates a convolution from a PyTorch weight `[outputChannels, inputChannels, kernelSize, kernelSize]`.
    package init(
        inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        pytorchWeight: Tensor
    ) {
        ensure(
            pytorchWeight.shape == [outputChannels, inputChannels, kernelSize, kernelSize],
            "Conv2D: PyTorch weight \(pytorchWeight.shape) is not "
                + "[\(outputChannels), \(inputChannels), \(kernelSize), \(kernelSize)]")
        self.init(
            inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernelSize,
            stride: stride, padding: padding, weight: Convolution2DGeometry.fromPyTorchLayout(pytorchWeight))
    }

    /// Creates a convolution with Kaiming-normal weights for ReLU networks, fan-out mode:
    /// `N(0, 2 / (outputChannels · kernelSize²))`, as torchvision's ResNets initialise.
    package init(
        inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        random: inout SeededRandom
    ) {
        let fanOut = outputChannels * kernelSize * kernelSize
        let standardDeviation = (2 / Double(fanOut)).squareRoot()
        let weight = Tensor(shape: [outputChannels, kernelSize, kernelSize, inputChannels]) { weight in
            for index in weight.indices { weight[index] = Float(random.nextGaussian() * standardDeviation) }
        }
        self.init(
            inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernelSize,
            stride: stride, padding: padding, weight: weight)
    }

    /// The weight in PyTorch's `[out, in, kh, kw]` layout, for checkpoints.
    package var pytorchWeight: Tensor { Convolution2DGeometry.toPyTorchLayout(parameters.weight) }

    /// Convolves `input` (`[N, H, W, inputChannels]`); the mode does not change a convolution.
    package func forward(_ input: Tensor, mode: Mode) -> (output: Tensor, cache: Cache) {
        (conv2d(input, weight: parameters.weight, geometry: geometry), Cache(input: input))
    }

    /// ``forward(_:mode:)`` for a convolution that a training-mode batch norm follows: the output
    /// comes with each channel's batch mean and biased variance, gathered while the GEMM's output
    /// is still in cache (pass them to ``BatchNorm2D/forward(_:mode:fusingReLU:batchStatistics:)``).
    package func forwardWithChannelMoments(_ input: Tensor) -> (
        output: Tensor, cache: Cache, moments: (mean: Tensor, variance: Tensor)
    ) {
        let (output, mean, variance) = conv2dWithChannelMoments(input, weight: parameters.weight, geometry: geometry)
        return (output, Cache(input: input), (mean, variance))
    }

    /// Inference without a backward pass: this convolution, then `normalization` with its running
    /// statistics, then `residual` added and ReLU when `clampAtZero`, each block of the output
    /// finished while it is in cache.
    package func forward(
        _ input: Tensor, normalizedBy normalization: BatchNorm2D, residual: Tensor? = nil, clampAtZero: Bool
    ) -> Tensor {
        let (scale, shift) = normalization.inferenceAffine
        return conv2d(
            input, weight: parameters.weight, geometry: geometry, scale: scale, shift: shift, residual: residual,
            clampAtZero: clampAtZero)
    }

    /// The input gradient `[N, H, W, inputChannels]` and the weight gradient.
    package func backward(_ gradOutput: Tensor, cache: Cache) -> (input: Tensor, parameters: Parameters) {
        let gradients = conv2dBackward(
            gradOutput: gradOutput, input: cache.input, weight: parameters.weight, geometry: geometry)
        return (gradients.input!, Parameters(weight: gradients.weight))
    }

    /// The weight gradient, adding the input gradient to `inputGradient` (`[N, H, W, inputChannels]`)
    /// instead of returning it: a residual block adds its convolution path's input gradient to the
    /// shortcut's this way without a separate pass.
    package func backward(
        _ gradOutput: Tensor, cache: Cache, accumulatingInputGradientInto inputGradient: inout Tensor
    ) -> Parameters {
        Parameters(
            weight: conv2dBackward(
                gradOutput: gradOutput, input: cache.input, weight: parameters.weight, geometry: geometry,
                accumulatingInputGradientInto: &inputGradient))
    }

    /// The input gradient alone, for a frozen convolution (the weight gradient's GEMMs are skipped);
    /// with `sum`, the gradient is added to it (a residual shortcut's gradient) and returned.
    package func inputGradient(_ gradOutput: Tensor, cache: Cache, accumulatingInto sum: consuming Tensor? = nil)
        -> Tensor
    {
        conv2dInputGradient(
            gradOutput: gradOutput, input: cache.input, weight: parameters.weight, geometry: geometry,
            accumulatingInto: consume sum)
    }

    /// The weight gradient alone, for a network's first layer, whose input needs no gradient.
    package func parameterGradients(_ gradOutput: Tensor, cache: Cache) -> Parameters {
        let gradients = conv2dBackward(
            gradOutput: gradOutput, input: cache.input, weight: parameters.weight, geometry: geometry,
            computeInputGradient: false)
        return Parameters(weight: gradients.weight)
    }
}
