// bf16 rounding (nearest even, NaN kept) and bf16 matrix products on every kernel this CPU runs, against
// float64 sums with error bounds derived from bf16's unit roundoff and the reduction length, and the portable
// kernel against Intel's definition of `vdpbf16ps`.

import TensorEngine
import Testing
import _TestSupport

/// The error bounds of a bf16 product with fp32 accumulation.
///
/// Rounding `a` and `b` to bf16 gives `ã·b̃ = a·b·(1 + θ)` with `|θ| ≤ 2u + u²` (`u = 2⁻⁸`). A product of two
/// bf16 (8 significant bits each) is exact in fp32 (24), so the only other error is the fp32 sum of `k`
/// terms (plus `C` when accumulating): at most `γₖ₊₁ = (k+1)·2⁻²⁴ / (1 − (k+1)·2⁻²⁴)` times the sum of their
/// magnitudes, in any order.
enum BFloat16Bounds {
    static let u = BFloat16.unitRoundoff

    static func gamma(_ terms: Int) -> Double {
        let nu = Double(terms) * 0x1p-24
        return nu / (1 - nu)
    }

    /// `|bf16 result − exact|` for a reduction of `k` products whose magnitudes sum to `magnitude`, plus
    /// `accumulated` (`|C|` before, when adding to it).
    static func product(k: Int, magnitude: Double, accumulated: Double = 0) -> Double {
        (2 * u + u * u) * magnitude + gamma(k + 1) * ((1 + u) * (1 + u) * magnitude + accumulated)
    }

    /// `|one fp32 summation order − another|` of the same `k` exact bf16 products (each within `γₖ₊₁` of
    /// their exact sum).
    static func reordering(k: Int, magnitude: Double, accumulated: Double = 0) -> Double {
        2 * gamma(k + 1) * ((1 + u) * (1 + u) * magnitude + accumulated)
    }
}

@Suite struct BFloat16Tests {
    @Test func roundingTiesGoToEven() {
        #expect(BFloat16.bits(1) == 0x3f80)
        // 1 + 2⁻⁸ lies halfway between 1 (even) and 1 + 2⁻⁷: it goes to 1.
        #expect(BFloat16.bits(1 + 0x1p-8) == 0x3f80)
        // 1 + 3·2⁻⁸ lies halfway between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶ (even).
        #expect(BFloat16.bits(1 + 3 * 0x1p-8) == 0x3f82)
        #expect(BFloat16.bits(1 + 0x1p-8 + 0x1p-20) == 0x3f81)
        #expect(BFloat16.bits(-0.0) == 0x8000)
        #expect(BFloat16.bits(-.infinity) == 0xff80)
        // Past the largest bf16 (0x7f7f) by half its spacing or more, nearest-even rounding overflows.
        #expect(BFloat16.bits(.greatestFiniteMagnitude) == 0x7f80)
        #expect(BFloat16.bits(Float(bitPattern: 0x7f7f_7fff)) == 0x7f7f)
    }

    @Test func nanStaysNaNWithItsSign() {
        for pattern: UInt32 in [0x7f80_0001, 0x7fc0_0000, 0xff80_0001, 0x7fff_ffff, 0xffc0_0001] {
            let bits = BFloat16.bits(Float(bitPattern: pattern))
            #expect(BFloat16.float(bits).isNaN, "pattern \(String(pattern, radix: 16))")
            #expect(UInt32(bits >> 15) == pattern >> 31, "pattern \(String(pattern, radix: 16))")
        }
    }

    /// For random finite floats, the result is one of the two bf16 neighbours, the nearer one, and on a tie
    /// the even one.
    @Test func roundingPicksTheNearestNeighbour() {
        var random = SeededRandom(seed: 17)
        var checked = 0
        while checked < 200_000 {
            let pattern = UInt32.random(in: 0...UInt32.max, using: &random)
            let value = Float(bitPattern: pattern)
            let below = UInt16(pattern >> 16)
            // Skip NaN and infinity, and the values whose upper neighbour would be infinity or a NaN.
            guard value.isFinite, below & 0x7fff < 0x7f7f else { continue }
            checked += 1
            let rounded = BFloat16.bits(value)
            let above = below + 1
            #expect(rounded == below || rounded == above)
            let distance = { (bits: UInt16) in abs(Double(BFloat16.float(bits)) - Double(value)) }
            let other = rounded == below ? above : below
            if distance(rounded) == distance(other) {
                #expect(rounded & 1 == 0, "tie for \(value) not to even")
            } else {
                #expect(distance(rounded) < distance(other), "\(value) rounded to the farther neighbour")
            }
        }
    }

