// The coordinator's durable progress history and lifecycle log (SQLite, next to the records):
// every progress report as its JSON text, every state change with its log line, and a reload
// that re-validates each row and skips damaged ones with the reason.

import GRDB
import PerformanceRecords
import StrictJSON

/// What `RecordStore.loadProgress()` read, in commit order.
package struct StoredProgress: Sendable {
    package var reports: [(job: String, receivedAt: Double, report: ProgressUpdate)] = []
    package var states: [(job: String, state: JobState, at: Double, line: String)] = []
    package var skipped: [(table: String, id: Int64, reason: String)] = []
}

extension RecordStore {
    static func registerProgressMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v2 progress and job states") { db in
            try db.execute(
                sql: """
                    CREATE TABLE progress (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        job TEXT NOT NULL,
                        received_at REAL NOT NULL,
                        report TEXT NOT NULL
                    );
                    CREATE TABLE job_state (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        job TEXT NOT NULL,
                        state TEXT NOT NULL,
                        at REAL NOT NULL,
                        line TEXT NOT NULL
                    );
                    """)
        }
    }

    /// Stores `report` of `job`, then runs `afterCommit` under the database's single writer (so
    /// calls observe commits in order) and stores the state change it reports, if any, with its
    /// first log line. Reports arriving together share one transaction; this returns once the
    /// transaction holding this one has committed.
    ///
    /// - Throws: `WriteQueueFull` when `progressQueueCapacity` reports already wait.
    package func insertProgress(
        _ report: ProgressUpdate, job: String, receivedAt: Double,
        afterCommit: @escaping @Sendable () -> ProgressEvents
    ) async throws -> ProgressEvents {
        let text = report.json.serialized
        return try await progressWrites.submit { db in
            try db.execute(
                sql: "INSERT INTO progress (job, received_at, report) VALUES (?, ?, ?)",
                arguments: [job, receivedAt, text])
            let events = afterCommit()
            if let state = events.stateChange {
                try RecordStore.insertState(db, job: job, state: state, at: receivedAt, line: events.lines.first ?? "")
            }
            return events
        }
    }

    /// Stores a state change a supervisor reported, then runs `afterCommit` under the database's
    /// single writer (so it observes commits in the same order as progress reports do).
    package func insertState(
        _ change: JobStateReport, job: String, at: Double, afterCommit: @escaping @Sendable () -> ProgressEvents
    ) async throws -> ProgressEvents {
        try await pool.write { db in
            try RecordStore.insertState(db, job: job, state: change.state, at: at, line: change.line(job: job))
            return afterCommit()
        }
    }

    /// Stores state changes the coordinator decided itself (stalls).
    package func insertStates(_ changes: [(job: String, state: JobState, at: Double, line: String)]) async throws {
        try await pool.write { db in
            for change in changes {
                try RecordStore.insertState(db, job: change.job, state: change.state, at: change.at, line: change.line)
            }
        }
    }

    private static func insertState(_ db: Database, job: String, state: JobState, at: Double, line: String) throws {
        try db.execute(
            sql: "INSERT INTO job_state (job, state, at, line) VALUES (?, ?, ?, ?)",
            arguments: [job, state.rawValue, at, line])
    }

    /// Every stored report and state change, in commit order; rows that do not decode or fail
    /// today's bounds are skipped and named.
    package func loadProgress() throws -> StoredProgress {
        try pool.read { db in
            var result = StoredProgress()
            let reports = try Row.fetchCursor(db, sql: "SELECT id, job, received_at, report FROM progress ORDER BY id")
            while let row = try reports.next() {
                let id = Int64.fromDatabaseValue(row["id"]) ?? -1
                guard let job = String.fromDatabaseValue(row["job"]), JobName.isValid(job),
                    let receivedAt = Double.fromDatabaseValue(row["received_at"]), receivedAt.isFinite,
                    let text = String.fromDatabaseValue(row["report"])
                else {
                    result.skipped.append(("progress", id, "job, received_at or report column is not valid"))
                    continue
                }
                do {
                    result.reports.append((job, receivedAt, try ProgressUpdate(jsonText: Array(text.utf8))))
                } catch {
                    result.skipped.append(("progress", id, "\(error)"))
                }
            }
            let states = try Row.fetchCursor(db, sql: "SELECT id, job, state, at, line FROM job_state ORDER BY id")
            while let row = try states.next() {
                guard let job = String.fromDatabaseValue(row["job"]), JobName.isValid(job),
                    let state = String.fromDatabaseValue(row["state"]).flatMap(JobState.init(rawValue:)),
                    let at = Double.fromDatabaseValue(row["at"]), at.isFinite,
                    let line = String.fromDatabaseValue(row["line"])
                else {
                    let id = Int64.fromDatabaseValue(row["id"]) ?? -1
                    result.skipped.append(("job_state", id, "job, state, at or line column is not valid"))
                    continue
                }
                result.states.append((job, state, at, line))
            }
            return result
        }
    }
}
