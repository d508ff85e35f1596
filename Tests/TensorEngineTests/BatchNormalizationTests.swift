// Batch normalisation kernels: gradients against finite differences, batch statistics and PyTorch's
// running averages, the fused ReLU and residual paths, large means, and the shape checks' messages.

import TensorEngine
import Testing
import _TestSupport

@Suite struct BatchNormalizationTests {
    // 11 channels: one 8-lane SIMD group and a scalar remainder.
    let shape = [2, 3, 3, 11]
    let weight = FiniteDifferences.randomTensor([11], seed: 20)
    let bias = FiniteDifferences.randomTensor([11], seed: 21, scale: 0.3)
    let running = (
        mean: FiniteDifferences.randomTensor([11], seed: 22, scale: 0.3),
        variance: Tensor(shape: [11], scalars: (0..<11).map { 0.25 + Float($0) * 0.2 })
    )

    @Test func trainingBackwardMatchesFiniteDifferences() {
        let input = FiniteDifferences.randomTensor(shape, seed: 1, scale: 1.5)
        let normalization = batchNorm(input, weight: weight, bias: bias, running: nil, epsilon: 1e-5).normalization
        #expect(normalization.usesBatchStatistics)
        let weights = FiniteDifferences.randomTensor(shape, seed: 2)
        let gradients = batchNormBackward(
            gradOutput: weights, input: input, weight: weight, normalization: normalization)
        let forward = { (x: Tensor, w: Tensor, b: Tensor) in
            batchNorm(x, weight: w, bias: b, running: nil, epsilon: 1e-5).output
        }
        // ε 1e-3: the output is nonlinear in x through the batch statistics.
        FiniteDifferences.check(
            { forward($0, weight, bias) }, at: input, weights: weights, analytic: gradients.input,
            epsilon: 1e-3, relative: 1e-2, absolute: 5e-3, "input")
        FiniteDifferences.check(
            { forward(input, $0, bias) }, at: weight, weights: weights, analytic: gradients.weight,
            epsilon: 1e-3, relative: 1e-2, absolute: 5e-3, "weight")
        FiniteDifferences.check(
            { forward(input, weight, $0) }, at: bias, weights: weights, analytic: gradients.bias,
            epsilon: 1e-3, relative: 1e-2, absolute: 5e-3, "bias")
    }

    /// Fused ReLU equals batch norm followed by ReLU, forward and backward (both gradient-checked
    /// on their own; finite differences across the ReLU kink of 198 outputs would be flaky): the
    /// gate recomputed from the input closes exactly where the output was clamped.
    @Test(arguments: [true, false])
    func fusedReLUEqualsTheComposition(training: Bool) {
        let input = FiniteDifferences.randomTensor(shape, seed: 30)
        let statistics = training ? nil : running
        let plain = batchNorm(input, weight: weight, bias: bias, running: statistics, epsilon: 1e-5)
        let fused = batchNorm(input, weight: weight, bias: bias, running: statistics, epsilon: 1e-5, fusingReLU: true)
        expectClose(fused.output.scalars, relu(plain.output).scalars, relative: 1e-6, absolute: 1e-7)
        let gradOutput = FiniteDifferences.randomTensor(shape, seed: 31)
        let composed = batchNormBackward(
            gradOutput: reluBackward(gradOutput: gradOutput, output: relu(plain.output)), input: input,
            weight: weight, normalization: plain.normalization)
        let fusedGradients = batchNormBackward(
            gradOutput: gradOutput, input: input, weight: weight, normalization: fused.normalization)
        expectClose(fusedGradients.input.scalars, composed.input.scalars, relative: 1e-5, absolute: 1e-6)
        expectClose(fusedGradients.weight.scalars, composed.weight.scalars, relative: 1e-5, absolute: 1e-6)
        expectClose(fusedGradients.bias.scalars, composed.bias.scalars, relative: 1e-5, absolute: 1e-6)
    }

    @Test func inferenceBackwardMatchesFiniteDifferences() {
        let input = FiniteDifferences.randomTensor(shape, seed: 3)
        let forward = { (x: Tensor, w: Tensor, b: Tensor) in
            batchNorm(x, weight: w, bias: b, running: running, epsilon: 1e-5).output
        }
        let normalization = batchNorm(input, weight: weight, bias: bias, running: running, epsilon: 1e-5).normalization
        #expect(!normalization.usesBatchStatistics)
        let weights = FiniteDifferences.randomTensor(shape, seed: 4)
        let gradients = batchNormBackward(
            gradOutput: weights, input: input, weight: weight, normalization: normalization)
        FiniteDifferences.check(
            { forward($0, weight, bias) }, at: input, weights: weights, analytic: gradients.input, "input")
        FiniteDifferences.check(
            { forward(input, $0, bias) }, at: weight, weights: weights, analytic: gradients.weight, "weight")
        FiniteDifferences.check(
            { forward(input, weight, $0) }, at: bias, weights: weights, analytic: gradients.bias, "bias")
    }

