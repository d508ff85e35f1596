// `diagnose coordinator-load`: a bounded load test of a running coordinator, malformed requests, a
// scraper and the progress traffic of many running jobs included, with records-only and
// records-plus-progress phases to compare.

import CoordinatorClient
import Foundation
import PerformanceRecords
import StrictJSON
import Synchronization

/// A bounded load test of a running coordinator: concurrent clients send valid requests with
/// malformed ones interleaved, then every stored record is checked against what was sent.
///
/// Each client owns one job (`<jobPrefix>-<client>`) and loops until the duration ends, cycling
/// through new records (until `recordsPerClient` are stored), idempotent re-posts of records it
/// already stored, and reads of what a worker reads: `/healthz` and its own job (summary, best set,
/// records). The reads that grow with the number of jobs come from one scraper: `/metrics` and
/// `/v1/jobs` every `scrapeInterval` seconds, as Prometheus would, and the dashboard every 10 s, as an
/// open one reloads itself (see `CoordinatorLoadTest+Scraper`). Every `malformedInterval`-th request is malformed instead:
/// broken JSON, NaN, a missing field, an oversized body, a bad job name, a path trick, an unknown
/// route, a conflicting record, bytes that are not HTTP, a body cut short. A valid request counts as
/// answered only with its exact expected status (201 new, 200 duplicate with `"duplicate":true`,
/// 200 for reads); a malformed one must get its 4xx (or, for the last two kinds, a 4xx or a close)
/// within the request timeout.
///
/// With `progressJobs`, the same clients run two phases of `duration` each: records only, then records
/// while `progressJobs` jobs each post a progress report per `progressInterval` (see
/// `CoordinatorLoadTest+Progress`); every acknowledged report must be stored, and the report gives
/// the clients' request rate in both phases and their ratio.
package struct CoordinatorLoadTest: Sendable {
    package var endpoint: HTTPEndpoint
    /// Concurrent clients, each on its own thread with its own job.
    package var clients = 20
    /// Seconds the clients keep sending, per phase.
    package var duration = 30.0
    /// New records each client stores at most; later record posts are re-posts.
    package var recordsPerClient = 200
    /// Every this many requests of a client, one is malformed (0: none).
    package var malformedInterval = 5
    /// Requests each client makes even past `duration`, so a short run on a busy machine still
    /// covers what it must (e.g. every malformed kind) instead of depending on the clock.
    package var minimumRequestsPerClient = 0
    package var jobPrefix = "load"
    /// Sent as `Authorization: Bearer <token>` when set.
    package var token: String?
    /// The bound in seconds on one exchange; a valid request not answered in time is a failure.
    package var requestTimeout = 10.0
    /// Jobs posting progress reports, one per `progressInterval` seconds each (0: none), from
    /// `progressSenders` threads, in a second phase after a records-only one.
    package var progressJobs = 0
    package var progressInterval = 1.0
    /// Threads posting progress, each for its share of the jobs in turn. A real job posts from its own
    /// process; a thread has to post its share within one interval, so ~30 jobs each keep a tick to
    /// ~30 × the request latency.
    package var progressSenders = 32
    /// Seconds between two scrapes of `/metrics` and `/v1/jobs` (0: no scraper).
    package var scrapeInterval = 1.0

    package init(endpoint: HTTPEndpoint) {
        self.endpoint = endpoint
    }

    /// Runs the phases (records only, then with progress jobs records beside progress), then reads
    /// every job back.
    ///
    /// - Returns: the report; ``Report/passed`` is the verdict.
    package func run() -> Report {
        let acknowledged = AcknowledgedRecords(clients: clients)
        var sessions = (0..<clients).map { ClientSession(test: self, client: $0, acknowledged: acknowledged) }
        var report = Report()
        let start = LogTimestamp.now()
        report.phases.append(runPhase("records only", &sessions, acknowledged, withProgress: false, into: &report))
        if progressJobs > 0 {
            report.phases.append(
                runPhase("records + progress", &sessions, acknowledged, withProgress: true, into: &report))
        }
        report.elapsedSeconds = LogTimestamp.now() - start
        var latencies: [Double] = []
        for session in sessions {
            report.merge(session.report)
            latencies += session.latencies
        }
        if progressJobs > 0 {
            var tally = report.progress
            tally.seconds = report.phases[1].seconds
            verifyProgress(into: &tally, report: &report)
            report.progress = tally
        }
        latencies.sort()
        if !latencies.isEmpty {
            report.latencyMedian = latencies[latencies.count / 2]
            report.latencyP99 = latencies[min(latencies.count - 1, latencies.count * 99 / 100)]
            report.latencyMaximum = latencies[latencies.count - 1]
        }
        for session in sessions where !session.stored.isEmpty {
            verify(job: session.job, expected: session.stored, into: &report)
        }
        return report
    }

    /// Runs every session, the scraper and (`withProgress`) the progress senders for `duration`
    /// seconds; the sessions carry on from where the last phase left them.
    private func runPhase(
        _ name: String, _ sessions: inout [ClientSession], _ acknowledged: AcknowledgedRecords, withProgress: Bool,
        into report: inout Report
    ) -> Report.Phase {
        let requestsBefore = sessions.reduce(0) { $0 + $1.report.validSent + $1.report.malformedSent }
        let start = LogTimestamp.now()
        let deadline = start + duration
        let group = DispatchGroup()
        let finished = Mutex<[Int: ClientSession]>([:])
        let sideResults = Mutex<(progress: ProgressTally?, scrapes: ScrapeTally?, failures: Report)>(
            (nil, nil, Report()))
        let test = self
        if withProgress {
            group.enter()
            Thread {
                var failures = Report()
                let tally = test.runProgress(from: start, until: deadline, into: &failures)
                sideResults.withLock {
                    $0.progress = tally
                    $0.failures.merge(failures)
                }
                group.leave()
            }.start()
        }
        if scrapeInterval > 0 {
            group.enter()
            Thread {
                var failures = Report()
                let tally = test.runScraper(from: start, until: deadline, acknowledged: acknowledged, into: &failures)
                sideResults.withLock {
                    $0.scrapes = tally
                    $0.failures.merge(failures)
                }
                group.leave()
            }.start()
        }
        for (index, session) in sessions.enumerated() {
            group.enter()
            Thread {
                var session = session
                session.run(until: deadline)
                finished.withLock { $0[index] = session }
                group.leave()
            }.start()
        }
        group.wait()
        let seconds = LogTimestamp.now() - start
        sessions = finished.withLock { finished in sessions.indices.map { finished[$0]! } }
        let (tally, scrapes, failures) = sideResults.withLock { $0 }
        report.merge(failures)
        if let tally { report.progress = tally }
        if let scrapes { report.scrapes.add(scrapes) }
        let requests = sessions.reduce(0) { $0 + $1.report.validSent + $1.report.malformedSent } - requestsBefore
        return Report.Phase(name: name, requests: requests, seconds: seconds)
    }

    /// Reads `job`'s records back and checks they are exactly `expected`, each once, in order.
    private func verify(job: String, expected: [PerformanceRecord], into report: inout Report) {
        do {
            let response = try HTTPExchange.send(
                "GET", "/v1/jobs/\(job)/records", to: endpoint, headers: authorization, timeout: requestTimeout)
            guard response.status == 200, case .object(let members) = try JSONValue(parsing: response.body),
                case .array(let values) = members.first(where: { $0.key == "records" })?.value
            else {
                report.fail("reading back job \(job): \(response.status) \(response.bodyText.prefix(200))")
                return
            }
            let stored = try values.map { try PerformanceRecord(json: $0) }
            report.recordsReadBack += stored.count
            if stored != expected {
                report.fail(
                    "job \(job): \(stored.count) record(s) stored, \(expected.count) acknowledged, or not the same records in commit order"
                )
            }
        } catch {
            report.fail("reading back job \(job): \(error)")
        }
    }

    var authorization: [(name: String, value: String)] {
        token.map { [("Authorization", "Bearer \($0)")] } ?? []
    }
}

