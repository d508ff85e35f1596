//===----------------------------------------------------------------------===//
// ghostnet-d — TensorEngine tests
//===----------------------------------------------------------------------===//

import Testing
import TensorEngine
import _TestSupport

/// 3×3 stride-1 convolutions run as Winograd F(2×2, 3×3); these compare all three of its products
/// with direct float64 sums, on shapes that hit its edge cases.
@Suite struct WinogradTests {
    static let geometry = Convolution2DGeometry(kernelSize: 3, stride: 1, padding: 1)

    /// `[N, H, W, C_in]` and `C_out`: odd extents (tiles that hang over the edge), 1×1 and 2×2
    /// images (every tap but the centre in the padding), and channel counts with and without a
    /// partial vector of 8 lanes.
    static let shapes: [([Int], Int)] = [
        ([2, 5, 7, 3], 4), ([1, 1, 1, 5], 2), ([3, 2, 2, 8], 8), ([2, 9, 6, 13], 11), ([1, 14, 14, 16], 24),
    ]

    /// The output, input gradient and weight gradient of a 3×3 stride-1 convolution with one
    /// pixel of zero padding, summed directly in float64 (OHWI weight).
    static func directProducts(input: Tensor, weight: Tensor, gradOutput: Tensor) -> (output: [Float], input: [Float], weight: [Float]) {
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

    @Test(arguments: shapes)
    func productsMatchDirectSums(_ shape: [Int], outputChannels: Int) {
        let input = FiniteDifferences.randomTensor(shape, seed: 11)
        let weight = FiniteDifferences.randomTensor(
            Self.geometry.weightShape(inputChannels: shape[3], outputChannels: outputChannels), seed: 12, scale: 0.5)
        let output = conv2d(input, weight: weight, geometry: Self.geometry)
        let gradOutput = FiniteDifferences.randomTensor(output.shape, seed: 13)
        let gradients = conv2dBackward(gradOutput: gradOutput, input: input, weight: weight, geometry: Self.geometry)
        let direct = Self.directProducts(input: input, weight: weight, gradOutput: gradOutput)
        // The transforms add up to 16 terms before the GEMM; float32 rounding grows with them.
        expectClose(output.scalars, direct.output, relative: 1e-5, absolute: 1e-5, "output \(shape)")
        expectClose(gradients.input!.scalars, direct.input, relative: 1e-5, absolute: 1e-5, "input gradient \(shape)")
        expectClose(gradients.weight.scalars, direct.weight, relative: 1e-5, absolute: 1e-4, "weight gradient \(shape)")
    }

    /// A residual block's shortcut: the input gradient is added to what the tensor holds.
    @Test func inputGradientAccumulatesIntoAnExistingTensor() {
        let input = FiniteDifferences.randomTensor([2, 9, 6, 13], seed: 14)
        let weight = FiniteDifferences.randomTensor(Self.geometry.weightShape(inputChannels: 13, outputChannels: 11), seed: 15)
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
