// The coordinator's pure state and its log: the incrementally kept Pareto front, log rotation by size and
// after copy-truncate, and a log that cannot be written.

import Coordinator
import Foundation
import PerformanceRecords
import TensorEngine
import Testing
import _TestSupport

@Suite("Coordinator state and log file")
struct CoordinatorStateTests {
    @Test("the incremental best set equals the full recomputation", arguments: [1, 2, 3] as [UInt64])
    func incrementalFront(seed: UInt64) {
        var generator = SeededRandom(seed: seed)
        var state = CoordinatorState(objectives: nil)
        var all: [PerformanceRecord] = []
        for step in 0..<300 {
            var metrics: [(String, Double)] = [
                ("accuracy_top1", Double(generator.next() % 20) / 20), ("params", Double(generator.next() % 20)),
            ]
            // A third key appears later, widening the default objectives.
            if step >= 150 { metrics.append(("flops", Double(generator.next() % 5))) }
            let record = makeRecord(worker: "\(step % 7)", epoch: step, step: step, metrics)
            all.append(record)
            let before = state.jobs["j"]?.best ?? []
            let changed = state.append(record, job: "j")
            let best = state.jobs["j"]!.best
            #expect(best == ParetoFront.best(of: all), "after \(step + 1) records")
            #expect(changed == (best != before), "after \(step + 1) records")
        }
    }

    @Test("log rotation by size keeps whole lines and reopens the file")
    func rotationBySize() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("c.log").path
        let sink = try LogSink(path: path, maximumBytes: 1024, writesToStandardOutput: false)
        let lines = (0..<40).map { "line \($0) " + String(repeating: "x", count: 60) }
        for line in lines { sink.write(line: line) }
        let current = try String(contentsOfFile: path, encoding: .utf8)
        let rotated = try String(contentsOfFile: path + ".1", encoding: .utf8)
        #expect(current.utf8.count <= 1024 && rotated.utf8.count <= 1024)
        let kept = (rotated + current).split(separator: "\n").map(String.init)
        #expect(kept == Array(lines.suffix(kept.count)))
        #expect(kept.count >= 20)
    }

    @Test("after a copytruncate the next line starts the file (O_APPEND)")
    func copyTruncate() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("c.log").path
        let sink = try LogSink(path: path, writesToStandardOutput: false)
        sink.write(line: "before rotation")
        #expect(truncate(path, 0) == 0)
        sink.write(line: "after rotation")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "after rotation\n")
    }

    @Test("an unwritable log file is a clear error")
    func unwritableLog() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("plain-file")
        try Data("x".utf8).write(to: file)
        let error = #expect(throws: CoordinatorError.self) {
            try LogSink(path: file.appendingPathComponent("c.log").path)
        }
        #expect(error?.description.contains("plain-file/c.log") == true)
    }
}
