//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser
import Coordinator
import PerformanceRecords

/// `ghostnet-d coordinator`: the performance-record daemon.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator that stores performance records and logs the best ones.",
        discussion: """
            Runs in the foreground and logs to standard output (and --log). Workers POST records to \
            /v1/jobs/JOB/records; after each new record the job's best set is logged as \
            'Best values: [...]'. GET / is a dashboard, /metrics Prometheus text, /healthz a liveness \
            probe. SIGTERM or SIGINT drains open requests and exits 0.
            """)

    @Option(help: "HOST:PORT to listen on. Port 0 picks a free port; the bound one is logged. Non-loopback hosts need --token-file.")
    var listen = "127.0.0.1:8470"

    @Option(help: "Directory for the record database (records.sqlite, created if missing).")
    var dataDir: String

    @Option(help: "Append-only log file (flushed per line; safe with logrotate copytruncate).")
    var log: String?

    @Option(help: "Rotate --log to FILE.1 before it would exceed this many bytes (at least 1024).")
    var logMaxBytes: Int?

    @Option(help: "File whose first line is the bearer token every request must send.")
    var tokenFile: String?

    @Option(name: .customLong("objective"),
            help: "An objective KEY:max or KEY:min of the best set (repeatable). Default: every performance key, flops/params/latency/loss minimised, the rest maximised.")
    var objectives: [String] = []

    func validate() throws {
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
                objectives: objectives.isEmpty ? nil : try objectives.map { text throws(RecordValidationError) in try Objective(parsing: text) })
            try configuration.validate()
            return configuration
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
