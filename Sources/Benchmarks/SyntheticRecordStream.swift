// `diagnose record-stream`: a worker stand-in reporting a fixed record sequence through the client.

import CoordinatorClient
import Foundation
import PerformanceRecords

/// A worker stand-in that reports a fixed sequence of records through ``CoordinatorClient``
/// (spool, retries and all), for checking delivery across coordinator failures.
///
/// Record `i` (1-based) is epoch `i`, step `100·i`, timestamp `timestampBase + 60·i`, with
/// `accuracy_top1` rising towards 0.9 with a wobble and `loss` falling with a different wobble, so
/// the default objectives (accuracy maximised, loss minimised) keep a best set of several records
/// that changes as the stream goes on. The same options always give the same records, so two runs
/// (one with faults, one without) can be compared record for record.
package struct SyntheticRecordStream: Sendable {
    package var workerID = "0"
    package var count: Int
    /// Seconds between two records.
    package var interval: Double
    package var timestampBase = 1_700_000_000.0

    package init(count: Int, interval: Double) {
        self.count = count
        self.interval = interval
    }

    /// Record `index` of the stream (1-based).
    package func record(_ index: Int) -> PerformanceRecord {
        let position = Double(index)
        let accuracy = 0.5 + 0.4 * (1 - exp(-position / 8)) + 0.03 * sin(position * 1.7)
        let loss = 0.2 + 2 * exp(-position / 10) + 0.1 * cos(position * 2.3)
        return PerformanceRecord(
            workerID: workerID, rank: 0, epoch: index, step: 100 * index,
            performance: PerformanceMetrics([(key: "accuracy_top1", value: accuracy), (key: "loss", value: loss)]),
            timestamp: timestampBase + 60 * position)
    }

    /// What a run of the stream achieved.
    package struct Outcome: Sendable, Equatable {
        /// Records confirmed by the coordinator, over all rounds.
        package var delivered = 0
        package var rejected = 0
        /// Records still in the spool when the run gave up.
        package var pending = 0
        /// Delivery rounds that left records waiting (the coordinator was unreachable).
        package var roundsWithPending = 0
    }

    /// Submits every record in order, `interval` apart, then lets the client deliver the spool
    /// until it is empty or `drainTimeout` seconds pass.
    ///
    /// - Parameters:
    ///   - client: the client whose spool, sender and retries are under test.
    ///   - drainTimeout: the bound on waiting for the coordinator after the last record.
    ///   - log: receives one line per record and one for the drain.
    /// - Throws: ``SpoolError`` when the spool cannot be written.
    package func run(client: CoordinatorClient, drainTimeout: Double, log: (String) -> Void) throws -> Outcome {
        func line(_ report: DeliveryReport) -> String {
            "delivered \(report.delivered), pending \(report.pending)" + (report.lastError.map { " (\($0))" } ?? "")
        }
        for index in 1...max(1, count) {
            if index > 1 { Thread.sleep(forTimeInterval: interval) }
            try client.submit(record(index))
            log("record \(index)/\(count): \(line(client.report))")
        }
        let report = client.flush(timeout: drainTimeout)
        log("drain: \(line(report))")
        return Outcome(
            delivered: report.delivered, rejected: report.rejected, pending: report.pending,
            roundsWithPending: report.unavailableRounds)
    }
}
