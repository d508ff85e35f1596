//===----------------------------------------------------------------------===//
// ghostnet-d — PerformanceRecords
//===----------------------------------------------------------------------===//

import Foundation

/// A worker stand-in that reports a fixed sequence of records through ``CoordinatorClient``
/// (spool, retries and all), for checking delivery across coordinator failures.
///
/// Record `i` (1-based) is epoch `i`, step `100·i`, timestamp `timestampBase + 60·i`, with
/// `accuracy_top1` rising towards 0.9 with a wobble and `loss` falling with a different wobble, so
/// the default objectives (accuracy maximised, loss minimised) keep a best set of several records
/// that changes as the stream goes on. The same options always give the same records, so two runs
/// (one with faults, one without) can be compared record for record.
public struct SyntheticRecordStream: Sendable {
    public var workerID = "0"
    public var count: Int
    /// Seconds between two records.
    public var interval: Double
    public var timestampBase = 1_700_000_000.0

    public init(count: Int, interval: Double) {
        self.count = count
        self.interval = interval
    }

    /// Record `index` of the stream (1-based).
    public func record(_ index: Int) -> PerformanceRecord {
        let position = Double(index)
        let accuracy = 0.5 + 0.4 * (1 - exp(-position / 8)) + 0.03 * sin(position * 1.7)
        let loss = 0.2 + 2 * exp(-position / 10) + 0.1 * cos(position * 2.3)
        return PerformanceRecord(
            workerID: workerID, rank: 0, epoch: index, step: 100 * index,
            performance: PerformanceMetrics([(key: "accuracy_top1", value: accuracy), (key: "loss", value: loss)]),
            timestamp: timestampBase + 60 * position)
    }

    /// What a run of the stream achieved.
    public struct Outcome: Sendable, Equatable {
        /// Records confirmed by the coordinator, over all rounds.
        public var delivered = 0
        public var rejected = 0
        /// Records still in the spool when the run gave up.
        public var pending = 0
        /// Submissions that left records waiting (the coordinator was unreachable).
        public var roundsWithPending = 0
    }

    /// Submits every record in order, `interval` apart, then keeps delivering the spool until it is
    /// empty or `drainTimeout` seconds pass.
    ///
    /// - Parameters:
    ///   - client: the client whose spool and retries are under test.
    ///   - drainTimeout: the bound on waiting for the coordinator after the last record.
    ///   - log: receives one line per record and per drain attempt.
    /// - Throws: `SpoolError` when the spool cannot be written.
    public func run(client: CoordinatorClient, drainTimeout: Double, log: (String) -> Void) throws -> Outcome {
        var outcome = Outcome()
        func account(_ report: DeliveryReport) {
            outcome.delivered += report.delivered
            outcome.rejected += report.rejected
            outcome.pending = report.pending
            if report.pending > 0 { outcome.roundsWithPending += 1 }
        }
        for index in 1...max(1, count) {
            if index > 1 { Thread.sleep(forTimeInterval: interval) }
            let report = try client.submit(record(index))
            account(report)
            log("record \(index)/\(count): delivered \(report.delivered), pending \(report.pending)"
                + (report.lastError.map { " (\($0))" } ?? ""))
        }
        let deadline = LogTimestamp.now() + drainTimeout
        while outcome.pending > 0 && LogTimestamp.now() < deadline {
            Thread.sleep(forTimeInterval: 0.5)
            let report = try client.deliverPending()
            account(report)
            log("drain: delivered \(report.delivered), pending \(report.pending)" + (report.lastError.map { " (\($0))" } ?? ""))
        }
        return outcome
    }
}
