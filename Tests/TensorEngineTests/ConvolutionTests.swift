// Convolution kernels on every geometry GhostNet-D uses: forward against a direct 7-loop sum, chunked and
// threaded runs, finite-difference gradients, the fused batch-norm variants, and the shape checks.

import TensorEngine
import Testing
import _TestSupport

/// The convolution geometries GhostNet-D uses, each with an odd-sized input.
struct ConvolutionCase: Sendable, CustomTestStringConvertible {
    var geometry: Convolution2DGeometry
    var input: [Int]
    var outputChannels: Int

    var testDescription: String { "\(geometry) on \(input) → \(outputChannels)" }

    /// The same geometry on a batch of three odd-sized images with enough work per call
    /// (`GEMM.minimumParallelWork`) to be split over threads.
    var splittable: ConvolutionCase {
        ConvolutionCase(geometry: geometry, input: [3, 37, 41, 64], outputChannels: 64)
    }

    static let all: [ConvolutionCase] = [
        .init(geometry: .init(kernelSize: 1, stride: 1, padding: 0), input: [2, 5, 7, 3], outputChannels: 4),
        .init(geometry: .init(kernelSize: 1, stride: 2, padding: 0), input: [2, 7, 5, 3], outputChannels: 4),
        .init(geometry: .init(kernelSize: 3, stride: 1, padding: 1), input: [2, 5, 7, 3], outputChannels: 4),
        .init(geometry: .init(kernelSize: 3, stride: 2, padding: 1), input: [2, 7, 9, 3], outputChannels: 5),
        .init(geometry: .init(kernelSize: 7, stride: 2, padding: 3), input: [1, 9, 11, 2], outputChannels: 3),
    ]
}