/// The number of records each client has had acknowledged so far, for the scraper to expect.
final class AcknowledgedRecords: Sendable {
    let counts: Mutex<[Int]>

    init(clients: Int) {
        counts = Mutex(Array(repeating: 0, count: clients))
    }
}

/// One client's loop: its job, the records it stored and its tally.
private struct ClientSession: Sendable {
    let test: CoordinatorLoadTest
    let client: Int
    let job: String
    let acknowledged: AcknowledgedRecords
    var report = CoordinatorLoadTest.Report()
    var latencies: [Double] = []
    /// Records acknowledged with 201, in the order they were stored.
    var stored: [PerformanceRecord] = []
    private var requestIndex = 0
    private var malformedIndex = 0

    init(test: CoordinatorLoadTest, client: Int, acknowledged: AcknowledgedRecords) {
        self.test = test
        self.client = client
        self.job = "\(test.jobPrefix)-\(client)"
        self.acknowledged = acknowledged
    }

    mutating func run(until deadline: Double) {
        while LogTimestamp.now() < deadline || requestIndex < test.minimumRequestsPerClient {
            requestIndex += 1
            if test.malformedInterval > 0, requestIndex % test.malformedInterval == 0, !stored.isEmpty {
                sendMalformed()
            } else {
                sendValid()
            }
        }
    }

