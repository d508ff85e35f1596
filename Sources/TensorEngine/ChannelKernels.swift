// Per-channel loops over NHWC rows (`[rows, channels]`) written with explicit 8-lane SIMD.
//
// Why explicit: loops that read four or more pointers and write through another are not
// auto-vectorised (LLVM would need more runtime alias checks than it allows), and batch norm runs
// after almost every convolution. Each kernel handles the channels in groups of eight and the
// remainder with scalar code.

@inline(__always)
private func load8(_ pointer: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func affine8(_ x: UnsafePointer<Float>, _ scale: UnsafePointer<Float>, _ shift: UnsafePointer<Float>) -> SIMD8<
    Float
> {
    load8(x) * load8(scale) + load8(shift)
}

/// A fused ReLU's gate for the backward pass: the forward output `max(0, x·scale + shift)` was
/// positive exactly where `x·scale + shift > 0`, computed here with the same operations.
struct ReLUGate {
    let scale: UnsafePointer<Float>
    let shift: UnsafePointer<Float>

    /// `g`, zeroed in the lanes where channels `c..<c+8` of input `x` were clamped.
    @inline(__always)
    func pass(_ g: SIMD8<Float>, x: UnsafePointer<Float>, channel c: Int) -> SIMD8<Float> {
        var passed = g
        passed.replace(with: 0, where: affine8(x, scale + c, shift + c) .<= 0)
        return passed
    }

    /// `g`, or 0 where channel `c` of input `x` was clamped.
    @inline(__always)
    func pass(_ g: Float, x: Float, channel c: Int) -> Float {
        x * scale[c] + shift[c] > 0 ? g : 0
    }
}

@inline(__always)
private func store8(_ value: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: SIMD8<Float>.self)
}

/// `output[r, c] = input[r, c] · scale[c] + shift[c] (+ addend[r, c])`, then `max(0, ·)` when
/// `clampAtZero`; `output` may be `input`.
func scaleAndShiftRows(
    _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int, channels: Int,
    scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, adding addend: UnsafePointer<Float>? = nil,
    clampAtZero: Bool
) {
    let vectorChannels = channels & ~7
    for row in 0..<rows {
        let x = input + row * channels
        let y = output + row * channels
        let added = addend.map { $0 + row * channels }
        var c = 0
        while c < vectorChannels {
            var value = affine8(x + c, scale + c, shift + c)
            if let added { value += load8(added + c) }
            if clampAtZero { value.replace(with: 0, where: value .< 0) }
            store8(value, y + c)
            c += 8
        }
        while c < channels {
            let value = x[c] * scale[c] + shift[c] + (added?[c] ?? 0)
            y[c] = clampAtZero ? max(0, value) : value
            c += 1
        }
    }
}

/// Adds two per-channel sums of terms over `rows` rows to `first` and `second` (only the first when
/// `second` is nil; the second terms are then never summed): the terms of channels `c..<c+8` (or
/// of channel `c`) of row `row` come from `vector(row, c)` (`scalar(row, c)`).
///
/// Rows are summed in float blocks of 32, and the block sums in `Double`, so the totals stay exact
/// to float precision for any row count.
@inline(__always)
private func accumulateBlockSums(
    rows: Int, channels: Int, first: UnsafeMutablePointer<Double>, second: UnsafeMutablePointer<Double>?,
    vector: (_ row: Int, _ channel: Int) -> (SIMD8<Float>, SIMD8<Float>),
    scalar: (_ row: Int, _ channel: Int) -> (Float, Float)
) {
    let blockRows = 32
    let vectorChannels = channels & ~7
    for firstRow in stride(from: 0, to: rows, by: blockRows) {
        let endRow = min(rows, firstRow + blockRows)
        var c = 0
        while c < vectorChannels {
            var blockFirst = SIMD8<Float>.zero
            var blockSecond = SIMD8<Float>.zero
            for row in firstRow..<endRow {
                let (termFirst, termSecond) = vector(row, c)
                blockFirst += termFirst
                blockSecond += termSecond
            }
            for lane in 0..<8 {
                first[c + lane] += Double(blockFirst[lane])
                second?[c + lane] += Double(blockSecond[lane])
            }
            c += 8
        }
        while c < channels {
            var blockFirst: Float = 0
            var blockSecond: Float = 0
            for row in firstRow..<endRow {
                let (termFirst, termSecond) = scalar(row, c)
                blockFirst += termFirst
                blockSecond += termSecond
            }
            first[c] += Double(blockFirst)
            second?[c] += Double(blockSecond)
            c += 1
        }
    }
}

/// Adds, per channel, `Σ g` and `Σ g·(x − center)` over the rows to `sumGrad` and `sumGradCentered`,
/// where `g = gradient`, or 0 where `gate` (when given) was closed.
func accumulateChannelGradientSums(
    gradient: UnsafePointer<Float>, input: UnsafePointer<Float>, gate: ReLUGate?,
    center: UnsafePointer<Float>, rows: Int, channels: Int,
    sumGrad: UnsafeMutablePointer<Double>, sumGradCentered: UnsafeMutablePointer<Double>
) {
    accumulateBlockSums(rows: rows, channels: channels, first: sumGrad, second: sumGradCentered) { row, c in
        let offset = row * channels + c
        var g = load8(gradient + offset)
        if let gate { g = gate.pass(g, x: input + offset, channel: c) }
        return (g, g * (load8(input + offset) - load8(center + c)))
    } scalar: { row, c in
        let offset = row * channels + c
        let g = gate?.pass(gradient[offset], x: input[offset], channel: c) ?? gradient[offset]
        return (g, g * (input[offset] - center[c]))
    }
}