/// A direct 7-loop convolution of an NHWC input with a PyTorch OIHW weight.
func naiveConvolution(input: Tensor, pytorchWeight: Tensor, geometry: Convolution2DGeometry) -> Tensor {
    let (batch, height, width, inputChannels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let outputChannels = pytorchWeight.shape[0]
    let kernel = geometry.kernelSize
    let outputHeight = geometry.outputExtent(height)
    let outputWidth = geometry.outputExtent(width)
    let x = input.scalars
    let w = pytorchWeight.scalars
    var output = [Float](repeating: 0, count: batch * outputHeight * outputWidth * outputChannels)
    for n in 0..<batch {
        for oh in 0..<outputHeight {
            for ow in 0..<outputWidth {
                for o in 0..<outputChannels {
                    var sum = 0.0
                    for i in 0..<inputChannels {
                        for kh in 0..<kernel {
                            for kw in 0..<kernel {
                                let ih = oh * geometry.stride - geometry.padding + kh
                                let iw = ow * geometry.stride - geometry.padding + kw
                                guard ih >= 0, ih < height, iw >= 0, iw < width else { continue }
                                sum +=
                                    Double(x[((n * height + ih) * width + iw) * inputChannels + i])
                                    * Double(w[((o * inputChannels + i) * kernel + kh) * kernel + kw])
                            }
                        }
                    }
                    output[((n * outputHeight + oh) * outputWidth + ow) * outputChannels + o] = Float(sum)
                }
            }
        }
    }
    return Tensor(shape: [batch, outputHeight, outputWidth, outputChannels], scalars: output)
}

@Suite struct ConvolutionTests {
    func operands(_ testCase: ConvolutionCase) -> (input: Tensor, pytorchWeight: Tensor, weight: Tensor) {
        let k = testCase.geometry.kernelSize
        let input = FiniteDifferences.randomTensor(testCase.input, seed: 1)
        let pytorchWeight = FiniteDifferences.randomTensor(
            [testCase.outputChannels, testCase.input[3], k, k], seed: 2, scale: 0.5)
        return (input, pytorchWeight, Convolution2DGeometry.fromPyTorchLayout(pytorchWeight))
    }

    @Test(arguments: ConvolutionCase.all)
    func forwardMatchesNaiveConvolution(_ testCase: ConvolutionCase) {
        let (input, pytorchWeight, weight) = operands(testCase)
        let expected = naiveConvolution(input: input, pytorchWeight: pytorchWeight, geometry: testCase.geometry)
        let output = conv2d(input, weight: weight, geometry: testCase.geometry)
        #expect(output.shape == expected.shape)
        expectClose(output.scalars, expected.scalars, relative: 1e-5, absolute: 1e-5)
    }

    @Test(arguments: ConvolutionCase.all)
    func smallChunksGiveTheSameResults(_ testCase: ConvolutionCase) {
        let (input, _, weight) = operands(testCase)
        let geometry = testCase.geometry
        // Three im2col rows per chunk: many chunks, the last one partial.
        let limit = 3 * geometry.kernelSize * geometry.kernelSize * testCase.input[3]
        let whole = conv2d(input, weight: weight, geometry: geometry)
        let chunked = conv2d(
            input, weight: weight, geometry: geometry, limits: ConvolutionLimits(workspaceFloats: limit))
        expectClose(chunked.scalars, whole.scalars, relative: 1e-6, absolute: 1e-6)
        let gradOutput = FiniteDifferences.randomTensor(whole.shape, seed: 3)
        let wholeGradients = conv2dBackward(gradOutput: gradOutput, input: input, weight: weight, geometry: geometry)
        let chunkedGradients = conv2dBackward(
            gradOutput: gradOutput, input: input, weight: weight, geometry: geometry,
            computeInputGradient: true, limits: ConvolutionLimits(workspaceFloats: limit))
        expectClose(chunkedGradients.weight.scalars, wholeGradients.weight.scalars, relative: 1e-5, absolute: 1e-5)
        expectClose(chunkedGradients.input!.scalars, wholeGradients.input!.scalars, relative: 1e-5, absolute: 1e-5)
    }

    /// Threads split the rows (forward) or the images (backward) of a batch of three; more
    /// threads than images, and chunks that end inside an image, give the one-thread results.
    /// (Forward passes split only from `GEMM.minimumParallelWork` multiply-accumulates.)
    @Test(arguments: ConvolutionCase.all)
    func threadsSplittingTheBatchGiveTheSameResults(_ testCase: ConvolutionCase) {
        let (geometry, shape) = (testCase.geometry, testCase.splittable.input)
        let input = FiniteDifferences.randomTensor(shape, seed: 5)
        let weight = FiniteDifferences.randomTensor(
            geometry.weightShape(inputChannels: shape[3], outputChannels: testCase.splittable.outputChannels), seed: 6)
        func run(threads: Int, workspaceFloats: Int) -> (output: Tensor, input: Tensor, weight: Tensor) {
            let limits = ConvolutionLimits(workspaceFloats: workspaceFloats, threads: threads)
            let output = conv2d(input, weight: weight, geometry: geometry, limits: limits)
            let gradOutput = FiniteDifferences.randomTensor(output.shape, seed: 7)
            let gradients = conv2dBackward(
                gradOutput: gradOutput, input: input, weight: weight, geometry: geometry,
                computeInputGradient: true, limits: limits)
            return (output, gradients.input!, gradients.weight)
        }
        let reference = run(threads: 1, workspaceFloats: Workspace.maximumFloats)
        let fiveRows = 5 * geometry.kernelSize * geometry.kernelSize * shape[3]
        for (threads, workspaceFloats) in [(2, Workspace.maximumFloats), (4, Workspace.maximumFloats), (2, fiveRows)] {
            let split = run(threads: threads, workspaceFloats: workspaceFloats)
            // Blocks and partial sums change the order of float additions; rounding grows with the
            // length of the sums: a filter (forward, input gradient) or every output pixel (weight).
            let filterLength = Double(geometry.kernelSize * geometry.kernelSize * shape[3])
            let pixels = Double(reference.output.count / reference.output.shape[3])
            expectClose(split.output.scalars, reference.output.scalars, relative: 1e-5, absolute: 2e-6 * filterLength)
            expectClose(split.input.scalars, reference.input.scalars, relative: 1e-5, absolute: 2e-6 * filterLength)
            expectClose(split.weight.scalars, reference.weight.scalars, relative: 1e-5, absolute: 2e-6 * pixels)
        }
    }

    @Test(arguments: ConvolutionCase.all)
    func backwardMatchesFiniteDifferences(_ testCase: ConvolutionCase) {
        let (input, _, weight) = operands(testCase)
        let geometry = testCase.geometry
        let output = conv2d(input, weight: weight, geometry: geometry)
        let weights = FiniteDifferences.randomTensor(output.shape, seed: 4)
        let gradients = conv2dBackward(gradOutput: weights, input: input, weight: weight, geometry: geometry)
        FiniteDifferences.check(
            { conv2d($0, weight: weight, geometry: geometry) }, at: input, weights: weights,
            analytic: gradients.input!, "input gradient, \(testCase.testDescription)")
        FiniteDifferences.check(
            { conv2d(input, weight: $0, geometry: geometry) }, at: weight, weights: weights,
            analytic: gradients.weight, "weight gradient, \(testCase.testDescription)")
    }

    @Test func skippingTheInputGradientKeepsTheWeightGradient() {
        let testCase = ConvolutionCase.all[3]
        let (input, _, weight) = operands(testCase)
        let output = conv2d(input, weight: weight, geometry: testCase.geometry)
        let gradOutput = FiniteDifferences.randomTensor(output.shape, seed: 5)
        let both = conv2dBackward(gradOutput: gradOutput, input: input, weight: weight, geometry: testCase.geometry)
        let weightOnly = conv2dBackward(
            gradOutput: gradOutput, input: input, weight: weight, geometry: testCase.geometry,
            computeInputGradient: false)
        #expect(weightOnly.input == nil)
        expectClose(weightOnly.weight.scalars, both.weight.scalars, relative: 0, absolute: 0)
    }

    /// The weight gradient's memory is not cleared first, so every backward path must write all of it: a
    /// weight of at least 1 MiB takes its gradient's block from the tensor block cache, here stocked with
    /// NaN-filled blocks of that size, and the gradient must come out bit-identical to one in fresh memory.
    /// The paths: a 1×1 GEMM, Winograd (4×4 tiles on this 28² map), im2col with stride 2, the 7×7 stem.
    @Test(arguments: [
        ConvolutionCase(
            geometry: .init(kernelSize: 1, stride: 1, padding: 0), input: [1, 3, 5, 512], outputChannels: 512),
        ConvolutionCase(
            geometry: .init(kernelSize: 3, stride: 1, padding: 1), input: [1, 28, 28, 176], outputChannels: 176),
        ConvolutionCase(
            geometry: .init(kernelSize: 3, stride: 2, padding: 1), input: [1, 7, 9, 176], outputChannels: 176),
        ConvolutionCase(
            geometry: .init(kernelSize: 7, stride: 2, padding: 3), input: [1, 9, 11, 84], outputChannels: 64),
    ])
    func theWeightGradientOverwritesARecycledBlock(_ testCase: ConvolutionCase) {
        let (input, _, weight) = operands(testCase)
        let geometry = testCase.geometry
        #expect(weight.count * 4 >= TensorAllocations.largeThreshold)
        let gradOutput = FiniteDifferences.randomTensor(
            conv2d(input, weight: weight, geometry: geometry).shape, seed: 8)
        let fresh = conv2dBackward(gradOutput: gradOutput, input: input, weight: weight, geometry: geometry)
        // Released blocks go back to the cache, the last one first out; several, in case another test
        // running meanwhile takes one of this size.
        _ = (0..<4).map { _ in Tensor(shape: weight.shape, repeating: .nan) }
        let recycled = conv2dBackward(gradOutput: gradOutput, input: input, weight: weight, geometry: geometry)
        let pairs = zip(recycled.weight.scalars, fresh.weight.scalars)
        let differing = pairs.filter { $0.bitPattern != $1.bitPattern }.count
        let notFinite = recycled.weight.scalars.filter { !$0.isFinite }.count
        #expect(
            differing == 0,
            "\(differing) of \(weight.count) elements differ from the gradient in fresh memory, \(notFinite) not finite"
        )
    }

    @Test func pytorchLayoutRoundTrips() {
        let pytorchWeight = FiniteDifferences.randomTensor([4, 3, 3, 2], seed: 6)
        let weight = Convolution2DGeometry.fromPyTorchLayout(pytorchWeight)
        #expect(weight.shape == [4, 3, 2, 3])
        // OIHW [o][i][kh][kw] lands at OHWI [o][kh][kw][i].
        let (o, i, kh, kw) = (3, 1, 2, 0)
        expectClose(
            Double(weight.scalars[((o * 3 + kh) * 2 + kw) * 3 + i]),
            Double(pytorchWeight.scalars[((o * 3 + i) * 3 + kh) * 2 + kw]), relative: 0, absolute: 0)
        let back = Convolution2DGeometry.toPyTorchLayout(weight)
        #expect(back.shape == pytorchWeight.shape)
        expectClose(back.scalars, pytorchWeight.scalars, relative: 0, absolute: 0)
    }

    @Test func channelMismatchNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = conv2d(
                Tensor(shape: [2, 8, 8, 3]), weight: Tensor(shape: [5, 3, 3, 4]),
                geometry: Convolution2DGeometry(kernelSize: 3, stride: 1, padding: 1))
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("input [2, 8, 8, 3] has 3 channels but weight expects 4 (weight [5, 3, 3, 4])"))
    }

    @Test func kernelSizeMismatchFails() async {
        await #expect(processExitsWith: .failure) {
            _ = conv2d(
                Tensor(shape: [1, 8, 8, 3]), weight: Tensor(shape: [5, 1, 1, 3]),
                geometry: Convolution2DGeometry(kernelSize: 3, stride: 1, padding: 1))
        }
    }

    @Test func gradientShapeMismatchFails() async {
        await #expect(processExitsWith: .failure) {
            _ = conv2dBackward(
                gradOutput: Tensor(shape: [1, 4, 4, 5]), input: Tensor(shape: [1, 8, 8, 3]),
                weight: Tensor(shape: [5, 3, 3, 3]),
                geometry: Convolution2DGeometry(kernelSize: 3, stride: 1, padding: 1))
        }
    }
}

