//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser
import Foundation
import ImageData

/// `ghostnet-d bench data`: decoded + augmented training images per second.
struct BenchDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Measure decoded and augmented training images per second (and per thread).",
        discussion: "Reads training batches from the --data folder as the trainer would (random-resized crop, flip, normalise) and reports the rate.")

    @Option(help: "The dataset root holding train/ and val/.")
    var data: String

    @Option(help: "Decoding threads.")
    var threads: Int = 1

    @Option(help: "Side of the square network input.")
    var imageSize: Int = 224

    @Option(help: "Batches to read.")
    var batches: Int = 20

    @Option(help: "Images per batch.")
    var batchSize: Int = 32

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard imageSize >= 8 else { throw ValidationError("--image-size must be at least 8, got \(imageSize)") }
        guard batches >= 1 else { throw ValidationError("--batches must be at least 1, got \(batches)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }

    func run() throws {
        let (index, _) = try DatasetIndex.load(dataPath: data)
        let result = try DataBenchmark.measure(
            dataset: index, threads: threads, imageSize: imageSize, batches: batches, batchSize: batchSize)
        let mean = "\(Int(result.meanSourceWidth.rounded()))x\(Int(result.meanSourceHeight.rounded()))"
        print("bench data: \(result.images) train images at \(imageSize)x\(imageSize) from ~\(mean) JPEGs in \(String(format: "%.2f", result.seconds)) s")
        print("throughput: \(String(format: "%.1f", result.imagesPerSecond)) images/s with \(threads) thread(s), \(String(format: "%.1f", result.imagesPerSecondPerThread)) images/s per thread")
    }
}
