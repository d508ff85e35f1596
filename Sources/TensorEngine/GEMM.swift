//===----------------------------------------------------------------------===//
// ghostnet-d — TensorEngine
//===----------------------------------------------------------------------===//

internal import COpenBLAS
import Synchronization

/// Single-precision matrix multiplication on OpenBLAS (`cblas_sgemm`), row-major.
///
/// Every convolution, linear layer and their gradients end in one of these calls; the benchmark
/// measures the machine's GEMM peak through the same entry point.
///
/// Threads: OpenBLAS itself runs single-threaded, and a large product is split into ``threadCount``
/// bands of rows (or of columns, when `n > m`) computed at the same time, or along `k` when `k`
/// dominates. Measured on a 2-vCPU
/// EPYC, OpenBLAS's own threading of the network's thin shapes (`[50176, 256] · [256, 64]`,
/// `[3136, 1024] · [1024, 256]`) reached 50–80 % of the rate of two independent single-threaded
/// halves; square 2048³ products run at the same rate either way.
package enum GEMM {
    /// The products below this many multiply-accumulates run on one thread.
    package static let minimumParallelWork = 1 << 22

    private final class Threads: Sendable {
        let count: Atomic<Int>
        init() {
            // Take over OpenBLAS's default thread count, then keep OpenBLAS single-threaded.
            count = Atomic(max(1, Int(openblas_get_num_threads())))
            openblas_set_num_threads(1)
        }
    }

    private static let threads = Threads()

    /// The threads one product may use.
    package static var threadCount: Int {
        get { threads.count.load(ordering: .relaxed) }
        set {
            ensure(newValue >= 1, "GEMM thread count must be at least 1, got \(newValue)")
            threads.count.store(newValue, ordering: .relaxed)
        }
    }

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
    ///   - threads: The most threads to use (default ``threadCount``).
    package static func multiply(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
        threads: Int? = nil
    ) {
        guard m > 0, n > 0 else { return }
        ensure(
            m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max),
            "sgemm: dimensions m \(m), n \(n), k \(k) exceed OpenBLAS's 32-bit indices")
        let (lda, ldb, ldc) = (lda ?? (transposeA ? m : k), ldb ?? (transposeB ? k : n), ldc ?? n)
        let kParts = min(threads ?? threadCount, k / 64)
        if k >= 2 * max(m, n), m * n * k >= minimumParallelWork, kParts > 1 {
            return multiplySplittingK(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, parts: kParts)
        }
        let parts = min(threads ?? threadCount, max(m, n) / 32)
        guard parts > 1, m * n * max(k, 1) >= minimumParallelWork else {
            return callSGEMM(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        }
        // Bands of whole 16-row (or 16-column) tiles, so no band splits a micro-kernel tile.
        let splitRows = m >= n
        let extent = splitRows ? m : n
        let band = ((extent + parts - 1) / parts + 15) / 16 * 16
        inParallel(parts) { part in
            let first = part * band
            let count = min(band, extent - first)
            guard count > 0 else { return }
            if splitRows {
                // Rows `first..<first+count` of op(A) and of C.
                let bandA = a + (transposeA ? first : first * lda)
                callSGEMM(transposeA, transposeB, count, n, k, alpha, bandA, lda, b, ldb, beta, c + first * ldc, ldc)
            } else {
                // Columns `first..<first+count` of op(B) and of C.
                let bandB = b + (transposeB ? first * ldb : first)
                callSGEMM(transposeA, transposeB, m, count, k, alpha, a, lda, bandB, ldb, beta, c + first, ldc)
            }
        }
    }

    /// A product whose shared dimension dominates (a weight gradient summed over every pixel of
    /// the batch) split along `k`: each part multiplies its share of `k` into its own `[m, n]`
    /// partial product, and the partials are added to `C` in part order. Measured on ghostnet101's
    /// 1×1 weight gradients with two threads, this ran at 74–97 % of the sgemm peak where bands of
    /// the small `[m, n]` result ran at 58–89 %.
    private static func multiplySplittingK(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, parts: Int
    ) {
        Workspace.withScratch(count: (parts - 1) * m * n) { partials in
            inParallel(parts) { part in
                // Columns `shared` of op(A) and rows `shared` of op(B).
                let shared = share(part, of: parts, in: k)
                let partA = a + (transposeA ? shared.lowerBound * lda : shared.lowerBound)
                let partB = b + (transposeB ? shared.lowerBound : shared.lowerBound * ldb)
                if part == 0 {
                    callSGEMM(transposeA, transposeB, m, n, shared.count, alpha, partA, lda, partB, ldb, beta, c, ldc)
                } else {
                    let partial = partials.baseAddress! + (part - 1) * m * n
                    callSGEMM(transposeA, transposeB, m, n, shared.count, alpha, partA, lda, partB, ldb, 0, partial, n)
                }
            }
            for part in 1..<parts {
                let partial = partials.baseAddress! + (part - 1) * m * n
                for row in 0..<m {
                    let (destination, source) = (c + row * ldc, partial + row * n)
                    for column in 0..<n { destination[column] += source[column] }
                }
            }
        }
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
