// GEMM's reference products (``Precision/reference``): fp32 operands widened exactly to float64, multiplied and
// summed by OpenBLAS's dgemm, and each output rounded once to fp32 — the yardstick fp32 and bf16 are measured
// against. Also the float64 product itself, for the reference convolution's gradients.

internal import COpenBLAS

extension GEMM {
    /// `C = alpha · op(A) · op(B) + beta · C` with every output summed in float64 and rounded once to fp32;
    /// the arguments are those of
    /// ``multiply(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:threads:kernel:)``.
    ///
    /// Widening a float to a double is exact, and dgemm's own rounding is at most `k · 2⁻⁵³` of `Σ|a·b|`
    /// (below 10⁻¹² for the network's longest reductions), so each output lies within one fp32 rounding
    /// (2⁻²⁴ of its value) of the exact sum, however long the reduction and however much it cancels.
    static func multiplyReference(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int?
    ) {
        guard m > 0, n > 0 else { return }
        let (aRows, aColumns) = transposeA ? (k, m) : (m, k)
        let (bRows, bColumns) = transposeB ? (n, k) : (k, n)
        let wideA = widened(rows: aRows, columns: aColumns, a, lda)
        let wideB = widened(rows: bRows, columns: bColumns, b, ldb)
        // β = 0 must not read C, which may be uninitialised.
        var wideC = beta == 0 ? [Double](repeating: 0, count: m * n) : widened(rows: m, columns: n, c, ldc)
        wideA.withUnsafeBufferPointer { wideA in
            wideB.withUnsafeBufferPointer { wideB in
                wideC.withUnsafeMutableBufferPointer { wideC in
                    multiplyFloat64(
                        transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: Double(alpha),
                        a: wideA.baseAddress!, lda: aColumns, b: wideB.baseAddress!, ldb: bColumns,
                        beta: Double(beta), c: wideC.baseAddress!, ldc: n, threads: threads)
                }
            }
        }
        narrow(wideC, rows: m, columns: n, into: c, ldc)
    }

    /// The reference product with a shared operand (prepared unpacked in ``Precision/reference``).
    static func multiplyReference(
        m: Int, a: UnsafePointer<Float>, lda: Int, b: SharedOperand, beta: Float, c: UnsafeMutablePointer<Float>,
        ldc: Int, threads: Int?
    ) {
        guard case .plain(let values, let ldb, let transposed) = b.form, !b.roundsA else {
            fatalError(
                "reference GEMM: a shared operand prepared for the fp32 or bf16 kernels cannot give a "
                    + "float64-accumulated product; prepare it inside withPrecision(.reference)")
        }
        multiplyReference(
            transposeA: false, transposeB: transposed, m: m, n: b.n, k: b.k, alpha: 1, a: a, lda: lda, b: values,
            ldb: ldb, beta: beta, c: c, ldc: ldc, threads: threads)
    }

    /// `C = alpha · op(A) · op(B) + beta · C` on row-major float64 buffers (dgemm), its rows split into bands
    /// on up to `threads` threads: each output is still one dgemm's sum, so the split changes no result.
    static func multiplyFloat64(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double,
        c: UnsafeMutablePointer<Double>, ldc: Int, threads: Int? = nil
    ) {
        guard m > 0, n > 0 else { return }
        ensure(
            m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max),
            "dgemm: dimensions m \(m), n \(n), k \(k) exceed OpenBLAS's 32-bit indices")
        let parts = m * n * max(k, 1) >= minimumParallelWork ? max(1, min(threads ?? threadCount, m)) : 1
        inParallel(parts) { part in
            let rows = share(part, of: parts, in: m)
            guard !rows.isEmpty else { return }
            cblas_dgemm(
                CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                blasint(rows.count), blasint(n), blasint(k), alpha,
                a + (transposeA ? rows.lowerBound : rows.lowerBound * lda), blasint(max(lda, 1)), b,
                blasint(max(ldb, 1)), beta, c + rows.lowerBound * ldc, blasint(max(ldc, 1)))
        }
    }

    /// Rows 0..<rows of `source` (row stride `lds`) as dense doubles (exact).
    static func widened(rows: Int, columns: Int, _ source: UnsafePointer<Float>, _ lds: Int) -> [Double] {
        [Double](unsafeUninitializedCapacity: rows * columns) { target, count in
            for row in 0..<rows {
                for column in 0..<columns { target[row * columns + column] = Double(source[row * lds + column]) }
            }
            count = rows * columns
        }
    }

    /// The dense doubles `source` (`columns` per row) rounded once each to the rows of `target` (stride `ldt`).
    static func narrow(
        _ source: [Double], rows: Int, columns: Int, into target: UnsafeMutablePointer<Float>, _ ldt: Int
    ) {
        for row in 0..<rows {
            for column in 0..<columns { target[row * ldt + column] = Float(source[row * columns + column]) }
        }
    }
}
