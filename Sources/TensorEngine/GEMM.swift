// The one matrix-multiplication entry point of the engine: row-major sgemm on OpenBLAS or on CGEMMKernels'
// packed kernels, split over threads, plus shared pre-packed operands and `matmul` on tensors.

internal import CGEMMKernels
internal import COpenBLAS
import Synchronization

/// Single-precision matrix multiplication on OpenBLAS (`cblas_sgemm`), row-major.
///
/// Every convolution, linear layer and their gradients end in one of these calls; the benchmark
/// measures the machine's GEMM peak through the same entry point.
///
/// Kernels: products with a row-major `A` whose `op(B)` is at most 1024 × 1024 with a multiple of 16
/// (AVX2) or 32 (AVX-512) columns — every 1×1 convolution's forward and input gradient, the stem,
/// the Winograd GEMMs — run on the register-blocked kernels of `CGEMMKernels` when they match the
/// instruction set of the OpenBLAS kernels in use (``packedKernel``): they pack only `op(B)` and
/// stream `A`'s rows, where OpenBLAS also copies all of `A` into its panels. Measured on ghostnet101's
/// 1×1 shapes (one thread, same process): 1.06–2.0× OpenBLAS's rate with the Haswell kernels and
/// 1.05–1.9× with the Cooperlake ones, the gain largest on layer1's 50176-row products; within
/// ±3 % of OpenBLAS on the 2048-deep products, which stay on OpenBLAS.
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

    /// The threads one product may use: the process's count, or the count of the work that runs
    /// inside ``withThreadCount(_:_:)`` (a pass running beside others).
    package static var threadCount: Int {
        get { threadLimit ?? threads.count.load(ordering: .relaxed) }
        set {
            ensure(newValue >= 1, "GEMM thread count must be at least 1, got \(newValue)")
            threads.count.store(newValue, ordering: .relaxed)
        }
    }

    /// The thread count of the work started from this task, when it runs with fewer than the process's.
    @TaskLocal private static var threadLimit: Int?

    /// Runs `body` with every kernel it starts (matrix products, convolutions, the banded row kernels)
    /// on at most `count` threads, whatever ``threadCount`` the process has: for work that runs beside
    /// other work, each on its own cores.
    package static func withThreadCount<Value, Failure: Error>(
        _ count: Int, _ body: () throws(Failure) -> Value
    ) throws(Failure) -> Value {
        ensure(count >= 1, "GEMM thread count must be at least 1, got \(count)")
        let result = $threadLimit.withValue(count) { Result { () throws(Failure) in try body() } }
        return try result.get()
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
    ///   - kernel: The fp32 code to run (default: chosen by shape, see the type's overview, and bf16
    ///     products in ``Precision/bf16``); a forced ``Kernel/packed(_:)`` needs a row-major `A`,
    ///     `alpha = 1`, `beta` 0 or 1 and whole panels.
    package static func multiply(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
        threads: Int? = nil,
        kernel: Kernel? = nil
    ) {
        guard m > 0, n > 0 else { return }
        ensure(
            m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max),
            "sgemm: dimensions m \(m), n \(n), k \(k) exceed OpenBLAS's 32-bit indices")
        let (lda, ldb, ldc) = (lda ?? (transposeA ? m : k), ldb ?? (transposeB ? k : n), ldc ?? n)
        if kernel == nil, Precision.current == .bf16 {
            return multiplyBF16(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, threads: threads)
        }
        if kernel == nil, Precision.current == .reference {
            return multiplyReference(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, threads: threads)
        }
        let packs = !transposeA && alpha == 1 && (beta == 0 || beta == 1)
        if packs, case .packed(let instructions) = kernel ?? sharedOperandKernel(k: k, n: n),
            n % instructions.panelWidth == 0
        {
            return withPackedOperands(
                instructions, count: 1, transposeB: transposeB, k: k, n: n, b: b, matrixStride: 0, ldb: ldb
            ) { packed in
                multiply(m: m, a: a, lda: lda, b: packed[0], beta: beta, c: c, ldc: ldc, threads: threads)
            }
        }
        ensure(
            kernel.map { $0 == .openBLAS } ?? true,
            "sgemm: the packed kernels cannot compute this product (m \(m), n \(n), k \(k))")
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
            addPartialSums(partials.baseAddress!, parts: parts - 1, rows: m, columns: n, into: c, totalStride: ldc)
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

extension GEMM {
    /// The code that computes a product.
    package enum Kernel: Sendable, Equatable {
        case openBLAS
        /// The register-blocked kernels of `CGEMMKernels` for one instruction set.
        case packed(PackedInstructions)

        /// The packed kernels' name, or `none`, for reports.
        package var packedLabel: String {
            switch self {
            case .openBLAS: "none"
            case .packed(let instructions): instructions.label
            }
        }
    }

    /// The instruction sets of the packed kernels.
    package enum PackedInstructions: Sendable, Equatable, CaseIterable {
        /// AVX2 + FMA, panels of 16 columns.
        case avx2
        /// AVX-512F, panels of 32 columns.
        case avx512

        /// Columns per packed panel: `n` must be a multiple of it.
        package var panelWidth: Int { Int(CGEMMKernels_panelWidth(level)) }

        /// Whether this CPU (and its operating system) can run the kernels.
        package var isSupported: Bool {
            switch self {
            case .avx2: CPUFeatures.current.hasUsableAVX2
            case .avx512: CPUFeatures.current.hasUsableAVX512
            }
        }

        /// A short name for reports, e.g. `AVX2 6×16`.
        package var label: String {
            switch self {
            case .avx2: "AVX2 6×16"
            case .avx512: "AVX-512 6×32"
            }
        }

        var level: CGEMMKernels_Level {
            switch self {
            case .avx2: CGEMMKernels_avx2
            case .avx512: CGEMMKernels_avx512
            }
        }
    }

    /// The packed kernels of the same instruction set as the OpenBLAS kernels that loaded (so the
    /// benchmark's sgemm peak and the network run on the same units), or ``Kernel/openBLAS`` for
    /// older kernel families (Prescott, Sandy Bridge, …).
    package static let packedKernel: Kernel = {
        let instructions: PackedInstructions? =
            switch OpenBLASRuntime.kernelName.lowercased() {
            case "skylakex", "cooperlake", "sapphirerapids": .avx512
            case "haswell", "zen": .avx2
            default: nil
            }
        guard let instructions, instructions.isSupported else { return .openBLAS }
        return .packed(instructions)
    }()
}

extension GEMM {
    /// The `op(B)` of products `A · op(B)` that share it (a convolution's weight, for each block of
    /// its rows), prepared once: packed into the packed kernels' panels when they compute these
    /// products, otherwise left as it is for OpenBLAS, or in bf16 a converted weight
    /// (``ConvertedWeights``). Valid only inside the closure that made it.
    package struct SharedOperand {
        /// Rows (the products' shared dimension) and columns of `op(B)`.
        let k: Int, n: Int
        let form: Form
        /// Whether `A` is rounded to bf16 before the fp32 product (the emulated bf16 path; `B` was rounded
        /// when it was prepared).
        var roundsA = false

        enum Form {
            case packed(PackedInstructions, UnsafePointer<Float>)
            case plain(UnsafePointer<Float>, ldb: Int, transposed: Bool)
            /// Panels of bf16 pairs for the native (or portable) bf16 kernel.
            case bf16Pairs(UnsafePointer<UInt32>, native: Bool)
        }
    }

    /// The kernel for products with a `k × n` shared `op(B)`: the packed kernels up to 1024 × 1024.
    private static func sharedOperandKernel(k: Int, n: Int) -> Kernel {
        n <= 1024 && k <= 1024 ? packedKernel : .openBLAS
    }

    /// Calls `body` with `count` matrices `op(B)` of the same shape, `matrixStride` floats apart (`B` stored
    /// `[n, k]` when `transposeB`, else `[k, n]`, row stride `ldb`), prepared for fp32 products
    /// ``multiply(m:a:lda:b:beta:c:ldc:threads:)``, and for ``Precision/reference`` ones, which take `op(B)`
    /// unpacked. Weights' products reach it through ``withWeightOperand(_:transposeB:k:n:_:)``.
    static func withFP32SharedOperands<Result>(
        count: Int, transposeB: Bool, k: Int, n: Int, b: UnsafePointer<Float>, matrixStride: Int, ldb: Int,
        _ body: ([SharedOperand]) throws -> Result
    ) rethrows -> Result {
        if Precision.current != .reference, case .packed(let instructions) = sharedOperandKernel(k: k, n: n),
            n % instructions.panelWidth == 0
        {
            return try withPackedOperands(
                instructions, count: count, transposeB: transposeB, k: k, n: n, b: b, matrixStride: matrixStride,
                ldb: ldb, body)
        }
        return try body(
            (0..<count).map {
                SharedOperand(k: k, n: n, form: .plain(b + $0 * matrixStride, ldb: ldb, transposed: transposeB))
            })
    }

    private static func withPackedOperands<Result>(
        _ instructions: PackedInstructions, count: Int, transposeB: Bool, k: Int, n: Int, b: UnsafePointer<Float>,
        matrixStride: Int, ldb: Int, _ body: ([SharedOperand]) throws -> Result
    ) rethrows -> Result {
        try Workspace.withScratch(count: max(count * k * n, 1)) { panels in
            let operands = (0..<count).map { index in
                let target = panels.baseAddress! + index * k * n
                CGEMMKernels_pack(instructions.level, b + index * matrixStride, ldb, transposeB ? 1 : 0, k, n, target)
                return SharedOperand(k: k, n: n, form: .packed(instructions, target))
            }
            return try body(operands)
        }
    }

    /// `C = A · op(B) + beta · C` for a shared `op(B)`; `A` is `[m, k]` (row stride `lda`), `C` is
    /// `[m, n]` (row stride `ldc`), `beta` 0 or 1. The packed kernels split `m` into bands of whole
    /// 6-row tiles on up to `threads` threads.
    package static func multiply(
        m: Int, a: UnsafePointer<Float>, lda: Int? = nil, b: SharedOperand, beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int? = nil, threads: Int? = nil
    ) {
        let (k, n) = (b.k, b.n)
        let (lda, ldc) = (lda ?? k, ldc ?? n)
        if Precision.current == .reference {
            return multiplyReference(m: m, a: a, lda: lda, b: b, beta: beta, c: c, ldc: ldc, threads: threads)
        }
        if b.roundsA {
            return multiplyRoundingA(m: m, a: a, lda: lda, b: b, beta: beta, c: c, ldc: ldc, threads: threads)
        }
        switch b.form {
        case .plain(let values, let ldb, let transposed):
            multiply(
                transposeB: transposed, m: m, n: n, k: k, a: a, lda: lda, b: values, ldb: ldb, beta: beta, c: c,
                ldc: ldc, threads: threads, kernel: .openBLAS)
        case .bf16Pairs(let panels, let native):
            guard m > 0, n > 0 else { return }
            multiplyPairs(
                transposeA: false, m: m, n: n, k: k, a: a, lda: lda, panels: panels, beta: beta, c: c, ldc: ldc,
                threads: threads, native: native)
        case .packed(let instructions, let panels):
            guard m > 0, n > 0 else { return }
            ensure(beta == 0 || beta == 1, "sgemm: the packed kernels add to C or overwrite it, not beta \(beta)")
            let tiles = (m + 5) / 6
            let parts = m * n * max(k, 1) >= minimumParallelWork ? max(1, min(threads ?? threadCount, tiles)) : 1
            inParallel(parts) { part in
                let ownTiles = share(part, of: parts, in: tiles)
                let rows = (ownTiles.lowerBound * 6)..<min(m, ownTiles.upperBound * 6)
                CGEMMKernels_multiply(
                    instructions.level, rows.count, n, k, a + rows.lowerBound * lda, lda, panels,
                    c + rows.lowerBound * ldc, ldc, beta == 1 ? 1 : 0)
            }
        }
    }
}

/// The matrix product `op(a) · op(b)` of two rank-2 tensors, computed by OpenBLAS.
///
/// - Parameters:
///   - a: `[m, k]`, or `[k, m]` when `transposeA` is true.
///   - b: `[k, n]`, or `[n, k]` when `transposeB` is true.
/// - Returns: `[m, n]`.
/// - Precondition: both tensors have rank 2 and their shared dimensions agree.
package func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    ensure(
        a.shape.count == 2 && b.shape.count == 2,
        "matmul: operands must be matrices, got \(a.shape) and \(b.shape)")
    let (m, k) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let (bk, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    ensure(
        k == bk,
        "matmul: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "") "
            + "has inner dimensions \(k) and \(bk)")
    return Tensor(shape: [m, n]) { product in
        guard k > 0 else {
            product.initialize(repeating: 0)
            return
        }
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                GEMM.multiply(
                    transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                    a: a.baseAddress!, b: b.baseAddress!, c: product.baseAddress!)
            }
        }
    }
}
