// The cache of bf16-converted weights (ConvertedWeights): cached products equal uncached ones bit for bit, a
// weight written by an SGD step (or a copy-on-write copy) is converted again before its next product, and one
// training step converts each weight once per form however many micro-batches and evaluation batches it runs.

import TensorEngine
import Testing
import _TestSupport

@Suite struct BFloat16WeightCacheTests {
    /// The geometries of every convolution path: 1×1 (one GEMM), 1×1/2 and 3×3/2 and 7×7/2 (im2col), 3×3/1
    /// (Winograd F(2×2, 3×3)).
    static let geometries = [(1, 1, 0), (1, 2, 0), (3, 1, 1), (3, 2, 1), (7, 2, 3)]

    /// The bits of each element, for comparisons that must be exact.
    func bits(_ tensor: Tensor) -> [UInt32] { tensor.scalars.map(\.bitPattern) }

    /// One bf16 training pass: the output, the input gradient and the weight gradient.
    func pass(_ input: Tensor, _ weight: Tensor, _ gradOutput: Tensor, _ geometry: Convolution2DGeometry)
        -> [[UInt32]]
    {
        withPrecision(.bf16) {
            let output = conv2d(input, weight: weight, geometry: geometry)
            let gradients = conv2dBackward(gradOutput: gradOutput, input: input, weight: weight, geometry: geometry)
            return [bits(output), bits(gradients.input!), bits(gradients.weight)]
        }
    }

    /// An SGD step in place, as `SGDOptimizer.update` makes it.
    func step(_ weight: inout Tensor, seed: UInt64) {
        let gradient = FiniteDifferences.randomTensor(weight.shape, seed: seed)
        var velocity = Tensor(shape: weight.shape)
        weight.withUnsafeMutableBufferPointer { weights in
            gradient.withUnsafeBufferPointer { gradient in
                velocity.withUnsafeMutableBufferPointer { velocity in
                    sgdMomentumUpdate(
                        weights: weights, gradients: gradient, velocity: velocity, learningRate: 0.5, momentum: 0.9,
                        weightDecay: 1e-4, initializeVelocity: true)
                }
            }
        }
    }

    /// `C = A · op(W)` through the cache (a miss, then a hit) against `multiplyBF16`, which converts its operands
    /// in every call: the same bits, for whole panels (pair kernels where the CPU has them) and other widths.
    @Test(arguments: [(7, 64, 96), (130, 40, 33), (601, 96, 64)])
    func cachedProductsEqualUncachedOnesBitForBit(m: Int, n: Int, k: Int) {
        for (transposeB, accumulate) in [(false, false), (true, true), (true, false), (false, true)] {
            let a = FiniteDifferences.randomTensor([m, k], seed: 1).scalars
            let weight = FiniteDifferences.randomTensor(transposeB ? [n, k] : [k, n], seed: 2)
            let initial = FiniteDifferences.randomTensor([m, n], seed: 3).scalars
            let beta: Float = accumulate ? 1 : 0
            var uncached = initial
            a.withUnsafeBufferPointer { a in
                weight.withUnsafeBufferPointer { b in
                    uncached.withUnsafeMutableBufferPointer { c in
                        GEMM.multiplyBF16(
                            transposeA: false, transposeB: transposeB, m: m, n: n, k: k, a: a.baseAddress!, lda: k,
                            b: b.baseAddress!, ldb: transposeB ? k : n, beta: beta, c: c.baseAddress!, ldc: n,
                            threads: 2)
                    }
                }
            }
            for call in 1...2 {
                var cached = initial
                a.withUnsafeBufferPointer { a in
                    cached.withUnsafeMutableBufferPointer { c in
                        withPrecision(.bf16) {
                            GEMM.multiply(
                                m: m, a: a.baseAddress!, weight: weight, transposeB: transposeB, k: k, n: n, beta: beta,
                                c: c.baseAddress!, threads: 2)
                        }
                    }
                }
                let label = "m \(m) n \(n) k \(k) transposeB \(transposeB) accumulate \(accumulate) call \(call)"
                #expect(cached.map(\.bitPattern) == uncached.map(\.bitPattern), "\(label)")
            }
            #expect(ConvertedWeights.conversions(of: weight) == 1, "two products, one conversion")
        }
    }

