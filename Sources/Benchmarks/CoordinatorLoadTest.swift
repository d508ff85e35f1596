// `diagnose coordinator-load`: a bounded load test of a running coordinator, malformed requests and
// the progress traffic of many running jobs included.

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
/// already stored, and reads (`/healthz`, the job's best set and records, `/v1/jobs`,
/// `/metrics`). Every `malformedInterval`-th request is malformed instead: broken JSON, NaN, a
/// missing field, an oversized body, a bad job name, a path trick, an unknown route, a
/// conflicting record, bytes that are not HTTP, a body cut short. A valid request counts as
/// answered only with its exact expected status (201 new, 200 duplicate with `"duplicate":true`,
/// 200 for reads); a malformed one must get its 4xx (or, for the last two kinds, a 4xx or a close)
/// within the request timeout. Meanwhile `progressJobs` jobs each post a progress report per
/// `progressInterval` (see `CoordinatorLoadTest+Progress`); every acknowledged one must be stored.
package struct CoordinatorLoadTest: Sendable {
    package var endpoint: HTTPEndpoint
    /// Concurrent clients, each on its own thread with its own job.
    package var clients = 20
    /// Seconds the clients keep sending.
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
    /// `progressSenders` threads.
    package var progressJobs = 0
    package var progressInterval = 1.0
    package var progressSenders = 8

    package init(endpoint: HTTPEndpoint) {
        self.endpoint = endpoint
    }

    /// What the load test saw.
    package struct Report: Sendable {
        package var validSent = 0
        package var validAnswered = 0
        package var malformedSent = 0
        /// Malformed requests refused as expected (their 4xx, or a close where allowed).
        package var malformedRefused = 0
        /// New records the coordinator acknowledged with 201.
        package var recordsStored = 0
        /// Re-posts the coordinator acknowledged as duplicates.
        package var duplicatesAcknowledged = 0
        /// Records read back per job after the load, compared with those acknowledged.
        package var recordsReadBack = 0
        package var elapsedSeconds = 0.0
        /// Latencies of valid requests, in seconds.
        package var latencyMedian = 0.0
        package var latencyP99 = 0.0
        package var latencyMaximum = 0.0
        /// Every unexpected answer or failed exchange, first ones first (at most 50 kept).
        package var failures: [String] = []
        /// Failures beyond those kept in `failures`.
        package var failuresNotKept = 0
        package var progress = ProgressTally()

        package var failureCount: Int { failures.count + failuresNotKept }
        package var passed: Bool {
            failureCount == 0 && validAnswered == validSent && malformedRefused == malformedSent
                && progress.acknowledged == progress.sent && progress.readBack == progress.acknowledged
        }

        /// The report as `key: value` lines, the verdict last.
        package var lines: [String] {
            let rate = elapsedSeconds > 0 ? Double(validSent + malformedSent) / elapsedSeconds : 0
            return [
                "requests: \(validSent + malformedSent) in \(String(format: "%.1f", elapsedSeconds)) s (\(String(format: "%.0f", rate))/s)",
                "valid answered: \(validAnswered)/\(validSent)",
                "malformed refused: \(malformedRefused)/\(malformedSent)",
                "records stored: \(recordsStored), duplicates acknowledged: \(duplicatesAcknowledged), read back: \(recordsReadBack)",
                String(
                    format: "latency of valid requests: median %.1f ms, p99 %.1f ms, max %.1f ms",
                    latencyMedian * 1000, latencyP99 * 1000, latencyMaximum * 1000),
            ] + progressLines + failures.map { "failure: \($0)" }
                + (failuresNotKept > 0 ? ["failure: \(failuresNotKept) more not shown"] : [])
                + [passed ? "load test: ok" : "load test: FAILED (\(failureCount) failure(s))"]
        }

        private var progressLines: [String] {
            guard progress.sent > 0 else { return [] }
            let latencies = progress.latencies
            let p99 = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, latencies.count * 99 / 100)]
            return [
                "progress reports: \(progress.sent) sent (\(String(format: "%.0f", progress.rate(elapsedSeconds: elapsedSeconds)))/s), "
                    + "\(progress.acknowledged) acknowledged, \(progress.readBack) read back, \(progress.lateTicks) late ticks",
                String(
                    format: "latency of progress reports: median %.1f ms, p99 %.1f ms",
                    (latencies.isEmpty ? 0 : latencies[latencies.count / 2]) * 1000, p99 * 1000),
            ]
        }

        mutating func fail(_ message: String) {
            if failures.count < 50 { failures.append(message) } else { failuresNotKept += 1 }
        }

        mutating func merge(_ other: Report) {
            validSent += other.validSent
            validAnswered += other.validAnswered
            malformedSent += other.malformedSent
            malformedRefused += other.malformedRefused
            recordsStored += other.recordsStored
            duplicatesAcknowledged += other.duplicatesAcknowledged
            for failure in other.failures { fail(failure) }
            failuresNotKept += other.failuresNotKept
        }
    }

    /// Runs the clients, then reads every job back.
    ///
    /// - Returns: the report; ``Report/passed`` is the verdict.
    package func run() -> Report {
        let results = Mutex<(report: Report, latencies: [Double], stored: [String: [PerformanceRecord]])>(
            (Report(), [], [:]))
        let start = LogTimestamp.now()
        let deadline = start + duration
        let group = DispatchGroup()
        let progress = Mutex<(ProgressTally, [Int], Report)>((ProgressTally(), [], Report()))
        if progressJobs > 0 {
            group.enter()
            let test = self
            Thread {
                var failures = Report()
                let (tally, perJob) = test.runProgress(from: start, until: deadline, into: &failures)
                progress.withLock { $0 = (tally, perJob, failures) }
                group.leave()
            }.start()
        }
        for client in 0..<clients {
            group.enter()
            let test = self
            Thread {
                var session = ClientSession(test: test, client: client)
                session.run(until: deadline)
                results.withLock {
                    $0.report.merge(session.report)
                    $0.latencies += session.latencies
                    $0.stored[session.job] = session.stored
                }
                group.leave()
            }.start()
        }
        group.wait()
        var (report, latencies, stored) = results.withLock { $0 }
        report.elapsedSeconds = LogTimestamp.now() - start
        var (tally, acknowledged, progressFailures) = progress.withLock { $0 }
        report.merge(progressFailures)
        verifyProgress(acknowledged: acknowledged, into: &tally, report: &report)
        report.progress = tally
        latencies.sort()
        if !latencies.isEmpty {
            report.latencyMedian = latencies[latencies.count / 2]
            report.latencyP99 = latencies[min(latencies.count - 1, latencies.count * 99 / 100)]
            report.latencyMaximum = latencies[latencies.count - 1]
        }
        for (job, records) in stored.sorted(by: { $0.key < $1.key }) where !records.isEmpty {
            verify(job: job, expected: records, into: &report)
        }
        return report
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

/// One client's loop: its job, the records it stored and its tally.
private struct ClientSession {
    let test: CoordinatorLoadTest
    let client: Int
    let job: String
    var report = CoordinatorLoadTest.Report()
    var latencies: [Double] = []
    /// Records acknowledged with 201, in the order they were stored.
    var stored: [PerformanceRecord] = []
    private var requestIndex = 0
    private var malformedIndex = 0

    init(test: CoordinatorLoadTest, client: Int) {
        self.test = test
        self.client = client
        self.job = "\(test.jobPrefix)-\(client)"
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
        case 5: read(validIndex % 32 == 5 ? "/v1/jobs/\(job)/records" : "/v1/jobs")
        default: read("/metrics")
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
