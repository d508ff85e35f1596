//===----------------------------------------------------------------------===//
// ghostnet-d — TensorEngine
//===----------------------------------------------------------------------===//

import Dispatch

// Memory-bound row kernels (batch norm's passes) split into bands of rows that run at the same
// time on ``GEMM/threadCount`` threads: between two GEMMs the second core would otherwise idle,
// and one core alone does not saturate the memory bandwidth.

/// Tensors smaller than this many floats per band run on one thread (the hand-off costs more).
private let minimumBandFloats = 1 << 16

/// The number of bands for `rows` rows of `rowLength` floats.
private func bandCount(rows: Int, rowLength: Int) -> Int {
    max(1, min(GEMM.threadCount, rows * rowLength / minimumBandFloats, rows))
}

/// Calls `body` with consecutive row ranges covering `0..<rows`, at the same time.
func inRowBands(rows: Int, rowLength: Int, _ body: (_ rows: Range<Int>) -> Void) {
    let parts = bandCount(rows: rows, rowLength: rowLength)
    guard parts > 1 else { return body(0..<rows) }
    let band = (rows + parts - 1) / parts
    withoutActuallyEscaping(body) { body in
        // The bands write disjoint rows, and `concurrentPerform` returns only when all are done.
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let first = part * band
            body(first..<min(rows, first + band))
        }
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
    inRowBands(rows: rows, rowLength: channels) { band in
        let part = band.lowerBound / ((rows + parts - 1) / parts)
        body(band, sums(of: part))
    }
    for part in 0..<parts {
        for (total, partial) in zip(totals, sums(of: part)) {
            for c in 0..<channels { total[c] += partial[c] }
        }
    }
}
