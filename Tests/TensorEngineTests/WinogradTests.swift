// Winograd 3×3 convolutions with 2×2 and 4×4 tiles: all three products against direct float64 sums on
// edge-case shapes, gradients against finite differences, and accumulation into an input gradient.

import TensorEngine
import Testing
import _TestSupport

/// 3×3 stride-1 convolutions run as Winograd F(2×2, 3×3) or F(4×4, 3×3); these compare all three
/// products of both with direct float64 sums, on shapes that hit their edge cases.
@Suite struct WinogradTests {
    static let geometry = Convolution2DGeometry(kernelSize: 3, stride: 1, padding: 1)

    /// `[N, H, W, C_in]` and `C_out`: extents that are not multiples of the tile (tiles that hang
    /// over the edge), 1×1 and 2×2 images (every tap but the centre in the padding), channel counts
    /// with and without a partial vector of 8 lanes, and a map large enough for the automatic
    /// choice of 4×4 tiles.
    static let shapes: [([Int], Int)] = [
        ([2, 5, 7, 3], 4), ([1, 1, 1, 5], 2), ([3, 2, 2, 8], 8), ([2, 9, 6, 13], 11), ([1, 14, 14, 16], 24),
        ([1, 29, 30, 9], 7),
    ]

    /// The output, input gradient and weight gradient of a 3×3 stride-1 convolution with one
    /// pixel of zero padding, summed directly in float64 (OHWI weight).
    static func directProducts(input: Tensor, weight: Tensor, gradOutput: Tensor) -> (
        output: [Float], input: [Float], weight: [Float]
    ) {
        let (batch, height, width, inputChannels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let outputChannels = weight.shape[0]
        let (x, w, dy) = (input.scalars, weight.scalars, gradOutput.scalars)
        var output = [Double](repeating: 0, count: gradOutput.count)
        var gradInput = [Double](repeating: 0, count: input.count)
        var gradWeight = [Double](repeating: 0, count: weight.count)
        for n in 0..<batch {
            for oy in 0..<height {
                for ox in 0..<width {
                    for k in 0..<outputChannels {
                        let outputIndex = ((n * height + oy) * width + ox) * outputChannels + k
                        for r in 0..<3 {
                            for s in 0..<3 {
                                let (y, x0) = (oy - 1 + r, ox - 1 + s)
                                guard y >= 0, y < height, x0 >= 0, x0 < width else { continue }
                                for c in 0..<inputChannels {
                                    let inputIndex = ((n * height + y) * width + x0) * inputChannels + c
                                    let weightIndex = ((k * 3 + r) * 3 + s) * inputChannels + c
                                    output[outputIndex] += Double(x[inputIndex]) * Double(w[weightIndex])
                                    gradInput[inputIndex] += Double(dy[outputIndex]) * Double(w[weightIndex])
                                    gradWeight[weightIndex] += Double(dy[outputIndex]) * Double(x[inputIndex])
                                }
                            }
                        }
                    }
                }
            }
        }
        return (output.map(Float.init), gradInput.map(Float.init), gradWeight.map(Float.init))
    }

    @Test(arguments: [nil, 2, 4], shapes)
    func productsMatchDirectSums(tile: Int?, shape: ([Int], Int)) {
        let (inputShape, outputChannels) = shape
        let limits = ConvolutionLimits(winogradTile: tile)
        let input = FiniteDifferences.randomTensor(inputShape, seed: 11)
        let weight = FiniteDifferences.randomTensor(
            Self.geometry.weightShape(inputChannels: inputShape[3], outputChannels: outputChannels), seed: 12,
            scale: 0.5)
        let output = conv2d(input, weight: weight, geometry: Self.geometry, limits: limits)
        let gradOutput = FiniteDifferences.randomTensor(output.shape, seed: 13)
        let gradients = conv2dBackward(
            gradOutput: gradOutput, input: input, weight: weight, geometry: Self.geometry,
            computeInputGradient: true, limits: limits)
        let direct = Self.directProducts(input: input, weight: weight, gradOutput: gradOutput)
        // The transforms scale and add up to α² terms before the GEMMs, so rounding grows with the
        // largest value rather than with each element: measured at most 4e-7 of it with 2×2 tiles
        // and 3.5e-6 with 4×4 tiles (whose transforms multiply by up to 8 and divide by 24).
        let tolerance = tile == 4 || (tile == nil && min(inputShape[1], inputShape[2]) >= 28) ? 1e-5 : 2e-6
        for (name, actual, expected) in [
            ("output", output.scalars, direct.output), ("input gradient", gradients.input!.scalars, direct.input),
            ("weight gradient", gradients.weight.scalars, direct.weight),
        ] {
            let scale = Double(expected.map(abs).max() ?? 0)
            expectClose(actual, expected, relative: 0, absolute: tolerance * scale, "\(name), \(inputShape)")
        }
    }

    /// Both tile sizes' gradients against central differences of their own forward pass.
    @Test(arguments: [2, 4])
    func gradientsMatchFiniteDifferences(tile: Int) {
        let limits = ConvolutionLimits(winogradTile: tile)
        let input = FiniteDifferences.randomTensor([2, 7, 6, 3], seed: 18)
        let weight = FiniteDifferences.randomTensor(
            Self.geometry.weightShape(inputChannels: 3, outputChannels: 4), seed: 19)
        func convolve(_ input: Tensor, _ weight: Tensor) -> Tensor {
            conv2d(input, weight: weight, geometry: Self.geometry, limits: limits)
        }
        let weights = FiniteDifferences.randomTensor(convolve(input, weight).shape, seed: 20)
        let gradients = conv2dBackward(
            gradOutput: weights, input: input, weight: weight, geometry: Self.geometry,
            computeInputGradient: true, limits: limits)
        FiniteDifferences.check(
            { convolve($0, weight) }, at: input, weights: weights, analytic: gradients.input!, "input, tile \(tile)")
        FiniteDifferences.check(
            { convolve(input, $0) }, at: weight, weights: weights, analytic: gradients.weight, "weight, tile \(tile)")
    }

    /// A residual block's shortcut: the input gradient is added to what the tensor holds.
    @Test func inputGradientAccumulatesIntoAnExistingTensor() {
        let input = FiniteDifferences.randomTensor([2, 9, 6, 13], seed: 14)
        let weight = FiniteDifferences.randomTensor(
            Self.geometry.weightShape(inputChannels: 13, outputChannels: 11), seed: 15)
        let gradOutput = FiniteDifferences.randomTensor([2, 9, 6, 11], seed: 16)
        let shortcut = FiniteDifferences.randomTensor(input.shape, seed: 17)
        var sum = shortcut
        let gradWeight = conv2dBackward(
            gradOutput: gradOutput, input: input, weight: weight, geometry: Self.geometry,
            accumulatingInputGradientInto: &sum)
        let separate = conv2dBackward(gradOutput: gradOutput, input: input, weight: weight, geometry: Self.geometry)
        let expected = zip(shortcut.scalars, separate.input!.scalars).map { $0 + $1 }
        expectClose(sum.scalars, expected, relative: 1e-6, absolute: 1e-6)
        expectClose(gradWeight.scalars, separate.weight.scalars, relative: 0, absolute: 0)
    }
}
