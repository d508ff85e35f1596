// The report of `diagnose coordinator-load`: what the clients, the progress senders and the scraper
// saw, per phase, and the verdict.

import Foundation

extension CoordinatorLoadTest {
    /// What the load test saw.
    package struct Report: Sendable {
        package var validSent = 0
        package var validAnswered = 0
        package var malformedSent = 0
        /// Malformed requests refused as expected (their 4xx, or a close where allowed).
        package var malformedRefused = 0
        /// New records the coordinator acknowledged with 201.
        package var recordsStored = 0
        /// Re-posts the coordinator acknowledged as duplicates.
        package var duplicatesAcknowledged = 0
        /// Records read back per job after the load, compared with those acknowledged.
        package var recordsReadBack = 0
        package var elapsedSeconds = 0.0
        /// Latencies of valid requests, in seconds.
        package var latencyMedian = 0.0
        package var latencyP99 = 0.0
        package var latencyMaximum = 0.0
        /// Every unexpected answer or failed exchange, first ones first (at most 50 kept).
        package var failures: [String] = []
        /// Failures beyond those kept in `failures`.
        package var failuresNotKept = 0
        package var progress = ProgressTally()
        package var scrapes = ScrapeTally()
        /// The record clients' requests per phase: records only, then (with progress jobs) beside progress.
        package var phases: [Phase] = []

        /// One phase: its name and the record clients' requests in it.
        package struct Phase: Sendable {
            package var name: String
            package var requests = 0
            package var seconds = 0.0
            package var rate: Double { seconds > 0 ? Double(requests) / seconds : 0 }
        }

        /// The record clients' rate beside progress over their rate alone, when both phases ran.
        package var recordsRateRatio: Double? {
            guard phases.count == 2, phases[0].rate > 0 else { return nil }
            return phases[1].rate / phases[0].rate
        }

        package var failureCount: Int { failures.count + failuresNotKept }
        package var passed: Bool {
            failureCount == 0 && validAnswered == validSent && malformedRefused == malformedSent
                && progress.acknowledged == progress.sent && progress.readBack == progress.acknowledged
        }

        /// The report as `key: value` lines, the verdict last.
        package var lines: [String] {
            let rate = elapsedSeconds > 0 ? Double(validSent + malformedSent) / elapsedSeconds : 0
            return [
                "requests: \(validSent + malformedSent) in \(String(format: "%.1f", elapsedSeconds)) s (\(String(format: "%.0f", rate))/s)",
                "valid answered: \(validAnswered)/\(validSent)",
                "malformed refused: \(malformedRefused)/\(malformedSent)",
                "records stored: \(recordsStored), duplicates acknowledged: \(duplicatesAcknowledged), read back: \(recordsReadBack)",
                String(
                    format: "latency of valid requests: median %.1f ms, p99 %.1f ms, max %.1f ms",
                    latencyMedian * 1000, latencyP99 * 1000, latencyMaximum * 1000),
            ] + phaseLines + progressLines + scrapes.lines + failures.map { "failure: \($0)" }
                + (failuresNotKept > 0 ? ["failure: \(failuresNotKept) more not shown"] : [])
                + [passed ? "load test: ok" : "load test: FAILED (\(failureCount) failure(s))"]
        }

        private var phaseLines: [String] {
            let ratio = recordsRateRatio.map {
                String(format: "records rate beside progress: %.2f of records only", $0)
            }
            return phases.map {
                "phase \($0.name): \($0.requests) requests in \(String(format: "%.1f", $0.seconds)) s "
                    + "(\(String(format: "%.0f", $0.rate))/s)"
            } + (ratio.map { [$0] } ?? [])
        }

        private var progressLines: [String] {
            guard progress.sent > 0 else { return [] }
            let latencies = progress.latencies
            let p99 = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, latencies.count * 99 / 100)]
            return [
                "progress reports: \(progress.sent) sent (\(String(format: "%.0f", progress.rate))/s), "
                    + "\(progress.acknowledged) acknowledged, \(progress.readBack) read back, \(progress.lateTicks) late ticks",
                String(
                    format: "latency of progress reports: median %.1f ms, p99 %.1f ms",
                    (latencies.isEmpty ? 0 : latencies[latencies.count / 2]) * 1000, p99 * 1000),
            ]
        }

        mutating func fail(_ message: String) {
            if failures.count < 50 { failures.append(message) } else { failuresNotKept += 1 }
        }

        mutating func merge(_ other: Report) {
            validSent += other.validSent
            validAnswered += other.validAnswered
            malformedSent += other.malformedSent
            malformedRefused += other.malformedRefused
            recordsStored += other.recordsStored
            duplicatesAcknowledged += other.duplicatesAcknowledged
            for failure in other.failures { fail(failure) }
            failuresNotKept += other.failuresNotKept
        }
    }
}
