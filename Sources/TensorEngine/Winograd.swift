//===----------------------------------------------------------------------===//
// ghostnet-d — TensorEngine
//===----------------------------------------------------------------------===//

/// 3×3 stride-1 convolutions with one pixel of zero padding by Winograd's minimal filtering
/// F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
///
/// Each 2×2 block of output pixels (a *tile*) is computed from the 4×4 input window around it as
/// `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`. Summed over input channels, the element-wise product becomes
/// 16 GEMMs, one per position `ξ` of the 4×4 transformed window:
/// `M[ξ] (tiles × C_out) = V[ξ] (tiles × C_in) · U[ξ]ᵀ`, with `U[ξ]` stored `[C_out, C_in]`. That is
/// 16 multiply-adds per tile and channel pair where im2col needs 36 (2.25× fewer); the transforms
/// are additions on NHWC channel vectors, done on blocks of tiles that stay in cache.
///
/// The input gradient is the same computation on the output gradient with the filters flipped and
/// their channels swapped; flipping a filter only permutes its transformed positions (rows and
/// columns 0 ↔ 3), so both directions share one weight transform. The weight gradient is
/// `G ᵀ[Σ_tiles V[ξ]ᵀ · (A dY Aᵀ)[ξ]] G`, 16 GEMMs as well.
///
/// All three agree with the im2col convolution to float32 rounding (the transforms only add,
/// subtract and halve); the tests compare them with a naive convolution and finite differences.
struct WinogradConvolution {
    let batch: Int, height: Int, width: Int, inputChannels: Int, outputChannels: Int
    /// The threads a call splits its rows of tiles over, each running its own single-threaded GEMMs.
    let threads: Int
    /// The tiles one thread transforms and multiplies at a time (fewer when the workspace limit
    /// says so, which the tests use to exercise many blocks). On ghostnet101's shapes with two
    /// threads, 128–256 tiles ran 5–30 % faster than blocks of 1024 tiles or of 8 MiB: the
    /// transformed tiles stay in L2 between the transforms and the GEMMs.
    let blockTiles: Int

    /// The 16 positions of a transformed 4×4 window.
    static let positions = 16

    /// Whether a convolution can run as F(2×2, 3×3).
    static func applies(to geometry: Convolution2DGeometry) -> Bool {
        geometry.kernelSize == 3 && geometry.stride == 1 && geometry.padding == 1
    }

    init(plan: ConvolutionPlan) {
        (batch, height, width) = (plan.batch, plan.height, plan.width)
        (inputChannels, outputChannels) = (plan.inputChannels, plan.outputChannels)
        threads = min(plan.forwardParts, plan.batch * ((plan.height + 1) / 2))
        blockTiles = max(1, min(256, plan.workspaceLimit / (Self.positions * (inputChannels + outputChannels))))
    }

    private var tileRowsPerImage: Int { (height + 1) / 2 }
    private var tilesPerRow: Int { (width + 1) / 2 }
    /// Rows of tiles over the whole batch; a range of them covers a contiguous range of pixels.
    private var tileRows: Int { batch * tileRowsPerImage }
    /// The floats of the transformed weight, `U[ξ]` as `[C_out, C_in]` for each position.
    var transformedWeightCount: Int { Self.positions * outputChannels * inputChannels }

    /// The output pixels (rows of `[N·H·W, C]`) that the tile rows `tileRows` cover.
    private func pixels(ofTileRows tileRows: Range<Int>) -> Range<Int> {
        func firstPixel(_ tileRow: Int) -> Int {
            let (image, row) = tileRow.quotientAndRemainder(dividingBy: tileRowsPerImage)
            return (image * height + min(height, 2 * row)) * width
        }
        return firstPixel(tileRows.lowerBound)..<firstPixel(tileRows.upperBound)
    }

    // MARK: - Convolutions

    /// `output = conv(input, weight)`; `epilogue` runs on each block of output pixels right after
    /// it is written, on the thread `part` that wrote it.
    func forward(
        input: UnsafePointer<Float>, weight: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        epilogue: OutputBlockEpilogue?
    ) {
        Workspace.withScratch(count: transformedWeightCount) { transformed in
            transformWeight(weight, into: transformed.baseAddress!)
            correlate(
                input, channels: inputChannels, with: transformed.baseAddress!, flipped: false,
                into: output, channels: outputChannels, accumulate: false, epilogue: epilogue)
        }
    }

