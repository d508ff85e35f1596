// Rank 0's progress reports: per-step losses and timings (data wait, compute, communication) turned into
// throughput, remaining time and the progress bar every `report_interval` steps.

/// What rank 0 reports every `report_interval` steps.
package struct ProgressReport: Sendable {
    /// 0-based epoch of the last step.
    package var epoch: Int
    package var epochs: Int
    /// Steps finished in the epoch (1-based count).
    package var stepInEpoch: Int
    package var stepsPerEpoch: Int
    /// Mean loss over the epoch's steps so far.
    package var meanLoss: Double
    package var learningRate: Double
    /// Global images per second (all ranks) over the reporting window.
    package var imagesPerSecond: Double
    /// Steps in the reporting window.
    package var windowSteps: Int
    /// Seconds in the window spent waiting for data, computing, and communicating.
    package var dataWaitSeconds: Double
    package var computeSeconds: Double
    package var communicationSeconds: Double
    /// Estimated seconds to the end of training, from the window's step time.
    package var remainingSeconds: Double

    /// The fraction of the whole run done, in [0, 1].
    package var fractionDone: Double {
        let total = Double(epochs * stepsPerEpoch)
        return total > 0 ? min(1, Double(epoch * stepsPerEpoch + stepInEpoch) / total) : 1
    }

    /// One plain line (epochs counted from 1 for people):
    /// `epoch 3/120 step 40/1251 loss 2.3456 lr 0.000998 1234.5 img/s data 5% compute 80% comm 15% ETA 1:02:03`.
    package var line: String {
        let total = dataWaitSeconds + computeSeconds + communicationSeconds
        func share(_ part: Double) -> String { total > 0 ? "\(Int((100 * part / total).rounded()))%" : "-" }
        return "epoch \(epoch + 1)/\(epochs) step \(stepInEpoch)/\(stepsPerEpoch)"
            + " loss \(Self.fixed(meanLoss, 4)) lr \(Self.significant(learningRate))"
            + " \(Self.fixed(imagesPerSecond, 1)) img/s"
            + " data \(share(dataWaitSeconds)) compute \(share(computeSeconds)) comm \(share(communicationSeconds))"
            + " ETA \(Self.duration(remainingSeconds))"
    }

    /// ``line`` behind a bar of `width` cells showing ``fractionDone``: `[#######.......]  50% epoch …`.
    package func bar(width: Int = 24) -> String {
        let filled = Int((fractionDone * Double(width)).rounded(.down))
        let percent = Int((fractionDone * 100).rounded(.down))
        let percentText = String(repeating: " ", count: max(0, 3 - String(percent).count)) + "\(percent)%"
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            + percentText + " " + line
    }

    /// `h:mm:ss`, with a day count past 24 hours (`2d 3:04:05`); `?` when unknown.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let whole = Int(seconds.rounded())
        let days = whole / 86_400
        let hours = whole / 3_600 % 24
        let minutes = whole / 60 % 60
        let rest = whole % 60
        let clock = "\(hours):\(minutes < 10 ? "0" : "")\(minutes):\(rest < 10 ? "0" : "")\(rest)"
        return days > 0 ? "\(days)d \(clock)" : clock
    }

    /// `value` with exactly `digits` decimals.
    package static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        // Beyond 2^52 a Double has no fraction left to print, and the integer below would overflow.
        guard value.isFinite, abs(value) * scale < 0x1p52 else { return "\(value)" }
        let scaled = Int((abs(value) * scale).rounded())
        let whole = scaled / Int(scale)
        let fraction = String(scaled % Int(scale))
        let sign = value < 0 && scaled != 0 ? "-" : ""
        guard digits > 0 else { return sign + "\(whole)" }
        return sign + "\(whole)." + String(repeating: "0", count: digits - fraction.count) + fraction
    }

    /// Four significant digits for a learning rate (`0.1`, `0.0009998`, `2.5e-06`).
    static func significant(_ value: Double) -> String {
        guard value != 0, value.isFinite else { return "\(value)" }
        var scale = 1.0
        while abs(value) * scale < 1000 { scale *= 10 }
        while abs(value) * scale >= 10000 { scale /= 10 }
        return "\((value * scale).rounded() / scale)"
    }
}

/// Accumulates per-step timings and losses on rank 0 and turns them into ``ProgressReport``s.
package struct ProgressTracker: Sendable {
    package let epochs: Int
    package let stepsPerEpoch: Int
    /// Images per step over all ranks (batch size × world size).
    package let globalBatchSize: Int

    private var epochLossSum = 0.0
    private var epochSteps = 0
    private var windowSteps = 0
    private var windowDataWait = 0.0
    private var windowCompute = 0.0
    private var windowCommunication = 0.0

    package init(epochs: Int, stepsPerEpoch: Int, globalBatchSize: Int) {
        self.epochs = epochs
        self.stepsPerEpoch = stepsPerEpoch
        self.globalBatchSize = globalBatchSize
    }

    /// Starts the running loss mean of a new epoch.
    package mutating func startEpoch() {
        epochLossSum = 0
        epochSteps = 0
    }

    /// Records one step: its loss and the seconds spent waiting for data, computing and communicating.
    package mutating func record(loss: Double, dataWait: Double, compute: Double, communication: Double) {
        epochLossSum += loss
        epochSteps += 1
        windowSteps += 1
        windowDataWait += dataWait
        windowCompute += compute
        windowCommunication += communication
    }

    /// The steps recorded since the last report and the seconds they took.
    package var window: (steps: Int, seconds: Double) {
        (windowSteps, windowDataWait + windowCompute + windowCommunication)
    }

    /// The report after step `stepInEpoch` (1-based count) of `epoch`, over the steps recorded since
    /// the last report; starts a new window.
    package mutating func report(epoch: Int, stepInEpoch: Int, learningRate: Double) -> ProgressReport {
        let elapsed = windowDataWait + windowCompute + windowCommunication
        let secondsPerStep = windowSteps > 0 ? elapsed / Double(windowSteps) : .nan
        let remainingSteps = max(0, epochs * stepsPerEpoch - (epoch * stepsPerEpoch + stepInEpoch))
        let report = ProgressReport(
            epoch: epoch, epochs: epochs, stepInEpoch: stepInEpoch, stepsPerEpoch: stepsPerEpoch,
            meanLoss: epochSteps > 0 ? epochLossSum / Double(epochSteps) : .nan,
            learningRate: learningRate,
            imagesPerSecond: elapsed > 0 ? Double(windowSteps * globalBatchSize) / elapsed : 0,
            windowSteps: windowSteps,
            dataWaitSeconds: windowDataWait, computeSeconds: windowCompute,
            communicationSeconds: windowCommunication,
            remainingSeconds: Double(remainingSteps) * secondsPerStep)
        windowSteps = 0
        windowDataWait = 0
        windowCompute = 0
        windowCommunication = 0
        return report
    }
}
