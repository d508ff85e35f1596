// GEMM's bf16 products (``Precision/bf16``): both operands rounded to bfloat16, fp32 accumulation — on the
// AVX512-BF16 kernel with operands packed as bf16 pairs where the CPU has it and `op(B)` is whole 32-column
// panels, otherwise emulated (operands rounded but kept as floats, multiplied by the fp32 kernels). The
// conversions of `op(B)` that weights' products reuse are in GEMM+WeightOperands.swift.

internal import CGEMMKernels

extension GEMM {
    /// Columns per panel of the packed bf16 kernels: `n` must be a multiple of it.
    package static let bf16PanelWidth = 32

    /// `C = alpha · op(A) · op(B) + beta · C` with `op(A)` and `op(B)` rounded to bf16 (round to nearest
    /// even) and fp32 accumulation; the arguments are those of
    /// ``multiply(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:threads:kernel:)``.
    /// `kernel`: the emulated path, or the native/portable pair kernels where `alpha = 1`, `beta` is 0 or 1
    /// and `n` is whole panels (otherwise the product is emulated: the same numerics).
    package static func multiplyBF16(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int? = nil, kernel: BFloat16Kernel = .preferred
    ) {
        guard m > 0, n > 0 else { return }
        ensure(kernel.isSupported, "bf16 GEMM: this CPU cannot run the \(kernel.label) kernel")
        if kernel != .emulated, alpha == 1, beta == 0 || beta == 1, n % bf16PanelWidth == 0, k > 0 {
            return withBF16Panels(count: 1, transposeB: transposeB, k: k, n: n, b: b, matrixStride: 0, ldb: ldb) {
                multiplyPairs(
                    transposeA: transposeA, m: m, n: n, k: k, a: a, lda: lda, panels: $0[0], beta: beta, c: c,
                    ldc: ldc, threads: threads, native: kernel == .native)
            }
        }
        let (aRows, aColumns) = transposeA ? (k, m) : (m, k)
        let (bRows, bColumns) = transposeB ? (n, k) : (k, n)
        Workspace.withScratch(count: max(aRows * aColumns + bRows * bColumns, 1)) { scratch in
            let roundedA = scratch.baseAddress!
            let roundedB = roundedA + aRows * aColumns
            roundToBF16(rows: aRows, columns: aColumns, a, lda, into: roundedA)
            roundToBF16(rows: bRows, columns: bColumns, b, ldb, into: roundedB)
            withPrecision(.fp32) {
                multiply(
                    transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: roundedA,
                    lda: aColumns, b: roundedB, ldb: bColumns, beta: beta, c: c, ldc: ldc, threads: threads)
            }
        }
    }

    /// The emulated bf16 product with a shared operand: `A` rounded into scratch, then the fp32 product.
    static func multiplyRoundingA(
        m: Int, a: UnsafePointer<Float>, lda: Int, b: SharedOperand, beta: Float, c: UnsafeMutablePointer<Float>,
        ldc: Int, threads: Int?
    ) {
        guard m > 0, b.n > 0 else { return }
        Workspace.withScratch(count: max(m * b.k, 1)) { scratch in
            roundToBF16(rows: m, columns: b.k, a, lda, into: scratch.baseAddress!)
            multiply(
                m: m, a: scratch.baseAddress!, lda: b.k, b: SharedOperand(k: b.k, n: b.n, form: b.form), beta: beta,
                c: c, ldc: ldc, threads: threads)
        }
    }

    /// `count` floats of `source` rounded to bf16 into `target`.
    static func roundToBF16(count: Int, _ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>) {
        inFlatBands(count: count) { elements in
            CGEMMKernels_roundToBF16(
                1, elements.count, source + elements.lowerBound, 0, target + elements.lowerBound, 0)
        }
    }

    /// Rows 0..<rows of `source` (row stride `lds`) rounded to bf16 into the dense `target` (`columns` per row).
    private static func roundToBF16(
        rows: Int, columns: Int, _ source: UnsafePointer<Float>, _ lds: Int, into target: UnsafeMutablePointer<Float>
    ) {
        inRowBands(rows: rows, rowLength: columns) { band in
            CGEMMKernels_roundToBF16(
                band.count, columns, source + band.lowerBound * lds, lds, target + band.lowerBound * columns, columns)
        }
    }

