//===----------------------------------------------------------------------===//
// ghostnet-d — Coordinator
//===----------------------------------------------------------------------===//

import Logging
import PerformanceRecords
import Synchronization

/// The coordinator's logic between HTTP and storage: accept a record, commit it, update the best
/// set, log the Best values line; answer queries from memory.
public final class CoordinatorService: Sendable {
    public let store: RecordStore
    public let logger: Logger
    private let state: Mutex<CoordinatorState>

    /// Opens the store in `configuration.dataDirectory`, reloads every record and logs the Best
    /// values line of each job again.
    ///
    /// - Throws: `CoordinatorError` when the database cannot be opened or read.
    public init(configuration: CoordinatorConfiguration, logger: Logger) throws {
        self.store = try RecordStore(directory: configuration.dataDirectory)
        self.logger = logger
        var state = CoordinatorState(objectives: configuration.objectives)
        let stored = try store.loadAll()
        for entry in stored { state.append(entry.record, job: entry.job) }
        self.state = Mutex(state)
        logger.info("loaded \(stored.count) records of \(state.jobs.count) jobs from \(configuration.dataDirectory)")
        for name in state.jobNames {
            logger.info("job \(name): \(state.jobs[name]!.records.count) records")
            logger.info("\(BestValuesLine.message(for: state.jobs[name]!.best))")
        }
    }

    /// A snapshot of the in-memory state.
    public var snapshot: CoordinatorState { state.withLock { $0 } }

    /// Commits `record` to `job` unless its key is taken; for a new record, logs the job's Best
    /// values line after the commit.
    ///
    /// - Returns: the outcome and the job's best set after it.
    public func receive(_ record: PerformanceRecord, job: String) async throws -> (InsertOutcome, [PerformanceRecord]) {
        try await store.insert(record, job: job) { outcome in
            self.state.withLock { state in
                state.countReceived(outcome)
                guard outcome == .inserted else { return (outcome, state.jobs[job]?.best ?? []) }
                let best = state.append(record, job: job)
                self.logger.info("\(BestValuesLine.message(for: best))")
                return (outcome, best)
            }
        }
    }

    /// Counts a refused request and logs why at warning level.
    public func reject(_ reason: String, metadata: Logger.Metadata = [:]) {
        state.withLock { $0.countRejected() }
        logger.warning("rejected request: \(reason)", metadata: metadata)
    }

    /// The job's records and best set, or nil for an unknown job.
    public func job(_ name: String) -> JobRecords? {
        state.withLock { $0.jobs[name] }
    }
}
