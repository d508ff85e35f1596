// The optimization pieces against hand-computed values: SGD with momentum and weight decay, the cosine and
// warm-up learning-rate schedules, and mixup's draws, mixing and soft-target loss.

import Foundation
import TensorEngine
import Testing
import Training
import _TestSupport

@Suite struct SGDOptimizerTests {
    private let gradients: [[Float]] = [[0.5, 0.1], [0.2, -0.3], [-0.1, 0.4]]

    /// lr 0.1, μ 0.9, wd 0.01 from w = [1, −2]. Step 1 by hand: d = g + wd·w = [0.51, 0.08],
    /// v = d (fresh buffer), w = [1 − 0.051, −2 − 0.008] = [0.949, −2.008]. Steps 2 and 3 apply
    /// v = 0.9·v + d the same way.
    @Test func threeStepsWithMomentumAndWeightDecayMatchHandValues() {
        let optimizer = SGDOptimizer(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        var weights = Tensor(shape: [2], scalars: [1, -2])
        var state = SGDMomentum()
        let expectedWeights: [[Float]] = [[0.949, -2.008], [0.882151, -1.983192], [0.8311047, -1.9988816]]
        let expectedVelocity: [[Float]] = [[0.51, 0.08], [0.66849, -0.24808], [0.51046251, 0.15689608]]
        for step in 0..<3 {
            optimizer.update(
                weights: &weights, gradients: Tensor(shape: [2], scalars: gradients[step]), state: &state,
                name: "fc.weight")
            expectClose(weights.scalars, expectedWeights[step], relative: 1e-6, "step \(step + 1)")
            expectClose(state.buffer?.scalars ?? [], expectedVelocity[step], relative: 1e-6, "velocity \(step + 1)")
        }
    }

    @Test func parametersMatchingNoWeightDecayAreNotDecayed() {
        let optimizer = SGDOptimizer(
            learningRate: 0.1, momentum: 0.9, weightDecay: 0.01, noWeightDecay: ["bn", ".bias"])
        #expect(!optimizer.appliesWeightDecay(to: "layer1.base.bn1.weight"))
        #expect(!optimizer.appliesWeightDecay(to: "fc.bias"))
        #expect(optimizer.appliesWeightDecay(to: "fc.weight"))
        var weights = Tensor(shape: [2], scalars: [1, -2])
        var state = SGDMomentum()
        for gradient in gradients {
            optimizer.update(
                weights: &weights, gradients: Tensor(shape: [2], scalars: gradient), state: &state, name: "bn1.weight")
        }
        // Without decay: v = [0.5, 0.1], [0.65, −0.21], [0.485, 0.211]; w = 1 − 0.1·Σv, −2 − 0.1·Σv.
        expectClose(weights.scalars, [0.8365, -2.0101], relative: 1e-6)
    }

    @Test func zeroMomentumIsPlainGradientDescent() {
        let optimizer = SGDOptimizer(learningRate: 0.5, momentum: 0, weightDecay: 0)
        var weights = Tensor(shape: [3], scalars: [1, 2, 3])
        var state = SGDMomentum()
        for _ in 0..<2 {
            optimizer.update(
                weights: &weights, gradients: Tensor(shape: [3], scalars: [1, -1, 2]), state: &state, name: "w")
        }
        expectClose(weights.scalars, [0, 3, 1])
    }
}

@Suite struct LearningRateScheduleTests {
    /// lr(e) = (0.1/2)(1 + cos(π·e/4)): 0.1, 0.05(1 + √2/2), 0.05, 0.05(1 − √2/2), 0.
    @Test func cosineAnnealingPerEpoch() {
        let schedule = LearningRateSchedule(baseLearningRate: 0.1, periodEpochs: 4, stepsPerEpoch: 10)
        let half = 0.5.squareRoot()
        let expected = [0.1, 0.05 * (1 + half), 0.05, 0.05 * (1 - half), 0]
        for (epoch, value) in expected.enumerated() {
            expectClose(schedule.learningRate(epoch: epoch, stepInEpoch: 0), value, absolute: 1e-12)
            expectClose(
                schedule.learningRate(epoch: epoch, stepInEpoch: 9), value, absolute: 1e-12, "constant within an epoch")
        }
    }

    /// W = 2, T = 10, lr₀ 0.1, η_min 0.001: 0.05, 0.1, then 0.001 + 0.099·(1 + cos(π(e − 2)/8))/2.
    @Test func linearWarmupThenCosine() {
        let schedule = LearningRateSchedule(
            baseLearningRate: 0.1, minimumLearningRate: 0.001, periodEpochs: 10, warmupEpochs: 2, stepsPerEpoch: 5)
        let cosineEighth = cos(Double.pi / 8)
        let expected: [(Int, Double)] = [
            (0, 0.05), (1, 0.1), (2, 0.1), (3, 0.001 + 0.099 * (1 + cosineEighth) / 2), (6, 0.0505),
            (10, 0.001),
        ]
        for (epoch, value) in expected {
            expectClose(schedule.learningRate(epoch: epoch, stepInEpoch: 0), value, absolute: 1e-12, "epoch \(epoch)")
        }
    }

