// The coordinator's HTML dashboard: the job table with states, and per job its progress charts,
// best set and a server-rendered SVG chart of its records. Numbers come from validated reports and
// stored records, so every conversion here is exact or clamped and none can trap.

import Foundation
import PerformanceRecords

/// The HTML dashboard: the job table, then every job with its progress charts (see
/// `DashboardPage+Progress`), its best set and one server-rendered SVG chart of accuracy and loss
/// per epoch. No scripts and no external assets; the page reloads itself every `refreshSeconds`.
package enum DashboardPage {
    package static let refreshSeconds = 10

    /// The page for `state`; ages are measured to `now` (seconds since 1970).
    package static func render(_ state: CoordinatorState, now: Double = LogTimestamp.now()) -> String {
        assemble(state, now: now, jobSections: state.allJobNames.map { jobSection($0, in: state) })
    }

    /// The page from the job table of `state` (the only part that depends on `now`) and, per job in
    /// `state.allJobNames` order, its section as `jobSection` renders it.
    static func assemble(_ state: CoordinatorState, now: Double, jobSections: [String]) -> String {
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="refresh" content="\(refreshSeconds)">
            <title>ghostnet-d coordinator</title>
            <style>
            body{font-family:sans-serif;margin:1.5em;color:#222}
            section{margin-bottom:2em}
            table{border-collapse:collapse;font-size:0.9em}
            td,th{border:1px solid #ccc;padding:0.2em 0.5em;text-align:left}
            .badge{color:#fff;border-radius:0.6em;padding:0.1em 0.5em;font-size:0.85em}
            svg.chart{display:block;margin:0.5em 0}
            </style></head><body>
            <h1>ghostnet-d coordinator</h1>

            """
        if state.allJobNames.isEmpty { html += "<p>No records yet.</p>\n" } else { html += jobTable(state, now: now) }
        for section in jobSections { html += section }
        return html + "</body></html>\n"
    }

    /// One job's section: its progress line and charts, its best set and its chart of records.
    static func jobSection(_ name: String, in state: CoordinatorState) -> String {
        let progress = state.progress[name]
        var html =
            "<section id=\"job-\(escape(name))\"><h2>\(escape(name)) "
            + "\(progress.map { badge($0.state) } ?? "")</h2>\n"
        if let progress {
            let line = progress.latest.map { $0.report.line(job: name, state: progress.state) }
            if let line { html += "<p>\(escape(line))</p>\n" }
            // A state change after the latest report (a stall, the supervisor's restart) says why.
            if let stateLine = progress.stateLine, progress.stateSince > progress.latest?.receivedAt ?? -.infinity {
                html += "<p class=\"state-line\">\(escape(stateLine))</p>\n"
            }
            html += progressCharts(progress)
        }
        guard let job = state.jobs[name] else { return html + "</section>\n" }
        html +=
            "<p>\(job.records.count) records; objectives "
            + "\(escape(job.objectives.map(\.description).joined(separator: ", ")))</p>\n"
        html += chart(job)
        html += "<table><tr><th>worker</th><th>epoch</th><th>step</th><th>performance</th></tr>\n"
        for record in job.best {
            let metrics = record.performance.map { "\($0.key) \(PythonRepr.float($0.value))" }.joined(
                separator: ", ")
            html +=
                "<tr><td>\(escape(record.workerID))</td><td>\(record.epoch)</td><td>\(record.step)</td>"
                + "<td>\(escape(metrics))</td></tr>\n"
        }
        return html + "</table></section>\n"
    }

    /// One metric's value per epoch: the best (max for accuracy, min for loss) of that epoch's records.
    struct Series {
        var label: String
        var color: String
        var points: [(epoch: Int, value: Double)]
    }

    static func series(
        _ job: JobRecords, keyMatching: (String) -> Bool, label: String, color: String, better: (Double, Double) -> Bool
    ) -> Series? {
        guard
            let key = job.objectives.map(\.key).first(where: keyMatching)
                ?? job.records.lazy.flatMap(\.performance.keys).first(where: keyMatching)
        else { return nil }
        var perEpoch: [Int: Double] = [:]
        for record in job.records {
            guard let value = record.performance[key] else { continue }
            if let current = perEpoch[record.epoch], !better(value, current) { continue }
            perEpoch[record.epoch] = value
        }
        return Series(
            label: "\(label) (\(key))", color: color,
            points: perEpoch.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// An SVG of two stacked panels, accuracy above loss, x = epoch, each with its own y range.
    static func chart(_ job: JobRecords) -> String {
        let width = 640.0
        let panelHeight = 150.0
        let left = 60.0
        let right = 20.0
        let top = 20.0
        let gap = 40.0
        let panels = [
            series(job, keyMatching: { $0.hasPrefix("accuracy") }, label: "accuracy", color: "#1f77b4", better: >),
            series(job, keyMatching: { $0.contains("loss") }, label: "loss", color: "#d62728", better: <),
        ]
        // Epochs stay integers (a Double of a large Int does not convert back); the x scale uses
        // their difference as a Double, which is finite for any two Ints.
        let firstEpoch = job.records.lazy.map(\.epoch).min() ?? 0
        let lastEpoch = job.records.lazy.map(\.epoch).max() ?? 0
        let epochSpan = Double(lastEpoch) - Double(firstEpoch)
        let height = top + 2 * panelHeight + gap + 30
        var svg =
            "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" "
            + "height=\"\(Int(height))\" "
            + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"accuracy and loss per epoch of "
            + "\(escape(job.name))\">\n"
        for (slot, panel) in panels.enumerated() {
            let y0 = top + Double(slot) * (panelHeight + gap)
            svg +=
                "<rect x=\"\(left)\" y=\"\(y0)\" width=\"\(width - left - right)\" height=\"\(panelHeight)\" "
                + "fill=\"none\" stroke=\"#999\"/>\n"
            guard let panel, !panel.points.isEmpty else {
                let name = slot == 0 ? "accuracy" : "loss"
                svg +=
                    "<text x=\"\(left + 10)\" y=\"\(y0 + panelHeight / 2)\" font-size=\"12\" fill=\"#777\">no \(name) "
                    + "metric</text>\n"
                continue
            }
            let values = panel.points.map(\.value)
            var low = values.min()!
            var high = values.max()!
            if high / 2 - low / 2 < 1e-12 {
                low -= 0.5
                high += 0.5
            }
            func x(_ epoch: Int) -> Double {
                epochSpan > 0
                    ? left + (Double(epoch) - Double(firstEpoch)) / epochSpan * (width - left - right)
                    : left + (width - left - right) / 2
            }
            // Halved before subtracting, so two finite values near ±Double.greatestFiniteMagnitude cannot
            // overflow to inf; a span still 0 (one huge value, where ±0.5 is lost) draws at mid-height.
            let span = high / 2 - low / 2
            func y(_ value: Double) -> Double {
                span > 0 ? y0 + panelHeight - (value / 2 - low / 2) / span * panelHeight : y0 + panelHeight / 2
            }
            let points = panel.points.map { String(format: "%.1f,%.1f", x($0.epoch), y($0.value)) }.joined(
                separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(panel.color)\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            for point in panel.points {
                svg +=
                    "<circle cx=\"\(String(format: "%.1f", x(point.epoch)))\" "
                    + "cy=\"\(String(format: "%.1f", y(point.value)))\" "
                    + "r=\"3\" fill=\"\(panel.color)\"><title>epoch \(point.epoch): "
                    + "\(PythonRepr.float(point.value))</title></circle>\n"
            }
            svg += "<text x=\"\(left)\" y=\"\(y0 - 5)\" font-size=\"12\">\(escape(panel.label))</text>\n"
            svg +=
                "<text x=\"\(left - 5)\" y=\"\(y0 + 10)\" font-size=\"10\" "
                + "text-anchor=\"end\">\(String(format: "%.4g", high))</text>\n"
            svg +=
                "<text x=\"\(left - 5)\" y=\"\(y0 + panelHeight)\" font-size=\"10\" "
                + "text-anchor=\"end\">\(String(format: "%.4g", low))</text>\n"
        }
        svg += "<text x=\"\(left)\" y=\"\(height - 8)\" font-size=\"10\">epoch \(firstEpoch)</text>\n"
        svg +=
            "<text x=\"\(width - right)\" y=\"\(height - 8)\" font-size=\"10\" text-anchor=\"end\">epoch "
            + "\(lastEpoch)</text>\n"
        return svg + "</svg>\n"
    }

    /// Text escaped for HTML element content and attribute values.
    static func escape(_ text: String) -> String {
        var output = ""
        for character in text {
            switch character {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            case "'": output += "&#39;"
            default: output.append(character)
            }
        }
        return output
    }
}
