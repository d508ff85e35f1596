// Min/max-preserving downsampling of a job's progress history, so a run of days keeps a bounded
// history whose charts and CSV still show every spike and dip.

/// Chooses which points of a long series to keep.
package enum Downsampling {
    /// The indices (ascending) of at most `maximum` of `count` points that keep, in each of
    /// `maximum / (2 * values.count)` consecutive buckets, the points holding the smallest and the
    /// largest of every value; so the first point, the last point and each value's global minimum
    /// and maximum always survive. With `count <= maximum` every index is kept.
    ///
    /// - Precondition: `maximum >= 2 * values.count + 2` and `values` is not empty.
    package static func keptIndices(count: Int, maximum: Int, values: [(Int) -> Double]) -> [Int] {
        precondition(!values.isEmpty && maximum >= 2 * values.count + 2, "maximum \(maximum) too small")
        guard count > maximum else { return Array(0..<count) }
        // Two slots stay for the first and the last point.
        let bucketCount = (maximum - 2) / (2 * values.count)
        var kept: [Int] = [0]
        for bucket in 0..<bucketCount {
            let range = (1 + bucket * (count - 2) / bucketCount)..<(1 + (bucket + 1) * (count - 2) / bucketCount)
            guard !range.isEmpty else { continue }
            var chosen: Set<Int> = []
            for value in values {
                chosen.insert(range.min { value($0) < value($1) }!)
                chosen.insert(range.max { value($0) < value($1) }!)
            }
            kept += chosen.sorted()
        }
        kept.append(count - 1)
        return kept
    }
}
