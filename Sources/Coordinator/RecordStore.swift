// The coordinator's durable record table (SQLite through GRDB): insert-once by key with value
// comparison for retries, and a reload that reads every column with checked conversions, so a
// hostile or damaged row is skipped with its reason instead of trapping or stopping the daemon.

import Foundation
import GRDB
import PerformanceRecords
import StrictJSON

/// A record as stored: its job and the record.
package struct StoredRecord: Sendable, Equatable {
    package var job: String
    package var record: PerformanceRecord
}

/// What storing a record did.
package enum InsertOutcome: Sendable, Equatable {
    /// A new row was committed.
    case inserted
    /// The same record (same key and body) was already stored; nothing changed.
    case duplicate
    /// A different record with the same (job, worker_id, epoch, step) is stored; nothing changed.
    case conflict
    /// The job cannot take the record (the reason says why); nothing changed.
    case refused(String)
}

/// What `RecordStore.loadAll()` read: the valid records, and the rows it skipped with the reason.
package struct StoredRecords: Sendable {
    package var records: [StoredRecord] = []
    package var skipped: [(id: Int64, reason: String)] = []
}

/// The durable record table: SQLite in WAL mode with `synchronous=FULL`, one row per
/// (job, worker_id, epoch, step).
///
/// The performance map is stored as its JSON text in the worker's key order, numbers in shortest
/// round-trip form, so a reload gives back bit-identical values in the same order.
package final class RecordStore: Sendable {
    package static let fileName = "records.sqlite"
    let pool: DatabasePool
    /// Progress reports, committed in batches (see `GroupCommitWriter`).
    package let progressWrites: GroupCommitWriter
    /// Progress reports that may wait for the next commit: far above what 1,000 jobs reporting
    /// every second queue during one commit of a few milliseconds, and at most ~64 MB of bodies.
    package static let progressQueueCapacity = 1024

    /// Opens (creating if needed) `records.sqlite` in `directory`.
    ///
    /// - Throws: `CoordinatorError` naming the directory or database when it cannot be opened.
    package init(directory: String) throws(CoordinatorError) {
        let path = (directory as NSString).appendingPathComponent(RecordStore.fileName)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var configuration = Configuration()
            configuration.label = "coordinator.records"
            // WAL (DatabasePool's default) with FULL sync: a record acknowledged with 201 survives a power loss.
            configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            pool = try DatabasePool(path: path, configuration: configuration)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1 records") { db in
                try db.execute(
                    sql: """
                        CREATE TABLE record (
                            id INTEGER PRIMARY KEY AUTOINCREMENT,
                            job TEXT NOT NULL,
                            worker_id TEXT NOT NULL,
                            rank INTEGER NOT NULL,
                            epoch INTEGER NOT NULL,
                            step INTEGER NOT NULL,
                            performance TEXT NOT NULL,
                            timestamp REAL NOT NULL,
                            received_at REAL NOT NULL,
                            UNIQUE (job, worker_id, epoch, step)
                        )
                        """)
            }
            RecordStore.registerProgressMigration(&migrator)
            try migrator.migrate(pool)
            progressWrites = GroupCommitWriter(pool: pool, capacity: RecordStore.progressQueueCapacity)
        } catch {
            throw CoordinatorError("cannot open the record database \(path): \(error)")
        }
    }

    /// Closes the database; later calls fail.
    package func close() throws {
        try pool.close()
    }

    /// Every stored record, in the order they were committed; rows that are not valid records
    /// (edited by hand, or stored by an older version with looser bounds) are skipped and named.
    ///
    /// - Throws: an error only when the table cannot be read at all.
    package func loadAll() throws -> StoredRecords {
        try pool.read { db in
            var result = StoredRecords()
            let rows = try Row.fetchCursor(
                db, sql: "SELECT id, job, worker_id, rank, epoch, step, performance, timestamp FROM record ORDER BY id")
            while let row = try rows.next() {
                let id = Int64.fromDatabaseValue(row["id"]) ?? -1
                do throws(RecordValidationError) {
                    result.records.append(try RecordStore.storedRecord(row))
                } catch {
                    result.skipped.append((id, error.message))
                }
            }
            return result
        }
    }

    /// Stores `record` under `job` unless its key is taken or `refusal` (run under the database's
    /// single writer, before the insert) gives a reason, then runs `afterCommit` with the outcome
    /// while still holding the writer, so calls observe commits in order.
    ///
    /// A stored row with the same key is the same record when rank, performance and timestamp are
    /// equal as values (`-0.0 == 0.0`), as a retry sends them.
    ///
    /// - Returns: what `afterCommit` returned.
    package func insert<Result: Sendable>(
        _ record: PerformanceRecord, job: String, refusal: @escaping @Sendable () -> String? = { nil },
        afterCommit: @escaping @Sendable (InsertOutcome) -> Result
    ) async throws -> Result {
        let performanceText = PerformanceRecord.json(of: record.performance).serialized
        return try await pool.writeWithoutTransaction { db in
            var outcome = InsertOutcome.inserted
            try db.inTransaction {
                let existing = try Row.fetchOne(
                    db,
                    sql:
                        "SELECT rank, performance, timestamp FROM record "
                        + "WHERE job = ? AND worker_id = ? AND epoch = ? AND step = ?",
                    arguments: [job, record.workerID, record.epoch, record.step])
                if let existing {
                    outcome = RecordStore.isSame(existing, as: record) ? .duplicate : .conflict
                    return .rollback
                }
                if let reason = refusal() {
                    outcome = .refused(reason)
                    return .rollback
                }
                try db.execute(
                    sql: """
                        INSERT INTO record (job, worker_id, rank, epoch, step, performance, timestamp, received_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        job, record.workerID, record.rank, record.epoch, record.step, performanceText,
                        record.timestamp, LogTimestamp.now(),
                    ])
                return .commit
            }
            return afterCommit(outcome)
        }
    }

    /// Whether the stored `row` holds `record`'s rank, performance and timestamp (compared as
    /// values); a row that does not decode is never the same.
    private static func isSame(_ row: Row, as record: PerformanceRecord) -> Bool {
        guard let rank = Int.fromDatabaseValue(row["rank"]), let timestamp = Double.fromDatabaseValue(row["timestamp"]),
            let text = String.fromDatabaseValue(row["performance"]),
            case .object(let members)? = try? JSONValue(parsing: Array(text.utf8))
        else { return false }
        var stored: [PerformanceMetrics.Element] = []
        for member in members {
            guard case .number(let number) = member.value, number.doubleValue.isFinite,
                !stored.contains(where: { $0.key == member.key })
            else { return false }
            stored.append((member.key, number.doubleValue))
        }
        return rank == record.rank && timestamp == record.timestamp
            && PerformanceMetrics(stored).hasEqualValues(record.performance)
    }

    /// Decodes one row with checked conversions and validates it as a record arriving over HTTP.
    private static func storedRecord(_ row: Row) throws(RecordValidationError) -> StoredRecord {
        func column<Value: DatabaseValueConvertible>(_ name: String, as type: Value.Type, _ expected: String)
            throws(RecordValidationError) -> Value
        {
            let value: DatabaseValue = row[name]
            guard let converted = Value.fromDatabaseValue(value) else {
                throw RecordValidationError(
                    "column '\(name)' holds \(LogText.escaped(String(describing: value).prefix(60))), expected "
                        + "\(expected)"
                )
            }
            return converted
        }
        let job = try column("job", as: String.self, "text")
        try JobName.validate(job)
        let performanceText = try column("performance", as: String.self, "JSON text")
        let performance: JSONValue
        do { performance = try JSONValue(parsing: Array(performanceText.utf8)) } catch {
            throw RecordValidationError("column 'performance' is not JSON: \(error)")
        }
        // JSON cannot carry a non-finite number, so a hand-edited timestamp is refused here.
        let timestamp = try column("timestamp", as: Double.self, "a number")
        guard timestamp.isFinite else { throw RecordValidationError("column 'timestamp' is not finite: \(timestamp)") }
        let members: [(key: String, value: JSONValue)] = [
            ("worker_id", .string(try column("worker_id", as: String.self, "text"))),
            ("rank", .integer(try column("rank", as: Int.self, "an integer"))),
            ("epoch", .integer(try column("epoch", as: Int.self, "an integer"))),
            ("step", .integer(try column("step", as: Int.self, "an integer"))),
            ("performance", performance), ("timestamp", .double(timestamp)),
        ]
        // Re-validated with today's bounds, so no stored value can reach a conversion that traps.
        return StoredRecord(job: job, record: try PerformanceRecord(json: .object(members)))
    }
}
