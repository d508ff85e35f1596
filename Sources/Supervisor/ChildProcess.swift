// Running mpirun (or the single worker) under the supervisor: posix_spawn with the signals the
// supervisor ignores reset to their defaults, output passed through line by line while the last
// lines are kept for the exit-cause classification; and a bounded run for a server probe.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process of the supervisor.
package enum ChildProcess {
    /// The signals the supervisor handles itself (and so ignores): a child must get them back.
    package static let handledSignals: [Int32] = [SIGTERM, SIGINT, SIGUSR1, SIGHUP]

    /// How many of the last output lines are kept for the classification.
    package static let keptLines = 400

    /// Runs `arguments` (searched on PATH) with its standard output and error passed through to
    /// the supervisor's, and waits for it.
    ///
    /// - Parameter started: called with the child's process id as soon as it runs (to forward
    ///   signals to it).
    /// - Returns: how it ended and its last ``keptLines`` output lines (both streams, each line whole).
    /// - Throws: ``SupervisorError`` when it cannot be started.
    package static func run(_ arguments: [String], started: (pid_t) -> Void) throws -> (Termination, [String]) {
        var outputPipe: [Int32] = [0, 0]
        var errorPipe: [Int32] = [0, 0]
        // Close-on-exec, so that no other child (a probe) inherits the ends and keeps a pipe open.
        guard pipe(&outputPipe) == 0, pipe(&errorPipe) == 0,
            (outputPipe + errorPipe).allSatisfy({ fcntl($0, F_SETFD, FD_CLOEXEC) == 0 })
        else {
            throw SupervisorError(
                path: arguments[0], message: "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        let pid = try spawn(arguments, output: outputPipe[1], error: errorPipe[1])
        close(outputPipe[1])
        close(errorPipe[1])
        started(pid)
        let tail = OutputTail(limit: keptLines)
        let readers = DispatchGroup()
        for (source, target) in [(outputPipe[0], STDOUT_FILENO), (errorPipe[0], STDERR_FILENO)] {
            readers.enter()
            let thread = Thread {
                tail.pass(from: source, to: target)
                close(source)
                readers.leave()
            }
            thread.start()
        }
        let termination = wait(for: pid)
        // A rank that outlives mpirun may hold the pipes open; its last lines are not worth a hang.
        _ = readers.wait(timeout: .now() + 10)
        return (termination, tail.lines)
    }

    /// Runs `arguments` with no output, for at most `timeout` seconds (then SIGKILL).
    ///
    /// - Returns: its termination, or nil when it had to be killed.
    package static func probe(_ arguments: [String], timeout: Double) -> Termination? {
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { close(null) }
        guard let pid = try? spawn(arguments, output: null, error: null) else { return .exited(127) }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return termination(status) }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        _ = wait(for: pid)
        return nil
    }

    private static func spawn(_ arguments: [String], output: Int32, error: Int32) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, output, STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&actions, error, STDERR_FILENO)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in handledSignals { sigaddset(&defaults, signal) }
        var noneBlocked = sigset_t()
        sigemptyset(&noneBlocked)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &noneBlocked)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard status == 0 else {
            throw SupervisorError(path: arguments[0], message: "cannot start it: \(String(cString: strerror(status)))")
        }
        return pid
    }

    private static func wait(for pid: pid_t) -> Termination {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return termination(status)
    }

    /// `waitpid`'s status as a ``Termination`` (the W* macros are not imported into Swift).
    private static func termination(_ status: Int32) -> Termination {
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }
}

/// Passes a child's output through and keeps its last lines.
private final class OutputTail: @unchecked Sendable {
    private let limit: Int
    private let lock = NSLock()
    private var kept: [String] = []

    init(limit: Int) { self.limit = limit }

    var lines: [String] { lock.withLock { kept } }

    /// Copies `source` to `target` until end of file, keeping whole lines (a partial line at the end too).
    func pass(from source: Int32, to target: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var partial: [UInt8] = []
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            var offset = 0
            while offset < count {
                let written = buffer.withUnsafeBytes { write(target, $0.baseAddress! + offset, count - offset) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { break }
                offset += written
            }
            for byte in buffer[..<count] {
                if byte == UInt8(ascii: "\n") {
                    keep(partial)
                    partial.removeAll(keepingCapacity: true)
                } else if partial.count < 4096 {
                    partial.append(byte)
                }
            }
        }
        if !partial.isEmpty { keep(partial) }
    }

    private func keep(_ bytes: [UInt8]) {
        let line = String(decoding: bytes, as: UTF8.self)
        lock.withLock {
            kept.append(line)
            if kept.count > limit { kept.removeFirst(kept.count - limit) }
        }
    }
}
