// `bench train` and `bench infer`: the step benchmark's options, its run (alone or on every rank
// under mpirun) and its report.

import ArgumentParser
import Benchmarks
import Distributed
import Foundation
import GhostNet
import Training

/// The options `bench train` and `bench infer` share.
struct BenchStepOptions: ParsableArguments {
    @Option(help: "The network: \(GhostNetArchitecture.allCases.map(\.rawValue).joined(separator: " or ")).")
    var arch: GhostNetArchitecture = .ghostnet101

    @Option(parsing: .unconditional, help: "Images per step (2-4096).")
    var batch: Int = 16

    @Option(parsing: .unconditional, help: "Side of the square input images (32-4096; batch × 3 × side² at most 2^31).")
    var imageSize: Int = 224

    @Option(parsing: .unconditional, help: "OpenBLAS threads (1-1024; the sgemm peak is measured with the same count).")
    var threads: Int = 2

    @Option(parsing: .unconditional, help: "Timed steps; the median is reported (1-10000).")
    var steps: Int = 5

    @Option(parsing: .unconditional, help: "Untimed steps before the timed ones (0-10000).")
    var warmup: Int = 1

    @Flag(help: "Also print the numbers as one JSON object on the last line.")
    var json = false

    func validate() throws {
        // At least 2: training batch norm needs two values per channel.
        try OptionRange.check("--batch", batch, 2...4096)
        try OptionRange.check("--image-size", imageSize, 32...4096)
        try OptionRange.check("--threads", threads, DistributedOptions.threadRange)
        try OptionRange.check("--steps", steps, 1...10_000)
        try OptionRange.check("--warmup", warmup, 0...10_000)
        try OptionRange.checkInputBatch(batch: batch, imageSize: imageSize)
    }

    /// The benchmark of `kind` these options describe.
    func benchmark(_ kind: StepBenchmark.Kind) throws -> StepBenchmark {
        let configuration = try GhostNetConfiguration(architecture: arch, imageSize: imageSize)
        // The defaults of trainer.optimizer; the values change no timing.
        return StepBenchmark(
            kind: kind, configuration: configuration, batchSize: batch, threads: threads, steps: steps,
            warmupSteps: warmup, optimizer: SGDOptimizer(learningRate: 0.001, momentum: 0.9, weightDecay: 1e-4))
    }

    /// Prints `result`'s report, then `notes`, then the JSON line.
    func print(_ result: StepBenchmarkResult, notes: [String] = []) {
        for line in result.reportLines + notes { Swift.print(line) }
        if json { Swift.print(result.json) }
    }

    /// The memory model's peak for this run (passes of at most `microBatch` images, no data
    /// pipeline) against the measured one.
    func memoryModelNote(measuredBytes: Int, microBatch: Int?) throws -> String {
        let configuration = try GhostNetConfiguration(architecture: arch, imageSize: imageSize)
        let model = MemoryModel(
            structure: GhostNetStructure(configuration: configuration), imageSize: imageSize, pipelineImages: 0)
        let pass = MicroBatchPlan(microBatchSize: microBatch, minimumSize: 2).sizes(of: batch).max() ?? batch
        let predicted = model.peakBytes(microBatch: pass)
        let error = measuredBytes > 0 ? Double(predicted - measuredBytes) / Double(measuredBytes) * 100 : 0
        return "memory model (passes of \(pass) images): predicted peak \(MemoryLimit.describe(predicted)), measured "
            + "\(MemoryLimit.describe(measuredBytes)) (\(String(format: "%+.1f", error)) %)"
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
            names the OpenBLAS and packed kernels in use. The report adds peak resident memory (and the memory model's \
            prediction for it, which the trainer plans micro-batches with), tensor allocations and \
            the time per layer kind. A step is the trainer's: backward hands each gradient to the bucketed gradient \
            exchange (over a one-rank group when alone), then SGD with momentum and weight decay updates every \
            parameter. Under mpirun (e.g. 'mpirun -np 2 ghostnet-d bench train --threads 1') every rank runs the \
            same steps and averages its gradients with the others; rank 0 then also reports the time from the end of backward to the end of the exchange of the most \
            exposed rank, and what it adds to the step ('exchange adds X % to the step', exchange_overhead_fraction in JSON). \
            --threads sets the OpenBLAS threads of each rank.
            """)

    @OptionGroup var options: BenchStepOptions

    @OptionGroup var distributed: DistributedOptions

    @Option(
        name: .customLong("micro-batch"), parsing: .unconditional,
        help: "Images per forward/backward pass, gradients accumulated over the batch (2 to --batch).")
    var microBatch: Int?

    func validate() throws {
        guard distributed.openblasThreads == nil else {
            throw ValidationError("bench train sets OpenBLAS threads with --threads, not --openblas-threads")
        }
        if let microBatch { try OptionRange.check("--micro-batch", microBatch, 2...options.batch) }
    }

    func run() throws {
        var benchmark = try options.benchmark(.training)
        benchmark.microBatchSize = microBatch
        guard LaunchEnvironment.current.isUnderMPILauncher else {
            let result = try benchmark.run(bucketCapacityBytes: distributed.bucketCapacityBytes)
            return options.print(
                result,
                notes: [try options.memoryModelNote(measuredBytes: result.peakResidentBytes, microBatch: microBatch)])
        }
        let worker = try distributed.startWorker()
        let result = try benchmark.run(on: worker.communicator, bucketCapacityBytes: distributed.bucketCapacityBytes)
        if worker.identity.rank == 0 {
            options.print(
                result,
                notes: [try options.memoryModelNote(measuredBytes: result.peakResidentBytes, microBatch: microBatch)])
        }
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
