// The sgemm rate a step benchmark is compared with, measured in the same run.

import TensorEngine

/// The machine's single-precision GEMM rate with `threads` threads: the better of the engine's
/// own bands (``GEMM``, the entry point the convolutions use) and OpenBLAS's native threading.
enum GEMMPeak {
    /// The best GFLOP/s of `repeats` multiplications of two `size × size` matrices in each
    /// threading mode (after one untimed call that wakes the threads).
    static func measure(size: Int, repeats: Int, threads: Int) -> Double {
        func openBLAS(bands: Int) -> Double {
            bestRate(size: size, repeats: repeats) { a, b, c in
                GEMM.multiply(m: size, n: size, k: size, a: a, b: b, c: c, threads: bands, kernel: .openBLAS)
            }
        }
        let banded = openBLAS(bands: threads)
        return max(banded, OpenBLASRuntime.withNativeThreading(threads) { openBLAS(bands: 1) })
    }

    /// The best GFLOP/s of `repeats` calls of `multiply` (after one untimed call) on two random
    /// `size × size` matrices and their `size × size` product.
    static func bestRate(
        size: Int, repeats: Int,
        _ multiply: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    ) -> Double {
        var random = SeededRandom(seed: 11)
        let a = Tensor(shape: [size, size]) { for i in $0.indices { $0[i] = Float(random.nextUnitDouble()) } }
        let b = Tensor(shape: [size, size]) { for i in $0.indices { $0[i] = Float(random.nextUnitDouble()) } }
        var c = Tensor(shape: [size, size])
        var best = Double.infinity
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    for attempt in 0...repeats {
                        let start = KernelProfiler.monotonicNanoseconds()
                        multiply(a.baseAddress!, b.baseAddress!, c.baseAddress!)
                        let seconds = Double(KernelProfiler.monotonicNanoseconds() - start) * 1e-9
                        if attempt > 0 { best = min(best, seconds) }
                    }
                }
            }
        }
        return 2 * Double(size) * Double(size) * Double(size) / best / 1e9
    }
}
