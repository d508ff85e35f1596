// 2-D convolution of NHWC tensors, one algorithm kept in one file: geometry and limits, the forward and
// backward entry points (plain, fused with batch norm's affine map, or gathering channel moments), and the
// `ConvolutionPlan` that runs im2col chunks through GEMM or hands 3×3 stride-1 layers to Winograd.swift.

/// The hyperparameters of a square 2-D convolution (no groups, no dilation, zero padding).
///
/// Tensor layouts:
/// - input `[N, H, W, C_in]` and output `[N, OH, OW, C_out]` (NHWC);
/// - weight `[C_out, KH, KW, C_in]` (OHWI): each output channel's filter is one contiguous row of
///   `KH·KW·C_in` floats in the same order as an im2col row, so the forward pass is
///   `columns[M, K] · weightᵀ` with `M = N·OH·OW`, `K = KH·KW·C_in`, and a 1×1 weight `[C_out, 1, 1,
///   C_in]` is exactly PyTorch's linear layout `[out, in]`. Use ``fromPyTorchLayout(_:)`` and
///   ``toPyTorchLayout(_:)`` to convert from and to PyTorch's `[out, in, kh, kw]` (OIHW).
package struct Convolution2DGeometry: Sendable, Hashable, CustomStringConvertible {
    package let kernelSize: Int
    package let stride: Int
    package let padding: Int

    /// - Precondition: `kernelSize ≥ 1`, `stride ≥ 1`, `0 ≤ padding < kernelSize`.
    package init(kernelSize: Int, stride: Int = 1, padding: Int = 0) {
        ensure(
            kernelSize >= 1 && stride >= 1 && padding >= 0 && padding < kernelSize,
            "conv2d: invalid geometry kernel \(kernelSize), stride \(stride), padding \(padding)")
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
    }

    package var description: String { "\(kernelSize)×\(kernelSize)/\(stride) pad \(padding)" }

    /// The output extent along one spatial axis of extent `inputExtent`.
    package func outputExtent(_ inputExtent: Int) -> Int {
        (inputExtent + 2 * padding - kernelSize) / stride + 1
    }

    /// The shape of the OHWI weight for the given channel counts.
    package func weightShape(inputChannels: Int, outputChannels: Int) -> [Int] {
        [outputChannels, kernelSize, kernelSize, inputChannels]
    }

    /// Checks that `input` (NHWC) and `weight` (OHWI) fit this geometry and returns the output shape.
    func outputShape(input: [Int], weight: [Int]) -> [Int] {
        ensure(input.count == 4, "conv2d: input \(input) must be NHWC [N, H, W, C]")
        ensure(
            weight.count == 4 && weight[1] == kernelSize && weight[2] == kernelSize,
            "conv2d: weight \(weight) must be [C_out, \(kernelSize), \(kernelSize), C_in] for a \(self) convolution")
        ensure(
            input[3] == weight[3],
            "conv2d: input \(input) has \(input[3]) channels but weight expects \(weight[3]) (weight \(weight))")
        ensure(
            input[1] + 2 * padding >= kernelSize && input[2] + 2 * padding >= kernelSize,
            "conv2d: input \(input) is smaller than the \(self) kernel")
        return [input[0], outputExtent(input[1]), outputExtent(input[2]), weight[0]]
    }

    /// Whether the convolution reads its input as the im2col matrix directly (1×1, stride 1).
    var isPointwise: Bool { kernelSize == 1 && stride == 1 && padding == 0 }

    /// Converts a PyTorch weight `[out, in, kh, kw]` (OIHW) to this engine's `[out, kh, kw, in]` (OHWI).
    package static func fromPyTorchLayout(_ weight: Tensor) -> Tensor {
        ensure(weight.shape.count == 4, "conv2d: PyTorch weight \(weight.shape) must be [out, in, kh, kw]")
        return weight.permuted(OIHWtoOHWI)
    }

    /// Converts this engine's `[out, kh, kw, in]` (OHWI) weight to PyTorch's `[out, in, kh, kw]` (OIHW).
    package static func toPyTorchLayout(_ weight: Tensor) -> Tensor {
        ensure(weight.shape.count == 4, "conv2d: weight \(weight.shape) must be [out, kh, kw, in]")
        return weight.permuted(OHWItoOIHW)
    }

    private static let OIHWtoOHWI = [0, 2, 3, 1]
    private static let OHWItoOIHW = [0, 3, 1, 2]
}

