// The bf16 rows of `bench train|infer --precision bf16`: the in-run bf16 GEMM peak where the CPU multiplies
// bf16 natively, and otherwise the emulated path's numerics only (its timings would measure fp32 kernels).

import Foundation
import TensorEngine

/// Figures of the bf16 precision for the step benchmarks.
package enum BFloat16Bench {
    /// Whether bf16 timings mean anything here: the CPU has the native kernel.
    package static var isNative: Bool { BFloat16Kernel.preferred == .native }

    /// The bf16 GEMM rate in GFLOP/s: the best of `repeats` `size³` products (after one untimed) on the
    /// native kernel with `threads` threads, operands converted in every call as the network's are.
    package static func peak(size: Int = 2048, repeats: Int = 3, threads: Int) -> Double {
        GEMMPeak.bestRate(size: size, repeats: repeats) { a, b, c in
            GEMM.multiplyBF16(
                transposeA: false, transposeB: false, m: size, n: size, k: size, a: a, lda: size, b: b, ldb: size,
                c: c, ldc: size, threads: threads)
        }
    }

    /// The numerics of bf16 products on this machine's bf16 kernel: for reduction lengths of the network's
    /// 1×1 and 3×3 convolutions, the largest and the root-mean-square error against float64 sums, relative
    /// to the sum of the terms' magnitudes, beside fp32's and the bf16 bound `2u + u² + γₖ₊₁(1 + u)²`.
    package static func numericsLines() -> [String] {
        let (m, n) = (64, 64)
        return [64, 576, 2304, 4608].map { k in
            var random = SeededRandom(seed: UInt64(k))
            let a = (0..<(m * k)).map { _ in Float(random.nextGaussian()) }
            let b = (0..<(k * n)).map { _ in Float(random.nextGaussian()) }
            let bf16 = product(a, b, m: m, n: n, k: k, precision: .bf16)
            let fp32 = product(a, b, m: m, n: n, k: k, precision: .fp32)
            var worst = (bf16: 0.0, fp32: 0.0)
            var squares = (bf16: 0.0, fp32: 0.0)
            for row in 0..<m {
                for column in 0..<n {
                    let terms = (0..<k).map { Double(a[row * k + $0]) * Double(b[$0 * n + column]) }
                    let exact = terms.reduce(0, +)
                    let magnitude = terms.reduce(0) { $0 + abs($1) }
                    let errors = (
                        abs(Double(bf16[row * n + column]) - exact) / magnitude,
                        abs(Double(fp32[row * n + column]) - exact) / magnitude
                    )
                    worst = (max(worst.bf16, errors.0), max(worst.fp32, errors.1))
                    squares = (squares.bf16 + errors.0 * errors.0, squares.fp32 + errors.1 * errors.1)
                }
            }
            let u = BFloat16.unitRoundoff
            let gamma = Double(k + 1) * 0x1p-24 / (1 - Double(k + 1) * 0x1p-24)
            let bound = 2 * u + u * u + gamma * (1 + u) * (1 + u)
            let count = Double(m * n)
            return "bf16 numerics k \(k): error / Σ|a·b| max \(format(worst.bf16)) rms "
                + "\(format((squares.bf16 / count).squareRoot())) (bound \(format(bound))); fp32 max "
                + "\(format(worst.fp32)) rms \(format((squares.fp32 / count).squareRoot()))"
        }
    }

    private static func product(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, precision: Precision) -> [Float] {
        withPrecision(precision) {
            matmul(Tensor(shape: [m, k], scalars: a), Tensor(shape: [k, n], scalars: b)).scalars
        }
    }

    private static func format(_ value: Double) -> String { String(format: "%.2e", value) }
}
