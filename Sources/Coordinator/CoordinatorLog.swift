// The coordinator's log: the sink (stdout and an append-only, size-rotated file, one write per
// line) and the swift-log handler that formats lines and escapes every control character in them.

import Foundation
import Glibc
import Logging
import PerformanceRecords
import Synchronization

/// Where log lines go: standard output and an append-only file, one `write(2)` per line.
///
/// The file is opened with `O_APPEND`, so after `logrotate copytruncate` empties it the next line
/// lands at the new end, not at the old offset. With a size limit, a line that would push the file
/// past it first renames the file to `<file>.1` (replacing an older one) and opens a fresh file.
/// Each line is written whole with one unbuffered `write`, so `tail -f` sees it at once.
package final class LogSink: Sendable {
    private struct State {
        var descriptor: Int32
    }

    package let path: String?
    package let maximumBytes: Int?
    package let writesToStandardOutput: Bool
    private let state: Mutex<State>

    /// Opens (creating if needed) the log file.
    ///
    /// - Throws: `CoordinatorError` naming the file when it cannot be opened.
    package init(path: String?, maximumBytes: Int? = nil, writesToStandardOutput: Bool = true) throws(CoordinatorError)
    {
        self.path = path
        self.maximumBytes = maximumBytes
        self.writesToStandardOutput = writesToStandardOutput
        self.state = Mutex(State(descriptor: try path.map(LogSink.open) ?? -1))
    }

    deinit {
        state.withLock { if $0.descriptor >= 0 { close($0.descriptor) } }
    }

    private static func open(_ path: String) throws(CoordinatorError) -> Int32 {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CoordinatorError("cannot open log file \(path): \(String(cString: strerror(errno)))")
        }
        return descriptor
    }

    /// Writes `line` plus a newline to every destination.
    package func write(line: String) {
        let bytes = Array((line + "\n").utf8)
        state.withLock { state in
            if writesToStandardOutput { LogSink.writeAll(bytes, to: STDOUT_FILENO) }
            guard let path, state.descriptor >= 0 else { return }
            if let maximumBytes {
                // With O_APPEND the end offset is the file's size, also after a copytruncate.
                let size = lseek(state.descriptor, 0, SEEK_END)
                if size > 0, Int(size) + bytes.count > maximumBytes,
                    rename(path, path + ".1") == 0,
                    let reopened = try? LogSink.open(path)
                {
                    close(state.descriptor)
                    state.descriptor = reopened
                }
            }
            LogSink.writeAll(bytes, to: state.descriptor)
        }
    }

    /// Writes all of `bytes`, retrying short writes and EINTR; returns false (errno says why) when
    /// the descriptor refuses them.
    @discardableResult
    static func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                Glibc.write(descriptor, $0.baseAddress! + offset, bytes.count - offset)
            }
            if written < 0 && errno == EINTR { continue }
            // A full disk or closed stdout must not stop the daemon; the line is given up.
            if written <= 0 { return false }
            offset += written
        }
        return true
    }
}

/// A swift-log handler printing `<YYYY-MM-DD HH:MM:SS.mmm> LEVEL message key=value ...` to a sink.
///
/// Levels print in Python's spelling (`INFO`, `WARNING`), so the Best values line reads exactly like
/// the reference's. Message and metadata pass through `LogText.escaped` here, in the one place
/// every line goes through, so no text from outside (a JSON key, a path, a peer's error) can end
/// the line or start one that looks like the coordinator's own.
package struct CoordinatorLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .info
    let sink: LogSink

    package init(sink: LogSink) {
        self.sink = sink
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let metadataText = merged.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        let text = LogText.escaped("\(event.message)\(metadataText)")
        sink.write(
            line: "\(LogTimestamp.format(LogTimestamp.now())) \(CoordinatorLogHandler.levelName(event.level)) \(text)")
    }

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "NOTICE"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }
}
