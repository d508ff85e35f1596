// `bench train` and `bench infer`: the step benchmark's options, its run (alone or on every rank
// under mpirun) and its report.

import ArgumentParser
import Benchmarks
import Distributed
import Foundation
import GhostNet
import TensorEngine
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

    @Option(
        help: """
            The matrix products' precision: fp32, or bf16 (timed only where the CPU has AVX512-BF16, with the \
            bf16 GEMM peak and the ratio to an fp32 run of the same steps; elsewhere the emulated path's numerics).
            """)
    var precision: Precision = .fp32

    func validate() throws {
        // At least 2: training batch norm needs two values per channel.
        try OptionRange.check("--batch", batch, 2...4096)
        try OptionRange.check("--image-size", imageSize, 32...4096)
        try OptionRange.check("--threads", threads, DistributedOptions.threadRange)
        try OptionRange.check("--steps", steps, 1...10_000)
        try OptionRange.check("--warmup", warmup, 0...10_000)
        try OptionRange.checkInputBatch(batch: batch, imageSize: imageSize)
        guard precision != .reference else {
            throw ValidationError(
                "--precision reference (float64 sums) is for `model grad`, not timed: use fp32 or bf16")
        }
    }

    /// The benchmark of `kind` these options describe.
    func benchmark(_ kind: StepBenchmark.Kind) throws -> StepBenchmark {
        let configuration = try GhostNetConfiguration(architecture: arch, imageSize: imageSize)
        // The defaults of trainer.optimizer; the values change no timing.
        return StepBenchmark(
            kind: kind, configuration: configuration, batchSize: batch, threads: threads, steps: steps,
            warmupSteps: warmup, optimizer: SGDOptimizer(learningRate: 0.001, momentum: 0.9, weightDecay: 1e-4))
    }

    /// Prints `result`'s report, then the JSON line.
    func print(_ result: StepBenchmarkResult) {
        for line in result.reportLines { Swift.print(line) }
        if json { Swift.print(result.json) }
    }

    /// Runs `measure` in the chosen precision. In bf16 on a CPU with the native kernel, first an fp32 run of
    /// the same steps, then the bf16 one, and prints the bf16 row (share of the in-run bf16 GEMM peak, images/s,
    /// ratio to fp32); without it, prints the emulated path's numerics and times nothing.
    func run(_ measure: () throws -> StepBenchmarkResult) rethrows -> StepBenchmarkResult? {
        guard precision == .bf16 else { return try measure() }
        guard BFloat16Bench.isNative else {
            Swift.print(
                "bf16: this CPU has no AVX512-BF16, so bf16 runs emulated (\(BFloat16Kernel.preferred.label));")
            Swift.print("bf16: its timings would measure the fp32 kernels, so only its numerics are reported")
            for line in BFloat16Bench.numericsLines() { Swift.print(line) }
            return nil
        }
        let fp32 = try measure()
        let bf16 = try withPrecision(.bf16) { try measure() }
        let peak = BFloat16Bench.peak(threads: threads)
        Swift.print(
            String(
                format: "bf16 (%@): %.1f images/s, %.1f %% of the in-run bf16 GEMM peak %.1f GFLOP/s; "
                    + "%.2f× the fp32 run's %.1f images/s",
                precision.label, bf16.imagesPerSecond, 100 * bf16.gflopsPerSecond / peak, peak,
                bf16.imagesPerSecond / fp32.imagesPerSecond, fp32.imagesPerSecond))
        return bf16
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

    @Option(
        parsing: .unconditional,
        help: """
            Passes of a micro-batched step that run at the same time, each on its share of --threads, as \
            runtime.concurrent_micro_batches runs them (1 to --threads).
            """)
    var lanes: Int = 1

    @Option(
        name: .customLong("compare-micro-batch"), parsing: .unconditional,
        help: """
            Alternate the timed steps with steps of this micro-batch (--batch for one pass), in back-to-back pairs, \
            and report the images/s ratio, which shares the machine's load, and each layer kind's time in both; \
            the plan that needs more memory then sets the peak, and the memory model line predicts that plan's \
            (2 to --batch).
            """)
    var comparedMicroBatch: Int?

    @Option(
        help: ArgumentHelp(
            "Comma-separated parameter-name prefixes to freeze, as trainer.freeze (e.g. conv1,bn1,layer1).",
            valueName: "prefixes"))
    var freeze: String?

    @Option(
        name: .customLong("ema-decay"), parsing: .unconditional,
        help: "Keep a weight average with this decay, updated after every step, as trainer.ema_decay ([0, 1)).")
    var emaDecay: Double?

    /// The prefixes of --freeze.
    private var frozenPrefixes: [String] { freeze?.split(separator: ",").map(String.init) ?? [] }

    func validate() throws {
        guard distributed.openblasThreads == nil else {
            throw ValidationError("bench train sets OpenBLAS threads with --threads, not --openblas-threads")
        }
        if let microBatch { try OptionRange.check("--micro-batch", microBatch, 2...options.batch) }
        try OptionRange.check("--lanes", lanes, 1...options.threads)
        try OptionRange.check("--ema-decay", emaDecay, ConfigurationKeys.emaDecay)
        if let comparedMicroBatch {
            try OptionRange.check("--compare-micro-batch", comparedMicroBatch, 2...options.batch)
        }
    }

    func run() throws {
        var benchmark = try options.benchmark(.training)
        benchmark.microBatchSize = microBatch
        benchmark.comparedMicroBatchSize = comparedMicroBatch
        benchmark.lanes = lanes
        benchmark.emaDecay = emaDecay
        let names = FrozenParameters.parameterNames(of: GhostNetStructure(configuration: benchmark.configuration))
        if let problem = FrozenParameters.problems(frozenPrefixes, names: names).first {
            throw ValidationError("--freeze: \(problem)")
        }
        benchmark.frozenSlots = FrozenParameters.indices(frozenPrefixes, names: names)
        guard LaunchEnvironment.current.isUnderMPILauncher else {
            let result = try options.run { try benchmark.run(bucketCapacityBytes: distributed.bucketCapacityBytes) }
            if let result { options.print(result) }
            return
        }
        guard options.precision == .fp32 else { throw ValidationError("--precision bf16 runs on one rank, not mpirun") }
        let worker = try distributed.startWorker()
        let result = try benchmark.run(on: worker.communicator, bucketCapacityBytes: distributed.bucketCapacityBytes)
        if worker.identity.rank == 0 {
            options.print(result)
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

    func run() throws {
        let benchmark = try options.benchmark(.inference)
        if let result = try options.run({ try benchmark.run() }) { options.print(result) }
    }
}
