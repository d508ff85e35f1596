// The coordinator's in-memory state: each job's records, best set and accuracy maxima, kept up to
// date per committed record at a cost independent of the job's history, each job's progress and
// lifecycle (JobProgress), a revision per job that counts its changes (for JobFragmentCache), plus
// request counters.

import PerformanceRecords

/// The records of one job and its current best set.
package struct JobRecords: Sendable {
    package let name: String
    /// Every record, in commit order.
    package private(set) var records: [PerformanceRecord] = []
    /// The largest value of every `accuracy*` key, in first-seen order, for the metrics page.
    package private(set) var bestAccuracies: [(key: String, value: Double)] = []
    private var bestSet: IncrementalBestSet

    init(name: String, configuredObjectives: [Objective]?) {
        self.name = name
        self.bestSet = IncrementalBestSet(objectives: configuredObjectives)
    }

    /// The objectives in force: the configured ones, or the defaults for the keys seen so far.
    package var objectives: [Objective] { bestSet.objectives }

    /// The best set, in commit order.
    package var best: [PerformanceRecord] { bestSet.indices.map { records[$0] } }

    /// The number of records in the best set.
    package var bestCount: Int { bestSet.indices.count }

    /// Why `record` cannot join this job, or nil when it can: it would bring the job's distinct
    /// performance keys past `IncrementalBestSet.maximumKeysPerJob`.
    package func refusal(of record: PerformanceRecord) -> String? {
        let added = bestSet.newKeyCount(record)
        guard bestSet.keys.count + added > IncrementalBestSet.maximumKeysPerJob else { return nil }
        return "job \(name) already has \(bestSet.keys.count) performance keys; this record adds \(added), "
            + "at most \(IncrementalBestSet.maximumKeysPerJob) are allowed per job"
    }

    /// Adds `record` and updates the best set; see `IncrementalBestSet` for the cost.
    ///
    /// - Returns: whether the best set changed.
    mutating func append(_ record: PerformanceRecord) -> Bool {
        records.append(record)
        for entry in record.performance where entry.key.hasPrefix("accuracy") {
            if let slot = bestAccuracies.firstIndex(where: { $0.key == entry.key }) {
                bestAccuracies[slot].value = max(bestAccuracies[slot].value, entry.value)
            } else {
                bestAccuracies.append(entry)
            }
        }
        return bestSet.add(record, index: records.count - 1)
    }
}

/// The coordinator's in-memory view: every job's records, best set and progress, plus request counters.
///
/// A value type with no I/O, so its rules are testable without a server; `CoordinatorService`
/// keeps it behind a lock and mutates it only after the database committed.
package struct CoordinatorState: Sendable {
    package private(set) var jobs: [String: JobRecords] = [:]
    /// The progress and lifecycle state of every job that sent a progress report.
    package private(set) var progress: [String: JobProgress] = [:]
    /// Per job, the number of changes to its records or progress: along one history of states, equal
    /// revisions mean an unchanged job, so a rendering of it can be reused (`JobFragmentCache`).
    package private(set) var revisions: [String: Int] = [:]
    /// Records stored (new rows) since start, including reloaded ones.
    package private(set) var storedCount = 0
    /// Records received over HTTP since start: stored, duplicate or conflicting.
    package private(set) var receivedCount = 0
    package private(set) var duplicateCount = 0
    /// Requests refused (bad input, conflicts, unauthorised) since start.
    package private(set) var rejectedCount = 0
    package let objectives: [Objective]?

    package init(objectives: [Objective]?) {
        self.objectives = objectives
    }

    /// Names of jobs with records, sorted.
    package var jobNames: [String] { jobs.keys.sorted() }

    /// Names of jobs with records or progress, sorted.
    package var allJobNames: [String] { Set(jobs.keys).union(progress.keys).sorted() }

    /// Applies a committed progress report of `job` that arrived at `now` (see `JobProgress.apply`).
    package mutating func apply(_ report: ProgressUpdate, job: String, now: Double) -> ProgressEvents {
        revisions[job, default: 0] += 1
        return progress[job, default: JobProgress(name: job, now: now)].apply(report, now: now)
    }

    /// Marks every job stalled that missed its reports by `now`; returns the jobs that changed.
    package mutating func checkStalls(now: Double) -> [(job: String, events: ProgressEvents)] {
        var changed: [(job: String, events: ProgressEvents)] = []
        for name in progress.keys.sorted() {
            let events = progress[name]!.checkStall(now: now)
            if events.stateChange != nil {
                revisions[name, default: 0] += 1
                changed.append((name, events))
            }
        }
        return changed
    }

    /// Applies a committed state change of `job` from its supervisor (see `JobProgress.apply`); a
    /// job may be known by its state changes before its first report.
    package mutating func apply(_ change: JobStateReport, job: String, now: Double) -> ProgressEvents {
        revisions[job, default: 0] += 1
        return progress[job, default: JobProgress(name: job, now: now)].apply(change, now: now)
    }

    /// Restores `job`'s last stored state and its line (after its reports were replayed).
    package mutating func restore(state: JobState, job: String, since: Double, line: String) {
        revisions[job, default: 0] += 1
        progress[job, default: JobProgress(name: job, now: since)].restore(state: state, since: since, line: line)
    }

    /// Adds a committed record (reloaded or newly received).
    ///
    /// - Returns: whether the job's best set changed.
    @discardableResult
    package mutating func append(_ record: PerformanceRecord, job: String) -> Bool {
        storedCount += 1
        revisions[job, default: 0] += 1
        return jobs[job, default: JobRecords(name: job, configuredObjectives: objectives)].append(record)
    }

    /// Why `record` cannot join `job`, or nil when it can (see `JobRecords.refusal(of:)`).
    package func refusal(of record: PerformanceRecord, job: String) -> String? {
        jobs[job]?.refusal(of: record)
    }

    /// Counts one record that arrived over HTTP with `outcome` (a conflict's refusal is counted
    /// by `countRejected` when it is answered).
    package mutating func countReceived(_ outcome: InsertOutcome) {
        receivedCount += 1
        if outcome == .duplicate { duplicateCount += 1 }
    }

    /// Counts one refused request.
    package mutating func countRejected() {
        rejectedCount += 1
    }
}