    /// Every bf16 kernel this CPU runs, each transpose combination, overwriting and accumulating: within the
    /// bound of the float64 product, and farther from it than fp32's own bound (so the operands were rounded).
    @Test(arguments: BFloat16Kernel.allCases.filter(\.isSupported))
    func productsStayWithinTheBF16Bound(kernel: BFloat16Kernel) {
        var largestExcess = 0.0
        for (m, n, k) in [(1, 32, 1), (7, 64, 37), (101, 96, 200), (13, 40, 64), (600, 64, 300)] {
            for (transposeA, transposeB, accumulate) in [
                (false, false, false), (true, false, false), (false, true, true), (true, true, true),
            ] {
                let a = FiniteDifferences.randomTensor(transposeA ? [k, m] : [m, k], seed: 1).scalars
                let b = FiniteDifferences.randomTensor(transposeB ? [n, k] : [k, n], seed: 2).scalars
                let initial = FiniteDifferences.randomTensor([m, n], seed: 3).scalars
                var c = initial
                a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { b in
                        c.withUnsafeMutableBufferPointer { c in
                            GEMM.multiplyBF16(
                                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                a: a.baseAddress!, lda: transposeA ? m : k, b: b.baseAddress!,
                                ldb: transposeB ? k : n, beta: accumulate ? 1 : 0, c: c.baseAddress!, ldc: n,
                                threads: 2, kernel: kernel)
                        }
                    }
                }
                for row in 0..<m {
                    for column in 0..<n {
                        let terms = (0..<k).map { index in
                            Double(a[transposeA ? index * m + row : row * k + index])
                                * Double(b[transposeB ? column * k + index : index * n + column])
                        }
                        let before = accumulate ? Double(initial[row * n + column]) : 0
                        let exact = terms.reduce(before, +)
                        let magnitude = terms.reduce(0) { $0 + abs($1) }
                        let bound = BFloat16Bounds.product(k: k, magnitude: magnitude, accumulated: abs(before))
                        let error = abs(Double(c[row * n + column]) - exact)
                        #expect(
                            error <= bound,
                            "\(kernel) m \(m) n \(n) k \(k) tA \(transposeA) tB \(transposeB) [\(row), \(column)]")
                        largestExcess = max(largestExcess, error / (BFloat16Bounds.gamma(k + 1) * magnitude))
                    }
                }
            }
        }
        #expect(largestExcess > 1, "no error beyond fp32's bound: were the operands rounded to bf16?")
    }

    /// The packed kernels (native where the CPU has AVX512-BF16, and the portable C reading the same layout)
    /// against the emulated path: the same exact bf16 products summed in another order.
    @Test(arguments: BFloat16Kernel.allCases.filter { $0 != .emulated && $0.isSupported })
    func packedKernelsMatchTheEmulatedPath(kernel: BFloat16Kernel) {
        for (m, n, k, accumulate) in [
            (5, 32, 1, false), (6, 64, 33, true), (250, 96, 257, false), (3000, 64, 64, true),
        ] {
            let a = FiniteDifferences.randomTensor([m, k], seed: 4).scalars
            let b = FiniteDifferences.randomTensor([n, k], seed: 5).scalars
            let initial = FiniteDifferences.randomTensor([m, n], seed: 6).scalars
            let results = [BFloat16Kernel.emulated, kernel].map { kernel in
                var c = initial
                a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { b in
                        c.withUnsafeMutableBufferPointer { c in
                            GEMM.multiplyBF16(
                                transposeA: false, transposeB: true, m: m, n: n, k: k, a: a.baseAddress!, lda: k,
                                b: b.baseAddress!, ldb: k, beta: accumulate ? 1 : 0, c: c.baseAddress!, ldc: n,
                                threads: 2, kernel: kernel)
                        }
                    }
                }
                return c
            }
            for row in 0..<m {
                for column in 0..<n {
                    let magnitude = (0..<k).reduce(0.0) {
                        $0 + abs(Double(a[row * k + $1]) * Double(b[column * k + $1]))
                    }
                    let before = accumulate ? abs(Double(initial[row * n + column])) : 0
                    let bound = BFloat16Bounds.reordering(k: k, magnitude: magnitude, accumulated: before)
                    let difference = abs(Double(results[0][row * n + column]) - Double(results[1][row * n + column]))
                    #expect(difference <= bound, "\(kernel) m \(m) n \(n) k \(k) [\(row), \(column)]")
                }
            }
        }
    }

    /// The portable kernel computes each `vdpbf16ps` step as Intel defines it (SDM, VDPBF16PS): the pair's
    /// high product added before its low one, each a fused multiply-add rounded to nearest even; denormal
    /// inputs read as zero (DAZ) and denormal sums flushed to zero (FTZ). The emulated path keeps denormals:
    /// there, and only there (below 2⁻¹²⁶), the two differ by more than a summation order.
    @Test func portableKernelFollowsTheDefinitionOfVDPBF16PS() {
        /// `a · b` for one row `a` and a `[k, 32]` B whose every column is `b`, on `kernel`: column 0.
        func product(_ a: [Float], _ b: [Float], _ kernel: BFloat16Kernel) -> UInt32 {
            let wide = b.flatMap { Array(repeating: $0, count: 32) }
            var c = [Float](repeating: 0, count: 32)
            a.withUnsafeBufferPointer { a in
                wide.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { c in
                        GEMM.multiplyBF16(
                            transposeA: false, transposeB: false, m: 1, n: 32, k: a.count, a: a.baseAddress!,
                            lda: a.count, b: b.baseAddress!, ldb: 32, c: c.baseAddress!, ldc: 32, threads: 1,
                            kernel: kernel)
                    }
                }
            }
            return c[0].bitPattern
        }
        // Pair 1 adds 2⁻²⁴ twice to 1: each addition is a tie that rounds to 1 (even), where one sum of the
        // pair's two products first (2⁻²³) would reach 1 + 2⁻²³.
        let tie = [1, 0, 0x1p-12, 0x1p-12] as [Float]
        #expect(product(tie, tie, .portable) == Float(1).bitPattern)
        // 2⁻¹³⁰ is a bf16 denormal: read as zero. 2⁻¹⁰⁰ · 2⁻³⁰ is a denormal sum: flushed to zero.
        let tiny = Float(0x1p-130)
        #expect(product([tiny], [1], .portable) == Float(0).bitPattern)
        #expect(product([0x1p-100], [0x1p-30], .portable) == Float(0).bitPattern)
        #expect(product([tiny], [1], .emulated) == tiny.bitPattern)
        #expect(product([0x1p-100], [0x1p-30], .emulated) == tiny.bitPattern)
    }

    /// `matmul` in ``Precision/bf16`` takes the bf16 path, and the precision reaches the worker threads of a
    /// product split over them; fp32 around it is untouched.
    @Test func precisionReachesEveryThreadOfAProduct() {
        let (m, n, k) = (256, 64, 256)
        let a = FiniteDifferences.randomTensor([m, k], seed: 7)
        let b = FiniteDifferences.randomTensor([k, n], seed: 8)
        let roundedA = Tensor(shape: [m, k], scalars: a.scalars.map(BFloat16.rounded))
        let roundedB = Tensor(shape: [k, n], scalars: b.scalars.map(BFloat16.rounded))
        let reference = matmul(roundedA, roundedB)
        let bf16 = withPrecision(.bf16) { matmul(a, b) }
        let fp32 = matmul(a, b)
        for index in 0..<(m * n) {
            let row = index / n
            let magnitude = (0..<k).reduce(0.0) {
                $0 + abs(Double(roundedA.scalars[row * k + $1]) * Double(roundedB.scalars[$1 * n + index % n]))
            }
            let bound = BFloat16Bounds.reordering(k: k, magnitude: magnitude)
            #expect(abs(Double(bf16.scalars[index]) - Double(reference.scalars[index])) <= bound)
        }
        let fp32Differs = (0..<(m * n)).contains { abs(fp32.scalars[$0] - reference.scalars[$0]) > 1e-2 }
        #expect(fp32Differs, "the fp32 product after the bf16 one matches bf16 operands")
    }
}
