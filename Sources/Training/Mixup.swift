// Mixup and label smoothing: the per-(micro-)batch draw, the image mixing and the soft targets.

import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

/// Mixup (Zhang et al., "mixup: Beyond Empirical Risk Minimization", 2018) for one rank's batch.
///
/// Each step draws λ ~ Beta(α, α) and a permutation π of the batch from a generator keyed by
/// (seed, epoch, step, rank), so a resumed run draws the same values and ranks mix differently. Images become
/// x̃ᵢ = λ·xᵢ + (1 − λ)·x_π(i), and the targets become the soft distribution
/// tᵢ = λ·s(yᵢ) + (1 − λ)·s(y_π(i)), where s is the (optionally label-smoothed) one-hot vector.
/// Cross-entropy is linear in the target, so CE(logits, tᵢ) = λ·CE(yᵢ) + (1 − λ)·CE(y_π(i)).
package struct Mixup: Sendable {
    /// λ and the partner of every sample for one step.
    package struct Draw: Sendable {
        /// The weight of the original sample, in (0, 1).
        package let lambda: Float
        /// `permutation[i]` is the sample mixed into sample i.
        package let permutation: [Int]

        /// - Precondition: `lambda` is in [0, 1] and `permutation` is a permutation of `0..<count`.
        package init(lambda: Float, permutation: [Int]) {
            precondition(lambda >= 0 && lambda <= 1, "mixup lambda \(lambda) outside [0, 1]")
            precondition(
                permutation.sorted() == Array(permutation.indices),
                "mixup partners \(permutation) are not a permutation")
            self.lambda = lambda
            self.permutation = permutation
        }
    }

    /// The Beta distribution's shape parameter α (both shapes equal).
    package let alpha: Double
    package let seed: UInt64
    /// ε: the smoothed one-hot vector is (1 − ε)·onehot + ε/K.
    package let labelSmoothing: Float

    /// Separates mixup's random stream from other streams keyed by (seed, epoch, …).
    static let stream: UInt64 = 0x4D49_5855_5000_0001

    /// - Precondition: `alpha > 0` and `0 <= labelSmoothing < 1`.
    package init(alpha: Double, seed: UInt64, labelSmoothing: Float = 0) {
        precondition(alpha > 0, "mixup alpha must be positive, got \(alpha)")
        precondition(
            labelSmoothing >= 0 && labelSmoothing < 1, "label smoothing must be in [0, 1), got \(labelSmoothing)")
        self.alpha = alpha
        self.seed = seed
        self.labelSmoothing = labelSmoothing
    }

    /// λ and the permutation for micro-batch `microBatch` of step `step` of epoch `epoch` on rank
    /// `rank`, for `batchSize` samples. Each micro-batch mixes within itself; micro-batch 0 draws
    /// what an unaccumulated step draws.
    package func draw(epoch: Int, step: Int, rank: Int = 0, microBatch: Int = 0, batchSize: Int) -> Draw {
        var streams = [Mixup.stream, UInt64(epoch), UInt64(step), UInt64(rank)]
        if microBatch > 0 { streams.append(UInt64(microBatch)) }
        var generator = SeededRandom(seed: seed, streamPath: streams)
        let lambda = generator.nextBeta(alpha, alpha)
        var permutation = Array(0..<batchSize)
        for index in stride(from: batchSize - 1, to: 0, by: -1) {
            permutation.swapAt(index, generator.nextIndex(below: index + 1))
        }
        return Draw(lambda: Float(lambda), permutation: permutation)
    }

    /// Mixes a batch in place: sample i becomes λ·xᵢ + (1 − λ)·x_π(i).
    ///
    /// - Parameter images: `[N, H, W, C]` (any layout whose outermost dimension is the batch).
    /// - Precondition: `images.shape[0] == draw.permutation.count`.
    package static func mixImages(_ images: inout Tensor, with draw: Draw) {
        let batch = images.shape.first ?? 0
        precondition(
            batch == draw.permutation.count, "mixup: batch of \(batch) but a permutation of \(draw.permutation.count)")
        guard batch > 0 else { return }
        let original = images.scalars
        let sampleSize = images.count / batch
        let lambda = draw.lambda
        let complement = 1 - draw.lambda
        images.withUnsafeMutableBufferPointer { mixed in
            original.withUnsafeBufferPointer { source in
                for sample in 0..<batch {
                    let own = sample * sampleSize
                    let partner = draw.permutation[sample] * sampleSize
                    for offset in 0..<sampleSize {
                        mixed[own + offset] = lambda * source[own + offset] + complement * source[partner + offset]
                    }
                }
            }
        }
    }

    /// The soft targets for `labels`: λ·s(yᵢ) + (1 − λ)·s(y_π(i)), or s(yᵢ) without a draw.
    ///
    /// - Parameters:
    ///   - labels: Class indices, one per sample, each in `0..<classCount`.
    ///   - draw: The step's mixup draw, or nil for plain (smoothed) one-hot targets.
    /// - Returns: `[N, classCount]`, every row summing to 1.
    package func softTargets(labels: [Int], classCount: Int, draw: Draw?) -> Tensor {
        precondition(
            draw == nil || draw!.permutation.count == labels.count,
            "mixup: \(labels.count) labels for a different batch")
        let floor = labelSmoothing / Float(classCount)
        let peak = 1 - labelSmoothing
        return Tensor(shape: [labels.count, classCount]) { targets in
            targets.initialize(repeating: floor)
            for (sample, label) in labels.enumerated() {
                precondition((0..<classCount).contains(label), "label \(label) outside 0..<\(classCount)")
                let row = sample * classCount
                if let draw {
                    targets[row + label] += draw.lambda * peak
                    targets[row + labels[draw.permutation[sample]]] += (1 - draw.lambda) * peak
                } else {
                    targets[row + label] += peak
                }
            }
        }
    }
}

extension SeededRandom {
    /// A uniform integer in `0..<bound` (multiply-high reduction; bias below 2⁻⁶⁴·bound).
    mutating func nextIndex(below bound: Int) -> Int {
        Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// A Gamma(shape, 1) sample by Marsaglia and Tsang's method ("A Simple Method for Generating Gamma
    /// Variables", 2000); for shape < 1, Gamma(shape + 1)·U^(1/shape).
    package mutating func nextGamma(shape: Double) -> Double {
        precondition(shape > 0, "gamma shape must be positive")
        if shape < 1 {
            let uniform = max(nextUnitDouble(), .leastNonzeroMagnitude)
            return nextGamma(shape: shape + 1) * pow(uniform, 1 / shape)
        }
        let d = shape - 1.0 / 3.0
        let c = 1 / (9 * d).squareRoot()
        while true {
            let x = nextGaussian()
            let cube = 1 + c * x
            guard cube > 0 else { continue }
            let v = cube * cube * cube
            let u = nextUnitDouble()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if log(u) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    /// A Beta(a, b) sample as X/(X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
    package mutating func nextBeta(_ a: Double, _ b: Double) -> Double {
        let x = nextGamma(shape: a)
        let y = nextGamma(shape: b)
        return x / (x + y)
    }
}