    @Test func perStepScheduleMovesWithinAnEpoch() {
        let schedule = LearningRateSchedule(
            baseLearningRate: 0.1, periodEpochs: 2, warmupEpochs: 1, byEpoch: false, stepsPerEpoch: 4)
        expectClose(schedule.learningRate(epoch: 0, stepInEpoch: 0), 0.025, absolute: 1e-12)
        expectClose(schedule.learningRate(epoch: 0, stepInEpoch: 3), 0.1, absolute: 1e-12)
        expectClose(schedule.learningRate(epoch: 1, stepInEpoch: 0), 0.1, absolute: 1e-12)
        // p = 1.5: progress 0.5 through the cosine.
        expectClose(schedule.learningRate(epoch: 1, stepInEpoch: 2), 0.05, absolute: 1e-12)
    }
}

@Suite struct MixupTests {
    /// Beta(a, b) has mean a/(a+b) and variance ab/((a+b)²(a+b+1)).
    @Test(arguments: [(0.2, 0.2), (1.0, 1.0), (2.0, 5.0)])
    func betaSamplesHaveTheRightMoments(a: Double, b: Double) {
        var generator = SeededRandom(seed: 11, streams: 1)
        let count = 20_000
        let samples = (0..<count).map { _ in generator.nextBeta(a, b) }
        #expect(samples.allSatisfy { $0 >= 0 && $0 <= 1 })
        let mean = samples.reduce(0, +) / Double(count)
        let variance = samples.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(count - 1)
        let expectedMean = a / (a + b)
        let expectedVariance = a * b / ((a + b) * (a + b) * (a + b + 1))
        expectClose(mean, expectedMean, absolute: 0.01)
        expectClose(variance, expectedVariance, relative: 0.05)
    }

    @Test func drawsAreKeyedBySeedEpochAndStep() {
        let mixup = Mixup(alpha: 0.2, seed: 3)
        let first = mixup.draw(epoch: 1, step: 5, batchSize: 16)
        let again = mixup.draw(epoch: 1, step: 5, batchSize: 16)
        let other = mixup.draw(epoch: 1, step: 6, batchSize: 16)
        #expect(first.permutation == again.permutation)
        expectClose(Double(first.lambda), Double(again.lambda), absolute: 0)
        #expect(first.permutation.sorted() == Array(0..<16))
        #expect(first.permutation != other.permutation)
        #expect(first.lambda > 0 && first.lambda < 1)
    }

    @Test func imagesAreMixedWithTheirPartners() {
        let draw = Mixup.Draw(lambda: 0.25, permutation: [1, 0, 2])
        // [N=3, H=1, W=2, C=1]
        var images = Tensor(shape: [3, 1, 2, 1], scalars: [1, 2, 10, 20, 5, 7])
        Mixup.mixImages(&images, with: draw)
        expectClose(images.scalars, [7.75, 15.5, 3.25, 6.5, 5, 7])
    }

    /// CE(logits, t) with t = λ·s(y) + (1 − λ)·s(y_π) equals λ·CE_s(y) + (1 − λ)·CE_s(y_π).
    @Test(arguments: [Float(0), 0.1])
    func softTargetLossEqualsTheMixedLoss(labelSmoothing: Float) {
        let classes = 5
        let labels = [0, 3, 4, 3]
        let mixup = Mixup(alpha: 0.4, seed: 9, labelSmoothing: labelSmoothing)
        let draw = mixup.draw(epoch: 0, step: 2, batchSize: labels.count)
        var generator = SeededRandom(seed: 1, streams: 2)
        let logits = (0..<(labels.count * classes)).map { _ in Float(generator.nextGaussian()) }

        let soft = mixup.softTargets(labels: labels, classCount: classes, draw: draw).scalars
        let plain = mixup.softTargets(labels: labels, classCount: classes, draw: nil).scalars
        let permutedLabels = draw.permutation.map { labels[$0] }
        let permuted = mixup.softTargets(labels: permutedLabels, classCount: classes, draw: nil).scalars
        for row in 0..<labels.count {
            let rowSum = soft[row * classes..<(row + 1) * classes].reduce(0, +)
            expectClose(Double(rowSum), 1, relative: 1e-6)
        }
        let mixedLoss = crossEntropy(logits: logits, targets: soft, classes: classes)
        let handFormula =
            Double(draw.lambda) * crossEntropy(logits: logits, targets: plain, classes: classes)
            + Double(1 - draw.lambda) * crossEntropy(logits: logits, targets: permuted, classes: classes)
        expectClose(mixedLoss, handFormula, relative: 1e-6)
        if labelSmoothing == 0 {
            // Hard labels: the target of sample 0's own class is λ (plus 1 − λ when its partner shares it).
            let own = Double(soft[labels[0]])
            let partnerShares = labels[draw.permutation[0]] == labels[0]
            expectClose(own, partnerShares ? 1 : Double(draw.lambda), relative: 1e-6)
        }
    }

    /// Mean over rows of −Σ t·log_softmax(logits), computed independently of the library.
    private func crossEntropy(logits: [Float], targets: [Float], classes: Int) -> Double {
        let rows = logits.count / classes
        var total = 0.0
        for row in 0..<rows {
            let values = logits[row * classes..<(row + 1) * classes].map(Double.init)
            let maximum = values.max()!
            let logSum = maximum + log(values.reduce(0) { $0 + exp($1 - maximum) })
            for (offset, value) in values.enumerated() {
                total -= Double(targets[row * classes + offset]) * (value - logSum)
            }
        }
        return total / Double(rows)
    }
}
