// The options every distributed command shares, and how they reach a configuration: a flag the user
// gave overrides the file's `runtime` key; a flag not given is nil and leaves the file's value alone.

import ArgumentParser
import Distributed
import Training

/// Options every distributed command shares (`train`, `eval`, `diagnose allreduce`, `bench allreduce`).
struct DistributedOptions: ParsableArguments {
    @Option(help: "Rank table JSON (default: $MINDSPORE_HCCL_CONFIG_PATH, else $RANK_TABLE_FILE, else none).")
    var rankTable: String?

    @Option(
        parsing: .unconditional,
        help: "Seconds to wait for a rank table whose status is still \"initializing\" (0-86400; 0 = fail at once).")
    var rankTableWait: Double = 0

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Seconds one collective may take before the job is aborted (the collective watchdog; "
                + "\(ConfigurationKeys.collectiveTimeout.expectation)). "
                + "Default: the file's runtime.collective_timeout, "
                + "else \(Int(ConfigurationKeys.collectiveTimeout.defaultSetting)).",
            valueName: "seconds"))
    var collectiveTimeout: Double?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "OpenBLAS threads per rank (1-1024; default: the file's runtime.threads, else $OPENBLAS_NUM_THREADS, "
                + "else cores on this server ÷ ranks on it)."))
    var openblasThreads: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Gradient bucket size in MiB (\(ConfigurationKeys.bucketMebibytes.expectation)). Default: the file's "
                + "runtime.bucket_mib, else \(Int(ConfigurationKeys.bucketMebibytes.defaultSetting)).",
            valueName: "MiB"))
    var bucketMib: Double?

    static let threadRange = 1...1024

    func validate() throws {
        try OptionRange.check("--rank-table-wait", rankTableWait, 0...86_400)
        try OptionRange.check("--collective-timeout", collectiveTimeout, ConfigurationKeys.collectiveTimeout)
        try OptionRange.check("--openblas-threads", openblasThreads, Self.threadRange)
        try OptionRange.check("--bucket-mib", bucketMib, ConfigurationKeys.bucketMebibytes)
    }

    /// The bucket capacity in bytes, for commands without a configuration file.
    var bucketCapacityBytes: Int {
        ConfigurationKeys.bucketCapacityBytes(mebibytes: bucketMib ?? ConfigurationKeys.bucketMebibytes.defaultSetting)
    }

    var workerOptions: WorkerLaunch.Options {
        WorkerLaunch.Options(
            rankTablePath: rankTable, rankTableWait: .milliseconds(Int64(rankTableWait * 1000)),
            collectiveTimeout: .milliseconds(
                Int64((collectiveTimeout ?? ConfigurationKeys.collectiveTimeout.defaultSetting) * 1000)),
            openBLASThreads: openblasThreads)
    }

    /// The flags the user gave, as overrides of the configuration's `runtime` keys.
    var configurationOverrides: [ConfigurationOverride] {
        [
            ConfigurationOverride(
                flag: "--collective-timeout", key: ConfigurationKeys.collectiveTimeout, value: collectiveTimeout),
            ConfigurationOverride(flag: "--bucket-mib", key: ConfigurationKeys.bucketMebibytes, value: bucketMib),
            ConfigurationOverride(flag: "--openblas-threads", key: ConfigurationKeys.threads, value: openblasThreads),
        ].compactMap { $0 }
    }

    /// Starts this worker and prints its start-up notes (warnings, identity line) on standard error.
    func startWorker() throws -> WorkerLaunch {
        let worker = try WorkerLaunch.start(workerOptions)
        worker.printNotes()
        return worker
    }
}