/// The convolutions that finish their output block by block: batch-norm statistics gathered from
/// the blocks, and inference's batch norm, residual and ReLU applied to them.
@Suite struct FusedConvolutionTests {
    /// Per-channel mean and biased variance in Double, two passes.
    static func moments(_ tensor: Tensor) -> (mean: [Float], variance: [Float]) {
        let channels = tensor.shape[3]
        let values = tensor.scalars
        let rows = values.count / channels
        var mean = [Double](repeating: 0, count: channels)
        var variance = [Double](repeating: 0, count: channels)
        for index in values.indices { mean[index % channels] += Double(values[index]) / Double(rows) }
        for index in values.indices {
            let deviation = Double(values[index]) - mean[index % channels]
            variance[index % channels] += deviation * deviation / Double(rows)
        }
        return (mean.map { Float($0) }, variance.map { Float($0) })
    }

    @Test(arguments: ConvolutionCase.all)
    func channelMomentsMatchTwoPassStatistics(_ testCase: ConvolutionCase) {
        let (geometry, shape) = (testCase.geometry, testCase.splittable.input)
        // An offset larger than the spread: shifted sums must keep the variance.
        let input = FiniteDifferences.randomTensor(shape, seed: 8).scalars.map { $0 + 40 }
        let weight = FiniteDifferences.randomTensor(
            geometry.weightShape(inputChannels: shape[3], outputChannels: testCase.splittable.outputChannels), seed: 9)
        let images = Tensor(shape: shape, scalars: input)
        let plain = conv2d(images, weight: weight, geometry: geometry)
        let fused = conv2dWithChannelMoments(images, weight: weight, geometry: geometry)
        expectClose(fused.output.scalars, plain.scalars, relative: 1e-5, absolute: 1e-4)
        let expected = Self.moments(fused.output)
        expectClose(fused.mean.scalars, expected.mean, relative: 1e-5, absolute: 1e-5)
        expectClose(fused.variance.scalars, expected.variance, relative: 1e-4, absolute: 1e-5)
    }

