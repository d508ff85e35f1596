// The spool: records a worker made but the coordinator has not confirmed, in a file that survives
// crashes and coordinator outages, locked so that processes of one run can share it.

import Foundation
import PerformanceRecords
import StrictJSON

/// A record waiting for delivery: the job it belongs to and the record.
package struct SpooledRecord: Sendable, Equatable {
    package var job: String
    package var record: PerformanceRecord

    package init(job: String, record: PerformanceRecord) {
        self.job = job
        self.record = record
    }

    /// One spool line: `{"job":"...","record":{...}}`.
    var jsonLine: String {
        JSONValue.object([("job", .string(job)), ("record", record.json)]).serialized
    }

    init(jsonLine: Substring) throws {
        let value = try JSONValue(parsing: Array(jsonLine.utf8))
        guard case .object(let members) = value, members.count == 2, members[0].key == "job",
            case .string(let job) = members[0].value, members[1].key == "record"
        else { throw RecordValidationError("spool line is not {\"job\": ..., \"record\": ...}") }
        self.init(job: job, record: try PerformanceRecord(json: members[1].value))
    }
}

/// Why the spool could not be read or written; names the file.
package struct SpoolError: Error, CustomStringConvertible {
    package var path: String
    package var reason: String

    package var description: String { "record spool \(path): \(reason)" }
}

/// An append-only file of records not yet delivered, one JSON object per line, oldest first.
///
/// Every operation holds an exclusive `flock` on `<path>.lock`, so a worker appending while another
/// process of the same run delivers cannot lose a line. Delivered entries are removed by rewriting
/// the remaining lines to a temporary file and renaming it over the spool, so a crash leaves either
/// the old or the new spool, never a torn one. Lines that cannot be read (a crash mid-append) are
/// moved to `<path>.rejected` rather than dropped.
package struct RecordSpool: Sendable {
    package let path: String

    package init(path: String) {
        self.path = path
    }

    /// Where entries the coordinator refused for good (and unreadable lines) are kept.
    package var rejectedPath: String { path + ".rejected" }

    /// Runs `body` while holding the spool's lock.
    package func withLock<Result>(_ body: () throws -> Result) throws -> Result {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let lock = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else {
            throw SpoolError(path: path, reason: "cannot open lock file: \(String(cString: strerror(errno)))")
        }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw SpoolError(path: path, reason: "cannot lock: \(String(cString: strerror(errno)))")
            }
        }
        defer { flock(lock, LOCK_UN) }
        return try body()
    }

    /// Appends `entry` as one line and flushes it to disk. Call inside `withLock`.
    package func appendLocked(_ entry: SpooledRecord) throws {
        try append(line: entry.jsonLine, to: path)
    }

    /// The entries waiting, oldest first. Call inside `withLock`.
    package func entriesLocked() throws -> [SpooledRecord] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw SpoolError(path: path, reason: "cannot read: \(error)")
        }
        var entries: [SpooledRecord] = []
        var unreadable: [Substring] = []
        for line in text.split(separator: "\n") where !line.isEmpty {
            if let entry = try? SpooledRecord(jsonLine: line) { entries.append(entry) } else { unreadable.append(line) }
        }
        if !unreadable.isEmpty {
            for line in unreadable { try append(line: String(line), to: rejectedPath) }
            try replaceLocked(with: entries)
        }
        return entries
    }

    /// Replaces the spool's content with `entries` (atomically). Call inside `withLock`.
    package func replaceLocked(with entries: [SpooledRecord]) throws {
        if entries.isEmpty {
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            return
        }
        let temporary = path + ".tmp"
        let text = entries.map { $0.jsonLine + "\n" }.joined()
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else {
                throw SpoolError(path: path, reason: "cannot replace: \(String(cString: strerror(errno)))")
            }
        } catch let error as SpoolError {
            throw error
        } catch {
            throw SpoolError(path: path, reason: "cannot write: \(error)")
        }
    }

    /// Removes the first entry equal to `entry` (delivered or set aside meanwhile); nothing when
    /// another process removed it already. Call inside `withLock`.
    package func removeLocked(_ entry: SpooledRecord) throws {
        var entries = try entriesLocked()
        guard let index = entries.firstIndex(of: entry) else { return }
        entries.remove(at: index)
        try replaceLocked(with: entries)
    }

    /// Appends `entry` to the rejected file. Call inside `withLock`.
    package func rejectLocked(_ entry: SpooledRecord) throws {
        try append(line: entry.jsonLine, to: rejectedPath)
    }

    private func append(line: String, to file: String) throws {
        let descriptor = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw SpoolError(path: file, reason: "cannot open for appending: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw SpoolError(path: file, reason: "cannot append: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        guard fsync(descriptor) == 0 else {
            throw SpoolError(path: file, reason: "cannot flush: \(String(cString: strerror(errno)))")
        }
    }
}
