// The backward pass of a k×k or strided convolution in ``Precision/reference``: im2col chunks multiplied in
// float64, the weight gradient summed over every chunk and the column gradients scattered back onto the input
// in float64, so each gradient element is rounded to fp32 once (the fp32 path rounds per chunk, per thread's
// partial sum and per col2im addition).

extension ConvolutionPlan {
    /// ``backward(gradOutput:input:weight:gradWeight:gradInput:accumulate:)`` in ``Precision/reference``
    /// (1×1 stride-1 convolutions are single GEMMs and need no special path).
    func referenceBackward(
        gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        gradWeight: UnsafeMutablePointer<Float>?, gradInput: UnsafeMutablePointer<Float>?, accumulate: Bool
    ) {
        let inputCount = batch * height * width * inputChannels
        var weightSums = [Double](repeating: 0, count: gradWeight == nil ? 0 : outputChannels * columns)
        var inputSums = [Double](repeating: 0, count: gradInput == nil ? 0 : inputCount)
        if let gradInput, accumulate { inputSums = GEMM.widened(rows: 1, columns: inputCount, gradInput, inputCount) }
        let wideWeight = GEMM.widened(rows: 1, columns: outputChannels * columns, weight, outputChannels * columns)
        let chunk = rowsPerChunk
        Workspace.withScratch(count: chunk * columns) { scratch in
            for firstRow in stride(from: 0, to: rows, by: chunk) {
                let chunkRows = firstRow..<min(rows, firstRow + chunk)
                let wideGradOutput = GEMM.widened(
                    rows: chunkRows.count, columns: outputChannels, gradOutput + firstRow * outputChannels,
                    outputChannels)
                if gradWeight != nil {
                    // gradWeight[C_out, K] += gradOutputᵀ · columns, the sum kept in float64 across chunks.
                    gatherColumns(input: input, rows: chunkRows, into: scratch.baseAddress!)
                    let wideColumns = GEMM.widened(
                        rows: chunkRows.count, columns: columns, scratch.baseAddress!, columns)
                    GEMM.multiplyFloat64(
                        transposeA: true, transposeB: false, m: outputChannels, n: columns, k: chunkRows.count,
                        alpha: 1, a: wideGradOutput, lda: outputChannels, b: wideColumns, ldb: columns, beta: 1,
                        c: &weightSums, ldc: columns, threads: threads)
                }
                if gradInput != nil {
                    // Column gradients = gradOutput · weight, scattered onto the input pixels in float64.
                    var columnGradients = [Double](repeating: 0, count: chunkRows.count * columns)
                    GEMM.multiplyFloat64(
                        transposeA: false, transposeB: false, m: chunkRows.count, n: columns, k: outputChannels,
                        alpha: 1, a: wideGradOutput, lda: outputChannels, b: wideWeight, ldb: columns, beta: 0,
                        c: &columnGradients, ldc: columns, threads: threads)
                    scatterFloat64(columnGradients, rows: chunkRows, into: &inputSums)
                }
            }
        }
        if let gradWeight { GEMM.narrow(weightSums, rows: 1, columns: weightSums.count, into: gradWeight, 0) }
        if let gradInput { GEMM.narrow(inputSums, rows: 1, columns: inputCount, into: gradInput, 0) }
    }

    /// col2im in float64: adds the column gradients of `rows` onto the input pixels they were read from.
    private func scatterFloat64(_ columnGradients: [Double], rows: Range<Int>, into sums: inout [Double]) {
        let (kernel, channels, rowLength) = (geometry.kernelSize, inputChannels, columns)
        forEachInputRun(rows: rows) { row, offset, kernelRow, firstKernelColumn, kernelColumns in
            guard kernelColumns > 0 else { return }
            let source = (row - rows.lowerBound) * rowLength + (kernelRow * kernel + firstKernelColumn) * channels
            for index in 0..<(kernelColumns * channels) {
                sums[offset + index] += columnGradients[source + index]
            }
        }
    }
}
