//===----------------------------------------------------------------------===//
// ghostnet-d — PerformanceRecords
//===----------------------------------------------------------------------===//

import Foundation
import StrictJSON

/// How a worker reaches the coordinator and how hard it tries.
public struct CoordinatorClientConfiguration: Sendable {
    /// The environment variable that names the coordinator when the configuration does not.
    public static let urlVariable = "GHOSTNET_COORDINATOR"
    /// The environment variable naming a file that holds the bearer token.
    public static let tokenFileVariable = "GHOSTNET_COORDINATOR_TOKEN_FILE"

    public var endpoint: HTTPEndpoint
    /// The job the records belong to (`[A-Za-z0-9._-]{1,128}`).
    public var job: String
    /// Sent as `Authorization: Bearer <token>` when set.
    public var token: String?
    /// Where records wait until the coordinator confirmed them.
    public var spoolPath: String
    /// Attempts per record in one delivery round (the first try included).
    public var maximumAttempts = 4
    /// The wait before the second attempt; doubled after every failure up to `maximumBackoff`.
    public var initialBackoff = 0.2
    public var maximumBackoff = 2.0
    /// The bound in seconds on one HTTP exchange.
    public var requestTimeout = 5.0

    public init(endpoint: HTTPEndpoint, job: String, token: String? = nil, spoolPath: String) {
        self.endpoint = endpoint
        self.job = job
        self.token = token
        self.spoolPath = spoolPath
    }

    /// The configuration for a worker: the URL from `configuredURL` when given, else from
    /// `GHOSTNET_COORDINATOR`; the token from `GHOSTNET_COORDINATOR_TOKEN_FILE` when set.
    ///
    /// - Returns: nil when no coordinator is configured (the worker then logs the Best values line
    ///   itself with `BestValuesLine.logLine`).
    /// - Throws: `HTTPClientError` for a malformed URL or an unreadable token file,
    ///   `RecordValidationError` for an invalid job name.
    public static func resolve(
        configuredURL: String?, job: String, spoolPath: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> CoordinatorClientConfiguration? {
        guard let url = configuredURL ?? environment[urlVariable].flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
        try JobName.validate(job)
        var configuration = CoordinatorClientConfiguration(endpoint: try HTTPEndpoint(url: url), job: job, spoolPath: spoolPath)
        if let tokenFile = environment[tokenFileVariable], !tokenFile.isEmpty {
            configuration.token = try BearerToken.read(from: tokenFile)
        }
        return configuration
    }
}

/// Reading the shared secret both sides use.
public enum BearerToken {
    /// The token in `path`: the file's first line, surrounding whitespace removed.
    ///
    /// - Throws: `HTTPClientError` naming the file when it is unreadable or holds no token.
    public static func read(from path: String) throws(HTTPClientError) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw HTTPClientError("cannot read token file \(path)")
        }
        let token = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingWhitespace() } ?? ""
        guard !token.isEmpty else { throw HTTPClientError("token file \(path) is empty") }
        return token
    }
}

/// What one delivery round did.
public struct DeliveryReport: Sendable, Equatable {
    /// Records the coordinator confirmed (2xx) in this round, removed from the spool.
    public var delivered = 0
    /// Records refused for good (4xx other than 408/429), moved to `<spool>.rejected`.
    public var rejected = 0
    /// Records still waiting in the spool.
    public var pending = 0
    /// Why delivery stopped early, when it did.
    public var lastError: String?
}

/// Sends performance records to the coordinator without ever losing one.
///
/// Every record is first appended to the spool file, then the spool is delivered in order: each
/// entry is posted with bounded retries and exponential backoff and leaves the spool only after a
/// 2xx. If the coordinator stays unreachable, the entries wait and go out, in order, at the next
/// `submit` or `deliverPending`. The coordinator treats a repeated (job, worker, epoch, step) as
/// the same record, so a retry after a lost response never doubles a record.
public struct CoordinatorClient: Sendable {
    public let configuration: CoordinatorClientConfiguration
    public var spool: RecordSpool { RecordSpool(path: configuration.spoolPath) }

    public init(configuration: CoordinatorClientConfiguration) {
        self.configuration = configuration
    }

    /// Spools `record` and delivers everything waiting, oldest first.
    ///
    /// - Throws: `SpoolError` only when the record cannot be written to the spool; delivery
    ///   failures are reported in the returned `DeliveryReport` (the record stays spooled).
    @discardableResult
    public func submit(_ record: PerformanceRecord) throws -> DeliveryReport {
        try spool.withLock {
            try spool.appendLocked(SpooledRecord(job: configuration.job, record: record))
            return try deliverLocked()
        }
    }

    /// Delivers the records waiting in the spool, oldest first.
    @discardableResult
    public func deliverPending() throws -> DeliveryReport {
        try spool.withLock { try deliverLocked() }
    }

    private func deliverLocked() throws -> DeliveryReport {
        var waiting = try spool.entriesLocked()
        var report = DeliveryReport()
        while let entry = waiting.first {
            switch post(entry) {
            case .accepted:
                report.delivered += 1
            case .refused(let reason):
                try spool.rejectLocked(entry)
                report.rejected += 1
                report.lastError = reason
            case .unavailable(let reason):
                report.lastError = reason
                report.pending = waiting.count
                try spool.replaceLocked(with: waiting)
                return report
            }
            waiting.removeFirst()
            try spool.replaceLocked(with: waiting)
        }
        return report
    }

    enum PostOutcome: Equatable {
        case accepted
        case refused(String)
        case unavailable(String)
    }

    /// Posts one entry, retrying connection failures, 5xx, 408 and 429 with backoff.
    func post(_ entry: SpooledRecord) -> PostOutcome {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json")]
        if let token = configuration.token { headers.append(("Authorization", "Bearer \(token)")) }
        let body = Array(entry.record.json.serialized.utf8)
        var backoff = configuration.initialBackoff
        var reason = "no attempt made"
        for attempt in 1...max(1, configuration.maximumAttempts) {
            if attempt > 1 {
                Thread.sleep(forTimeInterval: backoff)
                backoff = min(backoff * 2, configuration.maximumBackoff)
            }
            do {
                let response = try HTTPExchange.send(
                    "POST", "/v1/jobs/\(entry.job)/records", to: configuration.endpoint,
                    headers: headers, body: body, timeout: configuration.requestTimeout)
                switch response.status {
                case 200..<300: return .accepted
                case 408, 429, 500...: reason = "coordinator answered \(response.status): \(response.bodyText)"
                default: return .refused("coordinator refused the record with \(response.status): \(response.bodyText)")
                }
            } catch {
                reason = error.description
            }
        }
        return .unavailable(reason)
    }
}
