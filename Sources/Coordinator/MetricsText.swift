// The coordinator's `/metrics` page: its counters and per-job gauges rendered in Prometheus's text format.

import Foundation
import PerformanceRecords

/// The `/metrics` page in the Prometheus text exposition format (version 0.0.4).
package enum MetricsText {
    /// Renders the counters and per-job gauges of `state`.
    package static func render(_ state: CoordinatorState) -> String {
        var lines: [String] = []
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
            for sample in samples { lines.append("\(name)\(sample.labels) \(sample.value)") }
        }
        metric(
            "ghostnet_coordinator_records_received_total", "counter",
            "Records received over HTTP since start (stored, duplicate or conflicting).",
            [("", "\(state.receivedCount)")])
        metric(
            "ghostnet_coordinator_records_duplicate_total", "counter",
            "Records received again with the same key and body (idempotent retries).", [("", "\(state.duplicateCount)")]
        )
        metric(
            "ghostnet_coordinator_requests_rejected_total", "counter",
            "Requests refused since start (bad input, conflicts, unauthorized).", [("", "\(state.rejectedCount)")])
        metric(
            "ghostnet_coordinator_records_stored", "gauge", "Records stored per job.",
            state.jobNames.map { ("{job=\"\($0)\"}", "\(state.jobs[$0]!.records.count)") })
        metric(
            "ghostnet_coordinator_best_accuracy", "gauge", "Best value of each accuracy metric per job.",
            state.jobNames.flatMap { name in
                state.jobs[name]!.bestAccuracies.map {
                    ("{job=\"\(name)\",key=\"\(labelValue($0.key))\"}", PythonRepr.float($0.value))
                }
            })
        let progress = state.progress.keys.sorted().map { ($0, state.progress[$0]!) }
        metric(
            "ghostnet_job_state", "gauge", "1 for the job's current lifecycle state, 0 for the others.",
            progress.flatMap { name, job in
                JobState.allCases.map { ("{job=\"\(name)\",state=\"\($0.rawValue)\"}", job.state == $0 ? "1" : "0") }
            })
        func latest(_ value: (ProgressSample) -> Double) -> [(labels: String, value: String)] {
            progress.compactMap { name, job in job.latest.map { ("{job=\"\(name)\"}", PythonRepr.float(value($0))) } }
        }
        metric(
            "ghostnet_images_per_second", "gauge", "Images per second over all ranks, latest report.",
            latest { $0.report.imagesPerSecond })
        metric(
            "ghostnet_eta_seconds", "gauge", "Estimated seconds until the run ends.", latest { $0.report.etaSeconds })
        metric(
            "ghostnet_slowest_rank_step_seconds", "gauge", "The slowest rank's mean step time, latest report.",
            latest(\.slowestStepSeconds))
        metric(
            "ghostnet_median_rank_step_seconds", "gauge", "The median of the ranks' mean step times, latest report.",
            latest(\.medianStepSeconds))
        metric(
            "ghostnet_straggler", "gauge", "1 for each rank flagged as a straggler (over 20 % above the median).",
            progress.flatMap { name, job in
                job.stragglers.map {
                    ("{job=\"\(name)\",rank=\"\($0.rank)\",host=\"\(labelValue($0.host))\"}", "1")
                }
            })
        return lines.joined(separator: "\n") + "\n"
    }

    /// A label value escaped as the exposition format requires (backslash, quote, newline).
    static func labelValue(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
