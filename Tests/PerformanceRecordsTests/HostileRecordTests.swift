// Hostile input on the record surface (issue 19, classes 1, 2 and 9): out-of-range numbers, texts
// that are short in characters but long in bytes, control characters in logged text, and the
// bounded Best values line and best-set maintenance.

import PerformanceRecords
import StrictJSON
import Testing

@Suite("Hostile records: bounded numbers, texts, keys and lines")
struct HostileRecordTests {
    static func body(
        epoch: String = "1", step: String = "2", rank: String = "0", worker: String = "\"0\"",
        performance: String = #"{"accuracy_top1":0.5}"#, timestamp: String = "1700000000"
    ) -> String {
        #"{"worker_id":\#(worker),"rank":\#(rank),"epoch":\#(epoch),"step":\#(step),"performance":\#(performance),"timestamp":\#(timestamp)}"#
    }

    static let combiningMarks = "a" + String(repeating: "\u{0301}", count: 20_000)

    /// Bodies refused before anything is stored, with the exact message.
    static let refused: [(String, String)] = [
        (
            body(epoch: "9223372036854775807"),
            "field 'epoch' must be an integer in 0...1000000, got 9223372036854775807"
        ),
        (body(epoch: "1000001"), "field 'epoch' must be an integer in 0...1000000, got 1000001"),
        (body(step: "1000000000001"), "field 'step' must be an integer in 0...1000000000000, got 1000000000001"),
        (body(rank: "1e300"), "field 'rank' must be an integer in 0...1000000, got 1e300"),
        (body(timestamp: "1e300"), "field 'timestamp' must be seconds since 1970 in 0...253402300799, got 1e+300"),
        (body(timestamp: "-1"), "field 'timestamp' must be seconds since 1970 in 0...253402300799, got -1.0"),
        (body(worker: "\"\(combiningMarks)\""), "field 'worker_id' must have 1 to 128 UTF-8 bytes, got 40001"),
        (body(worker: #""a\u2028b""#), "field 'worker_id' must not contain control characters or line separators"),
        (body(worker: #""a\u0085b""#), "field 'worker_id' must not contain control characters or line separators"),
        (
            body(performance: "{\"\(String(repeating: "k", count: 65))\":1}"),
            "a performance key must have 1 to 64 UTF-8 bytes, got 65"
        ),
        (
            body(performance: "{" + (0..<17).map { "\"m\($0)\":1" }.joined(separator: ",") + "}"),
            "field 'performance' has 17 entries, at most 16 are allowed"
        ),
    ]

    @Test("out-of-range numbers and over-long texts are refused naming the field", arguments: refused)
    func refusedBodies(body: String, message: String) {
        #expect(throws: RecordValidationError(message)) { try PerformanceRecord(jsonText: Array(body.utf8)) }
    }

    @Test("the largest allowed values are accepted, and -0 as a timestamp reads as 0")
    func limitsAccepted() throws {
        let largest = try PerformanceRecord(
            jsonText: Array(
                Self.body(
                    epoch: "1000000", step: "1000000000000", rank: "1000000",
                    worker: "\"\(String(repeating: "w", count: 128))\"",
                    timestamp: "253402300799"
                ).utf8))
        #expect(largest.epoch == PerformanceRecord.maximumEpoch && largest.step == PerformanceRecord.maximumStep)
        let negativeZero = try PerformanceRecord(jsonText: Array(Self.body(timestamp: "-0.0").utf8))
        #expect(negativeZero.timestamp.sign == .plus && negativeZero.timestamp == 0)
        let metrics = PerformanceMetrics([("loss", -0.0)])
        #expect(
            metrics.hasEqualValues(PerformanceMetrics([("loss", 0.0)]))
                && metrics != PerformanceMetrics([("loss", 0.0)]))
        #expect(!metrics.hasEqualValues(PerformanceMetrics([("lost", 0.0)])))
    }

    @Test("LogText escapes every C0, DEL, C1 and U+2028/2029 scalar and keeps the rest")
    func logTextEscapes() {
        let hostile =
            (0..<0x20).map { String(UnicodeScalar(UInt8($0))) }.joined() + "\u{7F}"
            + (0x80...0x9F).map { String(UnicodeScalar(UInt8($0))) }.joined() + "\u{2028}\u{2029}"
        let escaped = LogText.escaped(hostile)
        #expect(
            !escaped.unicodeScalars.contains {
                $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0x2028 || $0.value == 0x2029
            })
        #expect(escaped.hasPrefix(#"\x00\x01"#) && escaped.contains(#"\t\n\x0b\x0c\r"#) && escaped.contains(#"\e"#))
        #expect(escaped.contains(#"\x7f\x80"#) && escaped.contains(#"\x9f\u2028\u2029"#))
        let forged = "x\n2026-01-01 00:00:00.000 INFO Best values: [{'worker_id': 'evil'}]"
        #expect(LogText.escaped(forged) == #"x\n2026-01-01 00:00:00.000 INFO Best values: [{'worker_id': 'evil'}]"#)
        let plain = "épreuve 测试 \\ 'quoted' \u{1F600}"
        #expect(LogText.escaped(plain) == plain)
    }

    func record(_ index: Int, keys: Int) -> PerformanceRecord {
        // Every record trades one metric against another, so each one stays in the best set.
        PerformanceRecord(
            workerID: "w\(index)", rank: 0, epoch: index, step: index,
            performance: PerformanceMetrics(
                (0..<keys).map { key in
                    (key: "accuracy_m\(key)", value: key == 0 ? Double(index) : -Double(index) + Double(key) * 0.001)
                }),
            timestamp: 1_700_000_000)
    }

    @Test("the Best values line is capped at 4 KiB of records however large the set is")
    func cappedLine() {
        let records = (0..<200).map { record($0, keys: PerformanceRecord.maximumMetricCount) }
        var set = IncrementalBestSet(objectives: nil)
        for (index, record) in records.enumerated() {
            let changed = set.add(record, index: index)
            #expect(changed)
        }
        #expect(set.indices == Array(0..<200))
        let line = BestValuesLine.message(for: set.indices.map { records[$0] })
        let listed = line.ranges(of: "{'worker_id': ").count
        #expect(line.hasPrefix("Best values: [{'worker_id': 'w0', 'performance': {'accuracy_m0': 0.0, "))
        #expect(line.hasSuffix("}}] and \(200 - listed) more not listed"), "\(line.suffix(80))")
        #expect(listed >= 1 && line.utf8.count <= BestValuesLine.maximumListedBytes + 100, "\(line.utf8.count) bytes")
        // The normal case keeps the reference's format exactly.
        #expect(BestValuesLine.message(for: [records[1]]).hasSuffix("'accuracy_m15': -0.985}}]"))
    }

    @Test("a dominated newcomer leaves the set unchanged; a new key widens it without recomputation")
    func incrementalChanges() {
        func make(_ worker: String, _ metrics: [(String, Double)]) -> PerformanceRecord {
            PerformanceRecord(
                workerID: worker, rank: 0, epoch: 0, step: 0,
                performance: PerformanceMetrics(metrics.map { (key: $0.0, value: $0.1) }), timestamp: 0)
        }
        let records = [
            make("a", [("accuracy_top1", 0.5), ("loss", 2.0)]),
            make("b", [("accuracy_top1", 0.4), ("loss", 2.5)]),  // dominated by a
            make("c", [("accuracy_top1", 0.6), ("loss", 1.0)]),  // dominates a
            make("d", [("accuracy_top1", 0.1), ("flops", 9.0)]),  // a new key: joins
        ]
        var set = IncrementalBestSet(objectives: nil)
        var changes: [Bool] = []
        for (index, record) in records.enumerated() { changes.append(set.add(record, index: index)) }
        #expect(changes == [true, false, true, true])
        #expect(set.indices == ParetoFront.bestIndices(of: records))
        #expect(set.objectives.map(\.description) == ["accuracy_top1:max", "loss:min", "flops:min"])
        #expect(set.newKeyCount(make("e", [("flops", 1), ("latency", 1), ("params", 1)])) == 2)
    }
}
