// A job's lifecycle change as the supervisor sees it from outside the trainer (a restart after a
// rank died, a preemption, giving up, a fresh start): the body of `POST /v1/jobs/{job}/state`,
// with the same strict wire format and bounds as a progress report.

import StrictJSON

/// One state change of a job, reported by whoever launches its workers.
package struct JobStateReport: Sendable, Equatable {
    package var state: JobState
    /// Why, in one line: `rank 3 exited 69, restart 2/5`.
    package var message: String
    /// The global optimizer step the job is at (a restart resumes from its last checkpoint's
    /// step), when known.
    package var step: Int?

    /// The states a supervisor may report: `running` and `stalled` come from progress reports and
    /// the coordinator's clock only.
    package static let reportableStates: [JobState] = [.starting, .restarting, .preempted, .failed, .finished]
    package static let maximumMessageBytes = 1024

    package init(state: JobState, message: String, step: Int? = nil) {
        self.state = state
        self.message = message
        self.step = step
    }

    /// The report as a JSON object: `state`, `message`, and `step` when known.
    package var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("state", .string(state.rawValue)), ("message", .string(message)),
        ]
        if let step { members.append(("step", .integer(step))) }
        return .object(members)
    }

    /// Reads a report from JSON text, strictly: `state` one of `reportableStates`, `message` 1 to
    /// `maximumMessageBytes` UTF-8 bytes without control characters, `step` (optional) an integer
    /// in 0...`PerformanceRecord.maximumStep`, no other field.
    ///
    /// - Throws: `JSONSyntaxError` for malformed text, `RecordValidationError` otherwise.
    package init(jsonText bytes: some Collection<UInt8>) throws {
        let fields = try StrictFields(
            try JSONValue(parsing: bytes), allowed: ["state", "message", "step"], what: "a job state report")
        guard case .string(let stateText) = try fields.value("state"), let state = JobState(rawValue: stateText),
            JobStateReport.reportableStates.contains(state)
        else {
            let allowed = JobStateReport.reportableStates.map(\.rawValue).joined(separator: ", ")
            throw RecordValidationError("field 'state' must be one of \(allowed)")
        }
        guard case .string(let message) = try fields.value("message") else {
            throw RecordValidationError("field 'message' must be a string")
        }
        try PerformanceRecord.validateText(
            message, what: "field 'message'", maximumBytes: JobStateReport.maximumMessageBytes)
        var step: Int?
        if let value = fields.optionalValue("step") {
            guard case .number(let number) = value, let integer = number.integerValue,
                (0...PerformanceRecord.maximumStep).contains(integer)
            else {
                throw RecordValidationError("field 'step' must be an integer in 0...\(PerformanceRecord.maximumStep)")
            }
            step = integer
        }
        self.init(state: state, message: message, step: step)
    }

    /// The line the coordinator logs: `job NAME restarting: rank 3 exited 69, restart 2/5 (step 1200)`.
    package func line(job: String) -> String {
        "job \(job) \(state.rawValue): \(message)" + (step.map { " (step \($0))" } ?? "")
    }
}
