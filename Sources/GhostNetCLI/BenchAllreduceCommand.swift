// `bench allreduce`: the gradient exchange's bus bandwidth against a plain MPI_Allreduce, under mpirun.

import ArgumentParser
import Benchmarks
import Distributed
import Training

/// `ghostnet-d bench allreduce`: bus bandwidth of the bucketed gradient exchange against a plain
/// `MPI_Allreduce` of the same size, run under `mpirun -np 2` (or more).
struct BenchAllreduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Compare the bucketed gradient exchange with a plain MPI_Allreduce (run under mpirun).",
        discussion: """
            Both run alternately in the same job on a buffer of --bytes (default: ghostnet101's \
            \(AllreduceBenchmark.ghostnet101ParameterCount) float32 gradients). Rank 0 prints the slowest rank's median \
            time and bus bandwidth (bytes/time·2(n−1)/n) of each; the last line is their ratio as a percentage.
            """)

    @OptionGroup var distributed: DistributedOptions

    @Option(parsing: .unconditional, help: "Bytes to all-reduce (a multiple of 4, 4-17179869184).")
    var bytes: Int = AllreduceBenchmark.ghostnet101ParameterCount * 4

    @Option(parsing: .unconditional, help: "Timed iterations of each method (after one warm-up; 1-10000).")
    var iterations: Int = 5

    @Flag(help: "Measure the exact fixed-point reduction of runtime.reproducible_reduction instead of float sums.")
    var reproducible = false

    func validate() throws {
        try OptionRange.check("--bytes", bytes, 4...(1 << 34))
        guard bytes % 4 == 0 else { throw ValidationError("--bytes must be a multiple of 4, got \(bytes)") }
        try OptionRange.check("--iterations", iterations, 1...10_000)
    }

    func run() throws {
        let worker = try distributed.startWorker()
        guard let world = worker.communicator as? MPICommunicator else {
            throw ValidationError("bench allreduce needs MPI: run it as 'mpirun -np 2 ghostnet-d bench allreduce'")
        }
        let benchmark = AllreduceBenchmark(
            elementCount: bytes / 4, bucketCapacityBytes: distributed.bucketCapacityBytes, iterations: iterations,
            reduction: reproducible ? .fixedPoint : .float)
        let result = try benchmark.run(on: world)
        if worker.identity.rank == 0 {
            for line in result.reportLines { print(line) }
        }
        try worker.finish()
    }
}
