//===----------------------------------------------------------------------===//
// ghostnet-d — TensorEngine
//===----------------------------------------------------------------------===//

internal import COpenBLAS

/// Single-precision matrix multiplication on OpenBLAS (`cblas_sgemm`), row-major.
///
/// Every convolution, linear layer and their gradients end in one of these calls; the benchmark
/// measures the machine's GEMM peak through the same entry point.
package enum GEMM {
    /// Computes `C = alpha · op(A) · op(B) + beta · C` on raw row-major buffers.
    ///
    /// - Parameters:
    ///   - transposeA: Whether `op(A) = Aᵀ`; `A` is stored `[m, k]` when false, `[k, m]` when true.
    ///   - transposeB: Whether `op(B) = Bᵀ`; `B` is stored `[k, n]` when false, `[n, k]` when true.
    ///   - m: Rows of `op(A)` and of `C`.
    ///   - n: Columns of `op(B)` and of `C`.
    ///   - k: The shared dimension.
    ///   - a: `A`'s first element; its row stride is `lda` (defaults to its stored row length).
    ///   - b: `B`'s first element; its row stride is `ldb`.
    ///   - c: `C` (`[m, n]`), row stride `ldc` (defaults to `n`).
    package static func multiply(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int? = nil
    ) {
        guard m > 0, n > 0 else { return }
        ensure(
            m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max),
            "sgemm: dimensions m \(m), n \(n), k \(k) exceed OpenBLAS's 32-bit indices")
        callSGEMM(
            transposeA, transposeB, m, n, k, alpha,
            a, lda ?? (transposeA ? m : k), b, ldb ?? (transposeB ? k : n),
            beta, c, ldc ?? n)
    }

    private static func callSGEMM(
        _ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(max(lda, 1)), b, blasint(max(ldb, 1)),
            beta, c, blasint(max(ldc, 1)))
    }
}

/// The matrix product `op(a) · op(b)` of two rank-2 tensors, computed by OpenBLAS.
///
/// - Parameters:
///   - a: `[m, k]`, or `[k, m]` when `transposeA` is true.
///   - b: `[k, n]`, or `[n, k]` when `transposeB` is true.
/// - Returns: `[m, n]`.
/// - Precondition: both tensors have rank 2 and their shared dimensions agree.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    ensure(
        a.shape.count == 2 && b.shape.count == 2,
        "matmul: operands must be matrices, got \(a.shape) and \(b.shape)")
    let (m, k) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let (bk, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    ensure(
        k == bk,
        "matmul: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "") has inner dimensions \(k) and \(bk)")
    return Tensor(shape: [m, n]) { product in
        guard k > 0 else { product.initialize(repeating: 0); return }
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                GEMM.multiply(
                    transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                    a: a.baseAddress!, b: b.baseAddress!, c: product.baseAddress!)
            }
        }
    }
}
