// Winograd convolution for 3×3 stride-1 layers, one algorithm in marked sections: the tiled forward,
// input-gradient and weight-gradient passes, and the F(2×2, 3×3) and F(4×4, 3×3) transform matrices.

/// 3×3 stride-1 convolutions with one pixel of zero padding by Winograd's minimal filtering
/// F(m×m, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
///
/// Each m×m block of output pixels (a *tile*) is computed from the α×α input window around it
/// (`α = m + 2`) as `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`. Summed over input channels, the element-wise
/// product becomes α² GEMMs, one per position `ξ` of the transformed window:
/// `M[ξ] (tiles × C_out) = V[ξ] (tiles × C_in) · U[ξ]ᵀ`, with `U[ξ]` stored `[C_out, C_in]`. Per
/// output pixel and channel pair that is `α²/m²` multiply-adds where im2col needs 9: 4 for
/// F(2×2, 3×3), 2.25 for F(4×4, 3×3). The transforms are additions and small multiples of NHWC
/// channel vectors, done on blocks of tiles that stay in cache.
///
/// The input gradient is the same correlation on the output gradient with the filters flipped and
/// their channels swapped (a second weight transform). The weight gradient is
/// `Gᵀ [Σ_tiles V[ξ]ᵀ · (A dY Aᵀ)[ξ]] G`, α² GEMMs as well.
///
/// Rounding grows with the transforms' coefficients: against float64 direct sums the tests measure
/// errors up to 4e-7 of the largest value with 2×2 tiles and 3.5e-6 with 4×4 tiles, and check both
/// sizes' gradients with finite differences.
struct WinogradConvolution<Tiling: WinogradTiling> {
    let batch: Int, height: Int, width: Int, inputChannels: Int, outputChannels: Int
    /// The threads a call splits its rows of tiles over, each running its own single-threaded GEMMs.
    let threads: Int
    /// The tiles one thread transforms and multiplies at a time (fewer when the workspace limit
    /// says so, which the tests use to exercise many blocks).
    let blockTiles: Int

    private static var tile: Int { Tiling.outputTile }
    private static var window: Int { Tiling.outputTile + 2 }
    private static var positions: Int { window * window }

    init(plan: ConvolutionPlan) {
        (batch, height, width) = (plan.batch, plan.height, plan.width)
        (inputChannels, outputChannels) = (plan.inputChannels, plan.outputChannels)
        let tileRows = plan.batch * ((plan.height + Tiling.outputTile - 1) / Tiling.outputTile)
        threads = min(plan.forwardParts, tileRows)
        blockTiles = max(
            1, min(Tiling.blockTiles, plan.workspaceLimit / (Self.positions * (inputChannels + outputChannels))))
    }

    private var tileRowsPerImage: Int { (height + Self.tile - 1) / Self.tile }
    private var tilesPerRow: Int { (width + Self.tile - 1) / Self.tile }
    /// Rows of tiles over the whole batch; a range of them covers a contiguous range of pixels.
    private var tileRows: Int { batch * tileRowsPerImage }
    /// The floats of a transformed weight, `U[ξ]` as `[C_out, C_in]` for each position.
    private var transformedWeightCount: Int { Self.positions * outputChannels * inputChannels }

    /// The output pixels (rows of `[N·H·W, C]`) that the tile rows `tileRows` cover.
    private func pixels(ofTileRows tileRows: Range<Int>) -> Range<Int> {
        func firstPixel(_ tileRow: Int) -> Int {
            let (image, row) = tileRow.quotientAndRemainder(dividingBy: tileRowsPerImage)
            return (image * height + min(height, Self.tile * row)) * width
        }
        return firstPixel(tileRows.lowerBound)..<firstPixel(tileRows.upperBound)
    }

    // MARK: - Convolutions

    /// See ``WinogradTiling/forward(plan:input:weight:output:epilogue:)``.
    func forward(
        input: UnsafePointer<Float>, weight: Tensor, output: UnsafeMutablePointer<Float>,
        epilogue: OutputBlockEpilogue?
    ) {
        correlate(
            input, channels: inputChannels, with: weight, flipped: false, into: output, channels: outputChannels,
            accumulate: false, epilogue: epilogue)
    }

    /// See ``WinogradTiling/inputGradient(plan:gradOutput:weight:gradInput:accumulate:)``.
    func inputGradient(
        gradOutput: UnsafePointer<Float>, weight: Tensor, gradInput: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        correlate(
            gradOutput, channels: outputChannels, with: weight, flipped: true, into: gradInput, channels: inputChannels,
            accumulate: accumulate, epilogue: nil)
    }