    /// The input gradient of ``forward(input:weight:output:epilogue:)``, written to `gradInput`
    /// (added to it when `accumulate` is true).
    func inputGradient(
        gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>,
        accumulate: Bool
    ) {
        Workspace.withScratch(count: transformedWeightCount) { transformed in
            transformWeight(weight, into: transformed.baseAddress!)
            correlate(
                gradOutput, channels: outputChannels, with: transformed.baseAddress!, flipped: true,
                into: gradInput, channels: inputChannels, accumulate: accumulate, epilogue: nil)
        }
    }

    /// The weight gradient `[C_out, 3, 3, C_in]` of ``forward(input:weight:output:epilogue:)``.
    func weightGradient(
        gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, gradWeight: UnsafeMutablePointer<Float>
    ) {
        let parts = threads
        let count = transformedWeightCount
        // Each part sums its tiles' products into its own transformed gradient; they are added in
        // part order, so the result does not depend on timing.
        Workspace.withScratch(count: parts * count) { sums in
            let sums = sums.baseAddress!
            inParallel(parts) { part in
                let partSums = sums + part * count
                var first = true
                forEachBlock(of: part, parts: parts, extraFloats: inputChannels) { block, tiles, inputTiles, outputTiles, zeros in
                    transformWindows(input, channels: inputChannels, tileRows: block, into: inputTiles, zeros: zeros)
                    transformGradOutput(gradOutput, tileRows: block, into: outputTiles)
                    for position in 0..<Self.positions {
                        // ΔU[ξ] (C_out × C_in) += dM[ξ]ᵀ · V[ξ]
                        GEMM.multiply(
                            transposeA: true, m: outputChannels, n: inputChannels, k: tiles,
                            a: outputTiles + position * tiles * outputChannels,
                            b: inputTiles + position * tiles * inputChannels, beta: first ? 0 : 1,
                            c: partSums + position * outputChannels * inputChannels, threads: 1)
                    }
                    first = false
                }
                if first { partSums.initialize(repeating: 0, count: count) }
            }
            for part in 1..<max(parts, 1) {
                let partial = sums + part * count
                for index in 0..<count { sums[index] += partial[index] }
            }
            untransformWeightGradient(sums, into: gradWeight)
        }
    }

    /// Calls `body(tileRows, tiles, inputTiles, outputTiles, zeros)` for the blocks of tile rows of
    /// part `part`, with that thread's scratch for the transformed tiles of both sides and
    /// `extraFloats` zeros.
    private func forEachBlock(
        of part: Int, parts: Int, extraFloats: Int,
        _ body: (Range<Int>, Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Float>) -> Void
    ) {
        let floatsPerTile = Self.positions * (inputChannels + outputChannels)
        let rowsPerBlock = max(1, blockTiles / tilesPerRow)
        let rows = share(part, of: parts, in: tileRows)
        let capacity = min(rows.count, rowsPerBlock) * tilesPerRow
        Workspace.withScratch(count: capacity * floatsPerTile + max(extraFloats, 1)) { scratch in
            let inputTiles = scratch.baseAddress!
            let outputTiles = inputTiles + capacity * Self.positions * inputChannels
            let zeros = outputTiles + capacity * Self.positions * outputChannels
            zeros.initialize(repeating: 0, count: extraFloats)
            for first in stride(from: rows.lowerBound, to: rows.upperBound, by: rowsPerBlock) {
                let block = first..<min(rows.upperBound, first + rowsPerBlock)
                body(block, block.count * tilesPerRow, inputTiles, outputTiles, zeros)
            }
        }
    }

    /// `destination = correlate(source, filters)` over blocks of tiles: input transform, 16 GEMMs
    /// with the transformed filters (`flipped`: read as the input gradient's flipped, transposed
    /// filters), output transform.
    private func correlate(
        _ source: UnsafePointer<Float>, channels sourceChannels: Int, with transformed: UnsafePointer<Float>,
        flipped: Bool, into destination: UnsafeMutablePointer<Float>, channels destinationChannels: Int,
        accumulate: Bool, epilogue: OutputBlockEpilogue?
    ) {
        let parts = threads
        inParallel(parts) { part in
            // Scratch is laid out for the forward direction; the input gradient swaps the roles.
            forEachBlock(of: part, parts: parts, extraFloats: sourceChannels) { block, tiles, forwardIn, forwardOut, zeros in
                let (sourceTiles, destinationTiles) = flipped ? (forwardOut, forwardIn) : (forwardIn, forwardOut)
                transformWindows(source, channels: sourceChannels, tileRows: block, into: sourceTiles, zeros: zeros)
                for position in 0..<Self.positions {
                    let filter = transformed + (flipped ? Self.flippedPosition(position) : position)
                        * outputChannels * inputChannels
                    GEMM.multiply(
                        transposeB: !flipped, m: tiles, n: destinationChannels, k: sourceChannels,
                        a: sourceTiles + position * tiles * sourceChannels, b: filter,
                        c: destinationTiles + position * tiles * destinationChannels, threads: 1)
                }
                transformOutput(
                    destinationTiles, channels: destinationChannels, tileRows: block, into: destination,
                    accumulate: accumulate)
                epilogue?(part, pixels(ofTileRows: block))
            }
        }
    }

