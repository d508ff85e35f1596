// The rank log and progress reports: lines in the rank's file with timestamp and level, and the progress
// line's loss, rate, throughput split and remaining time.

import Foundation
import Logging
import Testing
import Training
import _TestSupport

@Suite struct TrainingLogTests {
    @Test func linesGoToTheRankFileWithTimestampAndLevel() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sink = try TrainingLogSink(
            logDirectory: folder.appendingPathComponent("logs"), rank: 1, echoToStandardOutput: false)
        var logger = Logger(label: "train") { _ in TrainingLogHandler(sink: sink) }
        logger[metadataKey: "rank"] = "1"
        logger.info("epoch 1 done")
        logger.debug("not shown at info level")
        logger.warning("skipping checkpoint")
        sink.showProgress("epoch 1/2 step 3/4")

        #expect(sink.fileURL.lastPathComponent == "train-rank1.log")
        let lines = try String(contentsOf: sink.fileURL, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        let pattern = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} (INFO|WARNING) .+$/
        #expect(lines.allSatisfy { $0.wholeMatch(of: pattern) != nil }, "\(lines)")
        #expect(lines[0].hasSuffix(" INFO epoch 1 done rank=1"))
        #expect(lines[1].hasSuffix(" WARNING skipping checkpoint rank=1"))
        #expect(lines[2].hasSuffix(" INFO epoch 1/2 step 3/4"))
    }

    /// Off a terminal (mpirun's forwarder), the file keeps every progress line while the echo shows at
    /// most one per interval; ordinary lines always echo.
    @Test(arguments: [(Duration.seconds(3600), 1), (Duration.zero, 3)])
    func progressEchoIsThrottledOffATerminal(interval: Duration, echoedProgress: Int) throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        var descriptors: [Int32] = [0, 0]
        try #require(pipe(&descriptors) == 0)
        defer { close(descriptors[0]) }
        let sink = try TrainingLogSink(
            logDirectory: folder, rank: 0, echoToStandardOutput: true, standardOutputIsTerminal: false,
            standardOutput: descriptors[1], progressEchoInterval: interval)
        for step in 1...3 {
            sink.showProgress("epoch 1/1 step \(step)/3")
            sink.write(level: .info, "line \(step)")
        }
        close(descriptors[1])
        let echoed = String(decoding: FileHandle(fileDescriptor: descriptors[0]).readDataToEndOfFile(), as: UTF8.self)
        let file = try String(contentsOf: sink.fileURL, encoding: .utf8)
        #expect(file.split(separator: "\n").count == 6)
        #expect(echoed.split(separator: "\n").filter { $0.contains(" step ") }.count == echoedProgress, "\(echoed)")
        #expect(echoed.split(separator: "\n").filter { $0.contains(" INFO line ") }.count == 3, "\(echoed)")
        #expect(echoed.contains(" INFO epoch 1/1 step 1/3\n"), "\(echoed)")
    }

    @Test func timestampPrefixIsLocalTimeWithMilliseconds() {
        let date = Date(timeIntervalSince1970: 1_714_564_800.25)
        let prefix = TrainingLogSink.prefix(level: .error, date: date)
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        formatter.timeZone = .current
        #expect(prefix == formatter.string(from: date) + ".250 ERROR ")
    }
}

@Suite struct ProgressTests {
    @Test func reportCoversLossRateThroughputSplitAndETA() {
        var tracker = ProgressTracker(epochs: 2, stepsPerEpoch: 10, globalBatchSize: 64)
        tracker.startEpoch()
        for loss in [2.0, 1.0] {
            tracker.record(loss: loss, dataWait: 0.1, compute: 0.3, communication: 0.1)
        }
        let report = tracker.report(epoch: 1, stepInEpoch: 2, learningRate: 0.000_987_65)
        // 2 steps × 64 images in 1 s; 8 steps left at 0.5 s each.
        expectClose(report.imagesPerSecond, 128)
        expectClose(report.remainingSeconds, 4)
        #expect(
            report.line
                == "epoch 2/2 step 2/10 loss 1.5000 lr 0.0009877 128.0 img/s data 20% compute 60% comm 20% ETA 0:00:04")
        expectClose(report.fractionDone, 0.6)
        #expect(report.bar(width: 10) == "[######....]  60% " + report.line)

        // A new window: the mean loss keeps the epoch's steps, throughput restarts.
        tracker.record(loss: 0.0, dataWait: 0, compute: 2, communication: 0)
        let next = tracker.report(epoch: 1, stepInEpoch: 3, learningRate: 0.1)
        expectClose(next.meanLoss, 1)
        expectClose(next.imagesPerSecond, 32)
        #expect(next.line.contains("data 0% compute 100% comm 0% ETA 0:00:14"))
    }

    @Test func longRunsShowDays() {
        var tracker = ProgressTracker(epochs: 120, stepsPerEpoch: 1000, globalBatchSize: 256)
        tracker.startEpoch()
        tracker.record(loss: 6.9, dataWait: 0.5, compute: 1.5, communication: 0.5)
        let report = tracker.report(epoch: 0, stepInEpoch: 1, learningRate: 0.001)
        // 119 999 steps × 2.5 s = 299 997.5 s = 3 d 11:19:58 (rounded).
        #expect(report.line.hasSuffix("ETA 3d 11:19:58"), "\(report.line)")
    }
}

@Suite struct ProgressNumberTests {
    /// A diverging run's loss (1e15 and more) is printed, not a crash: `fixed` must not overflow `Int`.
    @Test(arguments: [9e14, 1e15, 3.4e38, -1e20])
    func hugeLossesPrintWithoutOverflow(loss: Double) {
        #expect(Double(ProgressReport.fixed(loss, 4)).map { abs($0 - loss) <= abs(loss).ulp } == true)
    }

    @Test func ordinaryValuesKeepTheirDecimals() {
        #expect(ProgressReport.fixed(6.90775, 4) == "6.9078")
        #expect(ProgressReport.fixed(-0.00004, 4) == "0.0000")
    }
}
