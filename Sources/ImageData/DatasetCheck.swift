// `dataset check`'s decode pass: every (or every n-th) image of both splits decoded cheaply at 1/8 scale the
// way the loader reads it, with each bad file reported.

/// What `DatasetCheck.decodeAll` found.
package struct DatasetCheckReport: Sendable {
    /// Files decoded (all, or every `sampleEvery`-th).
    package var checkedFiles = 0
    /// One error per file that cannot be read or decoded, naming the file.
    package var badImages: [DataError] = []
}

/// Decode-checks the images of a dataset, the way the loader would read them.
package enum DatasetCheck {
    /// Decodes every `sampleEvery`-th image of both splits (train first) and collects the failures.
    ///
    /// Images are decoded at 1/8 scale: libjpeg still entropy-decodes every coefficient, so
    /// truncated and corrupt data are found, at a fraction of the cost of a full decode.
    /// - Parameters:
    ///   - progress: called after each file with (checked, total to check).
    package static func decodeAll(
        _ index: DatasetIndex, sampleEvery: Int = 1, maximumSide: Int = JPEGDecoder.defaultMaximumSide,
        progress: (Int, Int) -> Void = { _, _ in }
    ) -> DatasetCheckReport {
        precondition(sampleEvery >= 1, "sampleEvery must be at least 1, got \(sampleEvery)")
        let decoder = JPEGDecoder(maximumSide: maximumSide)
        let work = DatasetSplit.allCases.flatMap { split in
            stride(from: 0, to: index[split].count, by: sampleEvery).map { index.path(of: $0, in: split) }
        }
        var report = DatasetCheckReport()
        var fileBytes: [UInt8] = []
        var pixels: [UInt8] = []
        for path in work {
            do throws(DataError) {
                let length = try ImageFile.read(path, into: &fileBytes)
                _ = try fileBytes.withUnsafeBufferPointer { bytes throws(DataError) in
                    try decoder.decode(UnsafeBufferPointer(rebasing: bytes[..<length]), path: path, into: &pixels) {
                        _ in (1, 1)
                    }
                }
            } catch {
                report.badImages.append(error)
            }
            report.checkedFiles += 1
            progress(report.checkedFiles, work.count)
        }
        return report
    }
}
