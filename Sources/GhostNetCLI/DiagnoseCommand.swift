//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser
import Distributed

/// `ghostnet-d diagnose`: self-checks of the distributed machinery, for tests and bring-up.
struct DiagnoseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Self-checks of the distributed machinery (run under mpirun) and of a running coordinator.",
        subcommands: [Allreduce.self, CoordinatorLoad.self, RecordStream.self])

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

        @Option(help: "Gradient elements (floats), split into irregularly sized parameters.")
        var elements: Int = 1_000_003

        @Option(help: "Bucket capacity in bytes (overrides --bucket-mib).")
        var bucketBytes: Int?

        @Option(help: "Fault injection: this rank changes a parameter before the checksum comparison.")
        var perturbRank: Int?

        @Option(help: "Fault injection: this rank sleeps before its first gradient.")
        var stallRank: Int?

        @Option(help: "Seconds --stall-rank sleeps.")
        var stallSeconds: Double = 0

        func validate() throws {
            guard elements >= 1 else { throw ValidationError("--elements must be at least 1") }
            if let bucketBytes, bucketBytes < 4 { throw ValidationError("--bucket-bytes must hold at least one float") }
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
