// A job's live progress as the coordinator sees it, as pure state driven by an injected clock:
// the lifecycle state (including `stalled` after 3 missed reports and back, and the supervisor's
// restarts and preemptions), the bounded, downsampled history, and straggler detection on each
// rank's step time.

import PerformanceRecords

/// One point of a job's progress history (without the per-rank lists, except in `latest`).
package struct ProgressSample: Sendable, Equatable {
    /// Coordinator time (seconds since 1970) when the report arrived.
    package var receivedAt: Double
    package var report: ProgressUpdate
    package var slowestStepSeconds: Double
    package var medianStepSeconds: Double
}

/// A rank flagged as a straggler: its step time stayed more than 20 % over the median.
package struct Straggler: Sendable, Equatable {
    package var rank: Int
    package var host: String
    package var stepSeconds: Double
    package var medianSeconds: Double
}

/// What one report or clock tick changed, for the service to store and log.
package struct ProgressEvents: Sendable, Equatable {
    /// The new state when it changed.
    package var stateChange: JobState?
    /// Log lines (unescaped; the log handler escapes them): state changes, throttled progress
    /// lines, newly flagged stragglers.
    package var lines: [String] = []
}

/// A job's lifecycle state, latest report, history and stragglers.
package struct JobProgress: Sendable {
    /// Points kept per series; longer histories are downsampled keeping each bucket's extremes.
    package static let maximumHistory = 2000
    /// Points a running job's history may reach before it is downsampled back to `maximumHistory`:
    /// a quarter more amortises the downsampling over 500 reports while 1,000 running jobs hold
    /// about 0.4 GB of history (a sample is about 150 bytes). An ended job keeps `maximumHistory`.
    package static let maximumRunningHistory = maximumHistory + maximumHistory / 4
    /// A job is stalled after this many expected report intervals without a report.
    package static let stallIntervals = 3.0
    /// Intervals below this count as this, so a zero interval does not stall a job at once.
    package static let minimumIntervalSeconds = 1.0
    /// A rank is slow when its step time exceeds the median by this factor...
    package static let stragglerFactor = 1.2
    /// ...and a straggler after this many consecutive slow reports.
    package static let stragglerReports = 5
    /// Progress lines in the log at most this often per job (state changes are always logged).
    package static let progressLineSeconds = 60.0

    package let name: String
    package private(set) var state: JobState = .starting
    package private(set) var stateSince: Double
    /// The log line of the latest state change (nil before the first).
    package private(set) var stateLine: String?
    package private(set) var latest: ProgressSample?
    package private(set) var history: [ProgressSample] = []
    /// Currently flagged stragglers, by rank.
    package private(set) var stragglers: [Straggler] = []
    private var slowReports: [Int] = []
    private var lastProgressLineAt = -Double.infinity

    package init(name: String, now: Double) {
        self.name = name
        self.stateSince = now
    }

    /// Applies a report that arrived at `now`: records it, takes the trainer's state (a stalled job
    /// resumes), updates the straggler counts.
    package mutating func apply(_ report: ProgressUpdate, now: Double) -> ProgressEvents {
        let median = JobProgress.median(report.rankStepSeconds)
        let sample = ProgressSample(
            receivedAt: now, report: report, slowestStepSeconds: report.rankStepSeconds.max()!,
            medianStepSeconds: median)
        latest = sample
        // The history keeps the job's figures, not every rank's (up to 1,024 per report): only the
        // latest report's ranks are shown, and the history's size stays independent of the world size.
        var kept = sample
        kept.report.rankStepSeconds = []
        kept.report.rankHosts = []
        history.append(kept)
        if history.count > JobProgress.maximumRunningHistory {
            history = JobProgress.downsampled(history)
        }
        var events = ProgressEvents()
        if report.state != state {
            events = changeState(to: report.state, now: now, line: report.line(job: name, state: report.state))
        } else if now - lastProgressLineAt >= JobProgress.progressLineSeconds {
            events.lines.append(report.line(job: name, state: state))
            lastProgressLineAt = now
        }
        events.lines += updateStragglers(report, median: median)
        return events
    }

    /// Applies a state change the supervisor reported at `now`. Every report is a change worth a
    /// line, also a repeated state (the second restart of a job says `restart 2/5`).
    package mutating func apply(_ change: JobStateReport, now: Double) -> ProgressEvents {
        changeState(to: change.state, now: now, line: change.line(job: name))
    }

    /// Marks the job stalled when neither a report nor a state change arrived for `stallIntervals`
    /// expected intervals (a supervisor's `restarting` restarts the count).
    package mutating func checkStall(now: Double) -> ProgressEvents {
        guard let latest, !state.isTerminal, state != .stalled else { return ProgressEvents() }
        let interval = max(latest.report.intervalSeconds, JobProgress.minimumIntervalSeconds)
        let silent = now - max(latest.receivedAt, stateSince)
        guard silent > JobProgress.stallIntervals * interval else { return ProgressEvents() }
        return changeState(
            to: .stalled, now: now,
            line: "job \(name) stalled: no progress for \(ProgressUpdate.duration(silent)) "
                + "(a report was expected every \(ProgressUpdate.duration(interval)))")
    }

    /// Restores a state read back from the store, with its line, without events.
    package mutating func restore(state: JobState, since: Double, line: String) {
        self.state = state
        stateSince = since
        stateLine = line
        keepOnlyShownHistoryIfEnded()
    }

    /// The history downsampled to at most `maximumHistory` points, keeping each bucket's extremes
    /// of train loss, images/s and slowest step time.
    package static func downsampled(_ samples: [ProgressSample]) -> [ProgressSample] {
        Downsampling.keptIndices(
            count: samples.count, maximum: maximumHistory,
            values: [
                { samples[$0].report.trainLoss }, { samples[$0].report.imagesPerSecond },
                { samples[$0].slowestStepSeconds },
            ]
        ).map { samples[$0] }
    }

    /// The median of a non-empty list (the mean of the middle two for an even count).
    package static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    private mutating func changeState(to new: JobState, now: Double, line: String) -> ProgressEvents {
        state = new
        stateSince = now
        stateLine = line
        lastProgressLineAt = now
        keepOnlyShownHistoryIfEnded()
        return ProgressEvents(stateChange: new, lines: [line])
    }

    /// An ended job's history no longer grows, so it keeps only the points that are shown.
    private mutating func keepOnlyShownHistoryIfEnded() {
        if state.isTerminal { history = JobProgress.downsampled(history) }
    }

    /// Counts consecutive slow reports per rank; returns a line for each rank newly flagged. A rank
    /// that comes back within the factor is unflagged (and logged again if it falls behind again).
    private mutating func updateStragglers(_ report: ProgressUpdate, median: Double) -> [String] {
        if slowReports.count != report.rankStepSeconds.count {
            slowReports = Array(repeating: 0, count: report.rankStepSeconds.count)
            stragglers = []
        }
        var lines: [String] = []
        var flagged: [Straggler] = []
        for (rank, seconds) in report.rankStepSeconds.enumerated() {
            // A zero median (a clock too coarse to see the step) flags nobody.
            let slow = median > 0 && seconds > JobProgress.stragglerFactor * median
            slowReports[rank] = slow ? slowReports[rank] + 1 : 0
            guard slowReports[rank] >= JobProgress.stragglerReports else { continue }
            let straggler = Straggler(
                rank: rank, host: report.rankHosts[rank], stepSeconds: seconds, medianSeconds: median)
            if slowReports[rank] == JobProgress.stragglerReports {
                let percent = Int(((seconds / median - 1) * 100).rounded())
                lines.append(
                    "job \(name) straggler: rank \(rank) on \(straggler.host) steps in \(seconds) s, \(percent) % over "
                        + "the median \(median) s for \(JobProgress.stragglerReports) reports")
            }
            flagged.append(straggler)
        }
        stragglers = flagged
        return lines
    }
}
