// `bench data`: how fast the sharded loader produces training batches (read, decode, augment).

import ImageData
import TensorEngine

/// A measurement of the training input pipeline (read + decode + augment + normalise).
package struct DataThroughput: Sendable {
    package var images: Int
    package var seconds: Double
    package var threads: Int
    package var imageSize: Int
    /// Mean width and height of the source JPEGs read.
    package var meanSourceWidth: Double
    package var meanSourceHeight: Double

    package var imagesPerSecond: Double { Double(images) / seconds }
    package var imagesPerSecondPerThread: Double { imagesPerSecond / Double(threads) }
}

/// Measures how fast a `ShardedLoader` produces training batches.
package enum DataBenchmark {
    /// Reads `batches` training batches of rank 0 of a world of 1 and times them (wall clock).
    ///
    /// - Throws: `DataError` when the dataset yields no batch or a bad image cannot be replaced.
    package static func measure(
        dataset: DatasetIndex, threads: Int, imageSize: Int, batches: Int, batchSize: Int, seed: UInt64 = 0
    ) throws(DataError) -> DataThroughput {
        let loader = ShardedLoader(
            dataset: dataset, split: .train, rank: 0, worldSize: 1, batchSize: batchSize, seed: seed,
            imageSize: imageSize, options: LoaderOptions(threadCount: threads))
        let start = KernelProfiler.monotonicNanoseconds()
        let epoch = loader.makeEpoch(epoch: 0)
        var images = 0
        var samples: [Int] = []
        while images < batches * batchSize, let batch = try epoch.next() {
            images += batch.count
            samples += batch.sampleIndices
        }
        let elapsed = KernelProfiler.monotonicNanoseconds() - start
        guard images > 0 else {
            throw DataError(.layout, path: dataset.root, "the train split yields no batch to measure")
        }

        let decoder = JPEGDecoder()
        var width = 0.0
        var height = 0.0
        var measured = 0.0
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
        return DataThroughput(
            images: images, seconds: Double(elapsed) * 1e-9, threads: threads, imageSize: imageSize,
            meanSourceWidth: width / max(measured, 1), meanSourceHeight: height / max(measured, 1))
    }
}