    /// Inference's fused batch norm, residual and ReLU equal the separate operations.
    @Test(arguments: ConvolutionCase.all)
    func affineResidualAndReLUMatchSeparatePasses(_ testCase: ConvolutionCase) {
        let (geometry, shape) = (testCase.geometry, testCase.splittable.input)
        let channels = testCase.splittable.outputChannels
        let input = FiniteDifferences.randomTensor(shape, seed: 10)
        let weight = FiniteDifferences.randomTensor(
            geometry.weightShape(inputChannels: shape[3], outputChannels: channels), seed: 11)
        let (gamma, beta) = (
            FiniteDifferences.randomTensor([channels], seed: 12), FiniteDifferences.randomTensor([channels], seed: 13)
        )
        let mean = FiniteDifferences.randomTensor([channels], seed: 14)
        let variance = Tensor(
            shape: [channels],
            scalars: FiniteDifferences.randomTensor([channels], seed: 15).scalars.map { $0 * $0 + 0.5 })
        let plain = conv2d(input, weight: weight, geometry: geometry)
        let residual = FiniteDifferences.randomTensor(plain.shape, seed: 16)
        let (normalized, _) = batchNorm(plain, weight: gamma, bias: beta, running: (mean, variance), epsilon: 1e-5)
        let (scale, shift) = batchNormAffine(weight: gamma, bias: beta, mean: mean, variance: variance, epsilon: 1e-5)
        let fused = conv2d(input, weight: weight, geometry: geometry, scale: scale, shift: shift, clampAtZero: false)
        expectClose(fused.scalars, normalized.scalars, relative: 1e-5, absolute: 1e-4)
        let expected = relu(add(normalized, residual))
        let fusedResidual = conv2d(
            input, weight: weight, geometry: geometry, scale: scale, shift: shift, residual: residual, clampAtZero: true
        )
        expectClose(fusedResidual.scalars, expected.scalars, relative: 1e-5, absolute: 1e-4)
        #expect(fusedResidual.scalars.allSatisfy { $0 >= 0 })
    }
}
