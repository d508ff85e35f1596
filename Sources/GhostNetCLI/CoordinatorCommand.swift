// `ghostnet-d coordinator`: the options of the performance-record daemon, turned into a validated
// CoordinatorConfiguration (the daemon itself is in the Coordinator module).

import ArgumentParser
import Coordinator
import CoordinatorClient
import PerformanceRecords

/// `ghostnet-d coordinator`: the performance-record daemon.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator that stores performance records and logs the best ones.",
        discussion: """
            Runs in the foreground and logs to standard output (and --log). Workers POST records to \
            /v1/jobs/JOB/records; after each new record the job's best set is logged as \
            'Best values: [...]'. Rank 0 POSTs progress to /v1/jobs/JOB/progress; the job's state \
            (starting, running, stalled after 3 missed reports, finished, failed, preempted, restarting) \
            and each straggler are logged as one line and stored. GET /v1/jobs and /v1/jobs/JOB show \
            states, /v1/jobs/JOB/records.csv and progress.csv the data as CSV. GET / is a dashboard, \
            /metrics Prometheus text, /healthz a liveness probe. A supervisor POSTs restarts, preemptions \
            and failures to /v1/jobs/JOB/state. --tensorboard-dir writes TensorBoard event files, one run \
            folder per job. SIGTERM or SIGINT drains open requests \
            and exits 0. A non-loopback --listen needs \
            --token-file (a token of at least 16 bytes) and --tls-cert/--tls-key, or --insecure-http \
            to send the token in clear text on purpose.
            """)

    @Option(
        help: ArgumentHelp(
            "HOST:PORT to listen on. Port 0 picks a free port; the bound one is logged. "
                + "Non-loopback hosts need --token-file and TLS.")
    )
    var listen = "127.0.0.1:8470"

    @Option(help: "Directory for the record database (records.sqlite, created if missing).")
    var dataDir: String

    @Option(help: "Append-only log file (flushed per line; safe with logrotate copytruncate).")
    var log: String?

    @Option(parsing: .unconditional, help: "Rotate --log to FILE.1 before it would exceed this many bytes (1024-2^50).")
    var logMaxBytes: Int?

    @Option(help: "File whose first line is the bearer token (at least 16 bytes) every request must send.")
    var tokenFile: String?

    @Option(
        help: ArgumentHelp(
            "PEM file of the server certificate (chain) for HTTPS; needs --tls-key. "
                + "Workers trust its CA through runtime.coordinator_ca or GHOSTNET_COORDINATOR_CA.")
    )
    var tlsCert: String?

    @Option(help: "PEM file of the private key of --tls-cert.")
    var tlsKey: String?

    @Flag(
        name: .customLong("insecure-http"),
        help: ArgumentHelp(
            "Serve plain HTTP on a non-loopback address: the token crosses the network in clear text. "
                + "Logs a warning at every start.")
    )
    var insecureHTTP = false

    @Option(
        name: .customLong("objective"),
        help: ArgumentHelp(
            "An objective KEY:max or KEY:min of the best set (repeatable). "
                + "Default: every performance key, flops/params/latency/loss minimised, the rest maximised.")
    )
    var objectives: [String] = []

    @Option(
        name: .customLong("tensorboard-dir"),
        help: ArgumentHelp(
            "Write TensorBoard event files here, one run folder per job (train/loss, train/lr, "
                + "train/images_per_second from progress, val/KEY from records); `tensorboard --logdir DIR`.")
    )
    var tensorBoardDirectory: String?

    func validate() throws {
        try OptionRange.check("--log-max-bytes", logMaxBytes, 1024...(1 << 50))
        _ = try makeConfiguration()
    }

    func run() async throws {
        try await CoordinatorDaemon.run(configuration: try makeConfiguration())
    }

    private func makeConfiguration() throws -> CoordinatorConfiguration {
        do {
            let (host, port) = try CoordinatorConfiguration.parseListenAddress(listen)
            let configuration = CoordinatorConfiguration(
                host: host, port: port, dataDirectory: dataDir, logFile: log, logMaximumBytes: logMaxBytes,
                token: try tokenFile.map { path throws(HTTPClientError) in try BearerToken.read(from: path) },
                tlsCertificatePath: tlsCert, tlsKeyPath: tlsKey, insecureHTTP: insecureHTTP,
                objectives: objectives.isEmpty
                    ? nil : try objectives.map { text throws(RecordValidationError) in try Objective(parsing: text) },
                tensorBoardDirectory: tensorBoardDirectory)
            try configuration.validate()
            return configuration
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
