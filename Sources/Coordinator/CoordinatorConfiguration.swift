// What the coordinator daemon needs to start, and the rules that span its options: a non-loopback
// bind needs a bearer token of at least 16 bytes and TLS (or an explicit --insecure-http).

import PerformanceRecords

/// Why the coordinator cannot start or run; the message names the option or file involved.
package struct CoordinatorError: Error, CustomStringConvertible {
    package var message: String

    package init(_ message: String) { self.message = message }

    package var description: String { message }
}

/// Everything the coordinator daemon needs to start.
package struct CoordinatorConfiguration: Sendable {
    /// The address to bind; loopback unless a token is configured.
    package var host: String
    /// The port to bind; 0 picks a free one (the bound port is logged).
    package var port: Int
    /// Holds `records.sqlite` (WAL mode).
    package var dataDirectory: String
    /// The append-only log file users `tail -f`, if any.
    package var logFile: String?
    /// Rotate the log file (rename to `<file>.1`, reopen) before it would exceed this size.
    package var logMaximumBytes: Int?
    /// The bearer token every request must carry; required for non-loopback addresses.
    package var token: String?
    /// PEM files of the server's certificate chain and private key; both or neither. With them the
    /// coordinator speaks only HTTPS.
    package var tlsCertificatePath: String?
    package var tlsKeyPath: String?
    /// Allows a non-loopback bind without TLS (the token then crosses the network in clear text);
    /// a warning is logged at every start.
    package var insecureHTTP: Bool
    /// The objectives of the best set, or nil for the reference's defaults.
    package var objectives: [Objective]?
    /// Whether log lines also go to standard output (the daemon's default, for systemd).
    package var logsToStandardOutput: Bool
    /// Where TensorBoard event files go (one run folder per job), if anywhere.
    package var tensorBoardDirectory: String?

    /// The largest request body accepted, in bytes.
    package static let maximumBodyBytes = 64 * 1024
    /// The shortest bearer token accepted, in bytes: a guessable token protects nothing.
    package static let minimumTokenBytes = 16

    package init(
        host: String = "127.0.0.1", port: Int = 8470, dataDirectory: String, logFile: String? = nil,
        logMaximumBytes: Int? = nil, token: String? = nil, tlsCertificatePath: String? = nil, tlsKeyPath: String? = nil,
        insecureHTTP: Bool = false, objectives: [Objective]? = nil, logsToStandardOutput: Bool = true,
        tensorBoardDirectory: String? = nil
    ) {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.logFile = logFile
        self.logMaximumBytes = logMaximumBytes
        self.token = token
        self.tlsCertificatePath = tlsCertificatePath
        self.tlsKeyPath = tlsKeyPath
        self.insecureHTTP = insecureHTTP
        self.objectives = objectives
        self.logsToStandardOutput = logsToStandardOutput
        self.tensorBoardDirectory = tensorBoardDirectory
    }

    /// Reads `HOST:PORT` (`[v6]:PORT` for IPv6).
    ///
    /// - Throws: `CoordinatorError` naming the text and the expected form.
    package static func parseListenAddress(_ text: String) throws(CoordinatorError) -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { throw CoordinatorError("--listen '\(text)' must have the form HOST:PORT with a port in 0...65535") }
        var host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { throw CoordinatorError("--listen '\(text)' has no host") }
        return (String(host), port)
    }

    /// Whether `host` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
    package static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// Whether requests arrive over TLS.
    package var usesTLS: Bool { tlsCertificatePath != nil }

    /// Checks the rules that span options: a non-loopback bind needs a token and TLS (or
    /// --insecure-http), the token has at least 16 bytes, sizes are positive.
    ///
    /// - Throws: `CoordinatorError` saying which rule failed.
    package func validate() throws(CoordinatorError) {
        if (tlsCertificatePath == nil) != (tlsKeyPath == nil) {
            throw CoordinatorError("--tls-cert and --tls-key must be given together")
        }
        if !CoordinatorConfiguration.isLoopback(host) && token == nil {
            throw CoordinatorError("binding the non-loopback address \(host) requires --token-file")
        }
        if let token, token.utf8.count < CoordinatorConfiguration.minimumTokenBytes {
            throw CoordinatorError(
                "the token must have at least \(CoordinatorConfiguration.minimumTokenBytes) bytes, got "
                    + "\(token.utf8.count)"
            )
        }
        if !CoordinatorConfiguration.isLoopback(host) && !usesTLS && !insecureHTTP {
            throw CoordinatorError(
                "binding the non-loopback address \(host) requires --tls-cert and --tls-key, so the token is not sent "
                    + "in clear text (or --insecure-http to accept that)")
        }
        if let logMaximumBytes, logMaximumBytes < 1024 {
            throw CoordinatorError("--log-max-bytes must be at least 1024, got \(logMaximumBytes)")
        }
        if logMaximumBytes != nil && logFile == nil {
            throw CoordinatorError("--log-max-bytes needs --log")
        }
        if let token, token.isEmpty || token.contains(where: { $0.isWhitespace }) {
            throw CoordinatorError("the token must be non-empty and contain no whitespace")
        }
    }
}
