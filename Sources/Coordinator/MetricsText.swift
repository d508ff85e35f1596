//===----------------------------------------------------------------------===//
// ghostnet-d — Coordinator
//===----------------------------------------------------------------------===//

import Foundation
import PerformanceRecords

/// The `/metrics` page in the Prometheus text exposition format (version 0.0.4).
public enum MetricsText {
    /// Renders the counters and per-job gauges of `state`.
    public static func render(_ state: CoordinatorState) -> String {
        var lines: [String] = []
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
            for sample in samples { lines.append("\(name)\(sample.labels) \(sample.value)") }
        }
        metric("ghostnet_coordinator_records_received_total", "counter",
               "Records received over HTTP since start (stored, duplicate or conflicting).", [("", "\(state.receivedCount)")])
        metric("ghostnet_coordinator_records_duplicate_total", "counter",
               "Records received again with the same key and body (idempotent retries).", [("", "\(state.duplicateCount)")])
        metric("ghostnet_coordinator_requests_rejected_total", "counter",
               "Requests refused since start (bad input, conflicts, unauthorized).", [("", "\(state.rejectedCount)")])
        metric("ghostnet_coordinator_records_stored", "gauge", "Records stored per job.",
               state.jobNames.map { ("{job=\"\($0)\"}", "\(state.jobs[$0]!.records.count)") })
        metric("ghostnet_coordinator_best_accuracy", "gauge", "Best value of each accuracy metric per job.",
               state.jobNames.flatMap { name in
                   state.jobs[name]!.bestAccuracies.map { ("{job=\"\(name)\",key=\"\(labelValue($0.key))\"}", PythonRepr.float($0.value)) }
               })
        return lines.joined(separator: "\n") + "\n"
    }

    /// A label value escaped as the exposition format requires (backslash, quote, newline).
    static func labelValue(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
