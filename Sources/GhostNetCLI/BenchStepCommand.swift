//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser
import GhostNet

/// The options `bench train` and `bench infer` share.
struct BenchStepOptions: ParsableArguments {
    @Option(help: "The network: \(GhostNetArchitecture.allCases.map(\.rawValue).joined(separator: " or ")).")
    var arch: String = GhostNetArchitecture.ghostnet101.rawValue

    @Option(help: "Images per step.")
    var batch: Int = 16

    @Option(help: "Side of the square input images.")
    var imageSize: Int = 224

    @Option(help: "OpenBLAS threads (the sgemm peak is measured with the same count).")
    var threads: Int = 2

    @Option(help: "Timed steps; the median is reported.")
    var steps: Int = 5

    @Option(help: "Untimed steps before the timed ones.")
    var warmup: Int = 1

    @Flag(help: "Also print the numbers as one JSON object on the last line.")
    var json = false

    func validate() throws {
        guard GhostNetArchitecture(rawValue: arch) != nil else {
            throw ValidationError("--arch must be \(GhostNetArchitecture.allCases.map(\.rawValue).joined(separator: " or ")), got '\(arch)'")
        }
        guard batch >= 2 else { throw ValidationError("--batch must be at least 2 (training batch norm needs two values per channel), got \(batch)") }
        guard imageSize >= 32 else { throw ValidationError("--image-size must be at least 32, got \(imageSize)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative, got \(warmup)") }
    }

    /// Runs the benchmark of `kind` and prints its report (and JSON line).
    func run(_ kind: StepBenchmark.Kind) throws {
        let configuration = try GhostNetConfiguration(architecture: GhostNetArchitecture(rawValue: arch)!, imageSize: imageSize)
        let result = StepBenchmark(
            kind: kind, configuration: configuration, batchSize: batch, threads: threads, steps: steps,
            warmupSteps: warmup
        ).run()
        for line in result.reportLines { print(line) }
        if json { print(result.json) }
    }
}

/// `ghostnet-d bench train`: training step throughput against the in-run sgemm peak.
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Measure training steps (forward, backward, SGD) against the sgemm peak of the same run.",
        discussion: "Effective GFLOP/s count 3 × 2 × multiply-accumulates per image; the report adds peak resident memory, tensor allocations and the time per layer kind.")

    @OptionGroup var options: BenchStepOptions

    func run() throws { try options.run(.training) }
}

/// `ghostnet-d bench infer`: inference throughput against the in-run sgemm peak.
struct BenchInferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Measure inference forward passes against the sgemm peak of the same run.",
        discussion: "Effective GFLOP/s count 2 × multiply-accumulates per image; the report adds peak resident memory, tensor allocations and the time per layer kind.")

    @OptionGroup var options: BenchStepOptions

    func run() throws { try options.run(.inference) }
}
