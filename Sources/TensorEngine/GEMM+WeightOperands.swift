// Products whose `op(B)` is a weight (a convolution's or linear layer's, or Winograd's transformed filters):
// in fp32 prepared per call as any shared operand; in bf16 converted once per version of the weight and
// taken from ``ConvertedWeights`` by every later product until the weight is written.

extension GEMM {
    /// How the matrices a product multiplies by derive from a weight tensor (part of a converted form's key).
    package enum WeightDerivation: Hashable, Sendable {
        /// The weight's own elements.
        case elements
        /// Winograd's transformed filters for `tile`×`tile` output tiles, of the rotated filters (the input
        /// gradient's) when `flipped`.
        case winograd(tile: Int, flipped: Bool)
    }

    /// `C = A · op(W) + beta · C` for a weight `W` whose elements are `op(W)`'s `[k, n]`, or `[n, k]` when
    /// `transposeB`; the other arguments as in GEMM's raw-buffer `multiply`. In bf16 `W`'s converted form
    /// comes from ``ConvertedWeights``, with the numerics of the uncached `multiplyBF16` on the same buffers.
    package static func multiply(
        m: Int, a: UnsafePointer<Float>, lda: Int? = nil, weight: Tensor, transposeB: Bool, k: Int, n: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil, threads: Int? = nil
    ) {
        guard Precision.current == .bf16 else {
            return weight.withUnsafeBufferPointer { weight in
                multiply(
                    transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: weight.baseAddress!, beta: beta,
                    c: c, ldc: ldc, threads: threads)
            }
        }
        withWeightOperand(weight, transposeB: transposeB, k: k, n: n) { weight in
            multiply(m: m, a: a, lda: lda, b: weight, beta: beta, c: c, ldc: ldc, threads: threads)
        }
    }

    /// Calls `body` with the weight's elements as `op(W)` (`[k, n]`, or `[n, k]` when `transposeB`) prepared
    /// for any number of products ``multiply(m:a:lda:b:beta:c:ldc:threads:)``: packed for this call in fp32,
    /// the converted form of this version of `weight` in bf16.
    package static func withWeightOperand<Result>(
        _ weight: Tensor, transposeB: Bool, k: Int, n: Int, _ body: (SharedOperand) -> Result
    ) -> Result {
        ensure(k * n == weight.count, "GEMM: a \(k) × \(n) operand cannot be the weight \(weight.shape)")
        return withWeightOperands(
            weight, derivation: .elements, count: 1, transposeB: transposeB, k: k, n: n, matrixStride: 0, derive: nil
        ) { body($0[0]) }
    }

    /// ``withWeightOperand(_:transposeB:k:n:_:)`` for `count` dense `op(W)` matrices `matrixStride` floats
    /// apart that `derive(weight, target)` computes from the weight's elements (Winograd's transformed
    /// filters), or the elements themselves when `derive` is nil. In bf16 a conversion also skips `derive`.
    static func withWeightOperands<Result>(
        _ weight: Tensor, derivation: WeightDerivation, count: Int, transposeB: Bool, k: Int, n: Int,
        matrixStride: Int, derive: ((UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void)?,
        _ body: ([SharedOperand]) -> Result
    ) -> Result {
        let ldb = transposeB ? k : n
        let derivedCount = derive == nil ? weight.count : count * matrixStride
        /// Calls `use` with the derived matrices.
        func withDerived<Value>(_ use: (UnsafePointer<Float>) -> Value) -> Value {
            weight.withUnsafeBufferPointer { elements in
                guard let derive else { return use(elements.baseAddress!) }
                return Workspace.withScratch(count: derivedCount) { scratch in
                    derive(elements.baseAddress!, scratch.baseAddress!)
                    return use(scratch.baseAddress!)
                }
            }
        }
        guard Precision.current == .bf16 else {
            return withDerived { matrices in
                withFP32SharedOperands(
                    count: count, transposeB: transposeB, k: k, n: n, b: matrices, matrixStride: matrixStride,
                    ldb: ldb, body)
            }
        }
        let kernel = BFloat16Kernel.preferred
        let (key, bytes) = bf16Form(
            derivation: derivation, count: count, transposeB: transposeB, k: k, n: n, derivedCount: derivedCount)
        if key.panels != nil {
            let words = bf16PanelWords(k: k, n: n)
            let form = ConvertedWeights.form(of: weight, key, bytes: bytes) { form in
                withDerived { matrices in
                    packBF16(
                        count: count, transposeB: transposeB, k: k, n: n, b: matrices, matrixStride: matrixStride,
                        ldb: ldb, into: form.words)
                }
            }
            // The form outlives the products even if the weight is written (and the form dropped) meanwhile.
            defer { withExtendedLifetime(form) {} }
            return body(
                (0..<count).map { index in
                    SharedOperand(k: k, n: n, form: .bf16Pairs(form.words + index * words, native: kernel == .native))
                })
        }
        let form = ConvertedWeights.form(of: weight, key, bytes: bytes) { form in
            withDerived { matrices in roundToBF16(count: derivedCount, matrices, into: form.floats) }
        }
        defer { withExtendedLifetime(form) {} }
        return withFP32SharedOperands(
            count: count, transposeB: transposeB, k: k, n: n, b: form.floats, matrixStride: matrixStride, ldb: ldb
        ) { operands in
            body(operands.map { SharedOperand(k: $0.k, n: $0.n, form: $0.form, roundsA: true) })
        }
    }

    /// The converted form of `count` `op(W)` matrices derived from a weight (`derivedCount` floats) that bf16
    /// products use on this CPU, and its bytes: bf16 pair panels where the pair kernels compute the product
    /// (``BFloat16Kernel/preferred`` not emulated, `n` whole panels), otherwise the derived matrices rounded to
    /// bf16 and kept as floats, which every `op(W)` shape of the same derivation reads.
    static func bf16Form(
        derivation: WeightDerivation, count: Int, transposeB: Bool, k: Int, n: Int, derivedCount: Int
    ) -> (key: ConvertedWeights.Key, bytes: Int) {
        if BFloat16Kernel.preferred != .emulated, n % bf16PanelWidth == 0, k > 0 {
            let panels = ConvertedWeights.Key.Panels(transposeB: transposeB, k: k, n: n, count: count)
            let bytes = count * bf16PanelWords(k: k, n: n) * 4
            return (ConvertedWeights.Key(derivation: derivation, panels: panels), bytes)
        }
        return (ConvertedWeights.Key(derivation: derivation, panels: nil), derivedCount * 4)
    }
}
