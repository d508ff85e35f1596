// What progress reporting costs a rank, against the time its steps took: the CPU time of the report
// path on the training thread (the tracker's summary, rank 0's line and the hand-off to the coordinator
// client), of the start-up announcement, and of the client's sender thread, which does the JSON and HTTP.

/// Reporting's CPU time on one rank over the process's run, against the steps' wall time.
///
/// CPU time, not wall time: where the cores are busy, the sender thread runs in the training thread's
/// place, so a wall-clock path would count the sender's work twice (once inside the path, once as the
/// sender's own time). The step times travel in the per-step check that every step makes anyway (one
/// more value per rank on a step that ends a window), so no collective and no wait for a slower rank is
/// part of the path. Not counted: those extra values and the tracker's per-step sums (six additions,
/// cheaper than two clock readings).
package struct ProgressOverhead: Sendable {
    /// Progress reports made in this process.
    package private(set) var reports = 0
    /// CPU seconds on the report path, over all ``reports``.
    package private(set) var reportSeconds = 0.0
    /// CPU seconds of the start-up announcement: the host-name all-gather and the `starting` update.
    package var startSeconds = 0.0
    /// CPU seconds of the coordinator client's sender thread apart from record delivery (progress
    /// reports, state changes); 0 without a coordinator.
    package var senderCPUSeconds = 0.0
    /// CPU seconds the sender spent delivering the records (one per evaluation): shown beside the
    /// share, not in it, as records were delivered before progress reports existed.
    package var recordDeliveryCPUSeconds = 0.0
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

    /// Reporting's time (reports, start-up and sender) per second of step time; 0 before the first step.
    package var fractionOfStepTime: Double {
        stepSeconds > 0 ? (reportSeconds + startSeconds + senderCPUSeconds) / stepSeconds : 0
    }

    /// `progress reports: 12, mean 85.2 µs, 0.004133 % of step time (reports 1.022 ms + start 0.310 ms
    /// + sender 0.000 ms of 32.230 s in steps; record delivery 0.000 ms)`: the summary, then the
    /// measured times it comes from.
    package var line: String {
        "progress reports: \(reports), mean \(ProgressReport.fixed(meanReportSeconds * 1e6, 1)) µs, "
            + "\(ProgressReport.significant(fractionOfStepTime * 100)) % of step time "
            + "(reports \(ProgressReport.fixed(reportSeconds * 1e3, 3)) ms + start "
            + "\(ProgressReport.fixed(startSeconds * 1e3, 3)) ms + sender "
            + "\(ProgressReport.fixed(senderCPUSeconds * 1e3, 3)) ms of \(ProgressReport.fixed(stepSeconds, 3)) s in steps; "
            + "record delivery \(ProgressReport.fixed(recordDeliveryCPUSeconds * 1e3, 3)) ms)"
    }
}
