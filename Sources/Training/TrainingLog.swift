// A rank's log: the per-rank log file (and optional terminal output with a live progress bar), the
// swift-log handler that writes to it, and the error when its folder or file cannot be opened.

import Foundation
import Logging
import PerformanceRecords
import Synchronization
import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

/// Where a rank's log lines go: the file `<log_dir>/train-rank<r>.log` and, optionally, standard
/// output, each line written and flushed as a whole (`write(2)` on an append-only descriptor).
///
/// Lines read `YYYY-MM-DD HH:MM:SS.mmm LEVEL message` in local time. When standard output is a
/// terminal, ``showProgress(_:)`` keeps one live progress bar on its last line; ordinary lines are
/// printed above it. Otherwise progress appears as ordinary timestamped lines: every one in the file,
/// and on standard output at most one per ``progressEchoInterval``.
package final class TrainingLogSink: Sendable {
    private struct State {
        var barShown = false
        var lastBar = ""
        var lastEchoedProgress: ContinuousClock.Instant?
    }

    /// The least time between two progress lines echoed to standard output when it is not a live bar.
    /// Under mpirun that output is a pseudo-terminal read by mpirun's forwarder, and each line wakes it
    /// on cores the ranks are using; a line every few seconds is all a reader of that output can use, and
    /// the log file keeps every line.
    package static let progressEchoInterval = Duration.seconds(10)

    private let fileDescriptor: Int32
    /// The log file's path.
    package let fileURL: URL
    private let echoToStandardOutput: Bool
    private let standardOutputIsTerminal: Bool
    private let standardOutput: Int32
    private let echoInterval: Duration
    private let state = Mutex(State())

    /// Opens (creating folders as needed) `<logDirectory>/train-rank<rank>.log` for appending.
    ///
    /// - Parameters:
    ///   - echoToStandardOutput: Also print lines on standard output (rank 0 in a job).
    ///   - standardOutputIsTerminal: Whether standard output is a terminal; by default `isatty(1)`.
    ///   - standardOutput: The descriptor echoed lines go to (a test's pipe; by default 1).
    ///   - progressEchoInterval: The least time between echoed progress lines when they are not a bar.
    /// - Throws: ``TrainingLogError`` naming the path that cannot be created or opened.
    package init(
        logDirectory: URL, rank: Int, echoToStandardOutput: Bool,
        standardOutputIsTerminal: Bool = isatty(STDOUT_FILENO) == 1, standardOutput: Int32 = STDOUT_FILENO,
        progressEchoInterval: Duration = TrainingLogSink.progressEchoInterval
    ) throws(TrainingLogError) {
        do {
            try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
        } catch {
            throw TrainingLogError(path: logDirectory.path, reason: FileErrorText.reason(error))
        }
        fileURL = logDirectory.appendingPathComponent("train-rank\(rank).log")
        fileDescriptor = open(fileURL.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fileDescriptor >= 0 else {
            throw TrainingLogError(path: fileURL.path, reason: String(cString: strerror(errno)))
        }
        self.echoToStandardOutput = echoToStandardOutput
        self.standardOutputIsTerminal = standardOutputIsTerminal
        self.standardOutput = standardOutput
        echoInterval = progressEchoInterval
    }

    deinit {
        close(fileDescriptor)
    }

    /// Whether ``showProgress(_:)`` draws a live bar (lines echo to a terminal) rather than
    /// writing ordinary lines.
    package var showsLiveBar: Bool { echoToStandardOutput && standardOutputIsTerminal }

    /// Writes one line: `message` with the timestamp and `level` prefix.
    package func write(level: Logger.Level, _ message: String, at date: Date = Date()) {
        let line = Self.line(level: level, message, date: date)
        state.withLock { state in
            Self.writeAll(fileDescriptor, line)
            guard echoToStandardOutput else { return }
            if state.barShown {
                Self.writeAll(standardOutput, "\r\u{1B}[2K" + line + state.lastBar)
            } else {
                Self.writeAll(standardOutput, line)
            }
        }
    }

    /// Shows a progress line: as the live bar on a terminal (the file still gets a plain line), as
    /// an ordinary INFO line otherwise (echoed at most once per ``progressEchoInterval``).
    package func showProgress(_ text: String, at date: Date = Date()) {
        let line = Self.line(level: .info, text, date: date)
        state.withLock { state in
            Self.writeAll(fileDescriptor, line)
            guard echoToStandardOutput else { return }
            if standardOutputIsTerminal {
                state.barShown = true
                state.lastBar = text
                Self.writeAll(standardOutput, "\r\u{1B}[2K" + text)
                return
            }
            let now = ContinuousClock.now
            if let last = state.lastEchoedProgress, last.duration(to: now) < echoInterval { return }
            state.lastEchoedProgress = now
            Self.writeAll(standardOutput, line)
        }
    }

    /// Ends the live bar with a newline so later output starts on a fresh line.
    package func finishProgress() {
        state.withLock { state in
            guard state.barShown else { return }
            Self.writeAll(standardOutput, "\n")
            state.barShown = false
            state.lastBar = ""
        }
    }

    /// One line of the file: the prefix, then `message` escaped, as messages echo outside text (file
    /// names, a coordinator's answer) that must not break the line.
    private static func line(level: Logger.Level, _ message: String, date: Date) -> String {
        prefix(level: level, date: date) + LogText.escaped(message) + "\n"
    }

    /// `2024-05-01 12:00:00.123 INFO ` for `date` in local time.
    package static func prefix(level: Logger.Level, date: Date) -> String {
        LogTimestamp.format(date.timeIntervalSince1970) + " " + level.rawValue.uppercased() + " "
    }

    private static func writeAll(_ descriptor: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }
}

/// A swift-log handler that writes to a ``TrainingLogSink``; metadata is appended as `key=value`.
package struct TrainingLogHandler: LogHandler {
    package let sink: TrainingLogSink
    package var logLevel: Logger.Level = .info
    package var metadata: Logger.Metadata = [:]
    package var metadataProvider: Logger.MetadataProvider?

    package init(sink: TrainingLogSink, logLevel: Logger.Level = .info) {
        self.sink = sink
        self.logLevel = logLevel
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let suffix = merged.keys.sorted().map { " \($0)=\(merged[$0]!)" }.joined()
        sink.write(level: event.level, event.message.description + suffix)
    }
}

/// A log folder or file that cannot be created or opened.
package struct TrainingLogError: Error, Sendable, CustomStringConvertible {
    package var path: String
    package var reason: String

    package var description: String { "cannot open the log \(path): \(reason)" }
}
