// The coordinator's HTTP API end to end: the Best values line in its log, records kept across restarts,
// idempotent retries, the token rule, the Pareto front, the dashboard and `/metrics`.

import Coordinator
import CoordinatorClient
import Foundation
import PerformanceRecords
import StrictJSON
import Testing
import _TestSupport

@Suite("Coordinator HTTP API on a live loopback port", .serialized)
struct CoordinatorAPITests {
    @Test("posting records logs the exact Best values line after each one that changes the best set")
    func bestValuesLineInLog() async throws {
        let directory = try TemporaryDirectory.make()
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }

        let first = makeRecord(
            worker: "0", epoch: 0, [("accuracy_top1", 0.7735977564102564), ("flops", 4.539), ("params", 38216.872)])
        let dominated = makeRecord(
            worker: "1", epoch: 0, [("accuracy_top1", 0.5), ("flops", 5.0), ("params", 40000.0)])
        let tradeOff = makeRecord(
            worker: "1", epoch: 1, step: 1, [("accuracy_top1", 0.8), ("flops", 6.0), ("params", 1e-05)])
        for record in [first, dominated, tradeOff] {
            #expect(try await coordinator.post(record).status == 201)
        }
        await coordinator.stop()

        // The dominated record leaves the best set as it was, so it logs no line.
        #expect(
            coordinator.bestValuesMessages == [
                "Best values: [{'worker_id': '0', 'performance': {'accuracy_top1': 0.7735977564102564, 'flops': 4.539, "
                    + "'params': 38216.872}}]",
                "Best values: [{'worker_id': '0', 'performance': {'accuracy_top1': 0.7735977564102564, 'flops': 4.539, "
                    + "'params': 38216.872}}, "
                    + "{'worker_id': '1', 'performance': {'accuracy_top1': 0.8, 'flops': 6.0, 'params': 1e-05}}]",
            ])
        let line = try #require(coordinator.logText.split(separator: "\n").last { $0.contains("Best values") })
        let form = try Regex(#"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} INFO Best values: \[.*\]$"#)
        #expect(line.wholeMatch(of: form) != nil, "\(line)")
        #expect(coordinator.logText.contains("coordinator listening on 127.0.0.1:\(coordinator.endpoint.port)"))
    }

    @Test("a restart keeps every record and logs each job's best again")
    func restartKeepsRecords() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let records = (0..<5).map { epoch in
            makeRecord(
                worker: "0", epoch: epoch, step: epoch * 100,
                [("loss", 2.0 - Double(epoch) * 0.3), ("accuracy_top1", 0.1 * Double(epoch))])
        }
        let first = try await RunningCoordinator.start(dataDirectory: directory)
        for record in records { #expect(try await first.post(record, job: "restart-a").status == 201) }
        #expect(try await first.post(records[0], job: "restart-b").status == 201)
        await first.stop()

        let second = try await RunningCoordinator.start(dataDirectory: directory)
        #expect(try await second.records(job: "restart-a") == records)
        #expect(try await second.records(job: "restart-b") == [records[0]])
        // The retry of a record stored before the restart is still recognised.
        let retry = try await second.post(records[4], job: "restart-a")
        #expect(retry.status == 200 && retry.bodyText.contains("\"duplicate\":true"))
        await second.stop()

        let log = second.logText
        #expect(log.contains("loaded 6 records of 2 jobs"))
        // 6 lines from accepting records, then one per job on reload.
        #expect(second.bestValuesMessages.count == 8)
        #expect(
            second.bestValuesMessages.last
                == "Best values: [{'worker_id': '0', 'performance': {'loss': 2.0, 'accuracy_top1': 0.0}}]")
    }

    @Test("a retried record is stored once; a different body for the same key is a conflict")
    func idempotentRetry() async throws {
        let directory = try TemporaryDirectory.make()
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        let record = makeRecord(worker: "w", epoch: 3, step: 30, [("accuracy_top1", 0.25)])

        let created = try await coordinator.post(record)
        #expect(created.status == 201 && created.bodyText.contains("\"duplicate\":false"))
        for _ in 0..<3 {
            let again = try await coordinator.post(record)
            #expect(again.status == 200 && again.bodyText.contains("\"duplicate\":true"))
        }
        var changed = record
        changed.performance = PerformanceMetrics([("accuracy_top1", 0.3)])
        let conflict = try await coordinator.post(changed)
        #expect(conflict.status == 409)
        #expect(conflict.bodyText.contains("\"error\":"))
        #expect(try await coordinator.records(job: "job") == [record])
        await coordinator.stop()
        #expect(coordinator.bestValuesMessages.count == 1)
        #expect(coordinator.logText.contains("WARNING rejected request: 409"))
    }

    @Test("with a token every request needs the bearer token; refusals are a bare 401")
    func tokenRule() async throws {
        let directory = try TemporaryDirectory.make()
        let token = "s3cret-token-\(UUID().uuidString)"
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory, token: token)
        defer { try? FileManager.default.removeItem(at: directory) }
        let body = makeRecord([("accuracy_top1", 0.5)]).json.serialized

        for presented in [nil, "wrong", token + "x", String(token.dropLast()), ""] as [String?] {
            for (method, path) in [
                ("POST", "/v1/jobs/j/records"), ("GET", "/healthz"), ("GET", "/"), ("GET", "/metrics"),
            ] {
                let response = try await coordinator.send(
                    method, path, body: method == "POST" ? body : "", token: presented)
                #expect(response.status == 401, "\(method) \(path) with \(presented ?? "no token")")
                #expect(response.bodyText == "{\"error\":\"unauthorized\"}\n")
            }
        }
        #expect(try await coordinator.send("POST", "/v1/jobs/j/records", body: body, token: token).status == 201)
        #expect(try await coordinator.send("GET", "/healthz", token: token).status == 200)
        await coordinator.stop()
    }

    @Test("a non-loopback bind without a token is refused")
    func nonLoopbackNeedsToken() async throws {
        let configuration = CoordinatorConfiguration(host: "0.0.0.0", port: 0, dataDirectory: "/nonexistent")
        #expect(throws: CoordinatorError.self) { try configuration.validate() }
        var withToken = configuration
        withToken.token = "a-token-of-16-by"
        withToken.insecureHTTP = true
        try withToken.validate()
        #expect(CoordinatorConfiguration.isLoopback("127.0.0.1") && CoordinatorConfiguration.isLoopback("::1"))
        #expect(
            !CoordinatorConfiguration.isLoopback("10.0.0.1")
                && !CoordinatorConfiguration.isLoopback("127.0.0.1.example.com"))
    }

    @Test("the best set over the API follows the Pareto rule on two objectives, ties kept")
    func paretoOverAPI() async throws {
        let directory = try TemporaryDirectory.make()
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        let records = [
            makeRecord(worker: "a", [("accuracy_top1", 0.70), ("params", 10)]),
            makeRecord(worker: "b", [("accuracy_top1", 0.80), ("params", 20)]),
            makeRecord(worker: "c", [("accuracy_top1", 0.69), ("params", 11)]),
            makeRecord(worker: "d", [("accuracy_top1", 0.80), ("params", 20)]),
            makeRecord(worker: "e", [("accuracy_top1", 0.90), ("params", 5)]),
        ]
        for record in records { #expect(try await coordinator.post(record, job: "pareto").status == 201) }
        let best = try await coordinator.send("GET", "/v1/jobs/pareto/best")
        #expect(best.status == 200)
        #expect(
            best.bodyText.contains(
                "\"line\":\"Best values: [{'worker_id': 'e', 'performance': {'accuracy_top1': 0.9, 'params': 5.0}}]\""))
        #expect(best.bodyText.contains("\"objectives\":[\"accuracy_top1:max\",\"params:min\"]"))
        await coordinator.stop()
        // Before e arrived, a and the tied b and d formed the front (c, dominated by a, logged no line).
        #expect(coordinator.bestValuesMessages.count == 4)
        #expect(
            coordinator.bestValuesMessages[2]
                == "Best values: [{'worker_id': 'a', 'performance': {'accuracy_top1': 0.7, 'params': 10.0}}, "
                + "{'worker_id': 'b', 'performance': {'accuracy_top1': 0.8, 'params': 20.0}}, "
                + "{'worker_id': 'd', 'performance': {'accuracy_top1': 0.8, 'params': 20.0}}]")

        let configured = try await RunningCoordinator.start(
            dataDirectory: directory, objectives: [try Objective(parsing: "params:max")])
        let reloaded = try await configured.send("GET", "/v1/jobs/pareto/best")
        #expect(reloaded.bodyText.contains("\"objectives\":[\"params:max\"]"))
        #expect(
            reloaded.bodyText.contains(
                "Best values: [{'worker_id': 'b', 'performance': {'accuracy_top1': 0.8, "
                    + "'params': 20.0}}, {'worker_id': 'd'"))
        await configured.stop()
    }

    @Test("the dashboard has one SVG chart per job and no scripts; /metrics counts")
    func dashboardAndMetrics() async throws {
        let directory = try TemporaryDirectory.make()
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        for job in ["alpha", "beta", "gamma"] {
            for epoch in 0..<4 {
                let record = makeRecord(
                    epoch: epoch, step: epoch,
                    [("accuracy_top1", 0.2 * Double(epoch)), ("loss", 3.0 / Double(epoch + 1))])
                #expect(try await coordinator.post(record, job: job).status == 201)
            }
        }
        // conflict
        _ = try await coordinator.post(makeRecord(epoch: 0, step: 0, [("accuracy_top1", 0.9)]), job: "alpha")
        _ = try await coordinator.post(
            makeRecord(epoch: 0, step: 0, [("accuracy_top1", 0.0), ("loss", 3.0)]), job: "alpha")  // duplicate
        _ = try await coordinator.send("POST", "/v1/jobs/alpha/records", body: "{")  // malformed

        let page = try await coordinator.send("GET", "/")
        #expect(page.status == 200)
        #expect(page.header("Content-Type")?.hasPrefix("text/html") == true)
        #expect(page.bodyText.components(separatedBy: "<svg").count - 1 == 3)
        #expect(page.bodyText.components(separatedBy: "<polyline").count - 1 == 6)
        #expect(!page.bodyText.contains("<script"))
        #expect(page.bodyText.contains("http-equiv=\"refresh\""))

        let metrics = try await coordinator.send("GET", "/metrics").bodyText
        #expect(metrics.contains("ghostnet_coordinator_records_received_total 14\n"))
        #expect(metrics.contains("ghostnet_coordinator_records_duplicate_total 1\n"))
        #expect(metrics.contains("ghostnet_coordinator_requests_rejected_total 2\n"))
        #expect(metrics.contains("ghostnet_coordinator_records_stored{job=\"beta\"} 4\n"))
        #expect(
            metrics.contains(
                "ghostnet_coordinator_best_accuracy{job=\"gamma\",key=\"accuracy_top1\"} 0.6000000000000001\n"))
        #expect(metrics.contains("# TYPE ghostnet_coordinator_records_received_total counter"))

        let jobs = try await coordinator.send("GET", "/v1/jobs").bodyText
        #expect(jobs.hasPrefix("{\"jobs\":[{\"name\":\"alpha\",\"records\":4,"))
        #expect(try await coordinator.send("GET", "/healthz").bodyText == "{\"status\":\"ok\"}\n")
        await coordinator.stop()
    }
}