    // MARK: Valid requests

    private mutating func sendValid() {
        let validIndex = requestIndex - (test.malformedInterval > 0 ? requestIndex / test.malformedInterval : 0)
        if stored.isEmpty {
            postNewRecord()
            return
        }
        switch validIndex % 8 {
        case 0, 4: stored.count < test.recordsPerClient ? postNewRecord() : repost()
        case 1: read("/healthz")
        case 2, 6: repost()
        case 3: read("/v1/jobs/\(job)/best")
        // A worker reads its own job; `/metrics`, `/v1/jobs` and `/` are the scraper's.
        case 5: read(validIndex % 32 == 5 ? "/v1/jobs/\(job)/records" : "/v1/jobs/\(job)")
        default: read("/v1/jobs/\(job)/best")
        }
    }

    private func makeRecord(index: Int) -> PerformanceRecord {
        PerformanceRecord(
            workerID: "\(client)", rank: 0, epoch: index, step: index * 10,
            performance: PerformanceMetrics([
                (key: "accuracy_top1", value: Double.random(in: 0..<1)),
                (key: "loss", value: Double.random(in: 0..<5)),
            ]),
            timestamp: (LogTimestamp.now() * 1000).rounded() / 1000)
    }

    private mutating func postNewRecord() {
        let record = makeRecord(index: stored.count)
        if let response = exchangeValid("POST", "/v1/jobs/\(job)/records", body: Array(record.json.serialized.utf8)) {
            if response.status == 201, response.bodyText.contains("\"duplicate\":false") {
                report.validAnswered += 1
                report.recordsStored += 1
                stored.append(record)
                acknowledged.counts.withLock { $0[client] = stored.count }
            } else {
                report.fail(
                    "new record \(job) epoch \(record.epoch): \(response.status) \(response.bodyText.prefix(200))")
            }
        }
    }

    private mutating func repost() {
        guard let record = stored.randomElement() else { return postNewRecord() }
        if let response = exchangeValid("POST", "/v1/jobs/\(job)/records", body: Array(record.json.serialized.utf8)) {
            if response.status == 200, response.bodyText.contains("\"duplicate\":true") {
                report.validAnswered += 1
                report.duplicatesAcknowledged += 1
            } else {
                report.fail("re-post \(job) epoch \(record.epoch): \(response.status) \(response.bodyText.prefix(200))")
            }
        }
    }

    private mutating func read(_ path: String) {
        if let response = exchangeValid("GET", path, body: []) {
            if response.status == 200 {
                report.validAnswered += 1
            } else {
                report.fail("GET \(path): \(response.status) \(response.bodyText.prefix(200))")
            }
        }
    }

    /// Sends a valid request, timing it; a failed exchange is recorded and yields nil.
    private mutating func exchangeValid(_ method: String, _ path: String, body: [UInt8]) -> HTTPExchangeResponse? {
        report.validSent += 1
        let started = LogTimestamp.now()
        do {
            let response = try HTTPExchange.send(
                method, path, to: test.endpoint, headers: [("Content-Type", "application/json")] + test.authorization,
                body: body, timeout: test.requestTimeout)
            latencies.append(LogTimestamp.now() - started)
            return response
        } catch {
            report.fail("\(method) \(path): \(error)")
            return nil
        }
    }