    /// After an SGD step the products use the new weights: each of the three products equals the one of a fresh
    /// copy of the updated weight (converted from scratch), and differs from the product before the step.
    @Test(arguments: BFloat16WeightCacheTests.geometries)
    func anSGDStepIsSeenByTheNextProduct(kernel: Int, stride: Int, padding: Int) {
        let geometry = Convolution2DGeometry(kernelSize: kernel, stride: stride, padding: padding)
        let input = FiniteDifferences.randomTensor([2, 9, 9, 32], seed: 4)
        let shape = geometry.weightShape(inputChannels: 32, outputChannels: 32)
        var weight = FiniteDifferences.randomTensor(shape, seed: 5)
        let extent = geometry.outputExtent(9)
        let gradOutput = FiniteDifferences.randomTensor([2, extent, extent, 32], seed: 6)
        let before = pass(input, weight, gradOutput, geometry)
        #expect(pass(input, weight, gradOutput, geometry) == before, "\(geometry): the cached pass differs")
        step(&weight, seed: 7)
        let after = pass(input, weight, gradOutput, geometry)
        let fresh = pass(input, Tensor(shape: weight.shape, scalars: weight.scalars), gradOutput, geometry)
        #expect(after == fresh, "\(geometry): the pass after the step differs from a fresh conversion's")
        // The weight gradient reads no weight, so it alone repeats; a stale form would repeat the other two.
        #expect(after[0] != before[0] && after[1] != before[1], "\(geometry): the step changed nothing")
    }

    /// Copy-on-write: writing a copy of a cached weight leaves the original's products alone, and the copy's
    /// products read the copy.
    @Test func aWrittenCopyDoesNotTouchTheOriginal() {
        let geometry = Convolution2DGeometry(kernelSize: 1)
        let input = FiniteDifferences.randomTensor([2, 5, 5, 32], seed: 8)
        let weight = FiniteDifferences.randomTensor(
            geometry.weightShape(inputChannels: 32, outputChannels: 64), seed: 9)
        let gradOutput = FiniteDifferences.randomTensor([2, 5, 5, 64], seed: 10)
        let original = pass(input, weight, gradOutput, geometry)
        var copy = weight
        step(&copy, seed: 11)
        #expect(pass(input, weight, gradOutput, geometry) == original)
        let fresh = pass(input, Tensor(shape: copy.shape, scalars: copy.scalars), gradOutput, geometry)
        #expect(pass(input, copy, gradOutput, geometry) == fresh)
    }

    /// Where bf16 is emulated, every non-Winograd product equals the fp32 product of operands rounded by hand:
    /// the cached rounded weight is the uncached definition, without the cache.
    @Test(
        .enabled(if: BFloat16Kernel.preferred == .emulated),
        arguments: BFloat16WeightCacheTests.geometries.filter { $0 != (3, 1, 1) })
    func emulatedProductsEqualFP32ProductsOfRoundedOperands(kernel: Int, stride: Int, padding: Int) {
        let geometry = Convolution2DGeometry(kernelSize: kernel, stride: stride, padding: padding)
        func rounded(_ tensor: Tensor) -> Tensor {
            Tensor(shape: tensor.shape, scalars: tensor.scalars.map(BFloat16.rounded))
        }
        let input = FiniteDifferences.randomTensor([2, 9, 9, 32], seed: 12)
        let weight = FiniteDifferences.randomTensor(
            geometry.weightShape(inputChannels: 32, outputChannels: 32), seed: 13)
        let extent = geometry.outputExtent(9)
        let gradOutput = FiniteDifferences.randomTensor([2, extent, extent, 32], seed: 14)
        let bf16 = pass(input, weight, gradOutput, geometry)
        let output = conv2d(rounded(input), weight: rounded(weight), geometry: geometry)
        let gradInput = conv2dBackward(
            gradOutput: rounded(gradOutput), input: rounded(input), weight: rounded(weight), geometry: geometry
        ).input!
        #expect(bf16[0] == bits(output) && bf16[1] == bits(gradInput), "\(geometry)")
    }

