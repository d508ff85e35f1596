// A job's records and progress history as CSV (RFC 4180), for spreadsheets and pandas: texts from
// workers are quoted when needed and cannot start a spreadsheet formula.

import Foundation
import PerformanceRecords

/// `records.csv` and `progress.csv`.
package enum JobCSV {
    /// One row per record in commit order: key fields, then one column per performance key in
    /// first-seen order (empty where a record lacks the key).
    package static func records(_ records: [PerformanceRecord]) -> String {
        var keys: [String] = []
        for record in records {
            for key in record.performance.keys where !keys.contains(key) { keys.append(key) }
        }
        var lines = [(["worker_id", "rank", "epoch", "step", "timestamp"] + keys).map(text).joined(separator: ",")]
        for record in records {
            let fixed = [text(record.workerID), "\(record.rank)", "\(record.epoch)", "\(record.step)"]
            let values = keys.map { record.performance[$0].map(PythonRepr.float) ?? "" }
            lines.append((fixed + [PythonRepr.float(record.timestamp)] + values).joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// One row per kept progress sample (see `JobProgress.downsampled`), oldest first.
    package static func progress(_ samples: [ProgressSample]) -> String {
        let header = [
            "received_at", "timestamp", "state", "epoch", "epochs", "step", "steps_per_epoch", "train_loss", "lr",
            "images_per_second", "data_seconds", "compute_seconds", "communication_seconds", "eta_seconds",
            "slowest_step_seconds", "median_step_seconds",
        ]
        var lines = [header.joined(separator: ",")]
        for sample in samples {
            let report = sample.report
            let integers = [report.epoch, report.epochs, report.step, report.stepsPerEpoch].map { "\($0)" }
            let numbers = [
                report.trainLoss, report.learningRate, report.imagesPerSecond, report.dataSeconds,
                report.computeSeconds, report.communicationSeconds, report.etaSeconds, sample.slowestStepSeconds,
                sample.medianStepSeconds,
            ].map(PythonRepr.float)
            let leading = [
                PythonRepr.float(sample.receivedAt), PythonRepr.float(report.timestamp), report.state.rawValue,
            ]
            lines.append((leading + integers + numbers).joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// A text field: quoted (quotes doubled) when it holds a comma, quote or line break, and
    /// prefixed with `'` when it starts like a formula (`=`, `+`, `-`, `@`), so opening the file
    /// cannot run one.
    package static func text(_ value: String) -> String {
        var value = value
        if let first = value.first, "=+-@".contains(first) { value = "'" + value }
        guard value.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else {
            return value
        }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
