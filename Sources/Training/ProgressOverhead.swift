// What progress reporting costs a rank's training threads, timed on the report path itself: every
// report (the tracker's summary, rank 0's line and the update handed to the coordinator client's
// sender thread) and the start-up announcement, against the time the steps took.

/// The report path's time on one rank, accumulated over the process's run with the continuous clock.
///
/// The step times travel in the per-step check that every step makes anyway (one more value per rank
/// on a step that ends a window), so no collective and no wait for a slower rank is part of the path.
/// Not timed: those extra values, the tracker's per-step sums (six additions, cheaper than two clock
/// readings) and the JSON and HTTP work, which happen on the sender thread at the lowest priority.
package struct ProgressOverhead: Sendable {
    /// Progress reports made in this process.
    package private(set) var reports = 0
    /// Seconds on the report path, over all ``reports``.
    package private(set) var reportSeconds = 0.0
    /// Seconds of the start-up announcement: the host-name all-gather and the `starting` update.
    package var startSeconds = 0.0
    /// Seconds the steps themselves took (data wait, compute, communication); report paths excluded.
    package private(set) var stepSeconds = 0.0

    package init() {}

    mutating func addStep(seconds: Double) {
        stepSeconds += seconds
    }

    mutating func addReport(seconds: Double) {
        reports += 1
        reportSeconds += seconds
    }

    /// Mean seconds of one report path; 0 before the first report.
    package var meanReportSeconds: Double {
        reports > 0 ? reportSeconds / Double(reports) : 0
    }

    /// Reporting's time (reports and start-up) per second of step time; 0 before the first step.
    package var fractionOfStepTime: Double {
        stepSeconds > 0 ? (reportSeconds + startSeconds) / stepSeconds : 0
    }

    /// `progress reports: 12, mean 85.2 µs, 0.004133 % of step time (reports 1.022 ms + start 0.310 ms
    /// of 32.230 s in steps)`: the summary, then the measured times it comes from.
    package var line: String {
        "progress reports: \(reports), mean \(ProgressReport.fixed(meanReportSeconds * 1e6, 1)) µs, "
            + "\(ProgressReport.significant(fractionOfStepTime * 100)) % of step time "
            + "(reports \(ProgressReport.fixed(reportSeconds * 1e3, 3)) ms + start "
            + "\(ProgressReport.fixed(startSeconds * 1e3, 3)) ms of \(ProgressReport.fixed(stepSeconds, 3)) s in steps)"
    }
}