/// A 2-D convolution without bias.
///
/// 1×1 stride-1 convolutions are one GEMM over the input viewed as `[N·H·W, C_in]`. 3×3 stride-1
/// convolutions with one pixel of padding run as Winograd F(4×4, 3×3) or F(2×2, 3×3)
/// (``WinogradConvolution``), with 4× or 2.25× fewer multiply-adds. Every other geometry (including
/// 1×1 stride 2, whose im2col rows are simply the subsampled pixels) builds im2col rows
/// (`[KH·KW·C_in]` per output pixel, copied as contiguous runs of the NHWC input) in chunks of at
/// most ``Workspace/maximumFloats`` and multiplies each chunk by the weight. Each of
/// ``GEMM/threadCount`` threads gathers and multiplies its own share of the rows (of the images, in
/// the backward pass).
///
/// - Parameters:
///   - input: `[N, H, W, C_in]`.
///   - weight: `[C_out, KH, KW, C_in]` (OHWI).
/// - Returns: `[N, OH, OW, C_out]` with `OH = (H + 2·padding − KH) / stride + 1` (same for `OW`).
/// - Precondition: the shapes fit `geometry`; the message names both shapes.
package func conv2d(_ input: Tensor, weight: Tensor, geometry: Convolution2DGeometry) -> Tensor {
    conv2d(input, weight: weight, geometry: geometry, limits: ConvolutionLimits())
}

/// How much scratch memory and how many threads one convolution call may use, and (for tests and
/// measurements) which Winograd tile size a 3×3 stride-1 convolution uses.
package struct ConvolutionLimits: Sendable {
    /// The most im2col floats one chunk may hold (tests use small limits to exercise chunking).
    package let workspaceFloats: Int
    /// The threads the call may use.
    package let threads: Int
    /// The output tile side of a Winograd convolution, 2 or 4; nil chooses by the map's size.
    package let winogradTile: Int?

    package init(
        workspaceFloats: Int = Workspace.maximumFloats, threads: Int = GEMM.threadCount, winogradTile: Int? = nil
    ) {
        ensure(workspaceFloats >= 1 && threads >= 1, "conv2d: limits need at least one float and one thread")
        ensure(
            winogradTile.map { [2, 4].contains($0) } ?? true,
            "conv2d: Winograd tiles are 2 or 4 pixels, not \(winogradTile!)")
        (self.workspaceFloats, self.threads, self.winogradTile) = (workspaceFloats, threads, winogradTile)
    }
}

/// ``conv2d(_:weight:geometry:)`` within `limits`.
package func conv2d(
    _ input: Tensor, weight: Tensor, geometry: Convolution2DGeometry, limits: ConvolutionLimits
) -> Tensor {
    KernelProfiler.measure(.convolution(kernelSize: geometry.kernelSize)) {
        convolve(input, weight: weight, geometry: geometry, limits: limits)
    }
}

private func convolve(
    _ input: Tensor, weight: Tensor, geometry: Convolution2DGeometry, limits: ConvolutionLimits
) -> Tensor {
    let outputShape = geometry.outputShape(input: input.shape, weight: weight.shape)
    let plan = ConvolutionPlan(
        input: input.shape, output: outputShape, geometry: geometry, limits: limits)
    return Tensor(shape: outputShape) { output in
        input.withUnsafeBufferPointer { input in
            plan.forward(input: input.baseAddress!, weight: weight, output: output.baseAddress!)
        }
    }
}

/// Work on a block of a convolution's output rows (`[N·OH·OW, C_out]` row indices), done by the
/// thread `part` that just wrote the block, while the block is still in cache.
typealias OutputBlockEpilogue = (_ part: Int, _ rows: Range<Int>) -> Void

