//===----------------------------------------------------------------------===//
// ghostnet-d — PerformanceRecords
//===----------------------------------------------------------------------===//

import StrictJSON

/// Named measurements of one model (`accuracy_top1`, `flops`, `params`, `loss`, ...), in the order
/// the worker reported them.
///
/// Every value is a finite `Double`: the reference's values are Python floats, so an integer the
/// worker sent (`"params": 38216`) is kept and printed as a float (`38216.0`).
public struct PerformanceMetrics: Sendable, Equatable, Sequence {
    public typealias Element = (key: String, value: Double)

    /// The measurements, keys unique, in reporting order.
    public private(set) var entries: [Element]

    /// Creates metrics from `entries`.
    ///
    /// - Precondition: keys are unique and values finite.
    public init(_ entries: [Element]) {
        precondition(Set(entries.map(\.key)).count == entries.count, "duplicate metric keys in \(entries.map(\.key))")
        precondition(entries.allSatisfy { $0.value.isFinite }, "non-finite metric in \(entries)")
        self.entries = entries
    }

    public var keys: [String] { entries.map(\.key) }

    public subscript(key: String) -> Double? {
        entries.first { $0.key == key }?.value
    }

    public func makeIterator() -> IndexingIterator<[Element]> { entries.makeIterator() }

    public static func == (lhs: PerformanceMetrics, rhs: PerformanceMetrics) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value.bitPattern == $1.value.bitPattern }
    }
}

/// One performance report of a worker: which worker, where in training, and what it measured.
public struct PerformanceRecord: Sendable, Equatable {
    /// The reporting worker; printed in the Best values line as `'worker_id': '<id>'`.
    public var workerID: String
    /// The MPI rank (or 0 for a single process).
    public var rank: Int
    public var epoch: Int
    /// The global optimizer step at the time of the report.
    public var step: Int
    public var performance: PerformanceMetrics
    /// Seconds since 1970-01-01T00:00:00Z when the worker made the record.
    public var timestamp: Double

    public init(workerID: String, rank: Int, epoch: Int, step: Int, performance: PerformanceMetrics, timestamp: Double) {
        self.workerID = workerID
        self.rank = rank
        self.epoch = epoch
        self.step = step
        self.performance = performance
        self.timestamp = timestamp
    }

    public static func == (lhs: PerformanceRecord, rhs: PerformanceRecord) -> Bool {
        lhs.workerID == rhs.workerID && lhs.rank == rhs.rank && lhs.epoch == rhs.epoch && lhs.step == rhs.step
            && lhs.performance == rhs.performance && lhs.timestamp.bitPattern == rhs.timestamp.bitPattern
    }
}

/// Why a body is not a valid performance record; the message names the field and what was expected.
public struct RecordValidationError: Error, CustomStringConvertible, Equatable {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

// MARK: - Wire format

extension PerformanceRecord {
    /// Limits on what a record may carry, so one report cannot bloat the store.
    public static let maximumTextLength = 128
    public static let maximumMetricCount = 64
    static let fieldNames = ["worker_id", "rank", "epoch", "step", "performance", "timestamp"]

