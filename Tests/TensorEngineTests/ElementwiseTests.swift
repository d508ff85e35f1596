// The elementwise, channel and pooling kernels: values, gradients against finite differences, max-pool's
// tie rule, and the messages of mismatched shapes.

import TensorEngine
import Testing
import _TestSupport

@Suite struct ElementwiseTests {
    @Test func reluBackwardMatchesFiniteDifferences() {
        // Values at least 0.05 apart and away from 0, so the ε = 0.01 step never crosses the kink.
        let input = FiniteDifferences.wellSeparatedTensor([2, 3, 3, 4], seed: 1)
        let weights = FiniteDifferences.randomTensor(input.shape, seed: 2)
        let gradient = reluBackward(gradOutput: weights, output: relu(input))
        FiniteDifferences.check(relu, at: input, weights: weights, analytic: gradient)
        expectClose(relu(Tensor(shape: [3], scalars: [-1, 0, 2])).scalars, [0, 0, 2])
    }

    @Test func addSumsAndPassesTheGradientToBothOperands() {
        let a = FiniteDifferences.randomTensor([2, 3, 3, 4], seed: 3)
        let b = FiniteDifferences.randomTensor([2, 3, 3, 4], seed: 4)
        let weights = FiniteDifferences.randomTensor(a.shape, seed: 5)
        expectClose(add(a, b).scalars, zip(a.scalars, b.scalars).map(+))
        FiniteDifferences.check({ add($0, b) }, at: a, weights: weights, analytic: weights, "first operand")
        FiniteDifferences.check({ add(a, $0) }, at: b, weights: weights, analytic: weights, "second operand")
    }

    @Test func concatenationAndSplitAreInverseAndEachOthersGradient() {
        let a = FiniteDifferences.randomTensor([2, 3, 5, 2], seed: 6)
        let b = FiniteDifferences.randomTensor([2, 3, 5, 3], seed: 7)
        let joined = concatenateChannels([a, b])
        #expect(joined.shape == [2, 3, 5, 5])
        // Pixel 4's channels are a's two then b's three.
        expectClose(
            Array(joined.scalars[20..<25]), Array(a.scalars[8..<10]) + Array(b.scalars[12..<15]), relative: 0,
            absolute: 0)
        let parts = splitChannels(joined, sizes: [2, 3])
        expectClose(parts[0].scalars, a.scalars, relative: 0, absolute: 0)
        expectClose(parts[1].scalars, b.scalars, relative: 0, absolute: 0)

        let weights = FiniteDifferences.randomTensor(joined.shape, seed: 8)
        let gradients = splitChannels(weights, sizes: [2, 3])
        FiniteDifferences.check(
            { concatenateChannels([$0, b]) }, at: a, weights: weights, analytic: gradients[0], "concat, first")
        FiniteDifferences.check(
            { concatenateChannels([a, $0]) }, at: b, weights: weights, analytic: gradients[1], "concat, second")

        let partWeights = [
            FiniteDifferences.randomTensor(a.shape, seed: 9), FiniteDifferences.randomTensor(b.shape, seed: 10),
        ]
        FiniteDifferences.check(
            {
                concatenateChannels(
                    splitChannels($0, sizes: [2, 3]).enumerated().map { index, part in
                        // Weight each part separately: Σ part_i · R_i.
                        Tensor(shape: part.shape, scalars: zip(part.scalars, partWeights[index].scalars).map(*))
                    })
            },
            at: joined, weights: Tensor(shape: joined.shape, repeating: 1),
            analytic: concatenateChannels(partWeights), "split")
    }

    @Test func broadcastAddGradientSumsOverPixels() {
        let input = FiniteDifferences.randomTensor([2, 3, 5, 4], seed: 11)
        let addend = FiniteDifferences.randomTensor([2, 1, 1, 4], seed: 12)
        let output = broadcastAdd(input, addend)
        expectClose(
            Double(output.scalars[(1 * 15 + 7) * 4 + 2]),
            Double(input.scalars[(1 * 15 + 7) * 4 + 2] + addend.scalars[6]))
        let weights = FiniteDifferences.randomTensor(input.shape, seed: 13)
        FiniteDifferences.check({ broadcastAdd($0, addend) }, at: input, weights: weights, analytic: weights, "input")
        FiniteDifferences.check(
            { broadcastAdd(input, $0) }, at: addend, weights: weights, analytic: sumOverPixels(weights), "addend")
    }

