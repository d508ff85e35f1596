// The progress report rank 0 posts every `report_interval` steps: where training is, how fast it
// goes, how each rank's step time compares, and the job's lifecycle state as the trainer sees it.
// Its strict wire format and bounds are checked where a report enters, like a record's.

import StrictJSON

/// A job's lifecycle state. `stalled` is the coordinator's own verdict (no report for 3 expected
/// intervals) and is never sent by a trainer.
package enum JobState: String, Sendable, CaseIterable {
    case starting, running, stalled, finished, failed, preempted, restarting

    /// Whether the job has ended: no further report is expected, so it cannot stall.
    package var isTerminal: Bool { self == .finished || self == .failed || self == .preempted }
}

/// One progress report of a job.
package struct ProgressUpdate: Sendable, Equatable {
    package var state: JobState
    /// The current epoch (0-based) and the number of epochs of the run.
    package var epoch: Int
    package var epochs: Int
    /// Optimizer steps done in the current epoch, and steps per epoch.
    package var step: Int
    package var stepsPerEpoch: Int
    /// The running mean of the training loss since the previous report, and the learning rate.
    package var trainLoss: Double
    package var learningRate: Double
    /// Images per second over all ranks.
    package var imagesPerSecond: Double
    /// Mean seconds per step spent waiting for data, computing, and communicating.
    package var dataSeconds: Double
    package var computeSeconds: Double
    package var communicationSeconds: Double
    /// Estimated seconds until the run ends.
    package var etaSeconds: Double
    /// Seconds until the next report is expected; 3 of them without one make the job stalled.
    package var intervalSeconds: Double
    /// Each rank's mean step time since the previous report, indexed by rank, and its host.
    package var rankStepSeconds: [Double]
    package var rankHosts: [String]
    /// Seconds since 1970 when rank 0 made the report.
    package var timestamp: Double

    package init(
        state: JobState, epoch: Int, epochs: Int, step: Int, stepsPerEpoch: Int, trainLoss: Double,
        learningRate: Double, imagesPerSecond: Double, dataSeconds: Double, computeSeconds: Double,
        communicationSeconds: Double, etaSeconds: Double, intervalSeconds: Double, rankStepSeconds: [Double],
        rankHosts: [String], timestamp: Double
    ) {
        self.state = state
        self.epoch = epoch
        self.epochs = epochs
        self.step = step
        self.stepsPerEpoch = stepsPerEpoch
        self.trainLoss = trainLoss
        self.learningRate = learningRate
        self.imagesPerSecond = imagesPerSecond
        self.dataSeconds = dataSeconds
        self.computeSeconds = computeSeconds
        self.communicationSeconds = communicationSeconds
        self.etaSeconds = etaSeconds
        self.intervalSeconds = intervalSeconds
        self.rankStepSeconds = rankStepSeconds
        self.rankHosts = rankHosts
        self.timestamp = timestamp
    }

    /// At most this many ranks per report: 1,024 ranks with their host names fit the 64 KiB body limit.
    package static let maximumRanks = 1024
    package static let maximumHostBytes = 128
    /// A week: a longer interval between reports would hide a hung job for a month.
    package static let maximumIntervalSeconds = 7 * 86_400.0
    /// Ten years, above any ETA worth showing; larger values are refused rather than clipped.
    package static let maximumETASeconds = 10 * 365 * 86_400.0
    /// Non-negative measurements (loss, lr, speeds, seconds) must stay below this.
    package static let maximumMeasurement = 1e12

    private static let integerFields = ["epoch", "epochs", "step", "steps_per_epoch"]
    private static let numberFields = [
        "train_loss", "lr", "images_per_second", "data_seconds", "compute_seconds", "communication_seconds",
        "eta_seconds", "interval_seconds", "timestamp",
    ]
    private static let fieldNames = ["state"] + integerFields + numberFields + ["rank_step_seconds", "rank_hosts"]

    /// The report as a JSON object with the fields in `fieldNames` order.
    package var json: JSONValue {
        .object([
            ("state", .string(state.rawValue)), ("epoch", .integer(epoch)), ("epochs", .integer(epochs)),
            ("step", .integer(step)), ("steps_per_epoch", .integer(stepsPerEpoch)), ("train_loss", .double(trainLoss)),
            ("lr", .double(learningRate)), ("images_per_second", .double(imagesPerSecond)),
            ("data_seconds", .double(dataSeconds)), ("compute_seconds", .double(computeSeconds)),
            ("communication_seconds", .double(communicationSeconds)), ("eta_seconds", .double(etaSeconds)),
            ("interval_seconds", .double(intervalSeconds)), ("timestamp", .double(timestamp)),
            ("rank_step_seconds", .array(rankStepSeconds.map { .double($0) })),
            ("rank_hosts", .array(rankHosts.map { .string($0) })),
        ])
    }

    /// Reads a report from JSON text, strictly: every field present with its type, no unknown
    /// field, integers and numbers within their bounds, `state` not `stalled`, one host per rank.
    ///
    /// - Throws: `JSONSyntaxError` for malformed text, `RecordValidationError` otherwise.
    package init(jsonText bytes: some Collection<UInt8>) throws {
        try self.init(json: try JSONValue(parsing: bytes))
    }

    /// Reads a report from a parsed JSON value; see `init(jsonText:)`.
    package init(json: JSONValue) throws(RecordValidationError) {
        let fields = try StrictFields(json, allowed: ProgressUpdate.fieldNames, what: "a progress report")
        func field(_ name: String) throws(RecordValidationError) -> JSONValue { try fields.value(name) }
        func integer(_ name: String, in range: ClosedRange<Int>) throws(RecordValidationError) -> Int {
            guard case .number(let number) = try field(name), let value = number.integerValue, range.contains(value)
            else { throw RecordValidationError("field '\(name)' must be an integer in \(range)") }
            return value
        }
        func number(_ name: String, maximum: Double = ProgressUpdate.maximumMeasurement) throws(RecordValidationError)
            -> Double
        {
            let value = try PerformanceRecord.finiteNumber(try field(name), path: "field '\(name)'")
            guard (0...maximum).contains(value) else {
                throw RecordValidationError("field '\(name)' must be in 0...\(maximum), got \(value)")
            }
            return value + 0.0
        }
        guard case .string(let stateText) = try field("state"), let state = JobState(rawValue: stateText),
            state != .stalled
        else {
            let allowed = JobState.allCases.filter { $0 != .stalled }.map(\.rawValue).joined(separator: ", ")
            throw RecordValidationError("field 'state' must be one of \(allowed)")
        }
        guard case .array(let times) = try field("rank_step_seconds"), case .array(let hosts) = try field("rank_hosts"),
            (1...ProgressUpdate.maximumRanks).contains(times.count), hosts.count == times.count
        else {
            throw RecordValidationError(
                "fields 'rank_step_seconds' and 'rank_hosts' must be arrays of the same length in "
                    + "1...\(ProgressUpdate.maximumRanks)")
        }
        var rankStepSeconds: [Double] = []
        var rankHosts: [String] = []
        for (rank, (time, host)) in zip(times, hosts).enumerated() {
            let seconds = try PerformanceRecord.finiteNumber(time, path: "rank_step_seconds[\(rank)]")
            guard (0...ProgressUpdate.maximumMeasurement).contains(seconds) else {
                throw RecordValidationError(
                    "rank_step_seconds[\(rank)] must be in 0...\(ProgressUpdate.maximumMeasurement)")
            }
            guard case .string(let name) = host else {
                throw RecordValidationError("rank_hosts[\(rank)] must be a string, got \(host.typeName)")
            }
            try PerformanceRecord.validateText(
                name, what: "rank_hosts[\(rank)]", maximumBytes: ProgressUpdate.maximumHostBytes)
            rankStepSeconds.append(seconds + 0.0)
            rankHosts.append(name)
        }
        let stepsPerEpoch = try integer("steps_per_epoch", in: 1...PerformanceRecord.maximumStep)
        let epochs = try integer("epochs", in: 1...PerformanceRecord.maximumEpoch)
        self.init(
            state: state, epoch: try integer("epoch", in: 0...epochs), epochs: epochs,
            step: try integer("step", in: 0...stepsPerEpoch), stepsPerEpoch: stepsPerEpoch,
            trainLoss: try number("train_loss"), learningRate: try number("lr"),
            imagesPerSecond: try number("images_per_second"), dataSeconds: try number("data_seconds"),
            computeSeconds: try number("compute_seconds"), communicationSeconds: try number("communication_seconds"),
            etaSeconds: try number("eta_seconds", maximum: ProgressUpdate.maximumETASeconds),
            intervalSeconds: try number("interval_seconds", maximum: ProgressUpdate.maximumIntervalSeconds),
            rankStepSeconds: rankStepSeconds, rankHosts: rankHosts,
            timestamp: try number("timestamp", maximum: PerformanceRecord.maximumTimestamp))
    }

    /// The one-line summary the coordinator logs and `follow` prints:
    /// `job NAME running: epoch 4/120 step 1200/10009 412 img/s ETA 9d 4h`.
    package func line(job: String, state shown: JobState) -> String {
        "job \(job) \(shown.rawValue): epoch \(min(epoch + 1, epochs))/\(epochs) step \(step)/\(stepsPerEpoch) "
            + "\(Int(imagesPerSecond.rounded())) img/s ETA \(ProgressUpdate.duration(etaSeconds))"
    }

    /// `9d 4h`, `3h 12m`, `5m 7s` or `42s`: the two largest units of a non-negative duration.
    package static func duration(_ seconds: Double) -> String {
        let total = Int(min(max(seconds, 0), maximumETASeconds).rounded())
        let (days, hours, minutes) = (total / 86_400, total % 86_400 / 3600, total % 3600 / 60)
        if days > 0 { return "\(days)d \(hours)h" }
        if hours > 0 { return "\(hours)h \(minutes)m" }
        if minutes > 0 { return "\(minutes)m \(total % 60)s" }
        return "\(total)s"
    }
}