/// `result[r, c] = a[c]·g − b[c]·input[r, c] + offset[c]`, where `g = gradient[r, c]`, or 0 where
/// `gate` (when given) was closed.
func affineGradientRows(
    gradient: UnsafePointer<Float>, input: UnsafePointer<Float>, gate: ReLUGate?,
    result: UnsafeMutablePointer<Float>, rows: Int, channels: Int,
    a: UnsafePointer<Float>, b: UnsafePointer<Float>, offset: UnsafePointer<Float>
) {
    let vectorChannels = channels & ~7
    for row in 0..<rows {
        let base = row * channels
        var c = 0
        while c < vectorChannels {
            var g = load8(gradient + base + c)
            if let gate { g = gate.pass(g, x: input + base + c, channel: c) }
            store8(load8(a + c) * g - load8(b + c) * load8(input + base + c) + load8(offset + c), result + base + c)
            c += 8
        }
        while c < channels {
            let g = gate?.pass(gradient[base + c], x: input[base + c], channel: c) ?? gradient[base + c]
            result[base + c] = a[c] * g - b[c] * input[base + c] + offset[c]
            c += 1
        }
    }
}

/// Adds, per channel, `Σ x` over the rows to `sum`.
func accumulateChannelSums(_ input: UnsafePointer<Float>, rows: Int, channels: Int, sum: UnsafeMutablePointer<Double>) {
    accumulateBlockSums(rows: rows, channels: channels, first: sum, second: nil) { row, c in
        (load8(input + row * channels + c), .zero)
    } scalar: { row, c in
        (input[row * channels + c], 0)
    }
}

/// Adds, per channel, `Σ (x − shift)` and `Σ (x − shift)²` over the rows to `sum` and
/// `sumOfSquares`.
func accumulateChannelMoments(
    _ input: UnsafePointer<Float>, rows: Int, channels: Int, shift: UnsafePointer<Float>,
    sum: UnsafeMutablePointer<Double>, sumOfSquares: UnsafeMutablePointer<Double>
) {
    accumulateBlockSums(rows: rows, channels: channels, first: sum, second: sumOfSquares) { row, c in
        let centered = load8(input + row * channels + c) - load8(shift + c)
        return (centered, centered * centered)
    } scalar: { row, c in
        let centered = input[row * channels + c] - shift[c]
        return (centered, centered * centered)
    }
}

/// The maximum of each channel over the pixels `rows × columns` of one image, and the flat index
/// of the first input element holding it (row-major window order, so ties go to the first).
///
/// - Parameters:
///   - input: The NHWC input; the image starts at `imageOffset`.
///   - maximum: The output pixel's `channels` values.
///   - source: The output pixel's `channels` source indices.
func windowMaximum(
    _ input: UnsafePointer<Float>, imageOffset: Int, width: Int, channels: Int,
    rows: Range<Int>, columns: Range<Int>,
    maximum: UnsafeMutablePointer<Float>, source: UnsafeMutablePointer<Int32>
) {
    let vectorChannels = channels & ~7
    let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
    @inline(__always) func pixelOffset(_ row: Int, _ column: Int) -> Int {
        imageOffset + (row * width + column) * channels
    }
    var c = 0
    while c < vectorChannels {
        let first = pixelOffset(rows.lowerBound, columns.lowerBound) + c
        var best = load8(input + first)
        var bestIndex = SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: first)) &+ lanes
        for row in rows {
            for column in columns {
                let offset = pixelOffset(row, column) + c
                let value = load8(input + offset)
                let wins = value .> best
                best.replace(with: value, where: wins)
                bestIndex.replace(
                    with: SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: offset)) &+ lanes, where: wins)
            }
        }
        store8(best, maximum + c)
        UnsafeMutableRawPointer(source + c).storeBytes(of: bestIndex, as: SIMD8<Int32>.self)
        c += 8
    }
    while c < channels {
        var bestIndex = pixelOffset(rows.lowerBound, columns.lowerBound) + c
        for row in rows {
            for column in columns where input[pixelOffset(row, column) + c] > input[bestIndex] {
                bestIndex = pixelOffset(row, column) + c
            }
        }
        maximum[c] = input[bestIndex]
        source[c] = Int32(truncatingIfNeeded: bestIndex)
        c += 1
    }
}

/// `result[i] = mask[i] > 0 ? gradient[i] : 0`, the gradient through a ReLU whose output is `mask`.
func maskByPositive(
    _ gradient: UnsafePointer<Float>, mask: UnsafePointer<Float>, _ result: UnsafeMutablePointer<Float>, count: Int
) {
    let vectorCount = count & ~7
    var index = 0
    while index < vectorCount {
        var value = load8(gradient + index)
        value.replace(with: 0, where: load8(mask + index) .<= 0)
        store8(value, result + index)
        index += 8
    }
    while index < count {
        result[index] = mask[index] > 0 ? gradient[index] : 0
        index += 1
    }
}