    /// See ``WinogradTiling/weightGradient(plan:gradOutput:input:gradWeight:)``.
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
                forEachBlock(of: part, parts: parts, zeros: inputChannels) {
                    block, tiles, inputTiles, outputTiles, zeros in
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
            addPartialSums(sums + count, parts: parts - 1, rows: 1, columns: count, into: sums, totalStride: count)
            untransformWeightGradient(sums, into: gradWeight)
        }
    }

    /// Calls `body(tileRows, tiles, inputTiles, outputTiles, zeros)` for the blocks of tile rows of
    /// part `part`, with that thread's scratch for the transformed tiles of both sides and a
    /// vector of `zeros` zeros.
    private func forEachBlock(
        of part: Int, parts: Int, zeros zeroCount: Int,
        _ body: (Range<Int>, Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Float>) ->
            Void
    ) {
        let rowsPerBlock = max(1, blockTiles / tilesPerRow)
        let rows = share(part, of: parts, in: tileRows)
        let capacity = min(rows.count, rowsPerBlock) * tilesPerRow
        let inputFloats = capacity * Self.positions * inputChannels
        let outputFloats = capacity * Self.positions * outputChannels
        Workspace.withScratch(count: inputFloats + outputFloats + zeroCount) { scratch in
            let inputTiles = scratch.baseAddress!
            let outputTiles = inputTiles + inputFloats
            let zeros = outputTiles + outputFloats
            zeros.initialize(repeating: 0, count: zeroCount)
            for first in stride(from: rows.lowerBound, to: rows.upperBound, by: rowsPerBlock) {
                let block = first..<min(rows.upperBound, first + rowsPerBlock)
                body(block, block.count * tilesPerRow, inputTiles, outputTiles, zeros)
            }
        }
    }

    /// `destination = correlate(source, filters of weight)` over blocks of tiles: window
    /// transform, α² GEMMs with the transformed filters, output transform. `flipped`: the filters
    /// are the input gradient's (rotated, their transform `[ξ][C_out][C_in]` read as `C_out × C_in`),
    /// and the scratch roles swap.
    private func correlate(
        _ source: UnsafePointer<Float>, channels sourceChannels: Int, with weight: Tensor,
        flipped: Bool, into destination: UnsafeMutablePointer<Float>, channels destinationChannels: Int,
        accumulate: Bool, epilogue: OutputBlockEpilogue?
    ) {
        // Each position's filters are transformed and prepared for the GEMMs once, not for every block; in
        // bf16 once per version of the weight (``ConvertedWeights``).
        let transform: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void = { weight, transformed in
            transformWeight(weight, flipped: flipped, into: transformed)
        }
        GEMM.withWeightOperands(
            weight, derivation: .winograd(tile: Self.tile, flipped: flipped), count: Self.positions,
            transposeB: !flipped, k: sourceChannels, n: destinationChannels,
            matrixStride: outputChannels * inputChannels, derive: transform
        ) { filters in
            let parts = threads
            inParallel(parts) { part in
                forEachBlock(of: part, parts: parts, zeros: sourceChannels) {
                    block, tiles, forwardIn, forwardOut, zeros in
                    let (sourceTiles, destinationTiles) = flipped ? (forwardOut, forwardIn) : (forwardIn, forwardOut)
                    transformWindows(source, channels: sourceChannels, tileRows: block, into: sourceTiles, zeros: zeros)
                    for position in 0..<Self.positions {
                        GEMM.multiply(
                            m: tiles, a: sourceTiles + position * tiles * sourceChannels, b: filters[position],
                            c: destinationTiles + position * tiles * destinationChannels, threads: 1)
                    }
                    transformOutput(
                        destinationTiles, channels: destinationChannels, tileRows: block, into: destination,
                        accumulate: accumulate)
                    epilogue?(part, pixels(ofTileRows: block))
                }
            }
        }
    }

    // MARK: - Transforms

    /// `U[ξ] = (G g Gᵀ)[ξ]` for every filter `g` of the OHWI `weight` (rotated by 180° when
    /// `flipped`), as `[ξ][C_out][C_in]`.
    private func transformWeight(
        _ weight: UnsafePointer<Float>, flipped: Bool, into transformed: UnsafeMutablePointer<Float>
    ) {
        let (plane, channels, window) = (outputChannels * inputChannels, inputChannels, Self.window)
        inRowBands(rows: outputChannels, rowLength: 9 * channels) { filters in
            withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 3 * window) { rows in
                for filter in filters {
                    let target = transformed + filter * channels
                    for c in stride(from: 0, to: channels, by: Lanes.scalarCount) {
                        let lanes = min(Lanes.scalarCount, channels - c)
                        func tap(_ row: Int, _ column: Int) -> Lanes {
                            let (r, s) = flipped ? (2 - row, 2 - column) : (row, column)
                            return load(weight + (filter * 9 + 3 * r + s) * channels + c, lanes)
                        }
                        // G g: the three taps of each column become α rows.
                        for column in 0..<3 {
                            Tiling.filter({ tap($0, column) }, { rows[3 * $0 + column] = $1 })
                        }
                        // (G g) Gᵀ: the same along each row.
                        for row in 0..<window {
                            Tiling.filter(
                                { rows[3 * row + $0] }, { store($1, target + (window * row + $0) * plane + c, lanes) })
                        }
                    }
                }
            }
        }
    }

    /// `ΔW = Gᵀ ΔU G` for the transformed weight gradient `[ξ][C_out][C_in]`, written OHWI.
    private func untransformWeightGradient(
        _ transformed: UnsafePointer<Float>, into gradWeight: UnsafeMutablePointer<Float>
    ) {
        let (plane, channels, window) = (outputChannels * inputChannels, inputChannels, Self.window)
        inRowBands(rows: outputChannels, rowLength: 9 * channels) { filters in
            withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 3 * window) { rows in
                for filter in filters {
                    let (source, taps) = (transformed + filter * channels, gradWeight + filter * 9 * channels)
                    for c in stride(from: 0, to: channels, by: Lanes.scalarCount) {
                        let lanes = min(Lanes.scalarCount, channels - c)
                        // Gᵀ ΔU: the α rows of each column become three.
                        for column in 0..<window {
                            Tiling.filterTransposed(
                                { load(source + (window * $0 + column) * plane + c, lanes) },
                                { rows[window * $0 + column] = $1 })
                        }
                        // (Gᵀ ΔU) G: the same along each row.
                        for row in 0..<3 {
                            Tiling.filterTransposed(
                                { rows[window * row + $0] }, { store($1, taps + (3 * row + $0) * channels + c, lanes) })
                        }
                    }
                }
            }
        }
    }

    /// `V[ξ] = (Bᵀ d B)[ξ]` for the α×α windows `d` (zeros outside the image) of the tile rows
    /// `tileRows` of `source`, as `[ξ][tile][channel]`.
    private func transformWindows(
        _ source: UnsafePointer<Float>, channels: Int, tileRows: Range<Int>,
        into tiles: UnsafeMutablePointer<Float>, zeros: UnsafePointer<Float>
    ) {
        let (plane, window, tile) = (tileRows.count * tilesPerRow * channels, Self.window, Self.tile)
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: Self.positions) { pixels in
            withUnsafeTemporaryAllocation(of: Lanes.self, capacity: Self.positions) { rows in
                var index = 0
                for tileRow in tileRows {
                    let (image, row) = tileRow.quotientAndRemainder(dividingBy: tileRowsPerImage)
                    for column in 0..<tilesPerRow {
                        for i in 0..<window {
                            let y = tile * row - 1 + i
                            for j in 0..<window {
                                let x = tile * column - 1 + j
                                let inside = y >= 0 && y < height && x >= 0 && x < width
                                pixels[window * i + j] =
                                    inside ? source + ((image * height + y) * width + x) * channels : zeros
                            }
                        }
                        let target = tiles + index * channels
                        for c in stride(from: 0, to: channels, by: Lanes.scalarCount) {
                            let lanes = min(Lanes.scalarCount, channels - c)
                            // Bᵀ d, column by column.
                            for j in 0..<window {
                                Tiling.window(
                                    { load(pixels[window * $0 + j] + c, lanes) }, { rows[window * $0 + j] = $1 })
                            }
                            // (Bᵀ d) B, row by row.
                            for i in 0..<window {
                                Tiling.window(
                                    { rows[window * i + $0] },
                                    { store($1, target + (window * i + $0) * plane + c, lanes) })
                            }
                        }
                        index += 1
                    }
                }
            }
        }
    }

    /// `dM[ξ] = (A dY Aᵀ)[ξ]` for the m×m output-gradient tiles (zeros outside the image) of the
    /// tile rows `tileRows`, as `[ξ][tile][C_out]`.
    private func transformGradOutput(
        _ gradOutput: UnsafePointer<Float>, tileRows: Range<Int>, into tiles: UnsafeMutablePointer<Float>
    ) {
        let (channels, window, tile) = (outputChannels, Self.window, Self.tile)
        let plane = tileRows.count * tilesPerRow * channels
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: window * tile) { rows in
            var index = 0
            for tileRow in tileRows {
                let (image, row) = tileRow.quotientAndRemainder(dividingBy: tileRowsPerImage)
                for column in 0..<tilesPerRow {
                    let target = tiles + index * channels
                    for c in stride(from: 0, to: channels, by: Lanes.scalarCount) {
                        let lanes = min(Lanes.scalarCount, channels - c)
                        func pixel(_ i: Int, _ j: Int) -> Lanes {
                            let (y, x) = (tile * row + i, tile * column + j)
                            guard y < height, x < width else { return Lanes() }
                            return load(gradOutput + ((image * height + y) * width + x) * channels + c, lanes)
                        }
                        // A dY, column by column.
                        for j in 0..<tile {
                            Tiling.outputTransposed({ pixel($0, j) }, { rows[tile * $0 + j] = $1 })
                        }
                        // (A dY) Aᵀ, row by row.
                        for i in 0..<window {
                            Tiling.outputTransposed(
                                { rows[tile * i + $0] }, { store($1, target + (window * i + $0) * plane + c, lanes) })
                        }
                    }
                    index += 1
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
        let (plane, window, tile) = (tileRows.count * tilesPerRow * channels, Self.window, Self.tile)
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: window * tile) { rows in
            var index = 0
            for tileRow in tileRows {
                let (image, row) = tileRow.quotientAndRemainder(dividingBy: tileRowsPerImage)
                let outputRows = min(tile, height - tile * row)
                for column in 0..<tilesPerRow {
                    let outputColumns = min(tile, width - tile * column)
                    let source = tiles + index * channels
                    let corner = destination + ((image * height + tile * row) * width + tile * column) * channels
                    for c in stride(from: 0, to: channels, by: Lanes.scalarCount) {
                        let lanes = min(Lanes.scalarCount, channels - c)
                        // Aᵀ M, column by column.
                        for j in 0..<window {
                            Tiling.output(
                                { load(source + c + (window * $0 + j) * plane, lanes) }, { rows[window * $0 + j] = $1 })
                        }
                        // (Aᵀ M) A, row by row, keeping the pixels inside the image.
                        for i in 0..<outputRows {
                            let pixel = corner + i * width * channels + c
                            Tiling.output({ rows[window * i + $0] }) { j, value in
                                guard j < outputColumns else { return }
                                let target = pixel + j * channels
                                store(accumulate ? value + load(target, lanes) : value, target, lanes)
                            }
                        }
                    }
                    index += 1
                }
            }
        }
    }
}

