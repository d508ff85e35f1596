//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser
import Distributed
import GhostNet
import Training

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

    /// The benchmark of `kind` these options describe.
    func benchmark(_ kind: StepBenchmark.Kind) throws -> StepBenchmark {
        let configuration = try GhostNetConfiguration(architecture: GhostNetArchitecture(rawValue: arch)!, imageSize: imageSize)
        return StepBenchmark(
            kind: kind, configuration: configuration, batchSize: batch, threads: threads, steps: steps,
            warmupSteps: warmup)
    }

    /// Prints `result`'s report (and JSON line).
    func print(_ result: StepBenchmarkResult) {
        for line in result.reportLines { Swift.print(line) }
        if json { Swift.print(result.json) }
    }
}

/// `ghostnet-d bench train`: training step throughput against the in-run sgemm peak.
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Measure training steps (forward, backward, SGD) against the sgemm peak of the same run.",
        discussion: """
            Effective GFLOP/s count 3 × 2 × multiply-accumulates per image of the direct convolutions (the stride-1 3×3 \
            ones run as Winograd convolutions, which do fewer); the sgemm peak is OpenBLAS's 2048³ rate, and the header \
            names the OpenBLAS and packed kernels in use. The report adds peak resident memory, tensor allocations and \
            the time per layer kind. Under mpirun (e.g. 'mpirun -np 2 ghostnet-d bench train --threads 1') \
            every rank runs the same steps and averages its gradients with the others through the bucketed gradient \
            exchange; rank 0 then also reports the time from the end of backward to the end of the exchange of the most \
            exposed rank, and what it adds to the step ('exchange adds X % to the step', exchange_overhead_fraction in JSON). \
            --threads sets the OpenBLAS threads of each rank.
            """)

    @OptionGroup var options: BenchStepOptions

    @OptionGroup var distributed: DistributedOptions

    func validate() throws {
        guard distributed.openblasThreads == nil else { throw ValidationError("bench train sets OpenBLAS threads with --threads, not --openblas-threads") }
    }

    func run() throws {
        let benchmark = try options.benchmark(.training)
        guard LaunchEnvironment.current.isUnderMPILauncher else { return options.print(benchmark.run()) }
        let worker = try distributed.startWorker()
        let result = try DistributedStepBenchmark.run(
            benchmark, communicator: worker.communicator, bucketCapacityBytes: distributed.bucketCapacityBytes)
        if worker.identity.rank == 0 { options.print(result) }
        try worker.finish()
    }
}

/// `ghostnet-d bench infer`: inference throughput against the in-run sgemm peak.
struct BenchInferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Measure inference forward passes against the sgemm peak of the same run.",
        discussion: """
            Effective GFLOP/s count 2 × multiply-accumulates per image of the direct convolutions (the stride-1 3×3 ones \
            run as Winograd convolutions, which do fewer); the sgemm peak is OpenBLAS's 2048³ rate, and the header names \
            the OpenBLAS and packed kernels in use. The report adds peak resident memory, tensor allocations and the time \
            per layer kind. Inference applies batch norm, residual sums and ReLU to each block \
            of a convolution's output as the GEMM writes it, so that time is counted under the convolutions.
            """)

    @OptionGroup var options: BenchStepOptions

    func run() throws { options.print(try options.benchmark(.inference).run()) }
}
