// The coordinator daemon's life cycle: open the store, reload, serve HTTP or HTTPS (swift-nio-ssl
// through HummingbirdTLS) until a shutdown signal, drain, close.

import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOSSL
import PerformanceRecords

/// The coordinator daemon: opens the store, reloads and logs each job's best set, serves the API
/// until a shutdown signal (or cancellation), then drains open requests and closes the database.
package enum CoordinatorDaemon {
    /// Connections idle this long are closed, so a client that stops mid-request cannot pin a slot.
    package static let idleTimeoutSeconds: Int64 = 30

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
    package static func run(
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
        if configuration.insecureHTTP {
            logger.warning(
                "--insecure-http: serving plain HTTP; the bearer token and every record cross the network in clear text"
            )
        }
        let host = configuration.host
        let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .seconds(idleTimeoutSeconds)))
        let application = Application(
            router: CoordinatorRoutes.router(service: service, token: configuration.token),
            server: try serverTLSConfiguration(configuration).map { try .tls(http1, tlsConfiguration: $0) } ?? http1,
            configuration: .init(address: .hostname(host, port: configuration.port)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                let objectives = configuration.objectives?.map(\.description).joined(separator: " ") ?? "defaults"
                let scheme = configuration.usesTLS ? "https" : "http"
                logger.info(
                    """
                    coordinator listening on \(host.contains(":") ? "[\(host)]" : host):\(port) \
                    (\(scheme); objectives: \(objectives), \
                    auth: \(configuration.token == nil ? "none" : "bearer token"))
                    """
                )
                await onListening(host, port)
            },
            logger: serverLogger)
        // Stalls are found by time, not by a request: look once a second.
        let stallWatch = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                await service.checkStalls()
            }
        }
        var failure: (any Error)?
        do {
            if handlesSignals {
                try await application.runService()  // SIGTERM and SIGINT
            } else {
                try await application.runService(gracefulShutdownSignals: [])
            }
        } catch {
            failure = error
        }
        // The watch may be storing a stall: let it finish before the store closes.
        stallWatch.cancel()
        _ = await stallWatch.result
        if let failure { throw failure }
        logger.info("coordinator stopped")
    }

    /// The server's TLS configuration from the PEM files of `configuration`, or nil without TLS.
    ///
    /// - Throws: `CoordinatorError` naming the file that cannot be read or parsed.
    static func serverTLSConfiguration(_ configuration: CoordinatorConfiguration) throws(CoordinatorError)
        -> TLSConfiguration?
    {
        guard let certificatePath = configuration.tlsCertificatePath, let keyPath = configuration.tlsKeyPath else {
            return nil
        }
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(certificatePath) } catch {
            throw CoordinatorError("--tls-cert \(certificatePath): cannot read a PEM certificate chain: \(error)")
        }
        guard !chain.isEmpty else {
            throw CoordinatorError("--tls-cert \(certificatePath): no PEM certificate in the file")
        }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: keyPath, format: .pem) } catch {
            throw CoordinatorError("--tls-key \(keyPath): cannot read a PEM private key: \(error)")
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        return tls
    }
}