extension ConvolutionPlan {
    /// The Winograd tiling this plan runs as, or nil when it runs as im2col: 3×3 stride-1
    /// convolutions with one pixel of padding. F(4×4, 3×3) where the map is at least
    /// ``WinogradLargeTiles/minimumExtent`` pixels on each side, F(2×2, 3×3) on smaller maps, where
    /// 4×4 tiles hang over the edge (16² pixels computed for 14²).
    ///
    /// In ``Precision/bf16`` (transforms in fp32, the products' operands rounded to bf16) always
    /// F(2×2, 3×3) unless a tile is forced: its largest error measured 0.29× the bound of a direct
    /// bf16 convolution, F(4×4, 3×3)'s 5.8× (BFloat16ConvolutionTests, docs/PERFORMANCE.md).
    /// Never in ``Precision/reference``, whose products are im2col's, summed in float64.
    var winograd: (any WinogradTiling.Type)? {
        guard geometry.kernelSize == 3, geometry.stride == 1, geometry.padding == 1, Precision.current != .reference
        else { return nil }
        let largeTiles = Precision.current == .fp32 && min(height, width) >= WinogradLargeTiles.minimumExtent
        let tile = winogradTile ?? (largeTiles ? 4 : 2)
        return tile == 4 ? WinogradLargeTiles.self : WinogradSmallTiles.self
    }
}

