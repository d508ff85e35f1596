// The best set of a job's records (the Pareto front on its objectives): the objectives and their
// defaults, the dominance rule, a from-scratch computation and the incremental one the coordinator
// keeps per job, whose cost per record does not grow with the job's history.

/// Whether larger or smaller values of a metric are better.
package enum ObjectiveDirection: String, Sendable, CaseIterable {
    case max
    case min
}

/// One metric the best set is chosen on, and its direction.
package struct Objective: Sendable, Equatable, CustomStringConvertible {
    package var key: String
    package var direction: ObjectiveDirection

    package init(key: String, direction: ObjectiveDirection) {
        self.key = key
        self.direction = direction
    }

    /// Reads `key:max` or `key:min` (the `--objective` option's form).
    ///
    /// - Throws: `RecordValidationError` naming the text and the expected form.
    package init(parsing text: String) throws(RecordValidationError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let direction = ObjectiveDirection(rawValue: String(parts[1])) else {
            throw RecordValidationError("objective '\(text)' must have the form KEY:max or KEY:min")
        }
        self.init(key: String(parts[0]), direction: direction)
    }

    package var description: String { "\(key):\(direction.rawValue)" }

    /// Keys minimised by default; every other key is maximised. The reference minimises `flops`,
    /// `params` and `latency`; `loss` (which our workers also report) is a cost too, and maximising
    /// it would keep the worst epochs in the best set.
    package static let minimisedByDefault: Set<String> = ["flops", "params", "latency", "loss"]

    /// The default objectives of a job: every performance key of its records in first-seen order,
    /// `flops`, `params`, `latency` and `loss` minimised, the rest maximised.
    package static func defaults(for records: [PerformanceRecord]) -> [Objective] {
        var seen: Set<String> = []
        var objectives: [Objective] = []
        for record in records {
            for key in record.performance.keys where seen.insert(key).inserted {
                objectives.append(Objective(key: key, direction: minimisedByDefault.contains(key) ? .min : .max))
            }
        }
        return objectives
    }
}

/// The best set of a job's records: those no other record dominates (Pareto front).
///
/// Record `a` dominates `b` when `a` is at least as good as `b` on every objective and strictly
/// better on at least one. Records with equal values on every objective do not dominate each other,
/// so ties are all kept. A record that lacks an objective's key cannot be compared on it and counts
/// as worst there.
package enum ParetoFront {
    /// The records of `records` not dominated by any other, in their original order.
    ///
    /// - Parameters:
    ///   - records: the candidates.
    ///   - objectives: the objectives, or nil for `Objective.defaults(for: records)`.
    /// - Complexity: O(n² · k) for n records and k objectives.
    package static func best(of records: [PerformanceRecord], objectives: [Objective]? = nil) -> [PerformanceRecord] {
        bestIndices(of: records, objectives: objectives).map { records[$0] }
    }

    /// The indices of `best(of:objectives:)` in `records`, ascending.
    package static func bestIndices(of records: [PerformanceRecord], objectives: [Objective]? = nil) -> [Int] {
        let objectives = objectives ?? Objective.defaults(for: records)
        let scores = records.map { score($0, objectives: objectives) }
        return records.indices.filter { candidate in
            !scores.indices.contains { other in
                other != candidate && dominates(scores[other], scores[candidate])
            }
        }
    }

    /// Scores oriented so larger is better on every objective; a missing key scores -infinity.
    static func score(_ record: PerformanceRecord, objectives: [Objective]) -> [Double] {
        objectives.map { objective in
            guard let value = record.performance[objective.key] else { return -.infinity }
            return objective.direction == .max ? value : -value
        }
    }

    /// Whether scores `a` dominate scores `b` (both oriented so larger is better).
    static func dominates(_ a: [Double], _ b: [Double]) -> Bool {
        var strictlyBetter = false
        for (x, y) in zip(a, b) {
            if x < y { return false }
            if x > y { strictlyBetter = true }
        }
        return strictlyBetter
    }
}

/// A job's best set kept up to date one record at a time.
///
/// Adding a record costs O(F · k) for a front of F records and k objectives, independent of how
/// many records came before: dominance is transitive, so a record dominated once stays dominated
/// and only the front is compared with the newcomer. A key seen for the first time widens the
/// default objectives; no earlier record has that key (all score -infinity on it), so their
/// dominance relations are unchanged and the front needs no recomputation either.
package struct IncrementalBestSet: Sendable {
    /// The most distinct performance keys one job may use, so k stays bounded under default
    /// objectives (every key is one).
    package static let maximumKeysPerJob = 64

    /// The objectives in force: the configured ones, or the defaults for the keys seen so far.
    package private(set) var objectives: [Objective]
    /// The caller's indices of the best records, ascending (= commit order).
    package var indices: [Int] { members.map(\.index) }
    /// The distinct keys seen, in first-seen order.
    package private(set) var keys: [String] = []
    private var keySet: Set<String> = []
    private let configured: Bool
    private var members: [(index: Int, scores: [Double])] = []

    /// An empty set on `objectives`, or on the defaults of the records added when nil.
    package init(objectives: [Objective]?) {
        self.objectives = objectives ?? []
        self.configured = objectives != nil
    }

    /// How many of `record`'s keys the job has not seen yet.
    package func newKeyCount(_ record: PerformanceRecord) -> Int {
        record.performance.keys.count { !keySet.contains($0) }
    }

    /// Adds `record` (the caller's record number `index`, increasing) and reports whether the best
    /// set changed, i.e. whether the record joined it.
    @discardableResult
    package mutating func add(_ record: PerformanceRecord, index: Int) -> Bool {
        for key in record.performance.keys where keySet.insert(key).inserted {
            keys.append(key)
            guard !configured else { continue }
            objectives.append(Objective(key: key, direction: Objective.minimisedByDefault.contains(key) ? .min : .max))
            for slot in members.indices { members[slot].scores.append(-.infinity) }
        }
        let scores = ParetoFront.score(record, objectives: objectives)
        if members.contains(where: { ParetoFront.dominates($0.scores, scores) }) { return false }
        members.removeAll { ParetoFront.dominates(scores, $0.scores) }
        members.append((index, scores))
        return true
    }
}
