//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser
import Distributed
import Foundation
import ImageData
import Logging
import PerformanceRecords
import Training

/// `ghostnet-d train`: the training daemon, one process per rank (started by `mpirun`, or alone).
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train GhostNet-D as the configuration's fully_train step describes (run one per rank under mpirun).",
        discussion: """
            Every rank reads its shard of train/, gradients are averaged over all ranks each step; every \
            runtime.eval_interval epochs (and after the last) the model is evaluated on val/ (top-1, top-5, loss; \
            rank 0 reports the record to the coordinator, or logs the Best values line at the end when none is \
            configured), and after every epoch rank 0 checkpoints it into runtime.checkpoint_dir (the last \
            keep_checkpoints plus the best). Logs go to standard output (rank 0) and to \
            <log_dir>/train-rank<r>.log. Flags override the file's values; --collective-timeout, --bucket-mib \
            and --openblas-threads override runtime.collective_timeout, bucket_mib and threads when given a \
            value other than their default. \
            If a checkpoint cannot be written, the run stops on every rank and the previous checkpoints stay \
            intact; --resume continues from the newest valid one (a corrupt or partial one is skipped with a \
            warning) and, at the same world size, ends bit-identical to an uninterrupted run. \
            A NaN or infinite loss or gradient stops the run naming the step and rank.
            """)

    @Option(help: "The YAML configuration file (the seed's structure; see conf/ghostnet_d.yml).")
    var config: String

    @Option(name: .customLong("set"), help: ArgumentHelp(
        "Override a value, e.g. fully_train.trainer.epochs=3 (repeatable; typed by the key).",
        valueName: "key.path=value"))
    var overrides: [String] = []

    @Flag(help: "Continue from the newest valid checkpoint in the checkpoint folder (runtime.resume).")
    var resume = false

    @Option(help: "Epochs to train (fully_train.trainer.epochs).")
    var epochs: Int?

    @Option(help: "The ImageNet-layout dataset folder (fully_train.dataset.common.data_path).")
    var dataPath: String?

    @Option(help: "Images per rank per step (fully_train.dataset.common.batch_size).")
    var batchSize: Int?

    @Option(help: "The checkpoint folder (runtime.checkpoint_dir).")
    var checkpointDir: String?

    @Option(help: "The coordinator's http://host:port URL (runtime.coordinator_url; else $GHOSTNET_COORDINATOR).")
    var coordinator: String?

    @OptionGroup var distributed: DistributedOptions

    func run() throws {
        let configuration = try loadConfiguration()
        let launch = try WorkerLaunch(configuration: configuration, step: .fullyTrain, distributed: distributed)
        do {
            let trainer = try Trainer(
                configuration: configuration, dataset: launch.dataset, communicator: launch.worker.communicator,
                logger: launch.logger, progressSink: launch.sink, coordinator: launch.coordinator)
            try trainer.run()
        } catch {
            try launch.fail(with: error)
        }
        try launch.worker.finish()
    }

    /// The configuration file with `--set` values and the named flags applied, in that order.
    private func loadConfiguration() throws -> TrainingConfiguration {
        var assignments = try ConfigurationOverride.parsing(overrides, file: config)
        func named(_ flag: String, _ keyPath: String, _ value: String?) {
            if let value { assignments.append(ConfigurationOverride(keyPath: keyPath, value: value, origin: "--\(flag) \(value)")) }
        }
        named("epochs", "fully_train.trainer.epochs", epochs.map(String.init))
        named("data-path", "fully_train.dataset.common.data_path", dataPath)
        named("batch-size", "fully_train.dataset.common.batch_size", batchSize.map(String.init))
        named("checkpoint-dir", "runtime.checkpoint_dir", checkpointDir)
        named("coordinator", "runtime.coordinator_url", coordinator)
        if resume { named("resume", "runtime.resume", "True") }
        assignments += distributed.configurationOverrides
        let configuration = try TrainingConfiguration.load(contentsOf: config, overrides: assignments)
        _ = try configuration.step(.fullyTrain)
        return configuration
    }
}

/// What `train` and `eval` set up before any rank talks to another: the dataset index, the
/// coordinator settings, the worker (rank table, identity, MPI) and the rank's log.
///
/// Everything that can fail because of the user's input (configuration paths, dataset layout,
/// coordinator URL, rank table) is checked before `MPI_Init`, identically on every rank, so a bad
/// launch exits at once on all ranks instead of leaving one waiting in a collective.
struct WorkerLaunch {
    let dataset: DatasetIndex
    let coordinator: CoordinatorClientConfiguration?
    let worker: DistributedWorker
    let sink: TrainingLogSink
    let logger: Logger