    // MARK: Malformed requests

    /// The malformed kinds, cycled through in order.
    private enum Malformed: CaseIterable {
        case brokenJSON, nanLiteral, missingField, oversized, badJobName, pathTrick, unknownRoute, conflict, notHTTP,
            bodyCutShort
    }

    private mutating func sendMalformed() {
        let kind = Malformed.allCases[malformedIndex % Malformed.allCases.count]
        malformedIndex += 1
        report.malformedSent += 1
        let valid = stored[stored.count - 1].json.serialized
        let records = "/v1/jobs/\(job)/records"
        switch kind {
        case .brokenJSON: expect(kind, post(records, String(valid.dropLast())), 400)
        case .nanLiteral:
            expect(kind, post(records, valid.replacingOccurrences(of: "\"loss\":", with: "\"loss\":NaN,\"x\":")), 400)
        case .missingField: expect(kind, post(records, valid.replacingOccurrences(of: "\"rank\":0,", with: "")), 422)
        case .oversized:
            expect(kind, post(records, "{\"worker_id\":\"" + String(repeating: "w", count: 70_000) + "\"}"), 413)
        case .badJobName: expect(kind, post("/v1/jobs/bad%20job/records", valid), 400)
        case .pathTrick: expect(kind, post("/v1/jobs/../records", valid), 400)
        case .unknownRoute: expect(kind, post("/v1/jobs/\(job)/records/extra", valid), 404)
        case .conflict:
            var changed = stored[stored.count - 1]
            changed.timestamp += 1
            expect(kind, post(records, changed.json.serialized), 409)
        case .notHTTP: expectRefusalOrClose(kind, raw: Array("\u{0}\u{1}GARBAGE \u{7f}\r\n\r\n".utf8), halfClose: false)
        case .bodyCutShort:
            let head = "POST \(records) HTTP/1.1\r\nHost: \(test.endpoint.host)\r\nContent-Length: 500\r\n\r\n"
            expectRefusalOrClose(kind, raw: Array((head + valid.prefix(40)).utf8), halfClose: true)
        }
    }

    private func post(_ path: String, _ body: String) -> Result<HTTPExchangeResponse, HTTPClientError> {
        Result { () throws(HTTPClientError) in
            try HTTPExchange.send(
                "POST", path, to: test.endpoint, headers: [("Content-Type", "application/json")] + test.authorization,
                body: Array(body.utf8), timeout: test.requestTimeout)
        }
    }

    private mutating func expect(
        _ kind: Malformed, _ outcome: Result<HTTPExchangeResponse, HTTPClientError>, _ status: Int
    ) {
        switch outcome {
        case .success(let response) where response.status == status && response.bodyText.hasPrefix("{\"error\":"):
            report.malformedRefused += 1
        case .success(let response):
            report.fail(
                "malformed \(kind): expected a \(status) JSON error, got \(response.status) \(response.bodyText.prefix(200))"
            )
        case .failure(let error):
            report.fail("malformed \(kind): \(error)")
        }
    }

    /// Sends bytes that are not a complete request: a 4xx answer or a close (reset included) is a
    /// refusal; a 2xx/5xx answer or no close within the timeout is a failure.
    private mutating func expectRefusalOrClose(_ kind: Malformed, raw: [UInt8], halfClose: Bool) {
        do {
            let answer = try HTTPExchange.exchange(
                raw: raw, with: test.endpoint, timeout: test.requestTimeout, halfClose: halfClose)
            let statusLine = String(decoding: answer.prefix(12), as: UTF8.self)
            if answer.isEmpty || (statusLine.hasPrefix("HTTP/1.1 4")) {
                report.malformedRefused += 1
            } else {
                report.fail("malformed \(kind): answered '\(String(decoding: answer.prefix(80), as: UTF8.self))'")
            }
        } catch  where error.message.contains("reset") {
            report.malformedRefused += 1
        } catch {
            report.fail("malformed \(kind): \(error)")
        }
    }
}