// MARK: - The transform matrices, applied to vectors of channels

/// The 1-D transforms of F(m×m, 3×3): each reads its inputs through `x(i)` and hands its outputs
/// to `y(i, value)`, so one function serves rows, columns, loads and stores.
protocol WinogradTiling {
    /// `m`, the output pixels per tile side; the input window is `m + 2`.
    static var outputTile: Int { get }
    /// The tiles one thread handles at a time.
    static var blockTiles: Int { get }
    /// `Bᵀ d`: α → α.
    static func window(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void)
    /// `G g`: 3 → α.
    static func filter(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void)
    /// `Gᵀ u`: α → 3.
    static func filterTransposed(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void)
    /// `Aᵀ m`: α → m.
    static func output(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void)
    /// `A y`: m → α.
    static func outputTransposed(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void)

    // The products, requirements so that a call through `any WinogradTiling.Type` reaches code
    // specialised for the tiling (a generic conformance's witnesses would not be).

    /// `output = conv(input, weight)`; `epilogue` runs on each block of output pixels right after
    /// it is written, on the thread `part` that wrote it.
    static func forward(
        plan: ConvolutionPlan, input: UnsafePointer<Float>, weight: Tensor, output: UnsafeMutablePointer<Float>,
        epilogue: OutputBlockEpilogue?)
    /// The input gradient, written to `gradInput` (added to it when `accumulate` is true).
    static func inputGradient(
        plan: ConvolutionPlan, gradOutput: UnsafePointer<Float>, weight: Tensor, gradInput: UnsafeMutablePointer<Float>,
        accumulate: Bool)
    /// The weight gradient `[C_out, 3, 3, C_in]`.
    static func weightGradient(
        plan: ConvolutionPlan, gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
        gradWeight: UnsafeMutablePointer<Float>)
}

