// The performance record, the unit workers send and the coordinator stores: its fields, its strict
// wire format and the bounds every number and text of it must keep (checked where a record enters,
// so nothing downstream can trap on a value from outside), and the job-name rule.

import StrictJSON

/// Named measurements of one model (`accuracy_top1`, `flops`, `params`, `loss`, ...), in the order
/// the worker reported them.
///
/// Every value is a finite `Double`: the reference's values are Python floats, so an integer the
/// worker sent (`"params": 38216`) is kept and printed as a float (`38216.0`).
package struct PerformanceMetrics: Sendable, Equatable, Sequence {
    package typealias Element = (key: String, value: Double)

    /// The measurements, keys unique, in reporting order.
    package private(set) var entries: [Element]

    /// Creates metrics from `entries`.
    ///
    /// - Precondition: keys are unique and values finite.
    package init(_ entries: [Element]) {
        precondition(Set(entries.map(\.key)).count == entries.count, "duplicate metric keys in \(entries.map(\.key))")
        precondition(entries.allSatisfy { $0.value.isFinite }, "non-finite metric in \(entries)")
        self.entries = entries
    }

    package var keys: [String] { entries.map(\.key) }

    package subscript(key: String) -> Double? {
        entries.first { $0.key == key }?.value
    }

    package func makeIterator() -> IndexingIterator<[Element]> { entries.makeIterator() }

    package static func == (lhs: PerformanceMetrics, rhs: PerformanceMetrics) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy {
                $0.key == $1.key && $0.value.bitPattern == $1.value.bitPattern
            }
    }

    /// Whether `other` has the same keys in the same order and numerically equal values (`-0.0`
    /// equals `0.0`): the test for a retried record, which compares values, not bits.
    package func hasEqualValues(_ other: PerformanceMetrics) -> Bool {
        entries.count == other.entries.count
            && zip(entries, other.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

/// One performance report of a worker: which worker, where in training, and what it measured.
package struct PerformanceRecord: Sendable, Equatable {
    /// The reporting worker; printed in the Best values line as `'worker_id': '<id>'`.
    package var workerID: String
    /// The MPI rank (or 0 for a single process).
    package var rank: Int
    package var epoch: Int
    /// The global optimizer step at the time of the report.
    package var step: Int
    package var performance: PerformanceMetrics
    /// Seconds since 1970-01-01T00:00:00Z when the worker made the record.
    package var timestamp: Double

    package init(workerID: String, rank: Int, epoch: Int, step: Int, performance: PerformanceMetrics, timestamp: Double)
    {
        self.workerID = workerID
        self.rank = rank
        self.epoch = epoch
        self.step = step
        self.performance = performance
        self.timestamp = timestamp
    }

    package static func == (lhs: PerformanceRecord, rhs: PerformanceRecord) -> Bool {
        lhs.workerID == rhs.workerID && lhs.rank == rhs.rank && lhs.epoch == rhs.epoch && lhs.step == rhs.step
            && lhs.performance == rhs.performance && lhs.timestamp.bitPattern == rhs.timestamp.bitPattern
    }
}

/// Why a body is not a valid performance record; the message names the field and what was expected.
package struct RecordValidationError: Error, CustomStringConvertible, Equatable {
    package var message: String

    package init(_ message: String) { self.message = message }

    package var description: String { message }
}

// MARK: - Wire format

extension PerformanceRecord {
    /// Limits on what a record may carry, so one report cannot bloat the store, the best set or a
    /// log line. Texts are limited in UTF-8 bytes (a letter with 20,000 combining marks is one
    /// character but 40,001 bytes).
    package static let maximumWorkerIDBytes = 128
    package static let maximumKeyBytes = 64
    /// The trainer reports 3 to 5 metrics; 16 leaves room without letting one record carry a table.
    package static let maximumMetricCount = 16
    /// Above any run the trainer can make, and small enough that every conversion (to `Double`
    /// for charts, to SQLite's 64-bit integers) is exact.
    package static let maximumEpoch = 1_000_000
    package static let maximumStep = 1_000_000_000_000
    package static let maximumRank = 1_000_000
    /// 9999-12-31T23:59:59Z: the last second a log timestamp (`YYYY-...`) can show.
    package static let maximumTimestamp = 253_402_300_799.0
    static let fieldNames = ["worker_id", "rank", "epoch", "step", "performance", "timestamp"]

    /// The record as a JSON object:
    /// `{"worker_id":"0","rank":0,"epoch":3,"step":1200,"performance":{...},"timestamp":1.7e9}`.
    package var json: JSONValue {
        .object([
            ("worker_id", .string(workerID)),
            ("rank", .integer(rank)),
            ("epoch", .integer(epoch)),
            ("step", .integer(step)),
            ("performance", PerformanceRecord.json(of: performance)),
            ("timestamp", .double(timestamp)),
        ])
    }

    /// The metrics as a JSON object in their order.
    package static func json(of performance: PerformanceMetrics) -> JSONValue {
        .object(performance.entries.map { ($0.key, .double($0.value)) })
    }

    /// Reads a record from JSON text, strictly: every field present with its type, no unknown
    /// fields, `rank`, `epoch` and `step` integers within their bounds, performance values finite
    /// numbers with unique non-empty keys, `timestamp` a time between 1970 and 9999.
    ///
    /// - Throws: `JSONSyntaxError` for malformed text, `RecordValidationError` otherwise.
    package init(jsonText bytes: some Collection<UInt8>) throws {
        try self.init(json: try JSONValue(parsing: bytes))
    }

    /// Reads a record from a parsed JSON value; see `init(jsonText:)`.
    package init(json: JSONValue) throws(RecordValidationError) {
        let fields = try StrictFields(json, allowed: PerformanceRecord.fieldNames, what: "a record")
        func field(_ name: String) throws(RecordValidationError) -> JSONValue { try fields.value(name) }
        func count(_ name: String, maximum: Int) throws(RecordValidationError) -> Int {
            let value = try field(name)
            guard case .number(let number) = value, let integer = number.integerValue, (0...maximum).contains(integer)
            else {
                let got =
                    if case .number(let number) = value { PerformanceRecord.clipped(number.text) } else {
                        value.typeName
                    }
                throw RecordValidationError("field '\(name)' must be an integer in 0...\(maximum), got \(got)")
            }
            return integer
        }

        guard case .string(let workerID) = try field("worker_id") else {
            throw RecordValidationError("field 'worker_id' must be a string, got \(try field("worker_id").typeName)")
        }
        try PerformanceRecord.validateText(
            workerID, what: "field 'worker_id'", maximumBytes: PerformanceRecord.maximumWorkerIDBytes)

        let performanceValue = try field("performance")
        guard case .object(let metricMembers) = performanceValue else {
            throw RecordValidationError(
                "field 'performance' must be an object of numbers, got \(performanceValue.typeName)")
        }
        guard !metricMembers.isEmpty else { throw RecordValidationError("field 'performance' is empty") }
        guard metricMembers.count <= PerformanceRecord.maximumMetricCount else {
            throw RecordValidationError(
                "field 'performance' has \(metricMembers.count) entries, at most "
                    + "\(PerformanceRecord.maximumMetricCount) are allowed"
            )
        }
        var metrics: [PerformanceMetrics.Element] = []
        for member in metricMembers {
            try PerformanceRecord.validateText(
                member.key, what: "a performance key", maximumBytes: PerformanceRecord.maximumKeyBytes)
            let path = "performance['\(member.key)']"
            guard !metrics.contains(where: { $0.key == member.key }) else {
                throw RecordValidationError("\(path) appears twice")
            }
            metrics.append((member.key, try PerformanceRecord.finiteNumber(member.value, path: path)))
        }
        let timestamp = try PerformanceRecord.finiteNumber(try field("timestamp"), path: "field 'timestamp'")
        guard (0...PerformanceRecord.maximumTimestamp).contains(timestamp) else {
            throw RecordValidationError(
                "field 'timestamp' must be seconds since 1970 in 0...\(Int(PerformanceRecord.maximumTimestamp)), got "
                    + "\(timestamp)"
            )
        }

        self.init(
            workerID: workerID, rank: try count("rank", maximum: PerformanceRecord.maximumRank),
            epoch: try count("epoch", maximum: PerformanceRecord.maximumEpoch),
            step: try count("step", maximum: PerformanceRecord.maximumStep), performance: PerformanceMetrics(metrics),
            // -0.0 becomes 0.0, so a retry compares and stores the same value.
            timestamp: timestamp + 0.0)
    }

    static func finiteNumber(_ value: JSONValue, path: String) throws(RecordValidationError) -> Double {
        guard case .number(let number) = value else {
            throw RecordValidationError("\(path) must be a finite number, got \(value.typeName)")
        }
        guard number.doubleValue.isFinite else {
            throw RecordValidationError("\(path) must be a finite number, got an out-of-range number")
        }
        return number.doubleValue
    }

    /// Texts are 1 to `maximumBytes` UTF-8 bytes with no control character and no line or
    /// paragraph separator (each would break a log line or the Best values line).
    static func validateText(_ text: String, what: String, maximumBytes: Int) throws(RecordValidationError) {
        guard (1...maximumBytes).contains(text.utf8.count) else {
            throw RecordValidationError("\(what) must have 1 to \(maximumBytes) UTF-8 bytes, got \(text.utf8.count)")
        }
        guard !text.unicodeScalars.contains(where: LogText.needsEscape) else {
            throw RecordValidationError("\(what) must not contain control characters or line separators")
        }
    }

    /// At most 40 Unicode scalars of `text` (not characters: one character can hold thousands).
    static func clipped(_ text: String) -> String {
        let scalars = text.unicodeScalars
        return scalars.count <= 40 ? text : String(String.UnicodeScalarView(scalars.prefix(40))) + "..."
    }
}

/// The members of a JSON object checked against a closed set of field names: none unknown, none twice.
struct StrictFields {
    private var values: [String: JSONValue] = [:]

    /// - Throws: `RecordValidationError` when `json` (`what`, e.g. "a record") is not an object,
    ///   has a field not in `allowed`, or has one twice.
    init(_ json: JSONValue, allowed: [String], what: String) throws(RecordValidationError) {
        guard case .object(let members) = json else {
            throw RecordValidationError("\(what) must be a JSON object, got \(json.typeName)")
        }
        for member in members {
            guard allowed.contains(member.key) else {
                throw RecordValidationError("unknown field '\(PerformanceRecord.clipped(member.key))'")
            }
            guard values.updateValue(member.value, forKey: member.key) == nil else {
                throw RecordValidationError("field '\(member.key)' appears twice")
            }
        }
    }

    /// The value of field `name`, or nil when the (optional) field is absent.
    func optionalValue(_ name: String) -> JSONValue? { values[name] }

    /// The value of field `name`.
    ///
    /// - Throws: `RecordValidationError` when the field is missing.
    func value(_ name: String) throws(RecordValidationError) -> JSONValue {
        guard let value = values[name] else { throw RecordValidationError("missing field '\(name)'") }
        return value
    }
}

extension JSONValue {
    /// The value's type as record errors name it: `an integer` (fits `Int`), `a number`,
    /// `a string`, ..., `null`.
    var typeName: String {
        switch self {
        case .null: "null"
        case .number(let number) where number.integerValue != nil: "an integer"
        case .array, .object: "an \(kindName)"
        default: "a \(kindName)"
        }
    }
}

/// Job names: `[A-Za-z0-9._-]{1,128}`, not `.` or `..`, so a name is safe in a URL path segment, a
/// file name and a log line.
package enum JobName {
    package static let maximumLength = 128

    /// Whether `name` is a valid job name.
    package static func isValid(_ name: some StringProtocol) -> Bool {
        guard (1...maximumLength).contains(name.utf8.count), name != ".", name != ".." else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default: false
            }
        }
    }

    /// Checks `name`.
    ///
    /// - Throws: `RecordValidationError` saying what a job name may contain.
    package static func validate(_ name: some StringProtocol) throws(RecordValidationError) {
        guard isValid(name) else {
            throw RecordValidationError("job name must match [A-Za-z0-9._-]{1,\(maximumLength)} and not be '.' or '..'")
        }
    }
}
