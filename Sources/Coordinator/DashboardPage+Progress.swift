// The dashboard's live view of running jobs: the job table with state badges and ages, and per
// job the train loss on a log scale, images/s over time and each rank's step time with the
// stragglers marked, drawn from the downsampled history as server-side SVG.

import Foundation
import PerformanceRecords

extension DashboardPage {
    static func badge(_ state: JobState) -> String {
        let color =
            switch state {
            case .starting: "#6c757d"
            case .running: "#2e7d32"
            case .stalled: "#ef6c00"
            case .finished: "#1565c0"
            case .failed: "#c62828"
            case .preempted: "#6a1b9a"
            case .restarting: "#00838f"
            }
        return "<span class=\"badge\" style=\"background:\(color)\">\(state.rawValue)</span>"
    }

    /// One row per job: name, state badge, how long it has been in that state, its progress line
    /// and its stragglers.
    static func jobTable(_ state: CoordinatorState, now: Double) -> String {
        var html = "<table><tr><th>job</th><th>state</th><th>for</th><th>progress</th><th>stragglers</th></tr>\n"
        for name in state.allJobNames {
            let link = "<a href=\"#job-\(escape(name))\">\(escape(name))</a>"
            guard let progress = state.progress[name] else {
                html += "<tr><td>\(link)</td><td>-</td><td></td><td>records only</td><td></td></tr>\n"
                continue
            }
            let line =
                progress.latest.map { $0.report.line(job: name, state: progress.state) } ?? progress.stateLine ?? ""
            let stragglers = progress.stragglers.map { "rank \($0.rank) (\($0.host))" }.joined(separator: ", ")
            html +=
                "<tr><td>\(link)</td><td>\(badge(progress.state))</td>"
                + "<td>\(ProgressUpdate.duration(now - progress.stateSince))</td><td>\(escape(line))</td>"
                + "<td>\(escape(stragglers))</td></tr>\n"
        }
        return html + "</table>\n"
    }

    /// The job's progress charts: train loss (log scale) and images/s over time, and the latest
    /// step time of every rank with the stragglers in red.
    static func progressCharts(_ job: JobProgress) -> String {
        let samples = JobProgress.downsampled(job.history)
        var html = lineChart(
            title: "train loss (log scale)", color: "#d62728", logScale: true,
            points: samples.map { ($0.receivedAt, $0.report.trainLoss) })
        html += lineChart(
            title: "images/s", color: "#2ca02c", logScale: false,
            points: samples.map { ($0.receivedAt, $0.report.imagesPerSecond) })
        if let latest = job.latest {
            html += rankChart(latest, stragglers: Set(job.stragglers.map(\.rank)))
        }
        return html
    }

    /// A 640×160 SVG line chart of `points` (x = seconds since 1970). On a log scale, points that
    /// are not positive are left out.
    static func lineChart(title: String, color: String, logScale: Bool, points: [(x: Double, y: Double)]) -> String {
        let (width, height, left, top, bottom) = (640.0, 160.0, 60.0, 20.0, 20.0)
        let shown = logScale ? points.filter { $0.y > 0 }.map { ($0.x, log10($0.y)) } : points
        var svg =
            "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"160\" role=\"img\" "
            + "aria-label=\"\(escape(title))\">\n"
            + "<text x=\"\(left)\" y=\"14\" font-size=\"12\">\(escape(title))</text>\n"
            + "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width - left - 10)\" height=\"\(height - top - bottom)\" "
            + "fill=\"none\" stroke=\"#999\"/>\n"
        guard let first = shown.first, let last = shown.last else { return svg + "</svg>\n" }
        var low = shown.map(\.1).min()!
        var high = shown.map(\.1).max()!
        if high - low < 1e-9 {
            low -= 0.5
            high += 0.5
        }
        let xSpan = last.0 - first.0
        func x(_ value: Double) -> Double {
            xSpan > 0 ? left + (value - first.0) / xSpan * (width - left - 10) : left + (width - left - 10) / 2
        }
        func y(_ value: Double) -> Double { height - bottom - (value - low) / (high - low) * (height - top - bottom) }
        let line = shown.map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }.joined(separator: " ")
        svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(line)\"/>\n"
        func label(_ value: Double) -> String { String(format: "%.4g", logScale ? pow(10, value) : value) }
        svg += "<text x=\"\(left - 5)\" y=\"\(top + 10)\" font-size=\"10\" text-anchor=\"end\">\(label(high))</text>\n"
        svg +=
            "<text x=\"\(left - 5)\" y=\"\(height - bottom)\" font-size=\"10\" text-anchor=\"end\">"
            + "\(label(low))</text>\n"
        return svg + "</svg>\n"
    }

    /// Bars of each rank's latest mean step time, the median as a line, stragglers in red.
    static func rankChart(_ latest: ProgressSample, stragglers: Set<Int>) -> String {
        let times = latest.report.rankStepSeconds
        let (width, height, left, top, bottom) = (640.0, 160.0, 60.0, 20.0, 20.0)
        let high = max(times.max() ?? 0, 1e-9)
        let barWidth = (width - left - 10) / Double(times.count)
        func y(_ value: Double) -> Double { height - bottom - value / high * (height - top - bottom) }
        var svg =
            "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"160\" role=\"img\" "
            + "aria-label=\"step time per rank\">\n<text x=\"\(left)\" y=\"14\" font-size=\"12\">step time per rank "
            + "(s; median \(PythonRepr.float(latest.medianStepSeconds)), stragglers in red)</text>\n"
        for (rank, seconds) in times.enumerated() {
            let color = stragglers.contains(rank) ? "#d62728" : "#1f77b4"
            svg +=
                String(
                    format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" ",
                    left + Double(rank) * barWidth, y(seconds), max(barWidth - 1, 0.5), height - bottom - y(seconds))
                + "fill=\"\(color)\"><title>rank \(rank) \(escape(latest.report.rankHosts[rank])): "
                + "\(PythonRepr.float(seconds)) s</title>"
                + "</rect>\n"
        }
        let median = String(format: "%.1f", y(latest.medianStepSeconds))
        svg +=
            "<line x1=\"\(left)\" x2=\"\(width - 10)\" y1=\"\(median)\" y2=\"\(median)\" stroke=\"#555\" "
            + "stroke-dasharray=\"4 3\"/>\n"
        svg +=
            "<text x=\"\(left - 5)\" y=\"\(top + 10)\" font-size=\"10\" text-anchor=\"end\">"
            + "\(String(format: "%.4g", high))</text>\n"
        return svg + "</svg>\n"
    }
}
