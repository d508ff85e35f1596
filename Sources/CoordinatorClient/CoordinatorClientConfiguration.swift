// How a worker reaches the coordinator (URL, job, token, spool, timeouts) and where those come
// from: the configuration, else GHOSTNET_COORDINATOR and GHOSTNET_COORDINATOR_TOKEN_FILE.

import Foundation
import PerformanceRecords

/// How a worker reaches the coordinator and how hard it tries.
package struct CoordinatorClientConfiguration: Sendable {
    /// The environment variable that names the coordinator when the configuration does not.
    package static let urlVariable = "GHOSTNET_COORDINATOR"
    /// The environment variable naming a file that holds the bearer token.
    package static let tokenFileVariable = "GHOSTNET_COORDINATOR_TOKEN_FILE"
    /// The environment variable naming the PEM file of the CA an `https://` coordinator is verified with.
    package static let certificateAuthorityVariable = "GHOSTNET_COORDINATOR_CA"

    package var endpoint: HTTPEndpoint
    /// The job the records belong to (`[A-Za-z0-9._-]{1,128}`).
    package var job: String
    /// Sent as `Authorization: Bearer <token>` when set.
    package var token: String?
    /// Where records wait until the coordinator confirmed them.
    package var spoolPath: String
    /// Attempts per record in one delivery round (the first try included).
    package var maximumAttempts = 4
    /// The wait before the second attempt; doubled after every failure up to `maximumBackoff`.
    package var initialBackoff = 0.2
    package var maximumBackoff = 2.0
    /// The bound in seconds on one HTTP exchange.
    package var requestTimeout = 5.0
    /// The bound in seconds on connecting (within ``requestTimeout``).
    package var connectTimeout = HTTPExchange.defaultConnectTimeout
    /// After a round that left records waiting, the sender tries again this many seconds later
    /// (or at the next record, whichever comes first).
    package var retryInterval = 10.0

    package init(endpoint: HTTPEndpoint, job: String, token: String? = nil, spoolPath: String) {
        self.endpoint = endpoint
        self.job = job
        self.token = token
        self.spoolPath = spoolPath
    }

    /// The configuration for a worker: the URL from `configuredURL` when given, else from
    /// `GHOSTNET_COORDINATOR`; the token from `GHOSTNET_COORDINATOR_TOKEN_FILE` when set; for an
    /// `https://` URL the CA file from `configuredCertificateAuthority`, else `GHOSTNET_COORDINATOR_CA`.
    ///
    /// - Returns: nil when no coordinator is configured (the worker then logs the Best values line
    ///   itself with `BestValuesLine.logLine`).
    /// - Throws: ``HTTPClientError`` for a malformed URL or an unreadable token file,
    ///   `RecordValidationError` for an invalid job name.
    package static func resolve(
        configuredURL: String?, job: String, spoolPath: String, configuredCertificateAuthority: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> CoordinatorClientConfiguration? {
        guard let url = configuredURL ?? environment[urlVariable].flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
        try JobName.validate(job)
        var configuration = CoordinatorClientConfiguration(
            endpoint: try HTTPEndpoint(url: url), job: job, spoolPath: spoolPath)
        if let tokenFile = environment[tokenFileVariable], !tokenFile.isEmpty {
            configuration.token = try BearerToken.read(from: tokenFile)
        }
        // The CA: runtime.coordinator_ca, else GHOSTNET_COORDINATOR_CA; it only means something for https.
        if let authority = configuredCertificateAuthority
            ?? environment[certificateAuthorityVariable].flatMap({ $0.isEmpty ? nil : $0 })
        {
            guard configuration.endpoint.usesTLS else {
                throw HTTPClientError(
                    .invalidURL, location: "coordinator URL '\(url)'",
                    "is not https:// although a CA file is given (\(authority)); the CA verifies a TLS coordinator")
            }
            configuration.endpoint.certificateAuthorityFile = authority
        }
        return configuration
    }
}

/// Reading the shared secret both sides use.
package enum BearerToken {
    /// The token in `path`: the file's first line, surrounding whitespace removed.
    ///
    /// - Throws: ``HTTPClientError`` `.unreadableToken` naming the file when it is unreadable or
    ///   holds no token.
    package static func read(from path: String) throws(HTTPClientError) -> String {
        let location = "token file \(path)"
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw HTTPClientError(.unreadableToken, location: location, "cannot be read: \(reason)")
        }
        let token = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingWhitespace() } ?? ""
        guard !token.isEmpty else {
            throw HTTPClientError(.unreadableToken, location: location, "holds no token on its first line")
        }
        return token
    }
}
