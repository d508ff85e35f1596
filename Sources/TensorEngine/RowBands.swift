// Memory-bound row kernels (batch norm's passes) split into bands of rows that run at the same
// time on ``GEMM/threadCount`` threads: between two GEMMs the second core would otherwise idle,
// and one core alone does not saturate the memory bandwidth.

import Dispatch

/// Tensors smaller than this many floats per band run on one thread (the hand-off costs more).
private let minimumBandFloats = 1 << 16

/// The number of bands for `rows` rows of `rowLength` floats.
func bandCount(rows: Int, rowLength: Int) -> Int {
    max(1, min(GEMM.threadCount, rows * rowLength / minimumBandFloats, rows))
}

/// Calls `body(part)` for every part in `0..<parts` at the same time and returns when all are done.
package func inParallel(_ parts: Int, _ body: (_ part: Int) -> Void) {
    guard parts > 1 else { return parts == 1 ? body(0) : () }
    withoutActuallyEscaping(body) { body in
        // `concurrentPerform` returns only when every part is done, so `body` never outlives this
        // call; callers give each part disjoint memory to write. The worker threads run their parts
        // in the caller's matrix-product precision and thread count.
        nonisolated(unsafe) let body = body
        let precision = Precision.current
        let threads = GEMM.threadCount
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            GEMM.withThreadCount(threads) { withPrecision(precision) { body(part) } }
        }
    }
}

/// Part `part` of `0..<count` split into `parts` consecutive ranges whose sizes differ by at
/// most one (none empty when `parts ≤ count`).
package func share(_ part: Int, of parts: Int, in count: Int) -> Range<Int> {
    (part * count / parts)..<((part + 1) * count / parts)
}

/// Calls `body` with consecutive row ranges covering `0..<rows`, at the same time.
func inRowBands(rows: Int, rowLength: Int, _ body: (_ rows: Range<Int>) -> Void) {
    let parts = bandCount(rows: rows, rowLength: rowLength)
    inParallel(parts) { part in body(share(part, of: parts, in: rows)) }
}

/// Calls `body` with consecutive element ranges covering `0..<count`, at the same time; every
/// range but the last spans whole 64-byte lines, so no two threads write the same cache line.
func inFlatBands(count: Int, _ body: (_ elements: Range<Int>) -> Void) {
    let lineFloats = 16
    inRowBands(rows: (count + lineFloats - 1) / lineFloats, rowLength: lineFloats) { lines in
        body((lines.lowerBound * lineFloats)..<min(count, lines.upperBound * lineFloats))
    }
}

/// Like ``inRowBands(rows:rowLength:_:)`` for kernels that add per-channel sums over the rows:
/// each band adds into its own zeroed partial sums (`totals.count` arrays of `channels`
/// `Double`s), which are then added to `totals` in band order, so the result does not depend on
/// timing.
func accumulatingInRowBands(
    rows: Int, channels: Int, totals: [UnsafeMutablePointer<Double>],
    _ body: (_ rows: Range<Int>, _ sums: [UnsafeMutablePointer<Double>]) -> Void
) {
    let parts = bandCount(rows: rows, rowLength: channels)
    guard parts > 1 else { return body(0..<rows, totals) }
    let partials = UnsafeMutableBufferPointer<Double>.allocate(capacity: parts * totals.count * channels)
    defer { partials.deallocate() }
    partials.initialize(repeating: 0)
    let base = partials.baseAddress!
    func sums(of part: Int) -> [UnsafeMutablePointer<Double>] {
        totals.indices.map { base + (part * totals.count + $0) * channels }
    }
    inParallel(parts) { part in body(share(part, of: parts, in: rows), sums(of: part)) }
    for part in 0..<parts {
        for (total, partial) in zip(totals, sums(of: part)) {
            for c in 0..<channels { total[c] += partial[c] }
        }
    }
}

/// Adds `parts` partial results, each `rows × columns` floats stored one after another from
/// `partials`, to the `rows × columns` matrix `total` (row stride `totalStride`), in part order, so
/// the sum does not depend on which thread finished first.
func addPartialSums(
    _ partials: UnsafePointer<Float>, parts: Int, rows: Int, columns: Int,
    into total: UnsafeMutablePointer<Float>, totalStride: Int
) {
    for part in 0..<parts {
        let partial = partials + part * rows * columns
        for row in 0..<rows {
            let (destination, source) = (total + row * totalStride, partial + row * columns)
            for column in 0..<columns { destination[column] += source[column] }
        }
    }
}