/// ``conv2d(_:weight:geometry:)`` followed by a per-channel affine map, an optional residual and
/// an optional ReLU, applied to each block of output rows as soon as the GEMM has written it:
/// `y = max(0, conv(x)·scale + shift + residual)`. This is inference's convolution + batch norm
/// (running statistics, see ``batchNormAffine(weight:bias:mean:variance:epsilon:)``) + residual
/// sum + ReLU without a second pass over memory.
///
/// - Parameters:
///   - scale, shift: `[C_out]`.
///   - residual: Added before the ReLU; the output's shape `[N, OH, OW, C_out]`.
///   - clampAtZero: Whether to apply ReLU last.
package func conv2d(
    _ input: Tensor, weight: Tensor, geometry: Convolution2DGeometry,
    scale: Tensor, shift: Tensor, residual: Tensor? = nil, clampAtZero: Bool
) -> Tensor {
    KernelProfiler.measure(.convolution(kernelSize: geometry.kernelSize)) {
        let outputShape = geometry.outputShape(input: input.shape, weight: weight.shape)
        let channels = outputShape[3]
        ensure(
            scale.shape == [channels] && shift.shape == [channels],
            "conv2d: scale \(scale.shape) and shift \(shift.shape) must be [\(channels)] for output \(outputShape)")
        ensure(
            residual.map { $0.shape == outputShape } ?? true,
            "conv2d: residual \(residual?.shape ?? []) does not match the output \(outputShape)")
        let plan = ConvolutionPlan(
            input: input.shape, output: outputShape, geometry: geometry, limits: ConvolutionLimits())
        return Tensor(shape: outputShape) { output in
            input.withUnsafeBufferPointer { inputValues in
                scale.withUnsafeBufferPointer { scaleValues in
                    shift.withUnsafeBufferPointer { shiftValues in
                        residual.withUnsafeBaseAddress { residual in
                            let output = output.baseAddress!
                            plan.forward(input: inputValues.baseAddress!, weight: weight, output: output) { _, rows in
                                let first = rows.lowerBound * channels
                                scaleAndShiftRows(
                                    output + first, output + first, rows: rows.count, channels: channels,
                                    scale: scaleValues.baseAddress!, shift: shiftValues.baseAddress!,
                                    adding: residual.map { $0 + first }, clampAtZero: clampAtZero)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// ``conv2d(_:weight:geometry:)`` that also returns each output channel's mean and biased
/// variance over `N·OH·OW`, accumulated block by block while the GEMM's output is in cache: the
/// batch statistics of the batch norm that follows, without a pass over memory of its own.
package func conv2dWithChannelMoments(
    _ input: Tensor, weight: Tensor, geometry: Convolution2DGeometry
) -> (output: Tensor, mean: Tensor, variance: Tensor) {
    KernelProfiler.measure(.convolution(kernelSize: geometry.kernelSize)) {
        let outputShape = geometry.outputShape(input: input.shape, weight: weight.shape)
        let channels = outputShape[3]
        let plan = ConvolutionPlan(
            input: input.shape, output: outputShape, geometry: geometry, limits: ConvolutionLimits())
        let moments = ChannelMoments(channels: channels, parts: plan.forwardParts)
        let output = Tensor(shape: outputShape) { output in
            input.withUnsafeBufferPointer { input in
                let output = output.baseAddress!
                plan.forward(input: input.baseAddress!, weight: weight, output: output) { part, rows in
                    moments.add(output + rows.lowerBound * channels, rows: rows.count, part: part)
                }
            }
        }
        let (mean, variance) = moments.meanAndVariance()
        return (output, mean, variance)
    }
}

/// The gradients of ``conv2d(_:weight:geometry:)``.
///
/// Both gradients come from one pass over im2col chunks: each chunk's columns are built once,
/// multiplied into the weight gradient, then overwritten by the column gradient that col2im
/// scatters back into the input gradient. Winograd's 3×3 stride-1 convolutions transform instead
/// (see ``WinogradConvolution``).
///
/// - Parameters:
///   - gradOutput: `[N, OH, OW, C_out]`, the loss gradient with respect to the output.
///   - input: The forward input `[N, H, W, C_in]`.
///   - weight: The forward weight `[C_out, KH, KW, C_in]`.
///   - computeInputGradient: Pass `false` for a network's first layer to skip `input`'s gradient.
/// - Returns: `input`: `[N, H, W, C_in]` (nil when not requested); `weight`: `[C_out, KH, KW, C_in]`.
package func conv2dBackward(
    gradOutput: Tensor, input: Tensor, weight: Tensor, geometry: Convolution2DGeometry,
    computeInputGradient: Bool = true
) -> (input: Tensor?, weight: Tensor) {
    conv2dBackward(
        gradOutput: gradOutput, input: input, weight: weight, geometry: geometry,
        computeInputGradient: computeInputGradient, limits: ConvolutionLimits())
}

/// ``conv2dBackward(gradOutput:input:weight:geometry:computeInputGradient:)`` with im2col chunks
/// within `limits`.
package func conv2dBackward(
    gradOutput: Tensor, input: Tensor, weight: Tensor, geometry: Convolution2DGeometry,
    computeInputGradient: Bool, limits: ConvolutionLimits
) -> (input: Tensor?, weight: Tensor) {
    // Uninitialised: the backward pass overwrites every element.
    var gradInput = computeInputGradient ? Tensor(shape: input.shape, initializingWith: { _ in }) : nil
    let gradWeight = KernelProfiler.measure(.convolution(kernelSize: geometry.kernelSize)) {
        convolveBackward(
            gradOutput: gradOutput, input: input, weight: weight, geometry: geometry,
            gradInput: &gradInput, accumulate: false, limits: limits)
    }
    return (gradInput, gradWeight!)
}

/// The input gradient of ``conv2d(_:weight:geometry:)`` alone, for a frozen layer: the weight
/// gradient's GEMMs (and im2col gathers) are skipped. With `accumulatingInto`, the gradient is added
/// to that tensor (a residual shortcut's gradient) and returned.
package func conv2dInputGradient(
    gradOutput: Tensor, input: Tensor, weight: Tensor, geometry: Convolution2DGeometry,
    accumulatingInto inputGradient: consuming Tensor? = nil
) -> Tensor {
    let accumulate = inputGradient != nil
    ensure(
        !accumulate || inputGradient!.shape == input.shape,
        "conv2d input gradient: accumulated \(inputGradient?.shape ?? []) does not match input \(input.shape)")
    // Moved, not copied, so an accumulated sum is written in place; uninitialised otherwise (overwritten).
    var result: Tensor? = (consume inputGradient) ?? Tensor(shape: input.shape, initializingWith: { _ in })
    KernelProfiler.measure(.convolution(kernelSize: geometry.kernelSize)) {
        _ = convolveBackward(
            gradOutput: gradOutput, input: input, weight: weight, geometry: geometry, gradInput: &result,
            accumulate: accumulate, limits: ConvolutionLimits(), weightGradient: false)
    }
    return result!
}

/// ``conv2dBackward(gradOutput:input:weight:geometry:computeInputGradient:)`` that adds the input
/// gradient to `inputGradient` (e.g. a residual block's shortcut gradient) instead of returning
/// a new tensor: a 1×1 stride-1 convolution's GEMM accumulates with β = 1, saving a pass.
///
/// - Parameter inputGradient: `[N, H, W, C_in]`; the input gradient is added to it.
/// - Returns: The weight gradient `[C_out, KH, KW, C_in]`.
package func conv2dBackward(
    gradOutput: Tensor, input: Tensor, weight: Tensor, geometry: Convolution2DGeometry,
    accumulatingInputGradientInto inputGradient: inout Tensor
) -> Tensor {
    ensure(
        inputGradient.shape == input.shape,
        "conv2d backward: accumulated input gradient \(inputGradient.shape) does not match input \(input.shape)")
    // Moved, not copied, so the sum is written in place when the caller held the only reference.
    var sum: Tensor? = consume inputGradient
    let gradWeight = KernelProfiler.measure(.convolution(kernelSize: geometry.kernelSize)) {
        convolveBackward(
            gradOutput: gradOutput, input: input, weight: weight, geometry: geometry,
            gradInput: &sum, accumulate: true, limits: ConvolutionLimits())
    }
    inputGradient = sum!
    return gradWeight!
}

/// Computes the weight gradient (returned, unless `weightGradient` is false) and, when `gradInput` is
/// not nil, the input gradient into it: overwriting it, or adding to it when `accumulate` is true.
private func convolveBackward(
    gradOutput: Tensor, input: Tensor, weight: Tensor, geometry: Convolution2DGeometry,
    gradInput: inout Tensor?, accumulate: Bool, limits: ConvolutionLimits, weightGradient: Bool = true
) -> Tensor? {
    let outputShape = geometry.outputShape(input: input.shape, weight: weight.shape)
    ensure(
        gradOutput.shape == outputShape,
        "conv2d backward: gradient \(gradOutput.shape) does not match the output \(outputShape) "
            + "of input \(input.shape) and weight \(weight.shape)")
    let plan = ConvolutionPlan(
        input: input.shape, output: outputShape, geometry: geometry, limits: limits)
    // Uninitialised: every backward path overwrites the whole weight gradient (its first product with β = 0,
    // Winograd's un-transform), and a zero fill would cost a pass over every weight on every micro-batch.
    // A one-element placeholder stands in for a skipped weight gradient; the plan gets nil.
    var gradWeight = Tensor(shape: weightGradient ? weight.shape : [1], initializingWith: { _ in })
    gradOutput.withUnsafeBufferPointer { gradOutput in
        input.withUnsafeBufferPointer { input in
            gradWeight.withUnsafeMutableBufferPointer { gradWeightElements in
                let gradWeight = weightGradient ? gradWeightElements.baseAddress! : nil
                if gradInput != nil {
                    gradInput!.withUnsafeMutableBufferPointer { gradInput in
                        plan.backward(
                            gradOutput: gradOutput.baseAddress!, input: input.baseAddress!, weight: weight,
                            gradWeight: gradWeight, gradInput: gradInput.baseAddress!, accumulate: accumulate)
                    }
                } else {
                    plan.backward(
                        gradOutput: gradOutput.baseAddress!, input: input.baseAddress!, weight: weight,
                        gradWeight: gradWeight, gradInput: nil, accumulate: false)
                }
            }
        }
    }
    return weightGradient ? gradWeight : nil
}

/// The sizes and index arithmetic of one convolution call.
struct ConvolutionPlan {
    let batch: Int, height: Int, width: Int, inputChannels: Int
    let outputHeight: Int, outputWidth: Int, outputChannels: Int
    let geometry: Convolution2DGeometry
    /// The most im2col floats one chunk may hold.
    let workspaceLimit: Int
    /// The threads the convolution may use.
    let threads: Int
    /// A Winograd tile size that overrides the choice by map size.
    let winogradTile: Int?

    init(input: [Int], output: [Int], geometry: Convolution2DGeometry, limits: ConvolutionLimits) {
        (batch, height, width, inputChannels) = (input[0], input[1], input[2], input[3])
        (outputHeight, outputWidth, outputChannels) = (output[1], output[2], output[3])
        self.geometry = geometry
        (workspaceLimit, threads, winogradTile) = (limits.workspaceFloats, limits.threads, limits.winogradTile)
    }

    /// Rows of the im2col matrix: one per output pixel.
    var rows: Int { batch * outputHeight * outputWidth }
    /// Columns of the im2col matrix: one filter's length.
    var columns: Int { geometry.kernelSize * geometry.kernelSize * inputChannels }
    /// im2col rows per chunk so that a chunk fits the workspace limit.
    var rowsPerChunk: Int { max(1, min(rows, workspaceLimit / max(columns, 1))) }

    /// The threads a forward pass splits its rows over: one for products too small to share.
    var forwardParts: Int {
        rows * columns * outputChannels < GEMM.minimumParallelWork ? 1 : max(1, min(threads, rows))
    }

    /// Output rows per block handed to an epilogue in a 1×1 stride-1 convolution: about 1 MiB of
    /// output, half of this machine's per-core L2, between 256 and 1024 rows. Measured on
    /// ghostnet101's 1×1 shapes with two threads, such blocks plus an in-cache pass ran 1.0–1.5×
    /// as fast as one GEMM followed by a separate pass over its output.
    private var epilogueBlockRows: Int { max(256, min(1024, (1 << 18) / max(outputChannels, 1))) }

    /// Computes the output; when `epilogue` is given, calls it on every block of output rows right
    /// after the GEMM wrote the block (while it is in cache), from the thread `part` that wrote it.
    /// `weight` (OHWI) is the tensor itself: in bf16 its conversion is cached (``ConvertedWeights``).
    func forward(
        input: UnsafePointer<Float>, weight: Tensor, output: UnsafeMutablePointer<Float>,
        epilogue: OutputBlockEpilogue? = nil
    ) {
        if let winograd {
            return winograd.forward(plan: self, input: input, weight: weight, output: output, epilogue: epilogue)
        }
        if geometry.isPointwise, epilogue == nil {
            GEMM.multiply(
                m: rows, a: input, weight: weight, transposeB: true, k: columns, n: outputChannels, c: output,
                threads: threads)
            return
        }
        // Each thread gathers and multiplies its own band of rows: one thread's im2col copy runs
        // while the other's GEMM keeps the FMA units busy, instead of both waiting on one copy. The
        // weight is prepared for the GEMMs once, not for every block.
        let bands = forwardParts
        GEMM.withWeightOperand(weight, transposeB: true, k: columns, n: outputChannels) { weight in
            inParallel(bands) { part in
                let bandRows = share(part, of: bands, in: rows)
                forwardChunks(
                    rows: bandRows, input: input, weight: weight, output: output, gemmThreads: bands == 1 ? threads : 1
                ) { block in epilogue?(part, block) }
            }
        }
    }

    /// im2col (unless 1×1 stride 1) and GEMM of rows `rows`, chunk by chunk, calling `finished`
    /// with each chunk's rows.
    private func forwardChunks(
        rows: Range<Int>, input: UnsafePointer<Float>, weight: GEMM.SharedOperand,
        output: UnsafeMutablePointer<Float>, gemmThreads: Int, finished: (Range<Int>) -> Void
    ) {
        if geometry.isPointwise {
            for firstRow in stride(from: rows.lowerBound, to: rows.upperBound, by: epilogueBlockRows) {
                let block = firstRow..<min(rows.upperBound, firstRow + epilogueBlockRows)
                GEMM.multiply(
                    m: block.count, a: input + firstRow * columns, b: weight, c: output + firstRow * outputChannels,
                    threads: gemmThreads)
                finished(block)
            }
            return
        }
        let chunk = rowsPerChunk
        Workspace.withScratch(count: chunk * columns) { scratch in
            for firstRow in stride(from: rows.lowerBound, to: rows.upperBound, by: chunk) {
                let block = firstRow..<min(rows.upperBound, firstRow + chunk)
                gatherColumns(input: input, rows: block, into: scratch.baseAddress!)
                GEMM.multiply(
                    m: block.count, a: scratch.baseAddress!, b: weight, c: output + firstRow * outputChannels,
                    threads: gemmThreads)
                finished(block)
            }
        }
    }

    /// Writes the weight gradient and, when `gradInput` is given, the input gradient (added to
    /// what `gradInput` holds when `accumulate` is true).
    /// A nil `gradWeight` skips the weight gradient (a frozen layer): only the input gradient is computed.
    func backward(
        gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: Tensor,
        gradWeight: UnsafeMutablePointer<Float>?, gradInput: UnsafeMutablePointer<Float>?, accumulate: Bool
    ) {
        if geometry.isPointwise {
            // gradWeight[C_out, C_in] = gradOutputᵀ · input; gradInput = gradOutput · weight.
            if let gradWeight {
                GEMM.multiply(
                    transposeA: true, m: outputChannels, n: columns, k: rows,
                    a: gradOutput, b: input, c: gradWeight, threads: threads)
            }
            if let gradInput {
                GEMM.multiply(
                    m: rows, a: gradOutput, weight: weight, transposeB: false, k: outputChannels, n: columns,
                    beta: accumulate ? 1 : 0, c: gradInput, threads: threads)
            }
            return
        }
        if Precision.current == .reference {
            return weight.withUnsafeBufferPointer { weight in
                referenceBackward(
                    gradOutput: gradOutput, input: input, weight: weight.baseAddress!, gradWeight: gradWeight,
                    gradInput: gradInput, accumulate: accumulate)
            }
        }
        if let winograd {
            if let gradWeight {
                winograd.weightGradient(plan: self, gradOutput: gradOutput, input: input, gradWeight: gradWeight)
            }
            if let gradInput {
                winograd.inputGradient(
                    plan: self, gradOutput: gradOutput, weight: weight, gradInput: gradInput, accumulate: accumulate)
            }
            return
        }
        // Each thread takes whole images, so no two threads scatter into the same input pixel,
        // and sums its own weight gradient; the partial sums are added in part order afterwards.
        let parts = min(threads, batch)
        let weightCount = gradWeight == nil ? 0 : outputChannels * columns
        withInputGradientOperand(weight, needed: gradInput != nil) { weight in
            Workspace.withScratch(count: (parts - 1) * weightCount) { partialWeights in
                inParallel(parts) { part in
                    let images = share(part, of: parts, in: batch)
                    backwardChunks(
                        images: images, gradOutput: gradOutput, input: input, weight: weight,
                        gradWeight: part == 0
                            ? gradWeight
                            : gradWeight.map { _ in
                                partialWeights.baseAddress! + (part - 1) * weightCount
                            },
                        gradInput: gradInput, accumulate: accumulate, gemmThreads: parts == 1 ? threads : 1)
                }
                if let gradWeight {
                    addPartialSums(
                        partialWeights.baseAddress!, parts: parts - 1, rows: 1, columns: weightCount,
                        into: gradWeight, totalStride: weightCount)
                }
            }
        }
    }

    /// Calls `body` with the input gradient's `op(W)`, the OHWI weight as `[C_out, KH·KW·C_in]`, prepared
    /// once for every chunk (in bf16, the cached conversion), or with nil when no input gradient is `needed`.
    private func withInputGradientOperand(
        _ weight: Tensor, needed: Bool, _ body: (GEMM.SharedOperand?) -> Void
    ) {
        guard needed else { return body(nil) }
        GEMM.withWeightOperand(weight, transposeB: false, k: outputChannels, n: columns) { body($0) }
    }

    /// Both gradients of the images `images`: the weight gradient written to `gradWeight`, the
    /// input gradient into those images of `gradInput` (each skipped when nil).
    private func backwardChunks(
        images: Range<Int>, gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
        weight: GEMM.SharedOperand?, gradWeight: UnsafeMutablePointer<Float>?,
        gradInput: UnsafeMutablePointer<Float>?, accumulate: Bool, gemmThreads: Int
    ) {
        let inputImageFloats = height * width * inputChannels
        if let gradInput, !accumulate {
            (gradInput + images.lowerBound * inputImageFloats).initialize(
                repeating: 0, count: images.count * inputImageFloats)
        }
        let rowsPerImage = outputHeight * outputWidth
        let rows = (images.lowerBound * rowsPerImage)..<(images.upperBound * rowsPerImage)
        let chunk = rowsPerChunk
        Workspace.withScratch(count: chunk * columns) { scratch in
            for firstRow in stride(from: rows.lowerBound, to: rows.upperBound, by: chunk) {
                let rowCount = min(chunk, rows.upperBound - firstRow)
                let chunkRows = firstRow..<(firstRow + rowCount)
                let chunkGradOutput = gradOutput + firstRow * outputChannels
                if let gradWeight {
                    gatherColumns(input: input, rows: chunkRows, into: scratch.baseAddress!)
                    GEMM.multiply(
                        transposeA: true, m: outputChannels, n: columns, k: rowCount,
                        a: chunkGradOutput, b: scratch.baseAddress!, beta: firstRow == rows.lowerBound ? 0 : 1,
                        c: gradWeight, threads: gemmThreads)
                }
                if let gradInput, let weight {
                    GEMM.multiply(
                        m: rowCount, a: chunkGradOutput, b: weight, c: scratch.baseAddress!, threads: gemmThreads)
                    scatterColumns(scratch.baseAddress!, rows: chunkRows, into: gradInput)
                }
            }
        }
    }

    /// Calls `body(row, offset, kernelRow, firstKernelColumn, kernelColumnCount)` for every run of
    /// in-bounds kernel taps of one kernel row: those taps read `kernelColumnCount·C_in` contiguous
    /// input floats starting at `offset`.
    @inline(__always)
    func forEachInputRun(
        rows: Range<Int>,
        _ body: (_ row: Int, _ inputOffset: Int, _ kernelRow: Int, _ firstKernelColumn: Int, _ kernelColumns: Int) ->
            Void
    ) {
        let kernel = geometry.kernelSize
        let stride = geometry.stride
        let padding = geometry.padding
        for row in rows {
            let ow = row % outputWidth
            let oh = (row / outputWidth) % outputHeight
            let n = row / (outputWidth * outputHeight)
            let firstColumn = ow * stride - padding
            let firstKernelColumn = max(0, -firstColumn)
            let endKernelColumn = min(kernel, width - firstColumn)
            for kernelRow in 0..<kernel {
                let ih = oh * stride - padding + kernelRow
                guard ih >= 0, ih < height, endKernelColumn > firstKernelColumn else {
                    body(row, -1, kernelRow, 0, 0)
                    continue
                }
                let offset = ((n * height + ih) * width + firstColumn + firstKernelColumn) * inputChannels
                body(row, offset, kernelRow, firstKernelColumn, endKernelColumn - firstKernelColumn)
            }
        }
    }

    /// Writes the im2col rows `rows` (each `[KH, KW, C_in]`, zeros for padding) to `columns`.
    func gatherColumns(input: UnsafePointer<Float>, rows: Range<Int>, into columns: UnsafeMutablePointer<Float>) {
        let kernel = geometry.kernelSize
        let channels = inputChannels
        let rowLength = self.columns
        forEachInputRun(rows: rows) { row, offset, kernelRow, firstKernelColumn, kernelColumns in
            let destination = columns + (row - rows.lowerBound) * rowLength + kernelRow * kernel * channels
            let before = firstKernelColumn * channels
            let copied = kernelColumns * channels
            destination.update(repeating: 0, count: before)
            if copied > 0 { (destination + before).update(from: input + offset, count: copied) }
            (destination + before + copied).update(repeating: 0, count: kernel * channels - before - copied)
        }
    }

    /// Adds the column gradients `columns` (rows `rows`) back onto the input pixels they were read from.
    private func scatterColumns(
        _ columns: UnsafePointer<Float>, rows: Range<Int>, into gradInput: UnsafeMutablePointer<Float>
    ) {
        let kernel = geometry.kernelSize
        let channels = inputChannels
        let rowLength = self.columns
        forEachInputRun(rows: rows) { row, offset, kernelRow, firstKernelColumn, kernelColumns in
            guard kernelColumns > 0 else { return }
            let source =
                columns + (row - rows.lowerBound) * rowLength + (kernelRow * kernel + firstKernelColumn) * channels
            let destination = gradInput + offset
            for index in 0..<(kernelColumns * channels) {
                destination[index] += source[index]
            }
        }
    }
}
