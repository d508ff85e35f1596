// The reference precision (fp32 operands, float64 sums, each output rounded once): every entry point of the
// engine's products — GEMM on each kernel's shapes, shared operands, matmul, the linear layer, convolutions and
// their gradients on every algorithm — within one fp32 rounding of a float64 sum on data whose fp32 sums are
// far off, and an operand packed for fp32 refused rather than multiplied in fp32.

import TensorEngine
import Testing
import _TestSupport

/// Products whose terms are large and cancel: each term carries an offset of 64 (or alternates its sign),
/// so the exact sum is about 64 times smaller than the running sums fp32 rounds.
enum Cancelling {
    /// `64 + z` per element, `z` standard normal.
    static func offset(_ shape: [Int], seed: UInt64) -> Tensor {
        let noise = FiniteDifferences.randomTensor(shape, seed: seed).scalars
        return Tensor(shape: shape, scalars: noise.map { 64 + $0 })
    }

    /// `(−1)^r · (64 + z)` for the elements of row `r` along the first axis.
    static func alternatingRows(_ shape: [Int], seed: UInt64) -> Tensor {
        let rowLength = shape.dropFirst().reduce(1, *)
        let values = offset(shape, seed: seed).scalars
        return Tensor(shape: shape, scalars: values.indices.map { values[$0] * ($0 / rowLength % 2 == 0 ? 1 : -1) })
    }

    /// `[O, …, I]` with element `(o, t, i) = (−1)^(o+i) · v[o/2, t, i/2]`: rows pair up with opposite signs
    /// along both the first and the last axis (an odd count leaves the last one unpaired), so sums over either
    /// cancel.
    static func paired(_ shape: [Int], seed: UInt64) -> Tensor {
        let (rows, columns) = (shape[0], shape[shape.count - 1])
        let middle = shape.dropFirst().dropLast().reduce(1, *)
        let halfColumns = (columns + 1) / 2
        let v = FiniteDifferences.randomTensor([(rows + 1) / 2, middle, halfColumns], seed: seed).scalars
        return Tensor(shape: shape) { values in
            for index in values.indices {
                let (o, t, i) = (index / (middle * columns), index / columns % middle, index % columns)
                let value = v[((o / 2) * middle + t) * halfColumns + i / 2]
                values[index] = (o + i) % 2 == 0 ? value : -value
            }
        }
    }
}

@Suite struct Float64ReferenceTests {
    /// How far a reference output may lie from the float64 sum `exact` of `terms` products whose magnitudes sum
    /// to `magnitude`: one fp32 rounding (2⁻²⁴ of the value), plus the two float64 sums' own errors (dgemm's and
    /// the test's, each at most `(terms + 2) · 2⁻⁵³` of the magnitude).
    static func bound(exact: Double, magnitude: Double, terms: Int) -> Double {
        let float64 = 2 * Double(terms + 2) * 0x1p-53 * magnitude
        return 0x1p-24 * (abs(exact) + float64) + float64
    }

    /// The elements of `actual` farther than ``bound(exact:magnitude:terms:)`` from `exact`.
    static func outside(_ actual: [Float], _ exact: [Double], _ magnitude: [Double], terms: Int) -> [Int] {
        actual.indices.filter {
            abs(Double(actual[$0]) - exact[$0]) > bound(exact: exact[$0], magnitude: magnitude[$0], terms: terms)
        }
    }

