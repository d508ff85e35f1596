// `diagnose`: the group of self-checks, and `diagnose allreduce`, the gradient exchange checked on every rank.

import ArgumentParser
import Benchmarks
import Distributed
import Training

/// `ghostnet-d diagnose`: self-checks of the distributed machinery, for tests and bring-up.
struct DiagnoseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Self-checks of the distributed machinery (run under mpirun) and of a running coordinator.",
        subcommands: [Allreduce.self, CoordinatorLoad.self, RecordStream.self, World.self])

    /// `diagnose allreduce`: broadcast, two bucketed exchange steps and a checksum comparison on
    /// known buffers; exits non-zero on any wrong element.
    struct Allreduce: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check broadcast, the bucketed gradient exchange and parameter checksums on known buffers.",
            discussion: """
                Every rank fills gradients with values whose average is known, exchanges them for two steps in a \
                rank-specific order and compares each element; prints one line per check on rank 0 and exits \
                non-zero on the first mismatch. --perturb-rank and --stall-rank inject faults for tests.
                """)

        @OptionGroup var distributed: DistributedOptions

        @Option(
            parsing: .unconditional,
            help: "Gradient elements (floats), split into irregularly sized parameters (1-2^30).")
        var elements: Int = 1_000_003

        @Option(parsing: .unconditional, help: "Bucket capacity in bytes (4-2^32; overrides --bucket-mib).")
        var bucketBytes: Int?

        @Option(
            parsing: .unconditional,
            help: "Fault injection: this rank changes a parameter before the checksum comparison (0-1000000).")
        var perturbRank: Int?

        @Option(
            parsing: .unconditional,
            help: "Fault injection: this rank sleeps before its first gradient (0-1000000).")
        var stallRank: Int?

        @Option(parsing: .unconditional, help: "Seconds --stall-rank sleeps (0-86400).")
        var stallSeconds: Double = 0

        func validate() throws {
            try OptionRange.check("--elements", elements, 1...(1 << 30))
            try OptionRange.check("--bucket-bytes", bucketBytes, 4...(1 << 32))
            try OptionRange.check("--perturb-rank", perturbRank, 0...1_000_000)
            try OptionRange.check("--stall-rank", stallRank, 0...1_000_000)
            try OptionRange.check("--stall-seconds", stallSeconds, 0...86_400)
        }

        func run() throws {
            let worker = try distributed.startWorker()
            let check = ExchangeSelfCheck(
                elementCount: elements, bucketCapacityBytes: bucketBytes ?? distributed.bucketCapacityBytes,
                perturbRank: perturbRank, stallRank: stallRank, stallSeconds: stallSeconds)
            let report = try check.run(on: worker.communicator)
            if worker.identity.rank == 0 {
                for line in report { print(line) }
            }
            try worker.finish()
        }
    }
}