    /// Calls `body` with `count` matrices `op(B)` (`matrixStride` floats apart) packed as panels of bf16 pairs.
    private static func withBF16Panels<Result>(
        count: Int, transposeB: Bool, k: Int, n: Int, b: UnsafePointer<Float>, matrixStride: Int, ldb: Int,
        _ body: ([UnsafePointer<UInt32>]) throws -> Result
    ) rethrows -> Result {
        let words = bf16PanelWords(k: k, n: n)
        return try withWordScratch(count: count * words) { panels in
            packBF16(
                count: count, transposeB: transposeB, k: k, n: n, b: b, matrixStride: matrixStride, ldb: ldb,
                into: panels)
            return try body((0..<count).map { UnsafePointer(panels + $0 * words) })
        }
    }

    /// The 32-bit words of one `k × n` `op(B)` packed as panels of bf16 pairs.
    static func bf16PanelWords(k: Int, n: Int) -> Int { CGEMMKernels_bf16Pairs(k) * n }

    /// Packs `count` matrices `op(B)` (`matrixStride` floats apart) as panels of bf16 pairs, one after another
    /// (``bf16PanelWords(k:n:)`` words each), on up to ``threadCount`` threads.
    static func packBF16(
        count: Int, transposeB: Bool, k: Int, n: Int, b: UnsafePointer<Float>, matrixStride: Int, ldb: Int,
        into panels: UnsafeMutablePointer<UInt32>
    ) {
        let words = bf16PanelWords(k: k, n: n)
        inRowBands(rows: count, rowLength: k * n) { matrices in
            for index in matrices {
                CGEMMKernels_packBF16(b + index * matrixStride, ldb, transposeB ? 1 : 0, k, n, panels + index * words)
            }
        }
    }

    /// `C = op(A) · B + beta · C` on the pair kernels (`beta` 0 or 1): each thread converts blocks of its
    /// own rows of `op(A)` to bf16 pairs and multiplies them by every panel.
    static func multiplyPairs(
        transposeA: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, panels: UnsafePointer<UInt32>,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int?, native: Bool
    ) {
        ensure(beta == 0 || beta == 1, "bf16 GEMM: the pair kernels add to C or overwrite it, not beta \(beta)")
        let pairs = CGEMMKernels_bf16Pairs(k)
        let tiles = (m + 5) / 6
        let parts = m * n * max(k, 1) >= minimumParallelWork ? max(1, min(threads ?? threadCount, tiles)) : 1
        // 96 rows per block, as the fp32 kernels: the block's pairs stay in L2 while every panel passes.
        let blockRows = 96
        inParallel(parts) { part in
            let ownTiles = share(part, of: parts, in: tiles)
            let rows = (ownTiles.lowerBound * 6)..<min(m, ownTiles.upperBound * 6)
            guard !rows.isEmpty else { return }
            withWordScratch(count: blockRows * pairs) { converted in
                for first in stride(from: rows.lowerBound, to: rows.upperBound, by: blockRows) {
                    let count = min(blockRows, rows.upperBound - first)
                    CGEMMKernels_convertBF16(
                        a + (transposeA ? first : first * lda), lda, transposeA ? 1 : 0, count, k, converted)
                    CGEMMKernels_multiplyBF16(
                        count, n, pairs, converted, panels, c + first * ldc, ldc, beta == 1 ? 1 : 0, native ? 1 : 0)
                }
            }
        }
    }

    /// Scratch of `count` 32-bit words (bf16 pairs), borrowed from ``Workspace`` (floats have their size).
    private static func withWordScratch<Result>(
        count: Int, _ body: (UnsafeMutablePointer<UInt32>) throws -> Result
    ) rethrows -> Result {
        try Workspace.withScratch(count: max(count, 1)) { scratch in
            try scratch.baseAddress!.withMemoryRebound(to: UInt32.self, capacity: max(count, 1), body)
        }
    }
}
