// The fully connected kernel and softmax cross-entropy: hand-computed values, overflow safety, soft
// targets, finite-difference gradients, and the messages of bad shapes and labels.

import Foundation
import TensorEngine
import Testing
import _TestSupport

@Suite struct LinearTests {
    @Test(arguments: [[3, 5], [3, 1, 1, 5]])
    func backwardMatchesFiniteDifferences(inputShape: [Int]) {
        let input = FiniteDifferences.randomTensor(inputShape, seed: 1)
        let weight = FiniteDifferences.randomTensor([4, 5], seed: 2)
        let bias = FiniteDifferences.randomTensor([4], seed: 3)
        let output = linear(input, weight: weight, bias: bias)
        #expect(output.shape == inputShape.dropLast() + [4])
        let weights = FiniteDifferences.randomTensor(output.shape, seed: 4)
        let gradients = linearBackward(gradOutput: weights, input: input, weight: weight)
        FiniteDifferences.check(
            { linear($0, weight: weight, bias: bias) }, at: input, weights: weights, analytic: gradients.input, "input")
        FiniteDifferences.check(
            { linear(input, weight: $0, bias: bias) }, at: weight, weights: weights, analytic: gradients.weight,
            "weight")
        FiniteDifferences.check(
            { linear(input, weight: weight, bias: $0) }, at: bias, weights: weights, analytic: gradients.bias, "bias")
    }

    @Test func forwardIsTheAffineMap() {
        let input = Tensor(shape: [1, 2], scalars: [1, 2])
        let weight = Tensor(shape: [3, 2], scalars: [1, 0, 0, 1, 1, 1])
        let output = linear(input, weight: weight, bias: Tensor(shape: [3], scalars: [0.5, 0, -1]))
        expectClose(output.scalars, [1.5, 2, 2])
    }

    @Test func featureMismatchNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = linear(Tensor(shape: [2, 6]), weight: Tensor(shape: [4, 5]), bias: Tensor(shape: [4]))
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("input [2, 6] has 6 features but weight expects 5 (weight [4, 5])"))
    }
}

@Suite struct CrossEntropyTests {
    @Test func integerLabelsMatchHandComputedValues() {
        let logits = Tensor(shape: [2, 3], scalars: [1, 2, 3, 0, 0, 0])
        let result = softmaxCrossEntropy(logits: logits, labels: [2, 0])
        let first = [exp(1.0), exp(2.0), exp(3.0)]
        let firstSum = first.reduce(0, +)
        let expectedLoss = ((log(firstSum) - 3) + log(3.0)) / 2
        expectClose(result.loss, expectedLoss, relative: 1e-6, absolute: 0)
        let firstRow: [Double] = [first[0] / firstSum, first[1] / firstSum, first[2] / firstSum - 1]
        let secondRow: [Double] = [1.0 / 3 - 1, 1.0 / 3, 1.0 / 3]
        let expectedGradient = (firstRow + secondRow).map { Float($0 / 2) }
        expectClose(result.gradLogits.scalars, expectedGradient, relative: 1e-5, absolute: 1e-7)
    }

    @Test func largeLogitsDoNotOverflow() {
        let result = softmaxCrossEntropy(logits: Tensor(shape: [1, 2], scalars: [1000, 0]), labels: [1])
        expectClose(result.loss, 1000, relative: 1e-6, absolute: 0)
        expectClose(result.gradLogits.scalars, [1, -1], relative: 1e-6, absolute: 1e-7)
    }

    @Test func softTargetsMatchHandComputedValues() {
        let logits = Tensor(shape: [1, 2], scalars: [0, 0])
        let result = softmaxCrossEntropy(logits: logits, targets: Tensor(shape: [1, 2], scalars: [0.25, 0.75]))
        expectClose(result.loss, log(2.0), relative: 1e-6, absolute: 0)
        expectClose(result.gradLogits.scalars, [0.25, -0.25], relative: 1e-6, absolute: 1e-7)
        // A one-hot soft target equals the integer-label loss.
        let logits3 = FiniteDifferences.randomTensor([2, 3], seed: 5)
        let soft = softmaxCrossEntropy(logits: logits3, targets: Tensor(shape: [2, 3], scalars: [0, 1, 0, 0, 0, 1]))
        let hard = softmaxCrossEntropy(logits: logits3, labels: [1, 2])
        expectClose(soft.loss, hard.loss, relative: 1e-12, absolute: 0)
        expectClose(soft.gradLogits.scalars, hard.gradLogits.scalars, relative: 1e-6, absolute: 1e-8)
    }

    @Test func gradientsMatchFiniteDifferences() {
        let logits = FiniteDifferences.randomTensor([4, 5], seed: 6, scale: 2)
        let labels = [0, 4, 2, 2]
        let hard = FiniteDifferences.numericalGradient(
            of: { softmaxCrossEntropy(logits: $0, labels: labels).loss }, at: logits, epsilon: 1e-2)
        expectClose(
            softmaxCrossEntropy(logits: logits, labels: labels).gradLogits.scalars, hard,
            relative: 1e-2, absolute: 1e-4, "integer labels (ε 1e-2)")

        // Mixup-style targets: two one-hot rows mixed 0.3 / 0.7, with label smoothing 0.1.
        var targetValues = [Float](repeating: 0.1 / 5, count: 20)
        for (row, (a, b)) in [(0, 1), (4, 3), (2, 2), (1, 0)].enumerated() {
            targetValues[row * 5 + a] += 0.9 * 0.3
            targetValues[row * 5 + b] += 0.9 * 0.7
        }
        let targets = Tensor(shape: [4, 5], scalars: targetValues)
        let soft = FiniteDifferences.numericalGradient(
            of: { softmaxCrossEntropy(logits: $0, targets: targets).loss }, at: logits, epsilon: 1e-2)
        expectClose(
            softmaxCrossEntropy(logits: logits, targets: targets).gradLogits.scalars, soft,
            relative: 1e-2, absolute: 1e-4, "soft targets (ε 1e-2)")
    }

    @Test func labelOutOfRangeIsNamed() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = softmaxCrossEntropy(logits: Tensor(shape: [2, 3]), labels: [0, 3])
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("label 3 of row 1 is outside 0..<3"))
    }

    @Test func targetShapeMismatchFails() async {
        await #expect(processExitsWith: .failure) {
            _ = softmaxCrossEntropy(logits: Tensor(shape: [2, 3]), targets: Tensor(shape: [2, 4]))
        }
    }
}
