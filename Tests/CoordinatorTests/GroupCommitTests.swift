// Group commit of progress reports: many concurrent reports share a transaction, each is
// acknowledged only once its row is committed (visible to a separate reader), a full queue is
// refused with `WriteQueueFull` instead of growing, and one failing write spares its batch.

import Coordinator
import Foundation
import GRDB
import Logging
import PerformanceRecords
import Synchronization
import Testing
import _TestSupport

@Suite("Group commit of progress reports")
struct GroupCommitTests {
    /// A service on a fresh directory, with the directory to remove afterwards.
    func makeService() throws -> (CoordinatorService, URL) {
        let directory = try TemporaryDirectory.make()
        let configuration = CoordinatorConfiguration(dataDirectory: directory.path, logsToStandardOutput: false)
        let sink = try LogSink(path: directory.appendingPathComponent("c.log").path, writesToStandardOutput: false)
        let logger = Logger(label: "test") { _ in CoordinatorLogHandler(sink: sink) }
        return (try CoordinatorService(configuration: configuration, logger: logger) { 1000 }, directory)
    }

    /// Occupies the writer with one write that returns once `release` holds (or after 20 s), so
    /// what is submitted meanwhile is known to queue for the next transaction; returns when that
    /// write holds the writer.
    func holdWriter(
        _ writer: GroupCommitWriter, until release: @escaping @Sendable () -> Bool
    ) async throws -> Task<Void, any Error> {
        let held = Task {
            try await writer.submit { _ in
                let deadline = Date().addingTimeInterval(20)
                while !release(), Date() < deadline { usleep(1000) }
            }
        }
        while writer.statistics.transactions == 0 { try await Task.sleep(for: .milliseconds(1)) }
        return held
    }

    @Test("200 concurrent reports: each acknowledged only when a separate reader sees its row; 2 transactions")
    func concurrentReportsShareOneCommit() async throws {
        let (service, directory) = try makeService()
        defer { try? FileManager.default.removeItem(at: directory) }
        let submissions = 200
        let writer = service.store.progressWrites
        let held = try await holdWriter(writer) { writer.statistics.pending >= submissions }
        let notVisible = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<submissions {
                group.addTask {
                    let job = "job-\(index)"
                    #expect(try await service.receive(makeReport(.running), job: job) == .running)
                    // The store's reads see committed transactions only.
                    return !(try service.store.loadProgress().reports.contains { $0.job == job })
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        try await held.value
        #expect(notVisible == 0, "reports acknowledged before their row was committed")
        let statistics = writer.statistics
        // The holding write alone, then every report in one batch.
        #expect(statistics.transactions == 2 && statistics.writes == submissions + 1)
        #expect(statistics.largestBatch == submissions && statistics.pending == 0)
        let stored = try service.store.loadProgress()
        #expect(Set(stored.reports.map(\.job)) == Set((0..<submissions).map { "job-\($0)" }))
        #expect(stored.reports.count == submissions && stored.skipped.isEmpty)
        try service.store.close()
    }

    @Test("a full queue refuses the next report with WriteQueueFull; the queued ones are still stored")
    func fullQueueRefuses() async throws {
        let (service, directory) = try makeService()
        defer { try? FileManager.default.removeItem(at: directory) }
        let capacity = RecordStore.progressQueueCapacity
        let writer = service.store.progressWrites
        let refused = Mutex(false)
        let held = try await holdWriter(writer) { refused.withLock { $0 } }
        let queued = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<capacity {
                    group.addTask { _ = try await service.receive(makeReport(.running), job: "j\(index % 10)") }
                }
                try await group.waitForAll()
            }
        }
        while writer.statistics.pending < capacity { try await Task.sleep(for: .milliseconds(1)) }
        await #expect(throws: WriteQueueFull.self) {
            _ = try await service.receive(makeReport(.running), job: "one-too-many")
        }
        refused.withLock { $0 = true }
        try await held.value
        try await queued.value
        #expect(try service.store.loadProgress().reports.count == capacity)
        try service.store.close()
    }

    @Test("a write that throws fails alone: the others of its batch commit and are answered")
    func failingWriteSparesItsBatch() async throws {
        let (service, directory) = try makeService()
        defer { try? FileManager.default.removeItem(at: directory) }
        let writer = service.store.progressWrites
        let held = try await holdWriter(writer) { writer.statistics.pending >= 3 }
        async let first: Void = writer.submit { db in
            try db.execute(sql: "INSERT INTO progress (job, received_at, report) VALUES ('a', 1, '{}')")
        }
        let broken = Task {
            try await writer.submit { db in try db.execute(sql: "INSERT INTO no_such_table VALUES (1)") }
        }
        async let last: Void = writer.submit { db in
            try db.execute(sql: "INSERT INTO progress (job, received_at, report) VALUES ('b', 2, '{}')")
        }
        try await first
        await #expect(throws: DatabaseError.self) { try await broken.value }
        try await last
        try await held.value
        // The two good rows are there (loadProgress skips them as reports: '{}' is not one).
        #expect(try service.store.loadProgress().skipped.count == 2)
        #expect(writer.statistics.transactions == 2)
        try service.store.close()
    }
}
