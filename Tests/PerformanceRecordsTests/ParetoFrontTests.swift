// The Pareto front of performance records under default and configured objectives, missing keys, and
// objective text that cannot be parsed.

import PerformanceRecords
import Testing

@Suite("Pareto best set")
struct ParetoFrontTests {
    func record(_ worker: String, _ metrics: [(String, Double)]) -> PerformanceRecord {
        PerformanceRecord(
            workerID: worker, rank: 0, epoch: 0, step: 0,
            performance: PerformanceMetrics(metrics.map { (key: $0.0, value: $0.1) }), timestamp: 0)
    }

    @Test("two objectives: dominated records drop out, trade-offs and ties stay")
    func twoObjectives() {
        let records = [
            record("a", [("accuracy_top1", 0.70), ("params", 10)]),  // trade-off: small
            record("b", [("accuracy_top1", 0.80), ("params", 20)]),  // trade-off: accurate
            record("c", [("accuracy_top1", 0.69), ("params", 11)]),  // dominated by a
            record("d", [("accuracy_top1", 0.80), ("params", 20)]),  // tie with b: kept
            record("e", [("accuracy_top1", 0.80), ("params", 25)]),  // same accuracy as b, larger: dominated
        ]
        #expect(ParetoFront.best(of: records).map(\.workerID) == ["a", "b", "d"])
    }

    @Test("default objectives minimise flops, params, latency and loss and maximise the rest")
    func defaultObjectives() {
        let records = [record("0", [("accuracy_top1", 0.5), ("flops", 1), ("params", 2), ("latency", 3), ("loss", 4)])]
        #expect(
            Objective.defaults(for: records).map(\.description)
                == ["accuracy_top1:max", "flops:min", "params:min", "latency:min", "loss:min"])
    }

    @Test("configured objectives override the defaults")
    func configuredObjectives() throws {
        let records = [
            record("small", [("accuracy_top1", 0.70), ("params", 10)]),
            record("big", [("accuracy_top1", 0.80), ("params", 20)]),
        ]
        let accuracyOnly = [try Objective(parsing: "accuracy_top1:max")]
        #expect(ParetoFront.best(of: records, objectives: accuracyOnly).map(\.workerID) == ["big"])
        let paramsMax = [try Objective(parsing: "params:max"), try Objective(parsing: "accuracy_top1:max")]
        #expect(ParetoFront.best(of: records, objectives: paramsMax).map(\.workerID) == ["big"])
        let paramsMin = [try Objective(parsing: "params:min")]
        #expect(ParetoFront.best(of: records, objectives: paramsMin).map(\.workerID) == ["small"])
    }

    @Test("a record lacking an objective key counts as worst on it")
    func missingKey() {
        let records = [
            record("full", [("accuracy_top1", 0.7), ("params", 10)]),
            record("partial", [("accuracy_top1", 0.7)]),
        ]
        #expect(ParetoFront.best(of: records).map(\.workerID) == ["full"])
    }

    @Test(
        "objective text must be KEY:max or KEY:min", arguments: ["accuracy", "accuracy:", ":max", "a:up", "a:max:min"])
    func badObjectiveText(text: String) {
        #expect(throws: RecordValidationError.self) { try Objective(parsing: text) }
    }
}