    /// The position whose transformed filter is the flipped filter's: rows and columns 0 ↔ 3
    /// (`G·J = P·G` for the reversal `J` and the swap `P`).
    private static func flippedPosition(_ position: Int) -> Int {
        func swapped(_ index: Int) -> Int { index == 0 ? 3 : index == 3 ? 0 : index }
        return swapped(position / 4) * 4 + swapped(position % 4)
    }

    // MARK: - Transforms

    /// `U[ξ] = (G g Gᵀ)[ξ]` for every filter `g` of the OHWI `weight`, as `[ξ][C_out][C_in]`.
    private func transformWeight(_ weight: UnsafePointer<Float>, into transformed: UnsafeMutablePointer<Float>) {
        let plane = outputChannels * inputChannels
        let channels = inputChannels
        inRowBands(rows: outputChannels, rowLength: 9 * channels) { filters in
            withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 12) { rows in
                for filter in filters {
                    let taps = weight + filter * 9 * channels
                    for c in stride(from: 0, to: channels, by: Lanes.scalarCount) {
                        let lanes = min(Lanes.scalarCount, channels - c)
                        // G g: three taps of each column become four rows.
                        for column in 0..<3 {
                            let (g0, g1, g2) = (
                                load(taps + column * channels + c, lanes),
                                load(taps + (3 + column) * channels + c, lanes),
                                load(taps + (6 + column) * channels + c, lanes))
                            let (r0, r1, r2, r3) = filterTransform(g0, g1, g2)
                            (rows[column], rows[3 + column], rows[6 + column], rows[9 + column]) = (r0, r1, r2, r3)
                        }
                        // (G g) Gᵀ: the same along each row.
                        for row in 0..<4 {
                            let (u0, u1, u2, u3) = filterTransform(rows[3 * row], rows[3 * row + 1], rows[3 * row + 2])
                            let target = transformed + filter * channels + c
                            store(u0, target + (4 * row) * plane, lanes)
                            store(u1, target + (4 * row + 1) * plane, lanes)
                            store(u2, target + (4 * row + 2) * plane, lanes)
                            store(u3, target + (4 * row + 3) * plane, lanes)
                        }
                    }
                }
            }
        }
    }

    /// `ΔW = Gᵀ ΔU G` for the transformed weight gradient `[ξ][C_out][C_in]`, written OHWI.
    private func untransformWeightGradient(_ transformed: UnsafePointer<Float>, into gradWeight: UnsafeMutablePointer<Float>) {
        let plane = outputChannels * inputChannels
        let channels = inputChannels
        inRowBands(rows: outputChannels, rowLength: 9 * channels) { filters in
            withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 12) { rows in
                for filter in filters {
                    let taps = gradWeight + filter * 9 * channels
                    for c in stride(from: 0, to: channels, by: Lanes.scalarCount) {
                        let lanes = min(Lanes.scalarCount, channels - c)
                        let source = transformed + filter * channels + c
                        // Gᵀ ΔU: four rows of each column become three.
                        for column in 0..<4 {
                            let (t0, t1, t2) = filterTransformTransposed(
                                load(source + column * plane, lanes), load(source + (4 + column) * plane, lanes),
                                load(source + (8 + column) * plane, lanes), load(source + (12 + column) * plane, lanes))
                            (rows[column], rows[4 + column], rows[8 + column]) = (t0, t1, t2)
                        }
                        // (Gᵀ ΔU) G: the same along each row.
                        for row in 0..<3 {
                            let (w0, w1, w2) = filterTransformTransposed(
                                rows[4 * row], rows[4 * row + 1], rows[4 * row + 2], rows[4 * row + 3])
                            store(w0, taps + (3 * row) * channels + c, lanes)
                            store(w1, taps + (3 * row + 1) * channels + c, lanes)
                            store(w2, taps + (3 * row + 2) * channels + c, lanes)
                        }
                    }
                }
            }
        }
    }

    /// `V[ξ] = (Bᵀ d B)[ξ]` for the 4×4 windows `d` (zeros outside the image) of the tile rows
    /// `tileRows` of `source`, as `[ξ][tile][channel]`.
    private func transformWindows(
        _ source: UnsafePointer<Float>, channels: Int, tileRows: Range<Int>,
        into tiles: UnsafeMutablePointer<Float>, zeros: UnsafePointer<Float>
    ) {
        let plane = tileRows.count * tilesPerRow * channels
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 16) { window in
            withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 16) { rows in
                var tile = 0
                for tileRow in tileRows {
                    let (image, row) = tileRow.quotientAndRemainder(dividingBy: tileRowsPerImage)
                    for column in 0..<tilesPerRow {
                        for i in 0..<4 {
                            let y = 2 * row - 1 + i
                            for j in 0..<4 {
                                let x = 2 * column - 1 + j
                                let inside = y >= 0 && y < height && x >= 0 && x < width
                                window[4 * i + j] = inside ? source + ((image * height + y) * width + x) * channels : zeros
                            }
                        }
                        let target = tiles + tile * channels
                        for c in stride(from: 0, to: channels, by: Lanes.scalarCount) {
                            let lanes = min(Lanes.scalarCount, channels - c)
                            // Bᵀ d, column by column.
                            for j in 0..<4 {
                                let (r0, r1, r2, r3) = windowTransform(
                                    load(window[j] + c, lanes), load(window[4 + j] + c, lanes),
                                    load(window[8 + j] + c, lanes), load(window[12 + j] + c, lanes))
                                (rows[j], rows[4 + j], rows[8 + j], rows[12 + j]) = (r0, r1, r2, r3)
                            }
                            // (Bᵀ d) B, row by row.
                            for i in 0..<4 {
                                let (v0, v1, v2, v3) = windowTransform(
                                    rows[4 * i], rows[4 * i + 1], rows[4 * i + 2], rows[4 * i + 3])
                                let base = target + c + 4 * i * plane
                                store(v0, base, lanes)
                                store(v1, base + plane, lanes)
                                store(v2, base + 2 * plane, lanes)
                                store(v3, base + 3 * plane, lanes)
                            }
                        }
                        tile += 1
                    }
                }
            }
        }
    }

    /// `dM[ξ] = (A dY Aᵀ)[ξ]` for the 2×2 output-gradient tiles (zeros outside the image) of the
    /// tile rows `tileRows`, as `[ξ][tile][C_out]`.
    private func transformGradOutput(
        _ gradOutput: UnsafePointer<Float>, tileRows: Range<Int>, into tiles: UnsafeMutablePointer<Float>
    ) {
        let channels = outputChannels
        let plane = tileRows.count * tilesPerRow * channels
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 8) { rows in
            var tile = 0
            for tileRow in tileRows {
                let (image, row) = tileRow.quotientAndRemainder(dividingBy: tileRowsPerImage)
                for column in 0..<tilesPerRow {
                    let target = tiles + tile * channels
                    for c in stride(from: 0, to: channels, by: Lanes.scalarCount) {
                        let lanes = min(Lanes.scalarCount, channels - c)
                        func pixel(_ i: Int, _ j: Int) -> Lanes {
                            let (y, x) = (2 * row + i, 2 * column + j)
                            guard y < height, x < width else { return Lanes() }
                            return load(gradOutput + ((image * height + y) * width + x) * channels + c, lanes)
                        }
                        // A dY, column by column.
                        for j in 0..<2 {
                            let (r0, r1, r2, r3) = outputTransformTransposed(pixel(0, j), pixel(1, j))
                            (rows[j], rows[2 + j], rows[4 + j], rows[6 + j]) = (r0, r1, r2, r3)
                        }
                        // (A dY) Aᵀ, row by row.
                        for i in 0..<4 {
                            let (m0, m1, m2, m3) = outputTransformTransposed(rows[2 * i], rows[2 * i + 1])
                            let base = target + c + 4 * i * plane
                            store(m0, base, lanes)
                            store(m1, base + plane, lanes)
                            store(m2, base + 2 * plane, lanes)
                            store(m3, base + 3 * plane, lanes)
                        }
                    }
                    tile += 1
                }
            }
        }
    }

    /// `Y = Aᵀ M A` for the transformed products `[ξ][tile][channel]` of the tile rows `tileRows`,
    /// written (or added, when `accumulate`) to the in-image pixels of `destination`.
    private func transformOutput(
        _ tiles: UnsafePointer<Float>, channels: Int, tileRows: Range<Int>,
        into destination: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        let plane = tileRows.count * tilesPerRow * channels
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 8) { rows in
            var tile = 0
            for tileRow in tileRows {
                let (image, row) = tileRow.quotientAndRemainder(dividingBy: tileRowsPerImage)
                let outputRows = min(2, height - 2 * row)
                for column in 0..<tilesPerRow {
                    let outputColumns = min(2, width - 2 * column)
                    let source = tiles + tile * channels
                    let corner = destination + ((image * height + 2 * row) * width + 2 * column) * channels
                    for c in stride(from: 0, to: channels, by: Lanes.scalarCount) {
                        let lanes = min(Lanes.scalarCount, channels - c)
                        // Aᵀ M, column by column.
                        for j in 0..<4 {
                            let (s0, s1) = outputTransform(
                                load(source + c + j * plane, lanes), load(source + c + (4 + j) * plane, lanes),
                                load(source + c + (8 + j) * plane, lanes), load(source + c + (12 + j) * plane, lanes))
                            (rows[j], rows[4 + j]) = (s0, s1)
                        }
                        // (Aᵀ M) A, row by row.
                        for i in 0..<outputRows {
                            let (y0, y1) = outputTransform(rows[4 * i], rows[4 * i + 1], rows[4 * i + 2], rows[4 * i + 3])
                            let pixel = corner + i * width * channels + c
                            storeOrAdd(y0, pixel, lanes, accumulate)
                            if outputColumns == 2 { storeOrAdd(y1, pixel + channels, lanes, accumulate) }
                        }
                    }
                    tile += 1
                }
            }
        }
    }
}