extension WinogradTiling {
    static func forward(
        plan: ConvolutionPlan, input: UnsafePointer<Float>, weight: Tensor, output: UnsafeMutablePointer<Float>,
        epilogue: OutputBlockEpilogue?
    ) {
        WinogradConvolution<Self>(plan: plan).forward(input: input, weight: weight, output: output, epilogue: epilogue)
    }

    static func inputGradient(
        plan: ConvolutionPlan, gradOutput: UnsafePointer<Float>, weight: Tensor, gradInput: UnsafeMutablePointer<Float>,
        accumulate: Bool
    ) {
        WinogradConvolution<Self>(plan: plan).inputGradient(
            gradOutput: gradOutput, weight: weight, gradInput: gradInput, accumulate: accumulate)
    }

    static func weightGradient(
        plan: ConvolutionPlan, gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
        gradWeight: UnsafeMutablePointer<Float>
    ) {
        WinogradConvolution<Self>(plan: plan).weightGradient(
            gradOutput: gradOutput, input: input, gradWeight: gradWeight)
    }
}

/// F(2×2, 3×3) (interpolation points 0, 1, −1, ∞): only additions, subtractions and halves.
enum WinogradSmallTiles: WinogradTiling {
    static var outputTile: Int { 2 }
    /// Measured on ghostnet101's shapes with two threads: 128–256 tiles ran 5–30 % faster than
    /// blocks of 1024 tiles or of 8 MiB, because the transformed tiles stay in L2.
    static var blockTiles: Int { 256 }

    /// `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`.
    @inline(__always)
    static func window(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void) {
        let (d0, d1, d2, d3) = (x(0), x(1), x(2), x(3))
        y(0, d0 - d2)
        y(1, d1 + d2)
        y(2, d2 - d1)
        y(3, d1 - d3)
    }

    /// `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`.
    @inline(__always)
    static func filter(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void) {
        let (g0, g1, g2) = (x(0), x(1), x(2))
        let outer = 0.5 * (g0 + g2)
        y(0, g0)
        y(1, outer + 0.5 * g1)
        y(2, outer - 0.5 * g1)
        y(3, g2)
    }

    @inline(__always)
    static func filterTransposed(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void) {
        let (u0, u1, u2, u3) = (x(0), x(1), x(2), x(3))
        let (sum, difference) = (0.5 * (u1 + u2), 0.5 * (u1 - u2))
        y(0, u0 + sum)
        y(1, difference)
        y(2, sum + u3)
    }

    /// `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`.
    @inline(__always)
    static func output(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void) {
        let (m0, m1, m2, m3) = (x(0), x(1), x(2), x(3))
        y(0, m0 + m1 + m2)
        y(1, m1 - m2 - m3)
    }