    @Test func globalAveragePoolBackwardMatchesFiniteDifferences() {
        let input = FiniteDifferences.randomTensor([2, 3, 5, 4], seed: 14)
        let output = globalAveragePool(input)
        #expect(output.shape == [2, 1, 1, 4])
        let channel3OfImage1 = (0..<15).map { Double(input.scalars[(15 + $0) * 4 + 3]) }.reduce(0, +) / 15
        expectClose(Double(output.scalars[7]), channel3OfImage1)
        let weights = FiniteDifferences.randomTensor(output.shape, seed: 15)
        FiniteDifferences.check(
            globalAveragePool, at: input, weights: weights,
            analytic: globalAveragePoolBackward(gradOutput: weights, inputShape: input.shape))
    }

    /// Large enough tensors are summed in bands of pixels on two threads; a band boundary inside
    /// an image (three images) and a batch of one must give each image's own sums.
    @Test(arguments: [[3, 61, 67, 19], [1, 64, 64, 40]])
    func pixelSumsSplitOverThreadsMatchEachImagesSums(shape: [Int]) {
        let input = FiniteDifferences.randomTensor(shape, seed: 21)
        let (pixels, channels) = (shape[1] * shape[2], shape[3])
        var expected = [Double](repeating: 0, count: shape[0] * channels)
        for (index, value) in input.scalars.enumerated() {
            expected[index / (pixels * channels) * channels + index % channels] += Double(value)
        }
        expectClose(sumOverPixels(input).scalars, expected.map(Float.init), relative: 1e-5, absolute: 1e-4)
        expectClose(
            globalAveragePool(input).scalars, expected.map { Float($0 / Double(pixels)) }, relative: 1e-5,
            absolute: 1e-6)
    }

    @Test func maxPoolBackwardMatchesFiniteDifferences() {
        // 11 channels: one 8-lane SIMD group and a scalar remainder.
        let input = FiniteDifferences.wellSeparatedTensor([2, 7, 9, 11], seed: 16, spacing: 0.03)
        let (output, indices) = maxPool(input, kernelSize: 3, stride: 2, padding: 1)
        #expect(output.shape == [2, 4, 5, 11])
        let weights = FiniteDifferences.randomTensor(output.shape, seed: 17)
        FiniteDifferences.check(
            { maxPool($0, kernelSize: 3, stride: 2, padding: 1).output }, at: input, weights: weights,
            analytic: maxPoolBackward(gradOutput: weights, indices: indices))
    }

    @Test func maxPoolMatchesAWindowScanAndTiesGoToTheFirst() {
        // 3×3 pixels of equal values except the last: every window's maximum ties. 9 identical
        // channels exercise the SIMD group and the remainder.
        let channels = 9
        let pixels: [Float] = [1, 1, 1, 1, 1, 1, 1, 1, 0]
        let input = Tensor(
            shape: [1, 3, 3, channels], scalars: pixels.flatMap { Array(repeating: $0, count: channels) })
        let (output, indices) = maxPool(input)
        #expect(output.shape == [1, 2, 2, channels])
        expectClose(output.scalars, Array(repeating: 1, count: 4 * channels), relative: 0, absolute: 0)
        // Windows start at rows/columns −1 and 1: their first in-bounds pixels are 0, 1, 3, 4.
        let outputGradients: [Float] = [1, 2, 4, 8]
        let gradient = maxPoolBackward(
            gradOutput: Tensor(
                shape: [1, 2, 2, channels], scalars: outputGradients.flatMap { Array(repeating: $0, count: channels) }),
            indices: indices)
        let expected: [Float] = [1, 2, 0, 4, 8, 0, 0, 0, 0]
        expectClose(
            gradient.scalars, expected.flatMap { Array(repeating: $0, count: channels) }, relative: 0, absolute: 0)
    }

    @Test func mismatchedAddNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = add(Tensor(shape: [2, 4, 4, 8]), Tensor(shape: [2, 4, 4, 6]))
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("[2, 4, 4, 8] and [2, 4, 4, 6]"))
    }

    @Test func broadcastAddOfTheWrongShapeFails() async {
        await #expect(processExitsWith: .failure) {
            _ = broadcastAdd(Tensor(shape: [2, 4, 4, 8]), Tensor(shape: [2, 4, 4, 8]))
        }
    }

    @Test func splitSizesMustCoverTheChannels() async {
        await #expect(processExitsWith: .failure) {
            _ = splitChannels(Tensor(shape: [2, 4, 4, 8]), sizes: [3, 4])
        }
    }
}
