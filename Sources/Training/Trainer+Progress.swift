// The run's progress for the coordinator: every rank's host gathered once, every rank's step time
// gathered at each report (one small all-reduce per `report_interval` steps), and rank 0 posting
// the update; each rank times this report path (ProgressOverhead) and logs its cost every epoch.

import Checkpoints
import Distributed
import Foundation
import Logging
import PerformanceRecords

extension Trainer {
    /// Every rank's host name, for the coordinator's straggler reports (one all-gather); rank 0
    /// then posts `starting`.
    func announceStart() throws(TrainingError) -> [String] {
        let started = ContinuousClock.now
        defer { progressOverhead.startSeconds = started.duration(to: .now).inSeconds }
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
    /// `tracker`, shared and posted (``shareProgress(_:hosts:isFirst:)``), timed into ``progressOverhead``.
    func reportProgress(_ tracker: inout ProgressTracker, hosts: [String]) throws(TrainingError) {
        let started = ContinuousClock.now
        let report = tracker.report(
            epoch: state.epoch, stepInEpoch: state.stepInEpoch, learningRate: state.learningRate)
        try shareProgress(report, hosts: hosts, isFirst: progressOverhead.reports == 0)
        progressOverhead.addReport(seconds: started.duration(to: .now).inSeconds)
    }

    /// All ranks: what reporting has cost this rank's training threads so far in this process.
    func logProgressOverhead() {
        output.logger.info("\(progressOverhead.line)")
    }

    /// All ranks: learns every rank's mean step time of the window; rank 0 shows `report` and posts it.
    /// The run's first progress line also shows the memory plan, next to the throughput it gives.
    private func shareProgress(_ report: ProgressReport, hosts: [String], isFirst: Bool) throws(TrainingError) {
        let window = report.dataWaitSeconds + report.computeSeconds + report.communicationSeconds
        let seconds = window / Double(max(report.windowSteps, 1))
        let times = try collective("gathering step times") { () throws(CommunicatorError) in
            try communicator.agree(StepTimeAgreement(seconds: seconds))
        }
        guard rank == 0 else { return }
        showProgress(report, note: isFirst ? "memory plan: \(data.memoryPlan.description)" : nil)
        output.reporter?.report(
            progress: ProgressUpdate(
                report, state: .running, rankStepSeconds: times, rankHosts: hosts,
                timestamp: Date().timeIntervalSince1970))
    }
}