    /// `reference` within one rounding of `exact` everywhere, and `fp32` (the same call in fp32) outside that
    /// bound somewhere: the data tells float64 sums from fp32 ones.
    static func expectReference(
        _ reference: [Float], fp32: [Float], _ exact: [Double], _ magnitude: [Double], terms: Int, _ what: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let misses = outside(reference, exact, magnitude, terms: terms)
        let examples = misses.prefix(3).map { "[\($0)] \(reference[$0]) vs \(exact[$0])" }
        #expect(
            misses.isEmpty, "\(what): \(misses.count) outputs beyond one fp32 rounding, e.g. \(examples)",
            sourceLocation: sourceLocation)
        #expect(
            !outside(fp32, exact, magnitude, terms: terms).isEmpty,
            "\(what): fp32 also within one rounding, so the data cannot tell float64 sums apart",
            sourceLocation: sourceLocation)
    }

    /// Rows-by-columns `values` transposed.
    static func transposed(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        (0..<(rows * columns)).map { values[($0 % rows) * columns + $0 / rows] }
    }

    /// The packed fp32 kernels' shapes (n a multiple of 32, k ≤ 1024), a k-split product (k ≥ 2·max(m, n)),
    /// and OpenBLAS's, each transpose, overwriting and accumulating with α ≠ 1.
    @Test(arguments: [(24, 64, 1000), (32, 32, 4096), (37, 45, 777)])
    func gemmSumsInFloat64(m: Int, n: Int, k: Int) {
        let opA = Cancelling.offset([m, k], seed: 1).scalars
        let opB = Cancelling.paired([k, n], seed: 2).scalars
        let initial = FiniteDifferences.randomTensor([m, n], seed: 3).scalars
        for (transposeA, transposeB, alpha, beta) in [
            (false, false, Float(1), Float(0)), (true, false, 1, 0), (false, true, 0.5, 1), (true, true, 1, 1),
        ] {
            let a = transposeA ? Self.transposed(opA, rows: m, columns: k) : opA
            let b = transposeB ? Self.transposed(opB, rows: k, columns: n) : opB
            func product(_ precision: Precision) -> [Float] {
                var c = initial
                withPrecision(precision) {
                    GEMM.multiply(
                        transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b,
                        beta: beta, c: &c)
                }
                return c
            }
            var exact = [Double](repeating: 0, count: m * n)
            var magnitude = exact
            for row in 0..<m {
                for column in 0..<n {
                    var (sum, size) = (Double(beta) * Double(initial[row * n + column]), 0.0)
                    size = abs(sum)
                    for index in 0..<k {
                        let term = Double(alpha) * Double(opA[row * k + index]) * Double(opB[index * n + column])
                        (sum, size) = (sum + term, size + abs(term))
                    }
                    (exact[row * n + column], magnitude[row * n + column]) = (sum, size)
                }
            }
            Self.expectReference(
                product(.reference), fp32: product(.fp32), exact, magnitude, terms: k + 1,
                "m \(m) n \(n) k \(k) tA \(transposeA) tB \(transposeB) α \(alpha) β \(beta)")
        }
    }

    /// A shared operand (a convolution's weight) and `matmul` take the reference path too.
    @Test func sharedOperandsAndMatmulSumInFloat64() {
        let (m, n, k) = (50, 64, 512)
        let a = Cancelling.offset([m, k], seed: 4)
        let weight = Cancelling.paired([n, k], seed: 5)
        func products(_ precision: Precision) -> (shared: [Float], matmul: [Float]) {
            withPrecision(precision) {
                var shared = [Float](repeating: 0, count: m * n)
                a.withUnsafeBufferPointer { a in
                    GEMM.withWeightOperand(weight, transposeB: true, k: k, n: n) { operand in
                        GEMM.multiply(m: m, a: a.baseAddress!, b: operand, c: &shared)
                    }
                }
                return (shared, matmul(a, weight, transposeB: true).scalars)
            }
        }
        var exact = [Double](repeating: 0, count: m * n)
        var magnitude = exact
        for index in exact.indices {
            let (row, column) = (index / n, index % n)
            for shared in 0..<k {
                let term = Double(a.scalars[row * k + shared]) * Double(weight.scalars[column * k + shared])
                exact[index] += term
                magnitude[index] += abs(term)
            }
        }
        let (reference, fp32) = (products(.reference), products(.fp32))
        Self.expectReference(reference.shared, fp32: fp32.shared, exact, magnitude, terms: k, "shared operand")
        Self.expectReference(reference.matmul, fp32: fp32.matmul, exact, magnitude, terms: k, "matmul")
    }

    /// The linear layer's forward pass (bias added in the same rounding) and both gradients.
    @Test func linearLayerSumsInFloat64() {
        let (rows, features, outputs) = (40, 64, 32)
        let input = Cancelling.offset([rows, features], seed: 6)
        let weight = Cancelling.paired([outputs, features], seed: 7)
        let bias = FiniteDifferences.randomTensor([outputs], seed: 8)
        let gradOutput = Cancelling.alternatingRows([rows, outputs], seed: 9)
        func run(_ precision: Precision) -> [[Float]] {
            withPrecision(precision) {
                let gradients = linearBackward(gradOutput: gradOutput, input: input, weight: weight)
                return [
                    linear(input, weight: weight, bias: bias).scalars, gradients.input.scalars,
                    gradients.weight.scalars,
                ]
            }
        }
        let (x, w, b, g) = (input.scalars, weight.scalars, bias.scalars, gradOutput.scalars)
        var sums = [rows * outputs, rows * features, outputs * features].map {
            (exact: [Double](repeating: 0, count: $0), magnitude: [Double](repeating: 0, count: $0))
        }
        for (row, output) in (0..<rows).flatMap({ row in (0..<outputs).map { (row, $0) } }) {
            let out = row * outputs + output
            sums[0].exact[out] = Double(b[output])
            sums[0].magnitude[out] = abs(Double(b[output]))
            for feature in 0..<features {
                let (xv, wv, gv) = (
                    Double(x[row * features + feature]), Double(w[output * features + feature]),
                    Double(g[out])
                )
                sums[0].exact[out] += xv * wv
                sums[0].magnitude[out] += abs(xv * wv)
                sums[1].exact[row * features + feature] += gv * wv
                sums[1].magnitude[row * features + feature] += abs(gv * wv)
                sums[2].exact[output * features + feature] += gv * xv
                sums[2].magnitude[output * features + feature] += abs(gv * xv)
            }
        }
        let (reference, fp32) = (run(.reference), run(.fp32))
        let products = [("forward", features + 1), ("input gradient", outputs), ("weight gradient", rows)]
        for (index, (what, terms)) in products.enumerated() {
            Self.expectReference(
                reference[index], fp32: fp32[index], sums[index].exact, sums[index].magnitude, terms: terms,
                "linear \(what)")
        }
    }

    /// Every convolution algorithm: 1×1 (one GEMM), 1×1/2, 3×3/2 and 7×7/2 (im2col), 3×3/1 (Winograd in fp32,
    /// here also forced to 4×4 tiles with small chunks on two threads): forward, both gradients, the fused and
    /// moment-gathering forward passes and the accumulated input gradient.
    @Test(arguments: [
        (1, 1, 0, false), (1, 2, 0, false), (3, 2, 1, false), (3, 1, 1, false), (3, 1, 1, true),
        (7, 2, 3, false),
    ])
    func convolutionsSumInFloat64(kernel: Int, stride: Int, padding: Int, forceWinogradAndChunks: Bool) {
        let geometry = Convolution2DGeometry(kernelSize: kernel, stride: stride, padding: padding)
        let limits =
            forceWinogradAndChunks
            ? ConvolutionLimits(workspaceFloats: 7 * kernel * kernel * 16, threads: 2, winogradTile: 4)
            : ConvolutionLimits()
        let channels = 16
        let input = Cancelling.offset([2, 10, 10, channels], seed: 10)
        let weightShape = geometry.weightShape(inputChannels: channels, outputChannels: channels)
        let weight = Cancelling.paired(weightShape, seed: 11)
        let extent = geometry.outputExtent(10)
        let gradOutput = Cancelling.alternatingRows([2 * extent * extent, channels], seed: 12)
            .reshaped(to: [2, extent, extent, channels])
        let earlier = FiniteDifferences.randomTensor(input.shape, seed: 13)
        let exact = ExactConvolution(input: input, weight: weight, gradOutput: gradOutput, geometry: geometry)
        func run(_ precision: Precision) -> [[Float]] {
            withPrecision(precision) {
                let gradients = conv2dBackward(
                    gradOutput: gradOutput, input: input, weight: weight, geometry: geometry,
                    computeInputGradient: true, limits: limits)
                var accumulated = earlier
                _ = conv2dBackward(
                    gradOutput: gradOutput, input: input, weight: weight, geometry: geometry,
                    accumulatingInputGradientInto: &accumulated)
                let ones = Tensor(shape: [channels], scalars: Array(repeating: 1, count: channels))
                return [
                    conv2d(input, weight: weight, geometry: geometry, limits: limits).scalars,
                    conv2dWithChannelMoments(input, weight: weight, geometry: geometry).output.scalars,
                    conv2d(
                        input, weight: weight, geometry: geometry, scale: ones, shift: Tensor(shape: [channels]),
                        clampAtZero: false
                    ).scalars,
                    gradients.input!.scalars, gradients.weight.scalars, accumulated.scalars,
                ]
            }
        }
        let (reference, fp32) = (run(.reference), run(.fp32))
        let label = "\(geometry)\(forceWinogradAndChunks ? " (Winograd 4×4 forced, chunked, 2 threads)" : "")"
        let (forwardTerms, inputTerms) = (kernel * kernel * channels, kernel * kernel * channels)
        for (index, what) in ["forward", "forward with moments", "fused forward"].enumerated() {
            Self.expectReference(
                reference[index], fp32: fp32[index], exact.output, exact.outputMagnitude, terms: forwardTerms,
                "\(label) \(what)")
        }
        Self.expectReference(
            reference[3], fp32: fp32[3], exact.gradInput, exact.gradInputMagnitude, terms: inputTerms,
            "\(label) input gradient")
        Self.expectReference(
            reference[4], fp32: fp32[4], exact.gradWeight, exact.gradWeightMagnitude, terms: 2 * extent * extent,
            "\(label) weight gradient")
        let before = earlier.scalars.map(Double.init)
        Self.expectReference(
            reference[5], fp32: fp32[5], zip(before, exact.gradInput).map { $0 + $1 },
            zip(before, exact.gradInputMagnitude).map { abs($0) + $1 }, terms: inputTerms + 1,
            "\(label) accumulated input gradient")
    }

    /// An operand prepared for other kernels (here bf16's: rounded, or packed as pairs) cannot be multiplied in
    /// the reference precision: the product stops with a message instead of summing in fp32.
    @Test func operandPreparedForOtherKernelsIsRefused() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let a = [Float](repeating: 1, count: 6 * 64)
            let weight = Tensor(shape: [64, 64], scalars: Array(repeating: 1, count: 64 * 64))
            var c = [Float](repeating: 0, count: 6 * 64)
            withPrecision(.bf16) {
                GEMM.withWeightOperand(weight, transposeB: false, k: 64, n: 64) { operand in
                    withPrecision(.reference) { GEMM.multiply(m: 6, a: a, b: operand, c: &c) }
                }
            }
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("cannot give a float64-accumulated product"), "\(message)")
    }
}
