// Matrix products: `matmul` in every transpose combination, the packed AVX2/AVX-512 kernels against
// float64 sums, the OpenBLAS kernel choice, and thread-banded products against single-threaded ones.

import TensorEngine
import Testing
import _TestSupport

@Suite struct GEMMTests {
    func naiveProduct(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> [Float] {
        (0..<(m * n)).map { index in
            let (row, column) = (index / n, index % n)
            return Float((0..<k).reduce(0.0) { $0 + Double(a[row * k + $1]) * Double(b[$1 * n + column]) })
        }
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matmulMatchesNaiveProduct(transposeA: Bool, transposeB: Bool) {
        let (m, n, k) = (37, 29, 53)
        let a = FiniteDifferences.randomTensor([m, k], seed: 1)
        let b = FiniteDifferences.randomTensor([k, n], seed: 2)
        let expected = naiveProduct(a.scalars, b.scalars, m: m, n: n, k: k)
        let product = matmul(
            transposeA ? a.permuted([1, 0]) : a, transposeB ? b.permuted([1, 0]) : b,
            transposeA: transposeA, transposeB: transposeB)
        #expect(product.shape == [m, n])
        expectClose(product.scalars, expected, relative: 1e-5, absolute: 1e-5)
    }

    /// Each instruction set of the packed kernels this CPU runs, against float64 sums: row counts
    /// below, at and across the 6-row tiles and 96-row blocks, one and three panels, padded row
    /// strides, `op(B)` stored either way, overwriting and accumulating, and a product large enough
    /// to be split over two threads.
    @Test(arguments: GEMM.PackedInstructions.allCases.filter(\.isSupported))
    func packedKernelsMatchDirectSums(instructions: GEMM.PackedInstructions) {
        let width = instructions.panelWidth
        var cases: [(m: Int, n: Int, k: Int)] = [(1000, 2 * width, 100)]
        for m in [1, 5, 6, 7, 101, 200] {
            for (n, k) in [(width, 1), (width, 37), (3 * width, 3)] { cases.append((m, n, k)) }
        }
        for (m, n, k) in cases {
            for (transposeB, accumulate) in [(false, false), (true, false), (false, true), (true, true)] {
                let (lda, ldc) = (k + 3, n + 5)
                let a = FiniteDifferences.randomTensor([m, lda], seed: 3).scalars
                let b = FiniteDifferences.randomTensor([k, n], seed: 4).scalars
                let stored = transposeB ? (0..<(n * k)).map { b[($0 % k) * n + $0 / k] } : b
                var c = FiniteDifferences.randomTensor([m, ldc], seed: 5).scalars
                var expected = c
                for row in 0..<m {
                    for column in 0..<n {
                        let sum = (0..<k).reduce(0.0) { $0 + Double(a[row * lda + $1]) * Double(b[$1 * n + column]) }
                        expected[row * ldc + column] = Float(sum + (accumulate ? Double(c[row * ldc + column]) : 0))
                    }
                }
                a.withUnsafeBufferPointer { a in
                    stored.withUnsafeBufferPointer { b in
                        c.withUnsafeMutableBufferPointer { c in
                            GEMM.multiply(
                                transposeB: transposeB, m: m, n: n, k: k, a: a.baseAddress!, lda: lda,
                                b: b.baseAddress!, beta: accumulate ? 1 : 0, c: c.baseAddress!, ldc: ldc,
                                threads: 2, kernel: .packed(instructions))
                        }
                    }
                }
                expectClose(
                    c, expected, relative: 1e-5, absolute: 1e-5,
                    "m \(m) n \(n) k \(k) transposeB \(transposeB) accumulate \(accumulate)")
            }
        }
    }

    @Test(.enabled(if: CPUFeatures.current.hasUsableAVX512, "this CPU lacks usable AVX-512"))
    func avx512MachinesDoNotRunPrescottKernels() {
        let product = matmul(Tensor(shape: [64, 64], repeating: 1), Tensor(shape: [64, 64], repeating: 2))
        expectClose(Double(product.scalars[0]), 128, relative: 0, absolute: 0)
        #expect(OpenBLASRuntime.kernelName != "Prescott", "OpenBLAS chose \(OpenBLASRuntime.kernelName)")
    }

    @Test func threadCountIsSettable() {
        let original = OpenBLASRuntime.threadCount
        OpenBLASRuntime.threadCount = 1
        #expect(OpenBLASRuntime.threadCount == 1)
        OpenBLASRuntime.threadCount = original
    }

    @Test func innerDimensionMismatchNamesBothShapes() async {
        await #expect(processExitsWith: .failure) {
            _ = matmul(Tensor(shape: [3, 4]), Tensor(shape: [5, 2]))
        }
    }
}

@Suite struct GEMMBandTests {
    /// Products large enough to be split into bands of rows (tall) or columns (wide) or along k,
    /// in every transposition, with extents that are not multiples of the 16-row band granularity.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func bandedProductsEqualTheSingleThreadedProduct(transposeA: Bool, transposeB: Bool) {
        // Tall, wide, and a long shared dimension (split along k).
        for (m, n, k) in [(1001, 70, 67), (70, 1001, 67), (67, 70, 1001)] {
            #expect(m * n * k >= GEMM.minimumParallelWork)
            let a = FiniteDifferences.randomTensor(transposeA ? [k, m] : [m, k], seed: 5)
            let b = FiniteDifferences.randomTensor(transposeB ? [n, k] : [k, n], seed: 6)
            var results: [[Float]] = []
            for threads in [1, 2, 3] {
                var c = Tensor(shape: [m, n], repeating: 1)
                a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { b in
                        c.withUnsafeMutableBufferPointer { c in
                            GEMM.multiply(
                                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5,
                                a: a.baseAddress!, b: b.baseAddress!, beta: 2, c: c.baseAddress!, threads: threads)
                        }
                    }
                }
                results.append(c.scalars)
            }
            // Splitting k changes the summation order: rounding grows with the length of the sums.
            let absolute = 2e-7 * Double(k)
            expectClose(results[1], results[0], relative: 1e-5, absolute: absolute)
            expectClose(results[2], results[0], relative: 1e-5, absolute: absolute)
        }
    }
}
