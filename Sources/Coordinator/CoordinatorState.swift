//===----------------------------------------------------------------------===//
// ghostnet-d — Coordinator
//===----------------------------------------------------------------------===//

import PerformanceRecords

/// The records of one job and its current best set.
public struct JobRecords: Sendable {
    public let name: String
    /// Every record, in commit order.
    public private(set) var records: [PerformanceRecord] = []
    /// The objectives in force: the configured ones, or the defaults for the keys seen so far.
    public private(set) var objectives: [Objective] = []
    /// Indices into `records` of the best set, ascending.
    private var frontIndices: [Int] = []
    private let configuredObjectives: [Objective]?

    init(name: String, configuredObjectives: [Objective]?) {
        self.name = name
        self.configuredObjectives = configuredObjectives
        self.objectives = configuredObjectives ?? []
    }

    /// The best set, in commit order.
    public var best: [PerformanceRecord] { frontIndices.map { records[$0] } }

    /// Adds `record` and updates the best set.
    ///
    /// With fixed objectives the front is updated incrementally: dominance is transitive, so a
    /// record dominated once stays dominated, and only the front has to be compared against the
    /// new record. When a new key widens the default objectives, the front is recomputed.
    mutating func append(_ record: PerformanceRecord) {
        records.append(record)
        let newIndex = records.count - 1
        let objectivesNow = configuredObjectives ?? Objective.defaults(for: records)
        if objectivesNow != objectives {
            objectives = objectivesNow
            frontIndices = ParetoFront.bestIndices(of: records, objectives: objectives)
            return
        }
        let candidates = frontIndices + [newIndex]
        frontIndices = ParetoFront.bestIndices(of: candidates.map { records[$0] }, objectives: objectives)
            .map { candidates[$0] }
    }

    /// The largest value of every `accuracy*` key, for the metrics page.
    public var bestAccuracies: [(key: String, value: Double)] {
        var maxima: [(key: String, value: Double)] = []
        for record in records {
            for entry in record.performance where entry.key.hasPrefix("accuracy") {
                if let slot = maxima.firstIndex(where: { $0.key == entry.key }) {
                    maxima[slot].value = max(maxima[slot].value, entry.value)
                } else {
                    maxima.append(entry)
                }
            }
        }
        return maxima
    }
}

/// The coordinator's in-memory view: every job's records and best set, plus request counters.
///
/// A value type with no I/O, so its rules are testable without a server; `CoordinatorService`
/// keeps it behind a lock and mutates it only after the database committed.
public struct CoordinatorState: Sendable {
    public private(set) var jobs: [String: JobRecords] = [:]
    /// Records stored (new rows) since start, including reloaded ones.
    public private(set) var storedCount = 0
    /// Records received over HTTP since start: stored, duplicate or conflicting.
    public private(set) var receivedCount = 0
    public private(set) var duplicateCount = 0
    /// Requests refused (bad input, conflicts, unauthorised) since start.
    public private(set) var rejectedCount = 0
    public let objectives: [Objective]?

    public init(objectives: [Objective]?) {
        self.objectives = objectives
    }

    /// Job names, sorted.
    public var jobNames: [String] { jobs.keys.sorted() }

    /// Adds a committed record (reloaded or newly received) and returns the job's best set.
    @discardableResult
    public mutating func append(_ record: PerformanceRecord, job: String) -> [PerformanceRecord] {
        jobs[job, default: JobRecords(name: job, configuredObjectives: objectives)].append(record)
        storedCount += 1
        return jobs[job]!.best
    }

    /// Counts one record that arrived over HTTP with `outcome` (a conflict's refusal is counted
    /// by `countRejected` when it is answered).
    public mutating func countReceived(_ outcome: InsertOutcome) {
        receivedCount += 1
        if outcome == .duplicate { duplicateCount += 1 }
    }

    /// Counts one refused request.
    public mutating func countRejected() {
        rejectedCount += 1
    }
}
