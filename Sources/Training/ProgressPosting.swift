// What rank 0 needs to post progress to the coordinator: each rank's step time gathered by a sum
// (inside the per-step check, `StepCheck`, of each step that ends a report window), every rank's
// host name gathered once, and the coordinator's progress update built from the tracker's report
// with every number made finite and in bounds.

import Distributed
import Foundation
import PerformanceRecords

/// Each rank's mean step time over the report window, learned by every rank: one slot per rank,
/// this rank's holding its time and the others zero, so the sum is the list in rank order.
package struct StepTimeAgreement: Agreement {
    package var seconds: Double

    package init(seconds: Double) { self.seconds = seconds }

    package func encode(into encoder: inout AgreementEncoder) {
        for rank in 0..<encoder.worldSize { encoder.add(rank == encoder.rank ? seconds : 0) }
    }

    package static func decode(from decoder: inout AgreementDecoder) -> [Double] {
        (0..<decoder.worldSize).map { _ in decoder.real() }
    }
}

/// Every rank's host name, gathered once at the start of a run for the straggler reports.
package enum RankHosts {
    /// Gathers `name` from every rank (cut to `ProgressUpdate.maximumHostBytes` bytes of whole
    /// scalars, without control characters, padded with NULs to one width).
    package static func gather(_ name: String, communicator: any Communicator) throws(CommunicatorError) -> [String] {
        let width = ProgressUpdate.maximumHostBytes
        var bytes: [UInt8] = []
        for scalar in name.unicodeScalars where !LogText.needsEscape(scalar) && scalar != "\0" {
            let encoded = Array(String(scalar).utf8)
            guard bytes.count + encoded.count <= width else { break }
            bytes += encoded
        }
        let gathered = try communicator.allGather(bytes + Array(repeating: 0, count: width - bytes.count))
        return gathered.enumerated().map { rank, padded in
            let text = String(decoding: padded.prefix { $0 != 0 }, as: UTF8.self)
            return text.isEmpty ? "rank \(rank)" : text
        }
    }
}

extension ProgressUpdate {
    /// A report before the evaluation and checkpoint at the end of an epoch allows this many
    /// windows, and at least `minimumEpochEndSeconds`, before the coordinator calls the job stalled.
    static let epochEndWindows = 10.0
    static let minimumEpochEndSeconds = 600.0

    /// The coordinator's update from the tracker's `report`: means per step, the window's length as
    /// the expected interval (longer at the end of an epoch), every number finite and in bounds.
    package init(
        _ report: ProgressReport, state: JobState, rankStepSeconds: [Double], rankHosts: [String], timestamp: Double
    ) {
        func bounded(_ value: Double, _ maximum: Double = ProgressUpdate.maximumMeasurement) -> Double {
            value.isFinite ? min(max(value, 0), maximum) : 0
        }
        let steps = Double(max(report.windowSteps, 1))
        let window = report.dataWaitSeconds + report.computeSeconds + report.communicationSeconds
        let interval =
            report.stepInEpoch == report.stepsPerEpoch
            ? max(window * ProgressUpdate.epochEndWindows, ProgressUpdate.minimumEpochEndSeconds) : window
        self.init(
            state: state, epoch: min(report.epoch, report.epochs), epochs: max(report.epochs, 1),
            step: min(report.stepInEpoch, report.stepsPerEpoch), stepsPerEpoch: max(report.stepsPerEpoch, 1),
            trainLoss: bounded(report.meanLoss), learningRate: bounded(report.learningRate),
            imagesPerSecond: bounded(report.imagesPerSecond), dataSeconds: bounded(report.dataWaitSeconds / steps),
            computeSeconds: bounded(report.computeSeconds / steps),
            communicationSeconds: bounded(report.communicationSeconds / steps),
            etaSeconds: bounded(report.remainingSeconds, ProgressUpdate.maximumETASeconds),
            intervalSeconds: bounded(interval, ProgressUpdate.maximumIntervalSeconds),
            rankStepSeconds: rankStepSeconds.prefix(ProgressUpdate.maximumRanks).map { bounded($0) },
            rankHosts: Array(rankHosts.prefix(min(rankStepSeconds.count, ProgressUpdate.maximumRanks))),
            timestamp: bounded(timestamp, PerformanceRecord.maximumTimestamp))
    }
}