    /// The record as a JSON object:
    /// `{"worker_id":"0","rank":0,"epoch":3,"step":1200,"performance":{...},"timestamp":1.7e9}`.
    public var json: JSONValue {
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
    public static func json(of performance: PerformanceMetrics) -> JSONValue {
        .object(performance.entries.map { ($0.key, .double($0.value)) })
    }

    /// Reads a record from JSON text, strictly: every field present with its type, no unknown
    /// fields, integers `>= 0`, performance values finite numbers with unique non-empty keys.
    ///
    /// - Throws: `JSONSyntaxError` for malformed text, `RecordValidationError` otherwise.
    public init(jsonText bytes: some Collection<UInt8>) throws {
        try self.init(json: try JSONValue(parsing: bytes))
    }

    /// Reads a record from a parsed JSON value; see `init(jsonText:)`.
    public init(json: JSONValue) throws(RecordValidationError) {
        guard case .object(let members) = json else {
            throw RecordValidationError("a record must be a JSON object, got \(json.typeName)")
        }
        var fields: [String: JSONValue] = [:]
        for member in members {
            guard PerformanceRecord.fieldNames.contains(member.key) else {
                throw RecordValidationError("unknown field '\(PerformanceRecord.clipped(member.key))'")
            }
            guard fields.updateValue(member.value, forKey: member.key) == nil else {
                throw RecordValidationError("field '\(member.key)' appears twice")
            }
        }
        func field(_ name: String) throws(RecordValidationError) -> JSONValue {
            guard let value = fields[name] else { throw RecordValidationError("missing field '\(name)'") }
            return value
        }
        func count(_ name: String) throws(RecordValidationError) -> Int {
            let value = try field(name)
            guard case .number(let number) = value, let integer = number.integerValue, integer >= 0 else {
                throw RecordValidationError("field '\(name)' must be an integer >= 0, got \(value.typeName)")
            }
            return integer
        }

        guard case .string(let workerID) = try field("worker_id") else {
            throw RecordValidationError("field 'worker_id' must be a string, got \(try field("worker_id").typeName)")
        }
        try PerformanceRecord.validateText(workerID, what: "field 'worker_id'")

        let performanceValue = try field("performance")
        guard case .object(let metricMembers) = performanceValue else {
            throw RecordValidationError("field 'performance' must be an object of numbers, got \(performanceValue.typeName)")
        }
        guard !metricMembers.isEmpty else { throw RecordValidationError("field 'performance' is empty") }
        guard metricMembers.count <= PerformanceRecord.maximumMetricCount else {
            throw RecordValidationError("field 'performance' has more than \(PerformanceRecord.maximumMetricCount) entries")
        }
        var metrics: [PerformanceMetrics.Element] = []
        for member in metricMembers {
            try PerformanceRecord.validateText(member.key, what: "a performance key")
            let path = "performance['\(member.key)']"
            guard !metrics.contains(where: { $0.key == member.key }) else {
                throw RecordValidationError("\(path) appears twice")
            }
            metrics.append((member.key, try PerformanceRecord.finiteNumber(member.value, path: path)))
        }

        self.init(
            workerID: workerID, rank: try count("rank"), epoch: try count("epoch"), step: try count("step"),
            performance: PerformanceMetrics(metrics),
            timestamp: try PerformanceRecord.finiteNumber(try field("timestamp"), path: "field 'timestamp'"))
    }

    private static func finiteNumber(_ value: JSONValue, path: String) throws(RecordValidationError) -> Double {
        guard case .number(let number) = value else {
            throw RecordValidationError("\(path) must be a finite number, got \(value.typeName)")
        }
        guard number.doubleValue.isFinite else {
            throw RecordValidationError("\(path) must be a finite number, got an out-of-range number")
        }
        return number.doubleValue
    }

    private static func validateText(_ text: String, what: String) throws(RecordValidationError) {
        guard !text.isEmpty, text.count <= maximumTextLength else {
            throw RecordValidationError("\(what) must have 1 to \(maximumTextLength) characters")
        }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw RecordValidationError("\(what) must not contain control characters")
        }
    }

    private static func clipped(_ text: String) -> String {
        text.count <= 40 ? text : String(text.prefix(40)) + "..."
    }
}

extension JSONValue {
    /// The value's type as record errors name it: `an integer` (fits `Int`), `a number`,
    /// `a string`, ..., `null`.
    fileprivate var typeName: String {
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
public enum JobName {
    public static let maximumLength = 128

    /// Whether `name` is a valid job name.
    public static func isValid(_ name: some StringProtocol) -> Bool {
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
    public static func validate(_ name: some StringProtocol) throws(RecordValidationError) {
        guard isValid(name) else {
            throw RecordValidationError("job name must match [A-Za-z0-9._-]{1,\(maximumLength)} and not be '.' or '..'")
        }
    }
}
