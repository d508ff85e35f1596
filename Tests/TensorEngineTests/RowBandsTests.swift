// Row-band splitting: banded batch norm on large tensors against direct `Double` sums, and the even split
// of a range into shares.

import TensorEngine
import Testing
import _TestSupport

/// Batch norm on tensors large enough to be split into row bands (more than 2 × 65,536 floats),
/// against sums computed directly in `Double`.
@Suite struct RowBandsTests {
    @Test func bandedBatchNormMatchesDirectSums() {
        let (rows, channels) = (2 * 48 * 48, 37)
        let x = FiniteDifferences.randomTensor([2, 48, 48, channels], seed: 21)
        let dy = FiniteDifferences.randomTensor([2, 48, 48, channels], seed: 22)
        let weight = FiniteDifferences.randomTensor([channels], seed: 23)
        let bias = FiniteDifferences.randomTensor([channels], seed: 24)
        let (y, normalization) = batchNorm(x, weight: weight, bias: bias, running: nil, epsilon: 1e-5)
        let gradients = batchNormBackward(gradOutput: dy, input: x, weight: weight, normalization: normalization)

        let (xs, dys, ys) = (x.scalars, dy.scalars, y.scalars)
        var expectedY = [Float](repeating: 0, count: xs.count)
        var expectedWeight = [Float](repeating: 0, count: channels)
        var expectedBias = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            let values = (0..<rows).map { Double(xs[$0 * channels + c]) }
            let mean = values.reduce(0, +) / Double(rows)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(rows)
            let inverse = 1 / (variance + 1e-5).squareRoot()
            var sumGrad = 0.0
            var sumGradNormalized = 0.0
            for r in 0..<rows {
                let normalized = (values[r] - mean) * inverse
                expectedY[r * channels + c] = Float(normalized * Double(weight.scalars[c]) + Double(bias.scalars[c]))
                sumGrad += Double(dys[r * channels + c])
                sumGradNormalized += Double(dys[r * channels + c]) * normalized
            }
            expectedWeight[c] = Float(sumGradNormalized)
            expectedBias[c] = Float(sumGrad)
        }
        expectClose(ys, expectedY, relative: 1e-4, absolute: 1e-5)
        expectClose(gradients.weight.scalars, expectedWeight, relative: 1e-4, absolute: 1e-3)
        expectClose(gradients.bias.scalars, expectedBias, relative: 1e-4, absolute: 1e-3)
        // The input gradient of a batch norm sums to zero over each channel.
        let gradInput = gradients.input.scalars
        for c in 0..<channels {
            let total = (0..<rows).reduce(0.0) { $0 + Double(gradInput[$1 * channels + c]) }
            expectClose(total, 0, relative: 0, absolute: 1e-3)
        }
    }

    /// Shares tile their range in order, differ in size by at most one, and are never empty while
    /// there are at least as many elements as parts (the case of a batch of 5 images on 4 threads).
    @Test func sharesTileTheRangeEvenly() {
        for count in [1, 2, 5, 7, 16, 1001] {
            for parts in 1...min(count, 8) {
                let ranges = (0..<parts).map { share($0, of: parts, in: count) }
                #expect(ranges.first?.lowerBound == 0 && ranges.last?.upperBound == count)
                #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                let sizes = ranges.map(\.count)
                #expect(sizes.min()! >= 1 && sizes.max()! - sizes.min()! <= 1, "\(count) in \(parts): \(sizes)")
            }
        }
    }
}