// MARK: - The F(2×2, 3×3) matrices, applied to vectors of channels

private typealias Lanes = SIMD8<Float>

/// `Bᵀ (d0, d1, d2, d3)`, `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`.
@inline(__always)
private func windowTransform(_ d0: Lanes, _ d1: Lanes, _ d2: Lanes, _ d3: Lanes) -> (Lanes, Lanes, Lanes, Lanes) {
    (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
}

/// `G (g0, g1, g2)`, `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`.
@inline(__always)
private func filterTransform(_ g0: Lanes, _ g1: Lanes, _ g2: Lanes) -> (Lanes, Lanes, Lanes, Lanes) {
    let outer = 0.5 * (g0 + g2)
    return (g0, outer + 0.5 * g1, outer - 0.5 * g1, g2)
}

/// `Gᵀ (u0, u1, u2, u3)`.
@inline(__always)
private func filterTransformTransposed(_ u0: Lanes, _ u1: Lanes, _ u2: Lanes, _ u3: Lanes) -> (Lanes, Lanes, Lanes) {
    let (sum, difference) = (0.5 * (u1 + u2), 0.5 * (u1 - u2))
    return (u0 + sum, difference, sum + u3)
}

/// `Aᵀ (m0, m1, m2, m3)`, `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`.
@inline(__always)
private func outputTransform(_ m0: Lanes, _ m1: Lanes, _ m2: Lanes, _ m3: Lanes) -> (Lanes, Lanes) {
    (m0 + m1 + m2, m1 - m2 - m3)
}

/// `A (y0, y1)`.
@inline(__always)
private func outputTransformTransposed(_ y0: Lanes, _ y1: Lanes) -> (Lanes, Lanes, Lanes, Lanes) {
    (y0, y0 + y1, y0 - y1, -y1)
}

/// The first `lanes` floats at `pointer` (zeros after them).
@inline(__always)
private func load(_ pointer: UnsafePointer<Float>, _ lanes: Int) -> Lanes {
    if lanes == Lanes.scalarCount { return UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self) }
    var vector = Lanes()
    for lane in 0..<lanes { vector[lane] = pointer[lane] }
    return vector
}

/// Writes the first `lanes` lanes of `vector` to `pointer`.
@inline(__always)
private func store(_ vector: Lanes, _ pointer: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == Lanes.scalarCount { return UnsafeMutableRawPointer(pointer).storeBytes(of: vector, as: Lanes.self) }
    for lane in 0..<lanes { pointer[lane] = vector[lane] }
}

@inline(__always)
private func storeOrAdd(_ vector: Lanes, _ pointer: UnsafeMutablePointer<Float>, _ lanes: Int, _ accumulate: Bool) {
    store(accumulate ? vector + load(pointer, lanes) : vector, pointer, lanes)
}
