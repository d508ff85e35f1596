//===----------------------------------------------------------------------===//
// ghostnet-d — Coordinator
//===----------------------------------------------------------------------===//

import PerformanceRecords

/// Why the coordinator cannot start or run; the message names the option or file involved.
public struct CoordinatorError: Error, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// Everything the coordinator daemon needs to start.
public struct CoordinatorConfiguration: Sendable {
    /// The address to bind; loopback unless a token is configured.
    public var host: String
    /// The port to bind; 0 picks a free one (the bound port is logged).
    public var port: Int
    /// Holds `records.sqlite` (WAL mode).
    public var dataDirectory: String
    /// The append-only log file users `tail -f`, if any.
    public var logFile: String?
    /// Rotate the log file (rename to `<file>.1`, reopen) before it would exceed this size.
    public var logMaximumBytes: Int?
    /// The bearer token every request must carry; required for non-loopback addresses.
    public var token: String?
    /// The objectives of the best set, or nil for the reference's defaults.
    public var objectives: [Objective]?
    /// Whether log lines also go to standard output (the daemon's default, for systemd).
    public var logsToStandardOutput: Bool

    /// The largest request body accepted, in bytes.
    public static let maximumBodyBytes = 64 * 1024

    public init(
        host: String = "127.0.0.1", port: Int = 8470, dataDirectory: String, logFile: String? = nil,
        logMaximumBytes: Int? = nil, token: String? = nil, objectives: [Objective]? = nil,
        logsToStandardOutput: Bool = true
    ) {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.logFile = logFile
        self.logMaximumBytes = logMaximumBytes
        self.token = token
        self.objectives = objectives
        self.logsToStandardOutput = logsToStandardOutput
    }

    /// Reads `HOST:PORT` (`[v6]:PORT` for IPv6).
    ///
    /// - Throws: `CoordinatorError` naming the text and the expected form.
    public static func parseListenAddress(_ text: String) throws(CoordinatorError) -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { throw CoordinatorError("--listen '\(text)' must have the form HOST:PORT with a port in 0...65535") }
        var host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { throw CoordinatorError("--listen '\(text)' has no host") }
        return (String(host), port)
    }

    /// Whether `host` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// Checks the rules that span options: a non-loopback bind needs a token, sizes are positive.
    ///
    /// - Throws: `CoordinatorError` saying which rule failed.
    public func validate() throws(CoordinatorError) {
        if !CoordinatorConfiguration.isLoopback(host) && token == nil {
            throw CoordinatorError("binding the non-loopback address \(host) requires --token-file")
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
