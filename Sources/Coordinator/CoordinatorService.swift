// The coordinator's logic between HTTP and storage: accept a record, commit it, update the best
// set, log the Best values line when the set changed; accept progress and the supervisor's state
// changes, commit them, log and store state changes and stragglers, find stalled jobs on the clock;
// append TensorBoard events when asked to; answer queries from memory (`/metrics` and `/v1/jobs`
// from per-job fragments kept until the job changes).

import Logging
import PerformanceRecords
import Synchronization

/// What receiving a record did: the store's outcome, whether the job's best set changed, and how
/// many records the set now holds.
package struct ReceiveResult: Sendable, Equatable {
    package var outcome: InsertOutcome
    package var bestChanged: Bool
    package var bestCount: Int
}

/// Accepts records and keeps the in-memory state in step with the database.
package final class CoordinatorService: Sendable {
    package let store: RecordStore
    package let logger: Logger
    /// The TensorBoard event writer, with `--tensorboard-dir`.
    package let tensorBoard: TensorBoardWriter?
    private let state: Mutex<CoordinatorState>
    private let fragments = JobFragmentCache()
    /// Seconds since 1970; injected so tests can drive stalls without waiting.
    private let clock: @Sendable () -> Double

    /// Opens the store in `configuration.dataDirectory`, reloads every record and logs the Best
    /// values line of each job again.
    ///
    /// - Throws: `CoordinatorError` when the database cannot be opened or read.
    package init(
        configuration: CoordinatorConfiguration, logger: Logger,
        clock: @escaping @Sendable () -> Double = { LogTimestamp.now() }
    ) throws {
        self.store = try RecordStore(directory: configuration.dataDirectory)
        self.logger = logger
        self.clock = clock
        tensorBoard = try configuration.tensorBoardDirectory.map { directory throws(CoordinatorError) in
            try TensorBoardWriter(directory: directory, startedAt: clock())
        }
        var state = CoordinatorState(objectives: configuration.objectives)
        let stored = try store.loadAll()
        for entry in stored.records { state.append(entry.record, job: entry.job) }
        // Replaying the reports rebuilds history and stragglers; the last stored state wins.
        let progress = try store.loadProgress()
        for entry in progress.reports { _ = state.apply(entry.report, job: entry.job, now: entry.receivedAt) }
        for entry in progress.states {
            state.restore(state: entry.state, job: entry.job, since: entry.at, line: entry.line)
        }
        self.state = Mutex(state)
        for (id, reason) in stored.skipped {
            logger.warning("skipped stored record id \(id) of \(RecordStore.fileName): \(reason)")
        }
        for (table, id, reason) in progress.skipped {
            logger.warning("skipped stored \(table) row id \(id) of \(RecordStore.fileName): \(reason)")
        }
        let skippedNote = stored.skipped.isEmpty ? "" : " (\(stored.skipped.count) invalid rows skipped)"
        logger.info(
            """
            loaded \(stored.records.count) records of \(state.jobs.count) jobs \
            from \(configuration.dataDirectory)\(skippedNote)
            """
        )
        for name in state.jobNames {
            logger.info("job \(name): \(state.jobs[name]!.records.count) records")
            logger.info("\(BestValuesLine.message(for: state.jobs[name]!.best))")
        }
    }

    /// A snapshot of the in-memory state.
    package var snapshot: CoordinatorState { state.withLock { $0 } }

    /// The `/metrics` page of the current state (re-rendering only the jobs changed since the last read).
    package var metricsText: String { fragments.metricsText(snapshot) }

    /// The `/v1/jobs` body of the current state (re-rendering only the jobs changed since the last read).
    package var jobsJSON: String { fragments.jobsJSON(snapshot) }

    /// The dashboard of the current state (re-rendering only the jobs changed since the last read).
    package var dashboardHTML: String { fragments.dashboardHTML(snapshot, now: clock()) }

    /// Commits `record` to `job` unless its key is taken or the job cannot take it; when the
    /// record joins the best set, logs the job's Best values line after the commit. The work does
    /// not grow with the job's history (see `IncrementalBestSet`, `BestValuesLine`).
    package func receive(_ record: PerformanceRecord, job: String) async throws -> ReceiveResult {
        let refusal: @Sendable () -> String? = { self.state.withLock { $0.refusal(of: record, job: job) } }
        return try await store.insert(record, job: job, refusal: refusal) { outcome in
            if outcome == .inserted {
                self.writeTensorBoard { tensorBoard throws(CoordinatorError) in
                    try tensorBoard.write(record, job: job, wallTime: self.clock())
                }
            }
            return self.state.withLock { state in
                state.countReceived(outcome)
                guard outcome == .inserted else {
                    return ReceiveResult(
                        outcome: outcome, bestChanged: false, bestCount: state.jobs[job]?.bestCount ?? 0)
                }
                let changed = state.append(record, job: job)
                let updated = state.jobs[job]!
                if changed { self.logger.info("\(BestValuesLine.message(for: updated.best))") }
                return ReceiveResult(outcome: outcome, bestChanged: changed, bestCount: updated.bestCount)
            }
        }
    }

    /// Commits `report` of `job`, applies it to the job's lifecycle and logs the state change,
    /// throttled progress line and new stragglers it caused.
    ///
    /// - Returns: the job's state after the report.
    package func receive(_ report: ProgressUpdate, job: String) async throws -> JobState {
        let now = clock()
        _ = try await store.insertProgress(report, job: job, receivedAt: now) {
            self.writeTensorBoard { tensorBoard throws(CoordinatorError) in
                try tensorBoard.write(report, job: job, wallTime: now)
            }
            return self.state.withLock { state in
                let events = state.apply(report, job: job, now: now)
                for line in events.lines { self.logger.info("\(line)") }
                return events
            }
        }
        return state.withLock { $0.progress[job]!.state }
    }

    /// Commits a state change the supervisor reported for `job`, applies it and logs its one line.
    ///
    /// - Returns: the job's state after the change.
    package func receive(_ change: JobStateReport, job: String) async throws -> JobState {
        let now = clock()
        _ = try await store.insertState(change, job: job, at: now) {
            self.state.withLock { state in
                let events = state.apply(change, job: job, now: now)
                for line in events.lines { self.logger.info("\(line)") }
                return events
            }
        }
        return state.withLock { $0.progress[job]!.state }
    }

    /// Runs `write` with the TensorBoard writer, if there is one; a failure is logged, never
    /// refused: the records and progress are stored whatever the event files do.
    private func writeTensorBoard(_ write: (TensorBoardWriter) throws(CoordinatorError) -> Void) {
        guard let tensorBoard else { return }
        do { try write(tensorBoard) } catch { logger.error("\(error.message)") }
    }

    /// Marks jobs stalled that missed 3 expected reports, stores and logs each change. The state
    /// changes before the store commits: a stall is the coordinator's own verdict, and the next
    /// check or report settles it again if the write failed.
    package func checkStalls() async {
        let now = clock()
        let changed = state.withLock { $0.checkStalls(now: now) }
        guard !changed.isEmpty else { return }
        for change in changed {
            for line in change.events.lines { logger.info("\(line)") }
        }
        do {
            try await store.insertStates(
                changed.map { ($0.job, .stalled, now, $0.events.lines.first ?? "") })
        } catch {
            logger.error("storing \(changed.count) stalled job states failed: \(error)")
        }
    }

    /// The job's progress and lifecycle state, or nil when it never sent a report.
    package func progress(_ name: String) -> JobProgress? {
        state.withLock { $0.progress[name] }
    }

    /// Counts a refused request and logs why at warning level.
    package func reject(_ reason: String, metadata: Logger.Metadata = [:]) {
        state.withLock { $0.countRejected() }
        logger.warning("rejected request: \(reason)", metadata: metadata)
    }

    /// The job's records and best set, or nil for an unknown job.
    package func job(_ name: String) -> JobRecords? {
        state.withLock { $0.jobs[name] }
    }
}
