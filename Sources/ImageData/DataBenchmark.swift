//===----------------------------------------------------------------------===//
// ghostnet-d — ImageData
//===----------------------------------------------------------------------===//

/// A measurement of the training input pipeline (read + decode + augment + normalise).
public struct DataThroughput: Sendable {
    public var images: Int
    public var seconds: Double
    public var threads: Int
    public var imageSize: Int
    /// Mean width and height of the source JPEGs read.
    public var meanSourceWidth: Double
    public var meanSourceHeight: Double

    public var imagesPerSecond: Double { Double(images) / seconds }
    public var imagesPerSecondPerThread: Double { imagesPerSecond / Double(threads) }
}

/// Measures how fast a `ShardedLoader` produces training batches.
public enum DataBenchmark {
    /// Reads `batches` training batches of rank 0 of a world of 1 and times them (wall clock).
    ///
    /// - Throws: `DataError` when the dataset yields no batch or a bad image cannot be replaced.
    public static func measure(
        dataset: DatasetIndex, threads: Int, imageSize: Int, batches: Int, batchSize: Int, seed: UInt64 = 0
    ) throws(DataError) -> DataThroughput {
        let loader = ShardedLoader(
            dataset: dataset, split: .train, rank: 0, worldSize: 1, batchSize: batchSize, seed: seed,
            imageSize: imageSize, options: LoaderOptions(threadCount: threads))
        let clock = ContinuousClock()
        let start = clock.now
        let epoch = loader.makeEpoch(epoch: 0)
        var images = 0
        var samples: [Int] = []
        while images < batches * batchSize, let batch = try epoch.next() {
            images += batch.count
            samples += batch.sampleIndices
        }
        let elapsed = clock.now - start
        guard images > 0 else { throw DataError(.layout, path: dataset.root, "the train split yields no batch to measure") }

        let decoder = JPEGDecoder()
        var width = 0.0, height = 0.0, measured = 0.0
        var fileBytes: [UInt8] = []
        for index in samples.prefix(200) {
            let path = dataset.path(of: index, in: .train)
            guard let length = try? ImageFile.read(path, into: &fileBytes),
                  let header = try? decoder.readHeader(Array(fileBytes[..<length]), path: path)
            else { continue }
            width += Double(header.width)
            height += Double(header.height)
            measured += 1
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return DataThroughput(
            images: images, seconds: seconds, threads: threads, imageSize: imageSize,
            meanSourceWidth: width / max(measured, 1), meanSourceHeight: height / max(measured, 1))
    }
}
