// The run's progress for the coordinator: every rank's host gathered once, every rank's step time
// gathered by the per-step check of each step that ends a report window (no collective of its own),
// and rank 0 posting the update; each rank counts the CPU time of this report path and of its sender
// thread (ProgressOverhead) and logs the cost every epoch.

import Checkpoints
import CoordinatorClient
import Distributed
import Foundation
import Logging
import PerformanceRecords

extension Trainer {
    /// Every rank's host name, for the coordinator's straggler reports (one all-gather); rank 0
    /// then posts `starting`.
    func announceStart() throws(TrainingError) -> [String] {
        let started = ThreadCPUTime.seconds()
        defer { progressOverhead.startSeconds = ThreadCPUTime.seconds() - started }
        let hosts = try collective("gathering host names") { () throws(CommunicatorError) in
            try RankHosts.gather(ProcessInfo.processInfo.hostName, communicator: communicator)
        }
        if let reporter = output.reporter {
            var tracker = ProgressTracker(epochs: epochs, stepsPerEpoch: stepsPerEpoch, globalBatchSize: 1)
            let empty = tracker.report(
                epoch: state.epoch, stepInEpoch: state.stepInEpoch, learningRate: state.learningRate)
            var update = ProgressUpdate(
                empty, state: .starting, rankStepSeconds: Array(repeating: 0, count: hosts.count), rankHosts: hosts,
                timestamp: Date().timeIntervalSince1970)
            // Until the first window is measured, allow as long as the end of an epoch does.
            update.intervalSeconds = ProgressUpdate.minimumEpochEndSeconds
            reporter.report(progress: update)
        }
        return hosts
    }

    /// All ranks, every `report_interval` steps and at the end of an epoch: the window's report from
    /// `tracker` with every rank's step time (gathered by that step's check), shown and posted by
    /// rank 0, its CPU time added to ``progressOverhead``.
    func reportProgress(_ tracker: inout ProgressTracker, hosts: [String], rankStepSeconds: [Double]) {
        let started = ThreadCPUTime.seconds()
        let report = tracker.report(
            epoch: state.epoch, stepInEpoch: state.stepInEpoch, learningRate: state.learningRate)
        if rank == 0 {
            // The run's first progress line also shows the memory plan, next to the throughput it gives.
            let isFirst = progressOverhead.reports == 0
            showProgress(report, note: isFirst ? "memory plan: \(data.memoryPlan.description)" : nil)
            output.reporter?.report(
                progress: ProgressUpdate(
                    report, state: .running, rankStepSeconds: rankStepSeconds, rankHosts: hosts,
                    timestamp: Date().timeIntervalSince1970))
        }
        progressOverhead.addReport(seconds: ThreadCPUTime.seconds() - started)
    }

    /// All ranks: what reporting has cost this rank so far in this process.
    func logProgressOverhead() {
        let sender = output.reporter?.client?.senderCPUSeconds ?? SenderCPUSeconds()
        progressOverhead.senderCPUSeconds = sender.other
        progressOverhead.recordDeliveryCPUSeconds = sender.records
        output.logger.info("\(progressOverhead.line)")
    }
}
