// The workers' client against a real coordinator: spooled records arrive in order once it is up;
// of the progress reports made while it was down, only the newest arrives; the sender's CPU time is counted.

import Coordinator
import CoordinatorClient
import Foundation
import PerformanceRecords
import Testing
import _TestSupport

@Suite("The workers' client delivers spooled records in order", .serialized)
struct ClientSpoolTests {
    /// A client of `job` for a coordinator on a free loopback port (not started), spooling in
    /// `directory`, with quick retries.
    func makeClient(job: String, in directory: URL) throws -> (client: CoordinatorClient, port: Int) {
        let port = try LoopbackSocket.freePort()
        var configuration = CoordinatorClientConfiguration(
            endpoint: HTTPEndpoint(host: "127.0.0.1", port: port), job: job,
            spoolPath: directory.appendingPathComponent("worker/records.spool").path)
        configuration.maximumAttempts = 2
        configuration.initialBackoff = 0.01
        return (CoordinatorClient(configuration: configuration), port)
    }

    @Test("records made while the coordinator is down arrive in order after it starts")
    func spoolDeliveredAfterStart() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (client, port) = try makeClient(job: "spooled", in: directory)
        let records = (0..<4).map { epoch in
            makeRecord(worker: "0", epoch: epoch, step: epoch * 10, [("accuracy_top1", 0.1 + 0.2 * Double(epoch))])
        }

        for record in records { try client.submit(record) }
        let down = try await offCooperativePool { client.flush(timeout: 1) }
        #expect(down.delivered == 0 && down.pending == 4 && down.unavailableRounds >= 1, "\(down)")
        #expect(down.lastError?.contains("cannot connect") == true, "\(down.lastError ?? "")")
        #expect(try client.spool.withLock { try client.spool.entriesLocked() }.map(\.record) == records)

        let coordinator = try await RunningCoordinator.start(
            dataDirectory: directory.appendingPathComponent("coordinator"), port: port)
        let up = try await offCooperativePool { client.flush(timeout: 30) }
        #expect(up.delivered == 4 && up.rejected == 0 && up.pending == 0, "\(up)")
        #expect(!FileManager.default.fileExists(atPath: client.configuration.spoolPath))
        #expect(try await coordinator.records(job: "spooled") == records)

        // A new record goes straight through; a conflicting one is set aside, not retried forever.
        let fifth = makeRecord(worker: "0", epoch: 4, step: 40, [("accuracy_top1", 0.95)])
        try client.submit(fifth)
        #expect(try await offCooperativePool { client.flush(timeout: 30) }.delivered == 5)
        var conflicting = records[0]
        conflicting.performance = PerformanceMetrics([("accuracy_top1", 0.0)])
        try client.submit(conflicting)
        let refused = try await offCooperativePool { client.flush(timeout: 30) }
        #expect(refused.rejected == 1 && refused.pending == 0, "\(refused)")
        #expect(
            try String(contentsOfFile: client.spool.rejectedPath, encoding: .utf8).contains("\"accuracy_top1\":0.0"))
        #expect(try await coordinator.records(job: "spooled") == records + [fifth])
        await coordinator.stop()
        #expect(
            coordinator.bestValuesMessages.last
                == "Best values: [{'worker_id': '0', 'performance': {'accuracy_top1': 0.95}}]")
    }

    @Test("progress made while the coordinator is down: only the newest report is kept and delivered")
    func newestProgressOnly() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (client, port) = try makeClient(job: "progressing", in: directory)
        for step in [100, 200, 300] { client.submit(makeReport(step: step)) }
        let down = try await offCooperativePool { client.flush(timeout: 1) }
        #expect(down.progressPending && down.pending == 0, "\(down)")

        let coordinator = try await RunningCoordinator.start(
            dataDirectory: directory.appendingPathComponent("coordinator"), port: port)
        client.submit(makeReport(.finished, step: 400))
        let up = try await offCooperativePool { client.flush(timeout: 30) }
        #expect(!up.progressPending && up.lastError == nil, "\(up)")
        let csv = try await coordinator.send("GET", "/v1/jobs/progressing/progress.csv").bodyText
        let rows = csv.split(separator: "\r\n").dropFirst()
        #expect(rows.count == 1 && rows.first?.contains(",finished,2,120,400,") == true, "\(csv)")
        // Rounds for progress alone skip the spool file; a record submitted after them still reads it.
        let record = makeRecord(worker: "0", epoch: 1, step: 400, [("accuracy_top1", 0.5)])
        try client.submit(record)
        client.submit(makeReport(.finished, step: 400))
        #expect(try await offCooperativePool { client.flush(timeout: 30) }.delivered == 1)
        #expect(try await coordinator.records(job: "progressing") == [record])
        // Posting took the sender thread CPU time, which the trainer counts as reporting's cost, with
        // the records' share apart.
        #expect(client.senderCPUSeconds.records > 0 && client.senderCPUSeconds.other > 0)
        await coordinator.stop()
    }

    @Test("the client's URL comes from the configuration, else GHOSTNET_COORDINATOR")
    func configurationResolution() throws {
        let fromEnvironment = try CoordinatorClientConfiguration.resolve(
            configuredURL: nil, job: "j", spoolPath: "/tmp/s",
            environment: ["GHOSTNET_COORDINATOR": "http://127.0.0.1:8470"])
        #expect(fromEnvironment?.endpoint == HTTPEndpoint(host: "127.0.0.1", port: 8470))
        let configured = try CoordinatorClientConfiguration.resolve(
            configuredURL: "http://[::1]:9000/", job: "j", spoolPath: "/tmp/s",
            environment: ["GHOSTNET_COORDINATOR": "http://127.0.0.1:8470"])
        #expect(configured?.endpoint == HTTPEndpoint(host: "::1", port: 9000))
        #expect(
            try CoordinatorClientConfiguration.resolve(
                configuredURL: nil, job: "j", spoolPath: "/tmp/s", environment: [:]) == nil)
        #expect(throws: HTTPClientError.self) {
            try CoordinatorClientConfiguration.resolve(
                configuredURL: "ftp://x:1", job: "j", spoolPath: "/tmp/s", environment: [:])
        }
    }
}
