// Central finite-difference gradient checks, shared by the engine, layer and model tests.

import TensorEngine
import Testing

/// Gradient checks by central finite differences.
///
/// A float32 forward pass is turned into a scalar loss `Σ output · R` for a fixed random `R`,
/// summed in `Double`; its numerical derivative `(L(x + ε) − L(x − ε)) / 2ε` for every input
/// element is compared with the analytic gradient `backward(R)`.
package enum FiniteDifferences {
    /// A tensor of `shape` with independent normal samples times `scale`, from `SeededRandom(seed:)`.
    package static func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var random = SeededRandom(seed: seed, streams: UInt64(shape.reduce(1, *)))
        return Tensor(shape: shape) { buffer in
            for index in buffer.indices { buffer[index] = Float(random.nextGaussian()) * scale }
        }
    }

    /// A tensor of `shape` whose elements are distinct values at least `spacing` apart, in random
    /// order: no ties for max-pool and no values within `spacing / 2` of zero for ReLU.
    package static func wellSeparatedTensor(_ shape: [Int], seed: UInt64, spacing: Float = 0.05) -> Tensor {
        var random = SeededRandom(seed: seed)
        let count = shape.reduce(1, *)
        var values = (0..<count).map { (Float($0) - Float(count) / 2 + 0.5) * spacing }
        values.shuffle(using: &random)
        return Tensor(shape: shape, scalars: values)
    }

    /// `Σ a·b` in `Double`.
    package static func dot(_ a: Tensor, _ b: Tensor) -> Double {
        ensure(a.shape == b.shape, "dot: \(a.shape) vs \(b.shape)")
        return a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                var sum = 0.0
                for index in 0..<a.count { sum += Double(a[index]) * Double(b[index]) }
                return sum
            }
        }
    }

    /// The numerical gradient of `loss` at `point`: central differences with step `epsilon`.
    package static func numericalGradient(
        of loss: (Tensor) -> Double, at point: Tensor, epsilon: Float
    ) -> [Float] {
        var probe = point
        let values = point.scalars
        var gradient = [Float](repeating: 0, count: point.count)
        for index in 0..<point.count {
            let original = values[index]
            probe.withUnsafeMutableBufferPointer { $0[index] = original + epsilon }
            let plus = loss(probe)
            probe.withUnsafeMutableBufferPointer { $0[index] = original - epsilon }
            let minus = loss(probe)
            probe.withUnsafeMutableBufferPointer { $0[index] = original }
            gradient[index] = Float((plus - minus) / (2 * Double(epsilon)))
        }
        return gradient
    }

    /// Checks `analytic` against the numerical gradient of `Σ forward(x)·weights` at `point`.
    ///
    /// - Parameters:
    ///   - forward: The function of one tensor under test.
    ///   - point: Where to differentiate.
    ///   - weights: `R`, shaped like `forward`'s output.
    ///   - analytic: The gradient the backward pass computed for `gradOutput = R`.
    ///   - epsilon: The step; the tolerances absorb float32 rounding of order `ulp(L) / ε`.
    package static func check(
        _ forward: (Tensor) -> Tensor, at point: Tensor, weights: Tensor, analytic: Tensor,
        epsilon: Float = 1e-2, relative: Double = 1e-2, absolute: Double = 2e-3,
        _ comment: String = "",
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let numerical = numericalGradient(of: { dot(forward($0), weights) }, at: point, epsilon: epsilon)
        expectClose(
            analytic.scalars, numerical, relative: relative, absolute: absolute,
            "finite differences (ε \(epsilon)) \(comment)", sourceLocation: sourceLocation)
    }
}
