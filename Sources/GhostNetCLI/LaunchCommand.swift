// `ghostnet-d launch`: checks the rank table and configuration, then hands the job to the library's
// Supervisor, which runs mpirun, restarts curable failures and ends with a documented status.

import ArgumentParser
import CoordinatorClient
import Distributed
import Foundation
import Supervisor
import Training

#if canImport(Glibc)
import Glibc
#endif

/// `ghostnet-d launch`: the supervisor that deploy/run_distributed.sh and run_standalone.sh call.
struct LaunchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Run a job under mpirun and restart it from its newest checkpoint when a restart can cure a failure.",
        discussion: """
            Starts `mpirun` with one `ghostnet-d train --config FILE` per rank of the table (a hostfile from the \
            table; one server: every rank here over loopback; no table: one process without mpirun) and watches it. \
            A rank killed, a collective timeout or MPI_Abort, a lost server: the job is started again with --resume \
            after a backoff (--backoff, doubling up to --max-backoff), at most --max-restarts times within \
            --restart-window. A bad configuration or rank table, bad data, a NaN/Inf, a full disk or a program \
            trap ends the launch with its message. Before a restart on several servers each is probed \
            (`mpirun -np 1 --host S hostname`); one that does not answer, or whose ranks failed two starts in a \
            row, is dropped: the table is rewritten without it (same version, ranks renumbered) and the job goes on \
            on fewer ranks with the same virtual shards; one that answers again is taken back at the next restart. \
            SIGTERM, SIGINT or SIGUSR1 asks the ranks to checkpoint and stop (they get SIGUSR1). Each start, exit \
            cause and restart is logged on standard error and in <log_dir>/launch.log, and reported to the \
            coordinator as the job's state. Environment: MPIRUN (default mpirun; may include a prefix), MPIRUN_ARGS, \
            and the variables deploy/run_distributed.sh forwards to the ranks. Exit status: 0 finished, 75 \
            preempted, 76 gave up after the restarts, a deterministic failure's own status (64 configuration or \
            rank table, 65 data, 66 NaN/Inf, 73 checkpoint or full disk, 70 a trap), 128+N stopped by signal N \
            between starts.
            """)

    @Option(help: "The rank table JSON; without it one process runs without mpirun.")
    var rankTable: String?

    @Option(help: "The YAML configuration; the ranks run `train --config FILE` (required without --command).")
    var config: String?

    @Option(help: "The worker's subcommand and options instead of `train --config FILE`, as one string.")
    var command: String?

    @Option(parsing: .unconditional, help: "Restarts allowed within --restart-window (0-1000).")
    var maxRestarts = 3

    @Option(help: "The window restarts are counted in, e.g. 90s, 30m, 1h.")
    var restartWindow = "1h"

    @Option(help: "The wait before the first restart in a window; it doubles with each further one.")
    var backoff = "10s"

    @Option(help: "The longest wait between restarts.")
    var maxBackoff = "5m"

    @Option(help: "How long the probe of one server may take.")
    var probeTimeout = "30s"

    @Flag(help: "Resume the first start too (a requeued job): from the newest valid checkpoint, if any.")
    var resume = false

    @Option(
        help: ArgumentHelp(
            "Folder for rewritten rank tables and hostfiles, on every server (default: <log_dir>/launch; without a "
                + "log folder, a temporary folder removed when the launch ends)."))
    var stateDir: String?

    @Argument(parsing: .postTerminator, help: "Further worker options, after `--` (e.g. -- --epochs 3).")
    var workerOptions: [String] = []

    /// The parsed durations: window, backoff, maximum backoff, probe timeout.
    private func durations() throws -> (Double, Double, Double, Double) {
        func seconds(_ flag: String, _ text: String) throws -> Double {
            guard let value = RestartPolicy.seconds(text) else {
                throw ValidationError(
                    "\(flag): expected a duration like 90s, 30m or 1h (at most 30 days), got '\(text)'")
            }
            return value
        }
        return (
            try seconds("--restart-window", restartWindow), try seconds("--backoff", backoff),
            try seconds("--max-backoff", maxBackoff), try seconds("--probe-timeout", probeTimeout)
        )
    }

    func validate() throws {
        try OptionRange.check("--max-restarts", maxRestarts, 0...1000)
        _ = try durations()
        guard config != nil || command != nil else {
            throw ValidationError("give --config FILE (the ranks run `train --config FILE`) or --command")
        }
    }

    func run() throws {
        let (window, backoff, maxBackoff, probeTimeout) = try durations()
        var table: RankTable?
        if let rankTable {
            do {
                let loaded = try RankTable.load(path: rankTable)
                _ = try loaded.hostfile(file: rankTable)
                for warning in loaded.warnings { StandardError.print("warning: \(warning)") }
                table = loaded
            } catch {
                StandardError.print("error: \(error)")
                throw ExitCode(WorkerExitStatus.configuration.rawValue)
            }
        }
        let words =
            command.map { $0.split(whereSeparator: \.isWhitespace).map(String.init) } ?? ["train", "--config", config!]
        let isTrain = words.first == "train"
        let configurationFile = config ?? words.firstIndex(of: "--config").flatMap { words.dropFirst($0 + 1).first }
        var runtime: TrainingConfiguration.Runtime?
        if isTrain, let configurationFile {
            do {
                runtime = try TrainingConfiguration.load(contentsOf: configurationFile).runtime
            } catch {
                StandardError.print("error: \(error)")
                throw ExitCode(WorkerExitStatus.configuration.rawValue)
            }
        }
        let logFolder = runtime?.logDirectory
        let checkpointFolder =
            isTrain
            ? (words.firstIndex(of: "--checkpoint-dir").flatMap { words.dropFirst($0 + 1).first }
                ?? runtime?.checkpointDirectory) : nil
        // Without a log folder the rewritten tables and hostfiles serve this launch alone: a folder of its own,
        // removed when it ends.
        let ownsStateFolder = stateDir == nil && logFolder == nil
        let stateFolder =
            stateDir ?? logFolder.map { $0 + "/launch" }
            ?? NSTemporaryDirectory() + "ghostnet-launch-\(getpid())"
        defer { if ownsStateFolder { try? FileManager.default.removeItem(atPath: stateFolder) } }
        let plan = SupervisorPlan(
            table: table, tablePath: rankTable.map(Self.absolute),
            worker: [Self.executablePath] + words + workerOptions,
            resumeFirstStart: resume && isTrain, checkpointFolder: checkpointFolder,
            stateFolder: Self.absolute(stateFolder),
            mpirun: MPIRunCommand(environment: ProcessInfo.processInfo.environment, runsAsRoot: getuid() == 0),
            policy: RestartPolicy(
                maxRestarts: maxRestarts, window: window, initialBackoff: backoff, maximumBackoff: maxBackoff),
            probeTimeout: probeTimeout,
            virtualRanksWhenShrunk: isTrain && runtime?.virtualRanks == nil ? table?.rankCount : nil)
        if let table, let rankTable {
            StandardError.print(
                "ghostnet-d: \(table.rankCount) rank(s) on \(table.servers.count) server(s) from \(rankTable)")
        }
        let log = try RestartLog(path: logFolder.map { $0 + "/launch.log" })
        let client = try runtime.flatMap { runtime in
            try CoordinatorClientConfiguration.resolve(
                configuredURL: runtime.coordinatorURL, job: runtime.jobName,
                spoolPath: runtime.logDirectory + "/launch-spool.jsonl",
                configuredCertificateAuthority: runtime.coordinatorCA)
        }.map { CoordinatorClient(configuration: $0) }
        let ending = Supervisor(plan: plan, log: log) { client?.submit($0) }.run()
        client?.flush(timeout: 5)
        if ending.exitStatus != 0 { throw ExitCode(ending.exitStatus) }
    }

    /// This executable's absolute path: the ranks run the same binary (at the same path on every server).
    private static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    private static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
