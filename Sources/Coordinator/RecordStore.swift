//===----------------------------------------------------------------------===//
// ghostnet-d — Coordinator
//===----------------------------------------------------------------------===//

import Foundation
import GRDB
import PerformanceRecords
import StrictJSON

/// A record as stored: its job and the record.
public struct StoredRecord: Sendable, Equatable {
    public var job: String
    public var record: PerformanceRecord
}

/// What storing a record did.
public enum InsertOutcome: Sendable, Equatable {
    /// A new row was committed.
    case inserted
    /// The same record (same key and body) was already stored; nothing changed.
    case duplicate
    /// A different record with the same (job, worker_id, epoch, step) is stored; nothing changed.
    case conflict
}

/// The durable record table: SQLite in WAL mode with `synchronous=FULL`, one row per
/// (job, worker_id, epoch, step).
///
/// The performance map is stored as its JSON text in the worker's key order, numbers in shortest
/// round-trip form, so a reload gives back bit-identical values in the same order.
public final class RecordStore: Sendable {
    public static let fileName = "records.sqlite"
    let pool: DatabasePool

    /// Opens (creating if needed) `records.sqlite` in `directory`.
    ///
    /// - Throws: `CoordinatorError` naming the directory or database when it cannot be opened.
    public init(directory: String) throws(CoordinatorError) {
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
                try db.execute(sql: """
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
            try migrator.migrate(pool)
        } catch {
            throw CoordinatorError("cannot open the record database \(path): \(error)")
        }
    }

    /// Closes the database; later calls fail.
    public func close() throws {
        try pool.close()
    }

    /// Every stored record, in the order they were committed.
    ///
    /// - Throws: `CoordinatorError` when a row cannot be read back (a damaged database).
    public func loadAll() throws -> [StoredRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT job, worker_id, rank, epoch, step, performance, timestamp FROM record ORDER BY id")
                .map(RecordStore.storedRecord)
        }
    }

    /// Stores `record` under `job` unless its key is taken, then runs `afterCommit` with the
    /// outcome while still holding the database's single writer, so calls observe commits in order.
    ///
    /// - Returns: what `afterCommit` returned.
    public func insert<Result: Sendable>(
        _ record: PerformanceRecord, job: String, afterCommit: @escaping @Sendable (InsertOutcome) -> Result
    ) async throws -> Result {
        let performanceText = PerformanceRecord.json(of: record.performance).serialized
        return try await pool.writeWithoutTransaction { db in
            var outcome = InsertOutcome.inserted
            try db.inTransaction {
                let existing = try Row.fetchOne(
                    db, sql: "SELECT rank, performance, timestamp FROM record WHERE job = ? AND worker_id = ? AND epoch = ? AND step = ?",
                    arguments: [job, record.workerID, record.epoch, record.step])
                if let existing {
                    let same = existing["rank"] as Int == record.rank
                        && existing["performance"] as String == performanceText
                        && (existing["timestamp"] as Double).bitPattern == record.timestamp.bitPattern
                    outcome = same ? .duplicate : .conflict
                    return .rollback
                }
                try db.execute(
                    sql: """
                        INSERT INTO record (job, worker_id, rank, epoch, step, performance, timestamp, received_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [job, record.workerID, record.rank, record.epoch, record.step, performanceText,
                                record.timestamp, LogTimestamp.now()])
                return .commit
            }
            return afterCommit(outcome)
        }
    }

    private static func storedRecord(_ row: Row) throws -> StoredRecord {
        let job: String = row["job"]
        let performanceText: String = row["performance"]
        let performance: JSONValue
        do { performance = try JSONValue(parsing: performanceText) } catch {
            throw CoordinatorError("stored performance of job \(job) is not JSON: \(error)")
        }
        let workerID: String = row["worker_id"]
        let rank: Int = row["rank"], epoch: Int = row["epoch"], step: Int = row["step"]
        let timestamp: Double = row["timestamp"]
        // JSON cannot carry a non-finite number, so a hand-edited timestamp is refused here.
        guard timestamp.isFinite else { throw CoordinatorError("stored timestamp of job \(job) is not finite: \(timestamp)") }
        let members: [(key: String, value: JSONValue)] = [
            ("worker_id", .string(workerID)), ("rank", .integer(rank)), ("epoch", .integer(epoch)),
            ("step", .integer(step)), ("performance", performance), ("timestamp", .double(timestamp)),
        ]
        // Re-validated on the way in, so a hand-edited row cannot feed NaN into the best set.
        let record = try PerformanceRecord(json: .object(members))
        return StoredRecord(job: job, record: record)
    }
}
