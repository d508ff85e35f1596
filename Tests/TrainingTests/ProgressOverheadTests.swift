// The progress-report overhead each rank measures on its own report path: one report per
// `report_interval` steps and at each epoch's end, timed intervals that fit inside the run, and the
// logged summary line derived from the times it prints.

import Distributed
import Foundation
import Testing
import Training
import _TestSupport

@Suite(.serialized) struct ProgressOverheadTests {
    /// One parsed `progress reports: …` line.
    struct Summary {
        var reports: Int
        var meanMicroseconds: Double
        var percent: Double
        var reportMilliseconds: Double
        var startMilliseconds: Double
        var senderMilliseconds: Double
        var stepSeconds: Double

        static func all(in log: String) -> [Summary] {
            let pattern =
                #/
                progress\sreports:\s(\d+),\smean\s([0-9.]+)\sµs,\s([0-9.e+-]+)\s%\sof\sstep\stime\s
                \(reports\s([0-9.]+)\sms\s\+\sstart\s([0-9.]+)\sms\s\+\ssender\s([0-9.]+)\sms\s
                of\s([0-9.]+)\ss\sin\ssteps;\srecord\sdelivery\s[0-9.]+\sms\)
                /#
            return log.matches(of: pattern).compactMap { match in
                let (_, count, mean, percent, reports, start, sender, steps) = match.output
                guard let count = Int(count), let mean = Double(mean), let percent = Double(percent),
                    let reports = Double(reports), let start = Double(start), let sender = Double(sender),
                    let steps = Double(steps)
                else { return nil }
                return Summary(
                    reports: count, meanMicroseconds: mean, percent: percent, reportMilliseconds: reports,
                    startMilliseconds: start, senderMilliseconds: sender, stepSeconds: steps)
            }
        }
    }

    @Test func everyRankTimesEachReportAndLogsTheShareOfStepTimeEachEpoch() throws {
        let job = try TinyJob()
        let epochs = 2
        let communicators = LocalCommunicator.group(size: 2, collectiveTimeout: .seconds(120))
        let outcomes = try runOnThreads(2) { rank in
            let trainer = try job.trainer(
                ["fully_train.trainer.epochs=\(epochs)", "runtime.report_interval=2"], communicator: communicators[rank]
            )
            let started = ContinuousClock.now
            try trainer.run()
            let wall = started.duration(to: .now).inSeconds
            let interval = trainer.configuration.runtime.reportInterval
            return (trainer.progressOverhead, wall, trainer.stepsPerEpoch, interval)
        }.map { try $0.get() }

        for (rank, (overhead, wallSeconds, steps, interval)) in outcomes.enumerated() {
            // A report every `interval` steps, and one more at the end of an epoch that is not a multiple.
            let perEpoch = steps / interval + (steps % interval == 0 ? 0 : 1)
            #expect(overhead.reports == epochs * perEpoch, "rank \(rank): \(steps) steps, interval \(interval)")
            #expect(overhead.reportSeconds > 0 && overhead.startSeconds > 0 && overhead.stepSeconds > 0)
            // Steps, reports and the start are disjoint intervals inside run(), the latter two counted in
            // one thread's CPU time (never more than their wall time); the slack covers the rounding
            // of summing a few hundred Doubles.
            let timed = overhead.stepSeconds + overhead.reportSeconds + overhead.startSeconds
            #expect(timed <= wallSeconds * (1 + 1e-12), "rank \(rank): \(timed) s timed in a \(wallSeconds) s run")

            let summaries = Summary.all(in: job.log(rank: rank))
            #expect(summaries.map(\.reports) == (1...epochs).map { $0 * perEpoch }, "\(job.log(rank: rank))")
            let last = try #require(summaries.last)
            expectConsistent(last, with: overhead, rank: rank)
        }
    }

    /// The printed figures are the measured ones rounded as printed (mean to 0.1 µs, times to
    /// 0.001 ms or s, the share to 4 significant digits), and the share follows from the printed times.
    func expectConsistent(_ summary: Summary, with overhead: ProgressOverhead, rank: Int) {
        let reportMilliseconds = overhead.reportSeconds * 1e3
        let startMilliseconds = overhead.startSeconds * 1e3
        // Half a printed unit, plus a scaled double's rounding.
        #expect(abs(summary.reportMilliseconds - reportMilliseconds) <= 0.0005 + 1e-9, "rank \(rank)")
        #expect(abs(summary.startMilliseconds - startMilliseconds) <= 0.0005 + 1e-9, "rank \(rank)")
        #expect(abs(summary.senderMilliseconds - overhead.senderCPUSeconds * 1e3) <= 0.0005 + 1e-9, "rank \(rank)")
        #expect(abs(summary.stepSeconds - overhead.stepSeconds) <= 0.0005 + 1e-9, "rank \(rank)")
        let mean = reportMilliseconds * 1e3 / Double(overhead.reports)
        #expect(abs(summary.meanMicroseconds - mean) <= 0.05 + 1e-9, "rank \(rank)")

        // The share from the printed times, each ± half its last digit, brackets the printed share,
        // which itself is within half a unit of its 4th significant digit (≤ 5e-4 relative).
        let half = 0.0005
        let printed = [summary.reportMilliseconds, summary.startMilliseconds, summary.senderMilliseconds]
        let low = printed.map { max(0, $0 - half) }.reduce(0, +) / 1e3 / (summary.stepSeconds + half) * 100
        let high =
            printed.map { $0 + half }.reduce(0, +) / 1e3
            / max(summary.stepSeconds - half, .leastNonzeroMagnitude) * 100
        #expect(
            summary.percent >= low * (1 - 5e-4) && summary.percent <= high * (1 + 5e-4),
            "rank \(rank): \(summary.percent) % printed, \(low)…\(high) % from the printed times")
    }
}
