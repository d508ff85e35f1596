//===----------------------------------------------------------------------===//
// ghostnet-d — Coordinator
//===----------------------------------------------------------------------===//

import Hummingbird
import Logging
import PerformanceRecords

/// The coordinator daemon: opens the store, reloads and logs each job's best set, serves the API
/// until a shutdown signal (or cancellation), then drains open requests and closes the database.
public enum CoordinatorDaemon {
    /// Connections idle this long are closed, so a client that stops mid-request cannot pin a slot.
    public static let idleTimeoutSeconds: Int64 = 30

    /// Runs the daemon in the foreground.
    ///
    /// Logs `coordinator listening on HOST:PORT` with the bound port (the actual one when `port` is
    /// 0) once it accepts connections.
    ///
    /// - Parameters:
    ///   - configuration: validated here; see `CoordinatorConfiguration.validate()`.
    ///   - handlesSignals: whether SIGTERM and SIGINT start a graceful shutdown (the daemon's
    ///     default; in-process tests pass false and cancel the task instead).
    ///   - onListening: called with the bound host and port once the server accepts connections.
    /// - Throws: `CoordinatorError` for invalid configuration or an unusable store or log file, and
    ///   the server's error when it cannot bind.
    public static func run(
        configuration: CoordinatorConfiguration,
        handlesSignals: Bool = true,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
    ) async throws {
        try configuration.validate()
        let sink = try LogSink(
            path: configuration.logFile, maximumBytes: configuration.logMaximumBytes,
            writesToStandardOutput: configuration.logsToStandardOutput)
        let logger = Logger(label: "coordinator") { _ in CoordinatorLogHandler(sink: sink) }
        // Hummingbird's own messages (per-request traces, server start) only from warning up.
        var serverLogger = Logger(label: "coordinator.http") { _ in CoordinatorLogHandler(sink: sink) }
        serverLogger.logLevel = .warning

        let service = try CoordinatorService(configuration: configuration, logger: logger)
        defer {
            do { try service.store.close() } catch { logger.error("closing the record database failed: \(error)") }
        }
        let host = configuration.host
        let application = Application(
            router: CoordinatorRoutes.router(service: service, token: configuration.token),
            server: .http1(configuration: .init(idleTimeout: .seconds(idleTimeoutSeconds))),
            configuration: .init(address: .hostname(host, port: configuration.port)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                let objectives = configuration.objectives?.map(\.description).joined(separator: " ") ?? "defaults"
                logger.info("coordinator listening on \(host.contains(":") ? "[\(host)]" : host):\(port) (objectives: \(objectives), auth: \(configuration.token == nil ? "none" : "bearer token"))")
                await onListening(host, port)
            },
            logger: serverLogger)
        if handlesSignals {
            try await application.runService()  // SIGTERM and SIGINT
        } else {
            try await application.runService(gracefulShutdownSignals: [])
        }
        logger.info("coordinator stopped")
    }
}
