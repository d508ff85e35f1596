// The restart log of `ghostnet-d launch`: one timestamped line per start, exit cause, restart,
// dropped or returned server and ending, on standard error and in <log_dir>/launch.log.

import Foundation
import Logging
import PerformanceRecords
import TensorEngine
import Training

#if canImport(Glibc)
import Glibc
#endif

/// Where the supervisor's own lines go. Every line is also kept in ``lines`` for the ending's summary.
package final class RestartLog: @unchecked Sendable {
    private let file: FileHandle?
    private let lock = NSLock()
    private var written: [String] = []

    /// - Parameter path: the log file, appended to (created with its folder when missing); nil
    ///   writes standard error only.
    package init(path: String?) throws {
        guard let path else {
            file = nil
            return
        }
        let url = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: path) {
                _ = FileManager.default.createFile(atPath: path, contents: nil)  // a failure surfaces in the open below
            }
            let handle = try FileHandle(forWritingTo: url)
            try handle.seekToEnd()
            file = handle
        } catch {
            throw SupervisorError(path: path, message: "cannot open the launch log: \(FileErrorText.reason(error))")
        }
    }

    /// The lines written so far, without timestamps.
    package var lines: [String] { lock.withLock { written } }

    /// Writes `message` as `<timestamp> <LEVEL> launch: <message>`.
    package func write(_ message: String, level: Logger.Level = .info) {
        let text = "launch: " + LogText.escaped(message)
        let line = TrainingLogSink.prefix(level: level, date: Date()) + text + "\n"
        lock.withLock {
            written.append(text)
            FileHandle.standardError.write(Data(line.utf8))
            file?.write(Data(line.utf8))
        }
    }

    // MARK: - The lines

    /// `start 2 of the job: 2 rank(s) on 2 server(s) (a, b), resuming from global step 48 (…)`.
    package static func startLine(number: Int, ranks: Int, servers: [String], resume: CheckpointedStep??) -> String {
        let from: String
        switch resume {
        case nil: from = "from the beginning"
        case .some(nil): from = "resuming: no valid checkpoint yet, so from the beginning"
        case .some(let point?): from = "resuming from \(point)"
        }
        return
            "start \(number): \(ranks) rank(s) on \(servers.count) server(s) (\(servers.joined(separator: ", "))), "
            + from
    }

    /// `start 1 ended after 12.3 s: <cause>`.
    package static func exitLine(number: Int, seconds: Double, cause: ExitCause) -> String {
        "start \(number) ended after \(String(format: "%.1f", seconds)) s: \(cause.summary)"
    }

    /// A server dropped or taken back.
    package static func changeLine(_ change: ServerHealth.Change, remaining: [String]) -> String {
        switch change {
        case .dropped(let server, .failedTwice):
            "dropped server '\(server)': its ranks failed in two starts in a row; "
                + "continuing on \(remaining.joined(separator: ", ")) for the rest of this launch"
        case .dropped(let server, .noAnswer):
            "dropped server '\(server)': it did not answer the probe; "
                + "continuing on \(remaining.joined(separator: ", "))"
        case .returned(let server):
            "server '\(server)' answers again: taken back from this start on"
        }
    }

    /// `3 × rank 1 on 'a' killed by signal 9 (SIGKILL); 1 × …`, in order of first occurrence.
    package static func causeSummary(_ causes: [ExitCause]) -> String {
        var order: [String] = []
        var counts: [String: Int] = [:]
        for summary in causes.map(\.summary) {
            if counts[summary] == nil { order.append(summary) }
            counts[summary, default: 0] += 1
        }
        return order.map { "\(counts[$0]!) × \($0)" }.joined(separator: "; ")
    }
}

/// A launch that cannot run: its log, its state folder, mpirun missing.
package struct SupervisorError: Error, Sendable, CustomStringConvertible {
    package var path: String
    package var message: String

    package init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    package var description: String { "\(path): \(message)" }
}
