// `bench data`: decoded and augmented training images per second from a dataset.

import ArgumentParser
import Benchmarks
import Foundation
import ImageData

/// `ghostnet-d bench data`: decoded + augmented training images per second.
struct BenchDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Measure decoded and augmented training images per second (and per thread).",
        discussion:
            "Reads training batches from the --data folder as the trainer would (random-resized crop, flip, normalise) and reports the rate."
    )

    @Option(help: "The dataset root holding train/ and val/.")
    var data: String

    @Option(parsing: .unconditional, help: "Decoding threads (1-256).")
    var threads: Int = 1

    @Option(parsing: .unconditional, help: "Side of the square network input (8-4096; batch × 3 × side² at most 2^31).")
    var imageSize: Int = 224

    @Option(parsing: .unconditional, help: "Batches to read (1-1000000).")
    var batches: Int = 20

    @Option(parsing: .unconditional, help: "Images per batch (1-65536).")
    var batchSize: Int = 32

    func validate() throws {
        try OptionRange.check("--threads", threads, 1...256)
        try OptionRange.check("--image-size", imageSize, 8...4096)
        try OptionRange.check("--batches", batches, 1...1_000_000)
        try OptionRange.check("--batch-size", batchSize, 1...65_536)
        try OptionRange.checkInputBatch(batch: batchSize, imageSize: imageSize)
    }

    func run() throws {
        let (index, _) = try DatasetIndex.load(dataPath: data)
        let result = try DataBenchmark.measure(
            dataset: index, threads: threads, imageSize: imageSize, batches: batches, batchSize: batchSize)
        let mean = "\(Int(result.meanSourceWidth.rounded()))x\(Int(result.meanSourceHeight.rounded()))"
        print(
            "bench data: \(result.images) train images at \(imageSize)x\(imageSize) from ~\(mean) JPEGs in \(String(format: "%.2f", result.seconds)) s"
        )
        print(
            "throughput: \(String(format: "%.1f", result.imagesPerSecond)) images/s with \(threads) thread(s), \(String(format: "%.1f", result.imagesPerSecondPerThread)) images/s per thread"
        )
    }
}
