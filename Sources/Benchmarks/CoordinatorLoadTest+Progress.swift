// The progress traffic of `diagnose coordinator-load`: many jobs each posting a progress report per
// interval, as rank 0 of every running job does, and the check that none was lost.

import CoordinatorClient
import Foundation
import PerformanceRecords
import StrictJSON
import Synchronization

extension CoordinatorLoadTest {
    /// What the progress traffic saw.
    package struct ProgressTally: Sendable {
        package var sent = 0
        /// Reports answered 200 with the job's state.
        package var acknowledged = 0
        /// Rows of the jobs' `progress.csv` after the load, compared per job with the acknowledged reports.
        package var readBack = 0
        /// Ticks a sender started more than one interval late: the coordinator (or the sender) fell behind.
        package var lateTicks = 0
        package var latencies: [Double] = []
        /// Seconds of the phase the reports were sent in.
        package var seconds = 0.0
        /// Reports acknowledged per progress job, for `verifyProgress`.
        var acknowledgedPerJob: [Int] = []

        /// Reports per second over the phase.
        package var rate: Double { seconds > 0 ? Double(sent) / seconds : 0 }
    }

    /// The job that progress job `index` reports under.
    func progressJob(_ index: Int) -> String { "\(jobPrefix)-progress-\(index)" }

    /// One sender thread's result: its tally, the reports each of its jobs had acknowledged, its failures.
    private struct SenderResult: Sendable {
        var tally = ProgressTally()
        var acknowledged: [(job: Int, count: Int)] = []
        var failures: [String] = []
    }

    /// Runs `progressSenders` threads from `start` until `deadline`; sender `s` posts one report of
    /// every job `j ≡ s (mod progressSenders)` per `progressInterval`, the report's step counting ticks.
    ///
    /// - Returns: the tally with the reports acknowledged per job (for `verifyProgress`); failures
    ///   go into `report`.
    func runProgress(from start: Double, until deadline: Double, into report: inout Report) -> ProgressTally {
        let results = Mutex<[SenderResult]>([])
        let group = DispatchGroup()
        for sender in 0..<min(progressSenders, progressJobs) {
            group.enter()
            Thread {
                let result = self.sendProgress(
                    jobs: Array(stride(from: sender, to: self.progressJobs, by: self.progressSenders)), from: start,
                    until: deadline)
                results.withLock { $0.append(result) }
                group.leave()
            }.start()
        }
        group.wait()
        var tally = ProgressTally()
        var perJob = [Int](repeating: 0, count: progressJobs)
        for result in results.withLock({ $0 }) {
            tally.sent += result.tally.sent
            tally.acknowledged += result.tally.acknowledged
            tally.lateTicks += result.tally.lateTicks
            tally.latencies += result.tally.latencies
            for (job, count) in result.acknowledged { perJob[job] = count }
            for failure in result.failures { report.fail(failure) }
        }
        tally.latencies.sort()
        tally.acknowledgedPerJob = perJob
        return tally
    }

    /// One sender's loop over its `jobs`, one report each per tick.
    private func sendProgress(jobs: [Int], from start: Double, until deadline: Double) -> SenderResult {
        var result = SenderResult()
        var counts = [Int](repeating: 0, count: jobs.count)
        var tick = 0
        while start + Double(tick) * progressInterval < deadline {
            let due = start + Double(tick) * progressInterval
            let now = LogTimestamp.now()
            if now < due { Thread.sleep(forTimeInterval: due - now) }
            if now > due + progressInterval { result.tally.lateTicks += 1 }
            let body = Array(progressReport(tick: tick).json.serialized.utf8)
            for (slot, job) in jobs.enumerated() {
                result.tally.sent += 1
                let started = LogTimestamp.now()
                do {
                    let response = try HTTPExchange.send(
                        "POST", "/v1/jobs/\(progressJob(job))/progress", to: endpoint,
                        headers: [("Content-Type", "application/json")] + authorization, body: body,
                        timeout: requestTimeout)
                    result.tally.latencies.append(LogTimestamp.now() - started)
                    if response.status == 200 {
                        result.tally.acknowledged += 1
                        counts[slot] += 1
                    } else if result.failures.count < 50 {
                        result.failures.append(
                            "progress \(progressJob(job)) tick \(tick): \(response.status) \(response.bodyText.prefix(200))"
                        )
                    }
                } catch {
                    if result.failures.count < 50 {
                        result.failures.append("progress \(progressJob(job)) tick \(tick): \(error)")
                    }
                }
            }
            tick += 1
        }
        result.acknowledged = zip(jobs, counts).map { ($0, $1) }
        return result
    }

    /// Reads every progress job's `progress.csv` back: one row per acknowledged report, none lost.
    func verifyProgress(into tally: inout ProgressTally, report: inout Report) {
        for (job, expected) in tally.acknowledgedPerJob.enumerated() where expected > 0 {
            do {
                let response = try HTTPExchange.send(
                    "GET", "/v1/jobs/\(progressJob(job))/progress.csv", to: endpoint, headers: authorization,
                    timeout: requestTimeout)
                // The header row, then one row per report (CRLF-terminated).
                let rows = response.bodyText.split(separator: "\r\n").count - 1
                tally.readBack += max(rows, 0)
                if response.status != 200 || rows != expected {
                    report.fail("\(progressJob(job)): \(rows) progress rows stored, \(expected) reports acknowledged")
                }
            } catch {
                report.fail("reading back \(progressJob(job)): \(error)")
            }
        }
    }

    /// A report of 8 ranks at `tick`.
    func progressReport(tick: Int) -> ProgressUpdate {
        ProgressUpdate(
            state: .running, epoch: 0, epochs: 1, step: min(tick, 1_000_000), stepsPerEpoch: 1_000_000,
            trainLoss: 2.5, learningRate: 0.1, imagesPerSecond: 400, dataSeconds: 0.05, computeSeconds: 0.4,
            communicationSeconds: 0.05, etaSeconds: 3600, intervalSeconds: progressInterval,
            rankStepSeconds: Array(repeating: 0.5, count: 8), rankHosts: (0..<8).map { "node\($0 / 4)" },
            timestamp: LogTimestamp.now())
    }
}