    /// Three training steps of one, three and two micro-batches, each micro-batch a forward (with channel
    /// moments) and a backward pass and each step ending with an evaluation batch (the fused inference
    /// convolution) and an SGD step: every step converts each form of the weight once — its forward form and
    /// its input gradient's, one rounded weight for both where bf16 is emulated outside Winograd — and the
    /// cache then holds what `trainingBytes` predicts.
    @Test(arguments: [(1, 1, 0), (3, 1, 1), (3, 2, 1)])
    func oneConversionPerFormPerStep(kernel: Int, stride: Int, padding: Int) {
        let geometry = Convolution2DGeometry(kernelSize: kernel, stride: stride, padding: padding)
        var weight = FiniteDifferences.randomTensor(
            geometry.weightShape(inputChannels: 32, outputChannels: 64), seed: 15)
        let winograd = (kernel, stride, padding) == (3, 1, 1)
        let forms = BFloat16Kernel.preferred == .emulated && !winograd ? 1 : 2
        let (scale, shift) = (Tensor(shape: [64], repeating: 0.5), Tensor(shape: [64], repeating: 0.1))
        for (index, microBatches) in [1, 3, 2].enumerated() {
            let before = ConvertedWeights.conversions(of: weight)
            for micro in 0..<microBatches {
                let input = FiniteDifferences.randomTensor([2, 8, 8, 32], seed: UInt64(100 * index + micro))
                withPrecision(.bf16) {
                    let (output, _, _) = conv2dWithChannelMoments(input, weight: weight, geometry: geometry)
                    _ = conv2dBackward(gradOutput: output, input: input, weight: weight, geometry: geometry)
                }
            }
            let evaluation = FiniteDifferences.randomTensor([3, 8, 8, 32], seed: UInt64(index))
            _ = withPrecision(.bf16) {
                conv2d(evaluation, weight: weight, geometry: geometry, scale: scale, shift: shift, clampAtZero: true)
            }
            let label = "\(geometry) step \(index) (\(microBatches) micro-batches)"
            #expect(ConvertedWeights.conversions(of: weight) - before == forms, "\(label)")
            let predicted = ConvertedWeights.trainingBytes(
                geometry: geometry, inputChannels: 32, outputChannels: 64, inputGradient: true)
            #expect(ConvertedWeights.bytes(of: weight) == predicted, "\(label)")
            step(&weight, seed: UInt64(200 + index))
            #expect(ConvertedWeights.bytes(of: weight) == 0, "\(label): forms of the old weight still count")
        }
    }

    /// The linear layer's weight: forward and input gradient over three micro-batches, one conversion per form.
    @Test func linearLayersConvertOncePerStep() {
        var weight = FiniteDifferences.randomTensor([64, 96], seed: 16)
        let bias = FiniteDifferences.randomTensor([64], seed: 17)
        let forms = BFloat16Kernel.preferred == .emulated ? 1 : 2
        for index in 0..<2 {
            let before = ConvertedWeights.conversions(of: weight)
            for micro in 0..<3 {
                let input = FiniteDifferences.randomTensor([5, 96], seed: UInt64(300 + 10 * index + micro))
                withPrecision(.bf16) {
                    let output = linear(input, weight: weight, bias: bias)
                    _ = linearBackward(gradOutput: output, input: input, weight: weight)
                }
            }
            #expect(ConvertedWeights.conversions(of: weight) - before == forms, "step \(index)")
            #expect(ConvertedWeights.bytes(of: weight) == ConvertedWeights.trainingBytes(linearInputs: 96, outputs: 64))
            step(&weight, seed: UInt64(400 + index))
        }
    }
}