    init(configuration: TrainingConfiguration, step name: TrainingConfiguration.PipelineStep, distributed: DistributedOptions) throws {
        let step = try configuration.step(name)
        try configuration.validateEnvironment()
        do {
            dataset = try DatasetIndex.load(dataPath: step.dataset.dataPath).index
        } catch {
            throw ValidationError("\(configuration.file): \(name.rawValue).dataset.common.data_path: \(error)")
        }
        let runtime = configuration.runtime
        do {
            coordinator = try CoordinatorClientConfiguration.resolve(
                configuredURL: runtime.coordinatorURL, job: runtime.jobName,
                spoolPath: URL(fileURLWithPath: runtime.logDirectory).appendingPathComponent("coordinator-spool.jsonl").path)
        } catch {
            throw ValidationError("\(configuration.file): runtime.coordinator_url / job_name: \(error)")
        }

        // The distributed flags reached the runtime section as overrides (see configurationOverrides).
        var options = distributed.workerOptions
        options.collectiveTimeout = .milliseconds(Int64(runtime.collectiveTimeout * 1000))
        options.openBLASThreads = runtime.threads > 0 ? runtime.threads : nil
        worker = try DistributedWorker.start(options)

        let rank = worker.identity.rank
        // OpenMPI hands every rank a pseudo-terminal whatever mpirun's own output is, so under mpirun
        // a terminal check says nothing about the user's screen: plain lines suit logs and `tail -f`.
        let sink = try TrainingLogSink(
            logDirectory: URL(fileURLWithPath: runtime.logDirectory), rank: rank, echoToStandardOutput: rank == 0,
            standardOutputIsTerminal: !LaunchEnvironment.current.isUnderMPILauncher && isatty(STDOUT_FILENO) == 1)
        self.sink = sink
        var logger = Logger(label: "ghostnet-d.\(name.rawValue)") { _ in TrainingLogHandler(sink: sink) }
        logger[metadataKey: "rank"] = rank == 0 ? nil : "\(rank)"
        for line in worker.startupLog {
            if line.hasPrefix("warning: ") {
                logger.warning("\(line.dropFirst("warning: ".count))")
                if rank != 0 { StandardError.print(line) }
            } else {
                logger.info("\(line)")
            }
        }
        self.logger = logger
    }

    /// Logs `error` and ends this rank: cleanly (`MPI_Finalize`) when every rank stopped at the
    /// same point, otherwise by exiting so that mpirun ends the job.
    func fail(with error: TrainingError) throws -> Never {
        logger.error("\(error.message)")
        sink.finishProgress()
        if error.isCollective { try? worker.finish() }
        if worker.identity.rank != 0 { StandardError.print("error: rank \(worker.identity.rank): \(error.message)") }
        throw ExitCode.failure
    }
}

extension DistributedOptions {
    /// The distributed flags as overrides of the configuration's `runtime` keys. A flag left at its
    /// default does not override the file; `--openblas-threads` always does when given.
    var configurationOverrides: [ConfigurationOverride] {
        var overrides: [ConfigurationOverride] = []
        if collectiveTimeout != Self.defaultCollectiveTimeout {
            overrides.append(ConfigurationOverride(
                keyPath: "runtime.collective_timeout", value: "\(collectiveTimeout)", origin: "--collective-timeout \(collectiveTimeout)"))
        }
        if bucketMib != Self.defaultBucketMib {
            overrides.append(ConfigurationOverride(keyPath: "runtime.bucket_mib", value: "\(bucketMib)", origin: "--bucket-mib \(bucketMib)"))
        }
        if let openblasThreads {
            overrides.append(ConfigurationOverride(keyPath: "runtime.threads", value: "\(openblasThreads)", origin: "--openblas-threads \(openblasThreads)"))
        }
        return overrides
    }
}

extension ConfigurationOverride {
    /// Parses `--set` assignments (`key.path=value`).
    ///
    /// - Throws: ``ConfigurationError`` for `file` naming the malformed assignment.
    static func parsing(_ assignments: [String], file: String) throws(ConfigurationError) -> [ConfigurationOverride] {
        do {
            return try assignments.map { assignment throws(ConfigurationIssue) in try ConfigurationOverride(assignment: assignment) }
        } catch {
            throw ConfigurationError(file: file, issues: [error])
        }
    }
}
