//===----------------------------------------------------------------------===//
// ghostnet-d — PerformanceRecords
//===----------------------------------------------------------------------===//

/// Whether larger or smaller values of a metric are better.
public enum ObjectiveDirection: String, Sendable, CaseIterable {
    case max
    case min
}

/// One metric the best set is chosen on, and its direction.
public struct Objective: Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var direction: ObjectiveDirection

    public init(key: String, direction: ObjectiveDirection) {
        self.key = key
        self.direction = direction
    }

    /// Reads `key:max` or `key:min` (the `--objective` option's form).
    ///
    /// - Throws: `RecordValidationError` naming the text and the expected form.
    public init(parsing text: String) throws(RecordValidationError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let direction = ObjectiveDirection(rawValue: String(parts[1])) else {
            throw RecordValidationError("objective '\(text)' must have the form KEY:max or KEY:min")
        }
        self.init(key: String(parts[0]), direction: direction)
    }

    public var description: String { "\(key):\(direction.rawValue)" }

    /// Keys minimised by default; every other key is maximised. The reference minimises `flops`,
    /// `params` and `latency`; `loss` (which our workers also report) is a cost too, and maximising
    /// it would keep the worst epochs in the best set.
    public static let minimisedByDefault: Set<String> = ["flops", "params", "latency", "loss"]

    /// The default objectives of a job: every performance key of its records in first-seen order,
    /// `flops`, `params`, `latency` and `loss` minimised, the rest maximised.
    public static func defaults(for records: [PerformanceRecord]) -> [Objective] {
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
public enum ParetoFront {
    /// The records of `records` not dominated by any other, in their original order.
    ///
    /// - Parameters:
    ///   - records: the candidates.
    ///   - objectives: the objectives, or nil for `Objective.defaults(for: records)`.
    /// - Complexity: O(n² · k) for n records and k objectives.
    public static func best(of records: [PerformanceRecord], objectives: [Objective]? = nil) -> [PerformanceRecord] {
        bestIndices(of: records, objectives: objectives).map { records[$0] }
    }

    /// The indices of `best(of:objectives:)` in `records`, ascending.
    public static func bestIndices(of records: [PerformanceRecord], objectives: [Objective]? = nil) -> [Int] {
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
