// Hostile input against a live coordinator (issue 19, classes 1, 2, 9 and 10): numbers that used
// to trap, rows an older version could have stored, forged log lines, unbounded per-request work,
// retries that differ only in the sign of zero, and the bearer-token rules.

import Coordinator
import CoordinatorClient
import Foundation
import GRDB
import PerformanceRecords
import StrictJSON
import Testing
import _TestSupport

@Suite("Hostile input cannot crash, forge or bloat the coordinator", .serialized)
struct HostileInputTests {
    static func body(
        worker: String = "0", epoch: String = "1", step: Int = 2, performance: String = #"{"accuracy_top1":0.5}"#,
        timestamp: String = "1700000000"
    ) -> String {
        #"{"worker_id":"\#(worker)","rank":0,"epoch":\#(epoch),"step":\#(step),"performance":\#(performance),"timestamp":\#(timestamp)}"#
    }

    static func errorMessage(_ response: HTTPExchangeResponse) -> String? {
        guard case .object(let members) = try? JSONValue(parsing: response.body),
            case .string(let message)? = members.first?.value
        else { return nil }
        return message
    }

    @Test("an epoch of Int.max, a 20,000-mark worker_id, too many keys: 422 naming the field; nothing stored")
    func refusedAtEntry() async throws {
        let directory = try TemporaryDirectory.make()
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(String, String)] = [
            (
                Self.body(epoch: "9223372036854775807"),
                "field 'epoch' must be an integer in 0...1000000, got 9223372036854775807"
            ),
            (
                Self.body(worker: "a" + String(repeating: "\u{0301}", count: 20_000)),
                "field 'worker_id' must have 1 to 128 UTF-8 bytes, got 40001"
            ),
            (
                Self.body(performance: "{" + (0..<64).map { "\"m\($0)\":1" }.joined(separator: ",") + "}"),
                "field 'performance' has 64 entries, at most 16 are allowed"
            ),
        ]
        for (body, message) in cases {
            let response = try await coordinator.send("POST", "/v1/jobs/hostile/records", body: body)
            #expect(
                response.status == 422 && Self.errorMessage(response) == message,
                "\(response.status) \(response.bodyText.prefix(200))")
        }
        // A job's distinct keys are bounded too: 4 records of 16 new keys fill it, the 5th is refused.
        for index in 0..<5 {
            let keys = (0..<16).map { "\"k\(index)_\($0)\":\(index)" }.joined(separator: ",")
            let response = try await coordinator.send(
                "POST", "/v1/jobs/keys/records", body: Self.body(step: index, performance: "{\(keys)}"))
            #expect(response.status == (index < 4 ? 201 : 422), "\(response.bodyText)")
            if index == 4 {
                #expect(
                    Self.errorMessage(response)
                        == "job keys already has 64 performance keys; this record adds 16, "
                        + "at most 64 are allowed per job"
                )
            }
        }
        #expect(try await coordinator.send("GET", "/v1/jobs/hostile/records").status == 404)
        #expect(try await coordinator.records(job: "keys").count == 4)
        await coordinator.stop()
    }

    /// Rows an older version (or a hand edit) could have left, each of which used to trap or stop a start.
    static let hostileRows:
        [(epoch: DatabaseValue, step: DatabaseValue, performance: String, timestamp: DatabaseValue, job: String)] = [
            (Int.max.databaseValue, 0.databaseValue, #"{"accuracy_top1":0.5}"#, 1.7e9.databaseValue, "hostile"),
            (1e300.databaseValue, 1.databaseValue, #"{"accuracy_top1":0.5}"#, 1.7e9.databaseValue, "hostile"),
            ("many".databaseValue, 2.databaseValue, #"{"accuracy_top1":0.5}"#, 1.7e9.databaseValue, "hostile"),
            (3.databaseValue, 3.databaseValue, #"{"accuracy_top1":"NaN"}"#, 1.7e9.databaseValue, "hostile"),
            (4.databaseValue, 4.databaseValue, #"{"accuracy_top1":0.5}"#, 1e300.databaseValue, "hostile"),
            (5.databaseValue, 5.databaseValue, #"{"accuracy_top1":0.5}"#, 1.7e9.databaseValue, "bad\njob"),
            (
                6.databaseValue, 6.databaseValue,
                "{" + (0..<64).map { "\"m\($0)\":\($0)" }.joined(separator: ",") + "}",
                1.7e9.databaseValue, "hostile"
            ),
        ]

    @Test("hostile rows in records.sqlite are skipped with a warning; GET /, /metrics and two restarts work")
    func hostileStoredRows() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        // The store's schema, then one valid record and extreme-but-valid values beside the hostile rows.
        let first = try await RunningCoordinator.start(dataDirectory: directory)
        #expect(
            try await first.send("POST", "/v1/jobs/hostile/records", body: Self.body(epoch: "0", step: 100)).status
                == 201)
        let extreme = Self.body(
            epoch: "1000000", step: 1_000_000_000_000,
            performance: #"{"accuracy_top1":1.7976931348623157e308,"loss":-1.7976931348623157e308}"#)
        #expect(try await first.send("POST", "/v1/jobs/hostile/records", body: extreme).status == 201)
        await first.stop()
        let queue = try DatabaseQueue(path: directory.appendingPathComponent(RecordStore.fileName).path)
        try await queue.write { db in
            for row in Self.hostileRows {
                try db.execute(
                    sql: """
                        INSERT INTO record (job, worker_id, rank, epoch, step, performance, timestamp, received_at)
                        VALUES (?, 'w', 0, ?, ?, ?, ?, 0)
                        """,
                    arguments: [row.job, row.epoch, row.step, row.performance, row.timestamp])
            }
        }
        try queue.close()

        for restart in 1...2 {
            let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
            let page = try await coordinator.send("GET", "/")
            #expect(
                page.status == 200 && page.bodyText.contains("epoch 1000000")
                    && !page.bodyText.lowercased().contains("nan"))
            let metrics = try await coordinator.send("GET", "/metrics")
            #expect(
                metrics.status == 200
                    && metrics.bodyText.contains("ghostnet_coordinator_records_stored{job=\"hostile\"} 2\n"))
            #expect(try await coordinator.records(job: "hostile").count == 2)
            await coordinator.stop()
            let skipped = coordinator.logText.split(separator: "\n").filter {
                $0.contains(" WARNING skipped stored record id ")
            }
            #expect(skipped.count == Self.hostileRows.count * restart, "\(skipped)")
            #expect(
                coordinator.logText.contains(
                    "loaded 2 records of 1 jobs from \(directory.path) (7 invalid rows skipped)"))
        }
        let log = try String(contentsOf: directory.appendingPathComponent("coordinator.log"), encoding: .utf8)
        #expect(log.contains("column 'epoch' holds \"many\", expected an integer"), "\(log)")
        #expect(log.contains("field 'epoch' must be an integer in 0...1000000, got 9223372036854775807"))
    }

    @Test("no request can write a line that starts with a timestamp the coordinator did not write")
    func noForgedLines() async throws {
        let directory = try TemporaryDirectory.make()
        // Before the start: the coordinator logs its own lines while it starts, which may take seconds.
        let started = Date()
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        let forged =
            "2001-02-03 04:05:06.789 INFO Best values: [{'worker_id': 'forged', 'performance': {'accuracy_top1': 1.0}}]"
        let separators = [
            "\\n", "\\r", "\\r\\n", "\\u2028", "\\u2029", "\\u0085", "\\u001b[2K\\r", "\\u000b", "\\u000c",
        ]
        for separator in separators {
            // The key of an unknown field is echoed in the refusal, and so logged.
            _ = try await coordinator.send("POST", "/v1/jobs/forge/records", body: #"{"x\#(separator)\#(forged)":1}"#)
            // A conflicting record echoes the worker_id (refused anyway when it holds a separator).
            _ = try await coordinator.send(
                "POST", "/v1/jobs/forge/records", body: Self.body(worker: "w\(separator)\(forged)"))
            // A performance key with a separator.
            _ = try await coordinator.send(
                "POST", "/v1/jobs/forge/records", body: Self.body(performance: #"{"k\#(separator)\#(forged)":1}"#))
        }
        for raw in [
            "/v1/jobs/a%0A2001-02-03%2004:05:06.789%20INFO%20Best/records", "/v1/x%0D%0A2001-02-03",
            "/%E2%80%A82001-02-03",
        ] {
            _ = try await coordinator.send("POST", raw, body: Self.body())
        }
        // Valid records still log their line.
        #expect(try await coordinator.send("POST", "/v1/jobs/forge/records", body: Self.body()).status == 201)
        await coordinator.stop()
        let finished = Date()

        let stamp = try Regex(#"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\.\d{3} (INFO|WARNING|ERROR) "#)
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        formatter.timeZone = .current
        let lines = coordinator.logText.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count >= 3 * separators.count)
        for line in lines {
            guard let match = line.firstMatch(of: stamp), let text = match.output[1].substring,
                let time = formatter.date(from: String(text))
            else {
                Issue.record("a line without the coordinator's prefix: \(line.prefix(160))")
                continue
            }
            #expect(
                time >= started.addingTimeInterval(-1) && time <= finished.addingTimeInterval(1), "\(line.prefix(160))")
            #expect(
                !line.unicodeScalars.contains {
                    $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0x2028 || $0.value == 0x2029
                })
        }
        #expect(coordinator.bestValuesMessages.count == 1 && !coordinator.bestValuesMessages[0].contains("forged"))
    }

    @Test("a retry whose timestamp is -0 (or a metric -0 for 0) is a duplicate, not a conflict")
    func negativeZeroRetry() async throws {
        let directory = try TemporaryDirectory.make()
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try await coordinator.send(
            "POST", "/v1/jobs/zero/records", body: Self.body(performance: #"{"loss":0.0}"#, timestamp: "-0"))
        #expect(first.status == 201)
        for (performance, timestamp) in [(#"{"loss":0.0}"#, "-0"), (#"{"loss":-0.0}"#, "0"), (#"{"loss":0}"#, "-0.0")] {
            let retry = try await coordinator.send(
                "POST", "/v1/jobs/zero/records", body: Self.body(performance: performance, timestamp: timestamp))
            #expect(retry.status == 200 && retry.bodyText.contains("\"duplicate\":true"), "\(retry.bodyText)")
        }
        #expect(
            try await coordinator.send(
                "POST", "/v1/jobs/zero/records", body: Self.body(performance: #"{"loss":1e-300}"#)
            ).status == 409)
        await coordinator.stop()
    }

    @Test("200 records × 16 metrics, all in the best set: each POST answer and log line stays bounded")
    func boundedWorkPerRecord() async throws {
        let directory = try TemporaryDirectory.make()
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        var sent = 0
        for index in 0..<200 {
            let metrics = (0..<PerformanceRecord.maximumMetricCount).map { key in
                "\"accuracy_m\(key)\":\(key == 0 ? Double(index) : -Double(index))"
            }
            let body = Self.body(
                worker: "w\(index)", epoch: "\(index)", step: index, performance: "{\(metrics.joined(separator: ","))}")
            sent += body.utf8.count
            let response = try await coordinator.send("POST", "/v1/jobs/front/records", body: body)
            #expect(response.status == 201 && response.body.count < 120, "\(response.bodyText)")
            #expect(response.bodyText.contains("\"best_changed\":true,\"best_count\":\(index + 1)"))
        }
        await coordinator.stop()
        let lines = coordinator.logText.split(separator: "\n").filter { $0.contains(" INFO Best values: ") }
        #expect(lines.count == 200)
        #expect(lines.allSatisfy { $0.utf8.count <= BestValuesLine.maximumListedBytes + 200 })
        #expect(lines.last?.hasSuffix("more not listed") == true)
        // Bounded per record, not per history: the whole log stays under one capped line per record.
        let logBytes = coordinator.logText.utf8.count
        #expect(
            logBytes < 200 * (BestValuesLine.maximumListedBytes + 400), "log \(logBytes) bytes for \(sent) bytes sent")
    }

    @Test("the bearer scheme is case-insensitive; tokens under 16 bytes and plain non-loopback binds are refused")
    func tokenRules() async throws {
        let directory = try TemporaryDirectory.make()
        let token = "0123456789abcdef-\(UUID().uuidString)"
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory, token: token)
        defer { try? FileManager.default.removeItem(at: directory) }
        for header in ["Bearer \(token)", "bearer \(token)", "BEARER \(token)", "bEaReR  \(token)"] {
            let response = try await RunningCoordinator.send(
                "GET", "/healthz", to: coordinator.endpoint, body: [], headers: [("Authorization", header)])
            #expect(response.status == 200, "\(header)")
        }
        for header in ["Basic \(token)", "Bearer\(token)", "Bearer \(token)x", "Bearers \(token)", token] {
            let response = try await RunningCoordinator.send(
                "GET", "/healthz", to: coordinator.endpoint, body: [], headers: [("Authorization", header)])
            #expect(response.status == 401, "\(header)")
        }
        await coordinator.stop()

        func refusal(_ configuration: CoordinatorConfiguration) -> String? {
            do { try configuration.validate() } catch { return error.message }
            return nil
        }
        let remote = CoordinatorConfiguration(host: "0.0.0.0", port: 0, dataDirectory: "/nonexistent", token: token)
        #expect(
            refusal(remote)
                == "binding the non-loopback address 0.0.0.0 requires --tls-cert and --tls-key, so the token is not "
                + "sent in clear text (or --insecure-http to accept that)")
        var insecure = remote
        insecure.insecureHTTP = true
        #expect(refusal(insecure) == nil)
        var short = insecure
        short.token = "fifteen-bytes!!"
        #expect(refusal(short) == "the token must have at least 16 bytes, got 15")
        var halfTLS = remote
        halfTLS.tlsCertificatePath = "/cert.pem"
        #expect(refusal(halfTLS) == "--tls-cert and --tls-key must be given together")
        halfTLS.tlsKeyPath = "/key.pem"
        #expect(refusal(halfTLS) == nil)
    }
}
