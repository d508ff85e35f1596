//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser
import Distributed

/// Options every distributed command shares (`train`, `diagnose allreduce`, `bench allreduce`).
struct DistributedOptions: ParsableArguments {
    @Option(help: "Rank table JSON (default: $MINDSPORE_HCCL_CONFIG_PATH, else $RANK_TABLE_FILE, else none).")
    var rankTable: String?

    @Option(help: "Seconds to wait for a rank table whose status is still \"initializing\" (0 = fail at once).")
    var rankTableWait: Double = 0

    @Option(help: "Seconds one collective may take before the job is aborted (the collective watchdog).")
    var collectiveTimeout: Double = Self.defaultCollectiveTimeout

    @Option(help: "OpenBLAS threads per rank (default: $OPENBLAS_NUM_THREADS, else cores on this server ÷ ranks on it).")
    var openblasThreads: Int?

    @Option(help: "Gradient bucket size in MiB.")
    var bucketMib: Double = Self.defaultBucketMib

    static let defaultCollectiveTimeout: Double = 600
    static let defaultBucketMib: Double = 25

    func validate() throws {
        guard rankTableWait >= 0 else { throw ValidationError("--rank-table-wait must not be negative") }
        guard collectiveTimeout > 0 else { throw ValidationError("--collective-timeout must be positive") }
        if let openblasThreads, openblasThreads < 1 { throw ValidationError("--openblas-threads must be at least 1") }
        guard bucketMib * 1_048_576 >= 4 else { throw ValidationError("--bucket-mib must hold at least one float") }
    }

    /// The bucket capacity in bytes.
    var bucketCapacityBytes: Int { Int(bucketMib * 1_048_576) }

    var workerOptions: DistributedWorker.Options {
        DistributedWorker.Options(
            rankTablePath: rankTable, rankTableWait: .milliseconds(Int64(rankTableWait * 1000)),
            collectiveTimeout: .milliseconds(Int64(collectiveTimeout * 1000)), openBLASThreads: openblasThreads)
    }

    /// Starts this worker and logs its warnings and identity line to standard error.
    func startWorker() throws -> DistributedWorker {
        let worker = try DistributedWorker.start(workerOptions)
        for line in worker.startupLog { StandardError.print(line) }
        return worker
    }
}