    @inline(__always)
    static func outputTransposed(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void) {
        let (y0, y1) = (x(0), x(1))
        y(0, y0)
        y(1, y0 + y1)
        y(2, y0 - y1)
        y(3, -y1)
    }
}

/// F(4×4, 3×3) (interpolation points 0, 1, −1, 2, −2, ∞), as in Lavin & Gray.
enum WinogradLargeTiles: WinogradTiling {
    static var outputTile: Int { 4 }
    /// Blocks of 32–256 tiles measured within the noise of each other.
    static var blockTiles: Int { 128 }
    /// The smallest map side that uses 4×4 tiles. Measured on ghostnet101's shapes (batch 16, two
    /// threads, one process): 1.4–1.6× the speed of 2×2 tiles on the 56² and 28² maps, but only
    /// 1.0–1.13× on the 14² and 7² ones, where the smaller rounding error of 2×2 tiles is worth more.
    static var minimumExtent: Int { 28 }

    /// `Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0], [0, −2, −1, 2, 1, 0],
    /// [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]]`.
    @inline(__always)
    static func window(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void) {
        let (d0, d1, d2, d3, d4, d5) = (x(0), x(1), x(2), x(3), x(4), x(5))
        let (evenSum, oddSum) = (d4 - 4 * d2, d3 - 4 * d1)
        let (evenSmall, oddSmall) = (d4 - d2, 2 * (d3 - d1))
        y(0, 4 * d0 - 5 * d2 + d4)
        y(1, evenSum + oddSum)
        y(2, evenSum - oddSum)
        y(3, evenSmall + oddSmall)
        y(4, evenSmall - oddSmall)
        y(5, 4 * d1 - 5 * d3 + d5)
    }

    /// `G = [[¼, 0, 0], [−⅙, −⅙, −⅙], [−⅙, ⅙, −⅙], [1/24, 1/12, ⅙], [1/24, −1/12, ⅙], [0, 0, 1]]`.
    @inline(__always)
    static func filter(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void) {
        let (g0, g1, g2) = (x(0), x(1), x(2))
        let (outer, middle) = (-(g0 + g2) / 6, -g1 / 6)
        let (outerSmall, middleSmall) = (g0 / 24 + g2 / 6, g1 / 12)
        y(0, g0 / 4)
        y(1, outer + middle)
        y(2, outer - middle)
        y(3, outerSmall + middleSmall)
        y(4, outerSmall - middleSmall)
        y(5, g2)
    }

    @inline(__always)
    static func filterTransposed(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void) {
        let (u0, u1, u2, u3, u4, u5) = (x(0), x(1), x(2), x(3), x(4), x(5))
        let (sumLarge, differenceLarge) = (u1 + u2, u1 - u2)
        let (sumSmall, differenceSmall) = (u3 + u4, u3 - u4)
        y(0, u0 / 4 - sumLarge / 6 + sumSmall / 24)
        y(1, -differenceLarge / 6 + differenceSmall / 12)
        y(2, -sumLarge / 6 + sumSmall / 6 + u5)
    }

    /// `Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0], [0, 1, −1, 8, −8, 1]]`.
    @inline(__always)
    static func output(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void) {
        let (m0, m1, m2, m3, m4, m5) = (x(0), x(1), x(2), x(3), x(4), x(5))
        let (sumNear, differenceNear) = (m1 + m2, m1 - m2)
        let (sumFar, differenceFar) = (m3 + m4, m3 - m4)
        y(0, m0 + sumNear + sumFar)
        y(1, differenceNear + 2 * differenceFar)
        y(2, sumNear + 4 * sumFar)
        y(3, differenceNear + 8 * differenceFar + m5)
    }

    @inline(__always)
    static func outputTransposed(_ x: (Int) -> Lanes, _ y: (Int, Lanes) -> Void) {
        let (y0, y1, y2, y3) = (x(0), x(1), x(2), x(3))
        let (evenNear, oddNear) = (y0 + y2, y1 + y3)
        let (evenFar, oddFar) = (y0 + 4 * y2, 2 * y1 + 8 * y3)
        y(0, y0)
        y(1, evenNear + oddNear)
        y(2, evenNear - oddNear)
        y(3, evenFar + oddFar)
        y(4, evenFar - oddFar)
        y(5, y3)
    }
}

/// The channel vector the transforms work on.
typealias Lanes = SIMD8<Float>

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
