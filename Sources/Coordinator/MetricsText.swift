// The coordinator's `/metrics` page in Prometheus's text format: its counters, then per-job gauges
// rendered one job at a time, so `JobFragmentCache` can keep each job's sample lines until it changes.

import Foundation
import PerformanceRecords

/// The `/metrics` page in the Prometheus text exposition format (version 0.0.4): each family's
/// `# HELP` and `# TYPE` once, then its samples together, jobs in name order.
package enum MetricsText {
    /// The families with one or more samples per job.
    enum JobFamily: Int, CaseIterable {
        case recordsStored, bestAccuracy, jobState, imagesPerSecond, etaSeconds, slowestStep, medianStep, straggler

        var name: String {
            switch self {
            case .recordsStored: "ghostnet_coordinator_records_stored"
            case .bestAccuracy: "ghostnet_coordinator_best_accuracy"
            case .jobState: "ghostnet_job_state"
            case .imagesPerSecond: "ghostnet_images_per_second"
            case .etaSeconds: "ghostnet_eta_seconds"
            case .slowestStep: "ghostnet_slowest_rank_step_seconds"
            case .medianStep: "ghostnet_median_rank_step_seconds"
            case .straggler: "ghostnet_straggler"
            }
        }

        var help: String {
            switch self {
            case .recordsStored: "Records stored per job."
            case .bestAccuracy: "Best value of each accuracy metric per job."
            case .jobState: "1 for the job's current lifecycle state, 0 for the others."
            case .imagesPerSecond: "Images per second over all ranks, latest report."
            case .etaSeconds: "Estimated seconds until the run ends."
            case .slowestStep: "The slowest rank's mean step time, latest report."
            case .medianStep: "The median of the ranks' mean step times, latest report."
            case .straggler: "1 for each rank flagged as a straggler (over 20 % above the median)."
            }
        }
    }

    /// Renders the counters and per-job gauges of `state` from scratch.
    package static func render(_ state: CoordinatorState) -> String {
        assemble(state, jobSamples: state.allJobNames.map { jobSamples($0, in: state) })
    }

    /// The page from the counters of `state` and, per job in `state.allJobNames` order, its sample
    /// lines per `JobFamily` (as `jobSamples` renders them).
    static func assemble(_ state: CoordinatorState, jobSamples: [[String]]) -> String {
        var page = ""
        func header(_ name: String, _ type: String, _ help: String) {
            page += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        let counters: [(name: String, help: String, value: Int)] = [
            (
                "ghostnet_coordinator_records_received_total",
                "Records received over HTTP since start (stored, duplicate or conflicting).", state.receivedCount
            ),
            (
                "ghostnet_coordinator_records_duplicate_total",
                "Records received again with the same key and body (idempotent retries).", state.duplicateCount
            ),
            (
                "ghostnet_coordinator_requests_rejected_total",
                "Requests refused since start (bad input, conflicts, unauthorized).", state.rejectedCount
            ),
        ]
        for counter in counters {
            header(counter.name, "counter", counter.help)
            page += "\(counter.name) \(counter.value)\n"
        }
        for family in JobFamily.allCases {
            header(family.name, "gauge", family.help)
            for samples in jobSamples { page += samples[family.rawValue] }
        }
        return page
    }

    /// The sample lines of job `name` in `state`, one string per `JobFamily` (each line ending in a
    /// newline; empty when the job has no sample of that family). Depends only on the job.
    static func jobSamples(_ name: String, in state: CoordinatorState) -> [String] {
        var samples = [String](repeating: "", count: JobFamily.allCases.count)
        func add(_ family: JobFamily, _ labels: String, _ value: String) {
            samples[family.rawValue] += "\(family.name){job=\"\(name)\"\(labels)} \(value)\n"
        }
        if let job = state.jobs[name] {
            add(.recordsStored, "", "\(job.records.count)")
            for accuracy in job.bestAccuracies {
                add(.bestAccuracy, ",key=\"\(labelValue(accuracy.key))\"", PythonRepr.float(accuracy.value))
            }
        }
        guard let progress = state.progress[name] else { return samples }
        for jobState in JobState.allCases {
            add(.jobState, ",state=\"\(jobState.rawValue)\"", progress.state == jobState ? "1" : "0")
        }
        if let latest = progress.latest {
            add(.imagesPerSecond, "", PythonRepr.float(latest.report.imagesPerSecond))
            add(.etaSeconds, "", PythonRepr.float(latest.report.etaSeconds))
            add(.slowestStep, "", PythonRepr.float(latest.slowestStepSeconds))
            add(.medianStep, "", PythonRepr.float(latest.medianStepSeconds))
        }
        for straggler in progress.stragglers {
            add(.straggler, ",rank=\"\(straggler.rank)\",host=\"\(labelValue(straggler.host))\"", "1")
        }
        return samples
    }

    /// A label value escaped as the exposition format requires (backslash, quote, newline).
    static func labelValue(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
