// `coordinator --tensorboard-dir DIR`: one run folder per job (DIR/JOB) with an event file per
// coordinator start, so `tensorboard --logdir DIR` shows each job's train loss, lr and images/s
// from its progress reports and its validation figures from its records while the job runs.

import Foundation
import Glibc
import PerformanceRecords
import Synchronization

/// Appends TensorBoard scalar events for each job; every event is one `write(2)` on a file opened
/// with `O_APPEND`, so a reader sees it at once.
package final class TensorBoardWriter: Sendable {
    package let directory: String
    /// Event files are named `events.out.tfevents.<start seconds>.<host>.<pid>`; the start time makes a
    /// later coordinator's file sort after an earlier one's, as readers expect.
    private let fileName: String
    /// The jobs whose file this process opened (and wrote the file-version event to), and the jobs
    /// whose latest write failed (a failure is reported once, not at every report).
    private let opened = Mutex<(files: Set<String>, failing: Set<String>)>(([], []))

    /// Creates `directory` when missing.
    ///
    /// - Throws: `CoordinatorError` naming `--tensorboard-dir` when it cannot be created.
    package init(directory: String, startedAt: Double) throws(CoordinatorError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CoordinatorError("--tensorboard-dir \(directory): cannot create the directory: \(error)")
        }
        self.directory = directory
        fileName = "events.out.tfevents.\(Int(startedAt)).\(ProcessInfo.processInfo.hostName).\(getpid())"
    }

    /// The event file of `job` this process writes.
    package func eventFile(job: String) -> String {
        "\(directory)/\(job)/\(fileName)"
    }

    /// The global step of a report: its epoch's steps before it plus its step in the epoch.
    package static func globalStep(_ report: ProgressUpdate) -> Int {
        let (before, overflow) = report.epoch.multipliedReportingOverflow(by: report.stepsPerEpoch)
        return overflow ? Int.max : before &+ min(report.step, Int.max - before)
    }

    /// Writes `train/loss`, `train/lr` and `train/images_per_second` of `report` at its global step.
    ///
    /// - Throws: `CoordinatorError` naming the file, the first time writing `job`'s file fails.
    package func write(_ report: ProgressUpdate, job: String, wallTime: Double) throws(CoordinatorError) {
        try append(
            TensorBoardEvent.scalarsEvent(
                [
                    ("train/loss", report.trainLoss), ("train/lr", report.learningRate),
                    ("train/images_per_second", report.imagesPerSecond),
                ], step: TensorBoardWriter.globalStep(report), wallTime: wallTime),
            job: job, wallTime: wallTime)
    }

    /// Writes every performance value of `record` as `val/<key>` at the record's step.
    ///
    /// - Throws: `CoordinatorError` naming the file, the first time writing `job`'s file fails.
    package func write(_ record: PerformanceRecord, job: String, wallTime: Double) throws(CoordinatorError) {
        try append(
            TensorBoardEvent.scalarsEvent(
                record.performance.map { ("val/\($0.key)", $0.value) }, step: record.step, wallTime: wallTime),
            job: job, wallTime: wallTime)
    }

    private func append(_ event: [UInt8], job: String, wallTime: Double) throws(CoordinatorError) {
        let path = eventFile(job: job)
        let failure: String? = opened.withLock { opened in
            var bytes: [UInt8] = []
            if !opened.files.contains(job) {
                try? FileManager.default.createDirectory(
                    atPath: "\(directory)/\(job)", withIntermediateDirectories: true)
                bytes = TFRecord.framed(TensorBoardEvent.fileVersionEvent(wallTime: wallTime))
            }
            bytes += TFRecord.framed(event)
            let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            var reason: String?
            if descriptor < 0 {
                reason = String(cString: strerror(errno))
            } else {
                if !LogSink.writeAll(bytes, to: descriptor) { reason = String(cString: strerror(errno)) }
                close(descriptor)
            }
            guard let reason else {
                opened.files.insert(job)
                opened.failing.remove(job)
                return nil
            }
            return opened.failing.insert(job).inserted ? reason : nil
        }
        if let failure {
            throw CoordinatorError("--tensorboard-dir: cannot append an event to \(path): \(failure)")
        }
    }
}