    @Test func trainingNormalisesWithBatchStatistics() {
        // Channel 0 holds 1, 2, 3, 4 (mean 2.5, biased variance 1.25); channel 1 holds 10, 10, 10, 14
        // (mean 11, variance 3).
        let input = Tensor(shape: [2, 1, 2, 2], scalars: [1, 10, 2, 10, 3, 10, 4, 14])
        let (output, normalization) = batchNorm(
            input, weight: Tensor(shape: [2], repeating: 1), bias: Tensor(shape: [2], repeating: 0),
            running: nil, epsilon: 1e-5)
        expectClose(normalization.mean.scalars, [2.5, 11])
        expectClose(normalization.variance.scalars, [1.25, 3])
        let scale0 = 1 / (1.25 + 1e-5).squareRoot()
        let scale1 = 1 / (3 + 1e-5).squareRoot()
        let expected = [
            -1.5 * scale0, -scale1, -0.5 * scale0, -scale1, 0.5 * scale0, -scale1, 1.5 * scale0, 3 * scale1,
        ]
        expectClose(output.scalars, expected.map { Float($0) }, relative: 1e-5, absolute: 1e-6)
    }

    /// A residual block's sum and ReLU in batch norm's pass, with computed or given statistics.
    @Test func residualSumAndReLUMatchSeparatePasses() {
        let input = FiniteDifferences.randomTensor(shape, seed: 23)
        let residual = FiniteDifferences.randomTensor(shape, seed: 24)
        let (normalized, normalization) = batchNorm(input, weight: weight, bias: bias, running: nil, epsilon: 1e-5)
        let expected = relu(add(normalized, residual))
        let (fused, fusedNormalization) = batchNorm(
            input, weight: weight, bias: bias, running: nil, epsilon: 1e-5, fusingReLU: true, residual: residual)
        expectClose(fused.scalars, expected.scalars, relative: 1e-6, absolute: 1e-6)
        expectClose(fusedNormalization.variance.scalars, normalization.variance.scalars, relative: 1e-6, absolute: 1e-7)
        let (given, _) = batchNorm(
            input, weight: weight, bias: bias, running: nil, epsilon: 1e-5, fusingReLU: true,
            batchStatistics: (normalization.mean, normalization.variance), residual: residual)
        expectClose(given.scalars, expected.scalars, relative: 1e-6, absolute: 1e-6)
    }

    @Test func runningStatisticsFollowPyTorch() {
        let input = Tensor(shape: [2, 1, 2, 2], scalars: [1, 10, 2, 10, 3, 10, 4, 14])
        let normalization = batchNorm(
            input, weight: Tensor(shape: [2], repeating: 1), bias: Tensor(shape: [2], repeating: 0),
            running: nil, epsilon: 1e-5
        ).normalization
        var runningMean = Tensor(shape: [2], scalars: [0, 1])
        var runningVariance = Tensor(shape: [2], scalars: [1, 1])
        updateRunningStatistics(
            runningMean: &runningMean, runningVariance: &runningVariance, from: normalization, momentum: 0.1)
        // mean: 0.9·0 + 0.1·2.5, 0.9·1 + 0.1·11; unbiased variance 5/3 and 4.
        expectClose(runningMean.scalars, [0.25, 2.0])
        expectClose(runningVariance.scalars, [Float(0.9 + 0.1 * 5.0 / 3.0), 0.9 + 0.4])
    }

    @Test func largeMeansKeepTheirVariance() {
        // Unshifted float32 sums of squares would lose the unit variance next to a mean of 10⁴.
        // 9 channels of 200 values: the SIMD group and the remainder, several 32-row blocks.
        let noise = FiniteDifferences.randomTensor([200, 1, 1, 9], seed: 5)
        let input = Tensor(shape: [200, 1, 1, 9], scalars: noise.scalars.map { $0 + 10_000 })
        let normalization = batchNorm(
            input, weight: Tensor(shape: [9], repeating: 1), bias: Tensor(shape: [9], repeating: 0),
            running: nil, epsilon: 1e-5
        ).normalization
        for channel in 0..<9 {
            let values = stride(from: channel, to: noise.count, by: 9).map { Double(input.scalars[$0]) }
            let mean = values.reduce(0, +) / 200
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 200
            expectClose(Double(normalization.mean.scalars[channel]), mean, relative: 1e-6, absolute: 0)
            expectClose(Double(normalization.variance.scalars[channel]), variance, relative: 1e-3, absolute: 0)
        }
    }

    @Test func trainingWithOneValuePerChannelNamesTheShape() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = batchNorm(
                Tensor(shape: [1, 1, 1, 8]), weight: Tensor(shape: [8], repeating: 1),
                bias: Tensor(shape: [8]), running: nil, epsilon: 1e-5)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("expected more than 1 value per channel when training, got input [1, 1, 1, 8]"))
    }

    @Test func parameterChannelMismatchFails() async {
        await #expect(processExitsWith: .failure) {
            _ = batchNorm(
                Tensor(shape: [2, 2, 2, 8]), weight: Tensor(shape: [4]), bias: Tensor(shape: [4]),
                running: nil, epsilon: 1e-5)
        }
    }
}
