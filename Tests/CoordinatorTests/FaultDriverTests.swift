// The drivers of the fault suite (`make test-faults`), the load test and the synthetic record stream, on
// short runs against an in-process coordinator.

import Benchmarks
import Coordinator
import CoordinatorClient
import Foundation
import PerformanceRecords
import Testing
import _TestSupport

/// The drivers of the fault suite (`make test-faults`): the load test and the synthetic record
/// stream, on a short run against an in-process coordinator.
@Suite("Fault drivers: coordinator load test and record stream", .serialized)
struct FaultDriverTests {
    @Test("a short load test passes and its records read back exactly once")
    func shortLoadTestPasses() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        var test = CoordinatorLoadTest(endpoint: coordinator.endpoint)
        test.clients = 3
        test.duration = 1
        test.recordsPerClient = 5
        test.malformedInterval = 2
        // 5 new records take at most 5·8/2 valid requests; 10 malformed kinds at least 10·2 requests.
        test.minimumRequestsPerClient = 48
        let report = try await offCooperativePool { [test] in test.run() }
        #expect(report.passed, "\(report.lines)")
        #expect(report.recordsStored == 15 && report.recordsReadBack == 15, "\(report.lines)")
        // Every malformed kind was sent at least once by some client: 10 kinds, every 2nd request.
        #expect(report.malformedSent >= 10 && report.malformedRefused == report.malformedSent, "\(report.lines)")
        #expect(report.duplicatesAcknowledged > 0)
        await coordinator.stop()
    }

    @Test("with progress jobs the load test runs a records-only phase, then records beside progress, scraping both")
    func twoPhasesWithProgress() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        var test = CoordinatorLoadTest(endpoint: coordinator.endpoint)
        test.clients = 2
        test.duration = 0.6
        test.recordsPerClient = 5
        test.progressJobs = 6
        test.progressSenders = 4
        test.progressInterval = 0.2
        test.scrapeInterval = 0.25
        let report = try await offCooperativePool { [test] in test.run() }
        #expect(report.passed, "\(report.lines)")
        #expect(report.phases.map(\.name) == ["records only", "records + progress"], "\(report.lines)")
        #expect(report.phases.allSatisfy { $0.requests > 0 && $0.seconds >= 0.6 }, "\(report.lines)")
        #expect(
            report.recordsRateRatio != nil && report.lines.contains { $0.hasPrefix("records rate beside progress:") })
        // Ticks at 0, 0.2, 0.4 s of phase B for each of 6 jobs, all stored; each phase scrapes at its start
        // at least (more when a scrape takes less than the interval).
        #expect(report.progress.sent == 18 && report.progress.readBack == 18, "\(report.lines)")
        #expect(report.scrapes.scrapes >= 2, "\(report.lines)")
        await coordinator.stop()
    }

    @Test("the load test reports a record stored behind its back")
    func loadTestDetectsAForeignRecord() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        // A record in the job of client 0 that the load test did not send.
        let foreign = makeRecord(worker: "other", epoch: 0, step: 0, [("accuracy_top1", 0.5)])
        #expect(try await coordinator.post(foreign, job: "probe-0").status == 201)
        var test = CoordinatorLoadTest(endpoint: coordinator.endpoint)
        test.clients = 1
        test.duration = 0.3
        test.recordsPerClient = 2
        test.jobPrefix = "probe"
        let report = try await offCooperativePool { [test] in test.run() }
        #expect(!report.passed)
        #expect(
            report.failures.contains { $0.hasPrefix("job probe-0: 3 record(s) stored, 2 acknowledged") },
            "\(report.lines)")
        await coordinator.stop()
    }

    @Test("the record stream is deterministic and delivers every record in order")
    func recordStreamDelivers() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let coordinator = try await RunningCoordinator.start(
            dataDirectory: directory.appendingPathComponent("coordinator"))
        let stream = SyntheticRecordStream(count: 6, interval: 0)
        #expect(stream.record(3) == SyntheticRecordStream(count: 99, interval: 1).record(3))
        #expect(
            stream.record(2).epoch == 2 && stream.record(2).step == 200 && stream.record(2).timestamp == 1_700_000_120)
        let client = CoordinatorClient(
            configuration: CoordinatorClientConfiguration(
                endpoint: coordinator.endpoint, job: "stream", spoolPath: directory.appendingPathComponent("spool").path
            ))
        let outcome = try await offCooperativePool { try stream.run(client: client, drainTimeout: 30) { _ in } }
        #expect(
            outcome.delivered == 6 && outcome.rejected == 0 && outcome.pending == 0 && outcome.roundsWithPending == 0,
            "\(outcome)")
        #expect(try await coordinator.records(job: "stream") == (1...6).map(stream.record))
        // Objectives accuracy (max) and loss (min) keep more than one record best somewhere in the stream.
        #expect(
            coordinator.bestValuesMessages.contains { $0.components(separatedBy: "'worker_id'").count > 2 },
            "\(coordinator.bestValuesMessages)")
        await coordinator.stop()
    }
}
