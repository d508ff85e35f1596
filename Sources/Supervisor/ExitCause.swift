// Why one start of a job ended, read from mpirun's exit status and its output (OpenMPI 4's
// "exited on signal", "Exit code", MPI_ABORT and lost-daemon messages, the workers' error lines):
// the input of the restart decision, and the line the restart log shows for it.

import Distributed
import Foundation
import Training

/// How a started process ended, as `waitpid` reports it.
package enum Termination: Sendable, Equatable {
    case exited(Int32)
    case signalled(Int32)
}

/// Why one start of the job ended, and whether starting it again can end differently.
package struct ExitCause: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        /// Every rank finished.
        case finished
        /// The ranks stopped at a step boundary after SIGTERM/SIGUSR1 and wrote a checkpoint.
        case preempted
        /// A rank ended with one of the worker's own statuses (``WorkerExitStatus``).
        case worker(WorkerExitStatus)
        /// A rank was killed by a signal (SIGKILL from the kernel's OOM killer or an operator).
        case signal(Int32)
        /// mpirun lost a server's daemon, or could not start one there.
        case serverLost
        /// Any other status: a crash before the worker could classify it, a failure of mpirun.
        case unknown(Int32)
    }

    package var kind: Kind
    /// The global rank mpirun blamed, when it named one.
    package var rank: Int?
    /// The server blamed: the rank's server in the table, or the host of a lost daemon.
    package var server: String?
    /// The first error line of the workers' output (their own message), when there is one.
    package var message: String?

    package init(_ kind: Kind, rank: Int? = nil, server: String? = nil, message: String? = nil) {
        self.kind = kind
        self.rank = rank
        self.server = server
        self.message = message
    }

    /// Signals a program raises on itself when it traps (a Swift runtime failure is SIGILL on
    /// x86-64, SIGTRAP on arm64, a failed C assertion SIGABRT): the same input traps again.
    static let trapSignals: Set<Int32> = [4, 5, 6]

    /// Whether a new start can end differently: a lost rank, server or connection can; a wrong
    /// configuration, bad data, a diverged loss, a full disk or a program trap cannot.
    package var isRestartable: Bool {
        switch kind {
        case .finished, .preempted: false
        case .worker(let status): status.isRestartable
        case .signal(let signal): !Self.trapSignals.contains(signal)
        case .serverLost, .unknown: true
        }
    }

    /// One line for the restart log, e.g. `rank 1 on '10.0.0.2' killed by signal 9 (SIGKILL)`.
    package var summary: String {
        var subject = rank.map { "rank \($0)" } ?? "the job"
        if let server { subject += " on '\(server)'" }
        let what: String
        switch kind {
        case .finished: return "finished"
        case .preempted: return "preempted: the ranks checkpointed and stopped"
        case .worker(let status): what = "exited \(status.rawValue) (\(status.name))"
        case .signal(let signal): what = "killed by signal \(signal) (\(Self.signalName(signal)))"
        case .serverLost:
            return server.map { "server '\($0)' lost: mpirun lost its daemon there or could not start one" }
                ?? "a server was lost: mpirun lost or could not start one of its daemons (no host named)"
        case .unknown(let status): what = "exited \(status)"
        }
        return subject + " " + what + (message.map { ": \($0)" } ?? "")
    }

    /// The short name of a signal number.
    package static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            1: "SIGHUP", 2: "SIGINT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
            9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 15: "SIGTERM",
        ]
        return names[signal] ?? "signal \(signal)"
    }
}

extension WorkerExitStatus {
    /// The status's name in docs/RELIABILITY.md's table, e.g. `nonFinite`.
    package var name: String { "\(self)" }
}

// MARK: - Classification

extension ExitCause {
    /// Reads how a start ended from the process's termination and the last lines of its output.
    ///
    /// mpirun reports the first rank that failed: "mpirun noticed that process rank R with PID P
    /// on node H exited on signal S", or "Process name: [[J,1],R]" followed by "Exit code: C", or
    /// "MPI_ABORT was invoked on rank R … with errorcode C"; a server it cannot reach shows as "ORTE
    /// has lost communication with a remote daemon" (naming the remote node) or "ORTE was unable to
    /// reliably start one or more daemons". Without mpirun (one process) the status is the worker's.
    ///
    /// - Parameters:
    ///   - termination: mpirun's (or the single worker's) end.
    ///   - output: its standard output and error lines, oldest first (a tail is enough).
    ///   - table: the rank table the start used, to name a blamed rank's server.
    package static func classify(termination: Termination, output: [String], table: RankTable?) -> ExitCause {
        let message = firstErrorMessage(in: output)
        func server(ofRank rank: Int?) -> String? {
            guard let rank, let table, (0..<table.rankCount).contains(rank) else { return nil }
            return table.servers[table.rank(rank).serverIndex].id
        }
        if termination == .exited(0) { return ExitCause(.finished) }
        if let host = lostDaemonHost(in: output) {
            return ExitCause(.serverLost, server: host.flatMap { matchServer($0, in: table) } ?? host, message: message)
        }
        // A killed rank says nothing itself; the others' errors are about losing it.
        if let (rank, signal) = rankSignal(in: output) {
            return ExitCause(.signal(signal), rank: rank, server: server(ofRank: rank))
        }
        let reported = rankExitCode(in: output)
        let status: Int32
        switch termination {
        case .signalled(let signal):
            let rank = reported?.rank
            return ExitCause(.signal(signal), rank: rank, server: server(ofRank: rank))
        case .exited(let code): status = reported?.code ?? code
        }
        let kind: Kind =
            switch WorkerExitStatus(rawValue: status) {
            case .finished?: .unknown(status)
            case .preempted?: .preempted
            case let known?: .worker(known)
            case nil: .unknown(status)
            }
        return ExitCause(kind, rank: reported?.rank, server: server(ofRank: reported?.rank), message: message)
    }

    /// The table's server named `host`, or the only server of a one-server table (mpirun names
    /// the local node by its host name, which the table may spell as an address).
    private static func matchServer(_ host: String, in table: RankTable?) -> String? {
        guard let table else { return nil }
        if let named = table.servers.first(where: { $0.id == host }) { return named.id }
        return table.servers.count == 1 ? table.servers[0].id : nil
    }

    /// `(rank, signal)` of "… process rank R with PID P on node H exited on signal S …".
    static func rankSignal(in output: [String]) -> (rank: Int, signal: Int32)? {
        for line in output {
            guard let rankText = line.text(after: "process rank ", upTo: " "),
                let signalText = line.text(after: "exited on signal ", upTo: " "),
                let rank = Int(rankText), let signal = Int32(signalText)
            else { continue }
            return (rank, signal)
        }
        return nil
    }

    /// `(rank, code)` of a "Process name: [[J,1],R]" … "Exit code: C" report, or of an
    /// "MPI_ABORT was invoked on rank R" … "with errorcode C." report.
    static func rankExitCode(in output: [String]) -> (rank: Int?, code: Int32)? {
        var rank: Int?
        for line in output {
            // `Process name: [[JOB,1],RANK]`
            if let name = line.text(after: "Process name: [[", upTo: nil), let last = name.split(separator: ",").last {
                rank = Int(last.filter(\.isNumber))
            } else if let aborted = line.text(after: "MPI_ABORT was invoked on rank ", upTo: " ") {
                rank = Int(aborted)
            }
            if let code = line.text(after: "Exit code:", upTo: nil) ?? line.text(after: "with errorcode ", upTo: ".") {
                if let value = Int32(code.trimmingCharacters(in: .whitespaces)) { return (rank, value) }
            }
        }
        return nil
    }

    /// The remote host of a lost or unstartable ORTE daemon: `.some(host)` when a line names it,
    /// `.some(nil)` when mpirun reports the loss without a host, nil when nothing was lost.
    static func lostDaemonHost(in output: [String]) -> String?? {
        let markers = [
            "lost communication with a remote daemon", "unable to reliably start one or more daemons",
            "daemon has unexpectedly failed", "ORTE does not know how to route a message",
        ]
        guard output.contains(where: { line in markers.contains { line.contains($0) } }) else { return nil }
        for line in output {
            if line.contains("Remote daemon"), let host = line.text(after: " on node ", upTo: nil) {
                return .some(host.trimmingCharacters(in: .whitespaces))
            }
            let named = line.text(after: "Remote host:", upTo: nil) ?? line.text(after: "resolve hostname ", upTo: ":")
            if let host = named {
                return .some(host.trimmingCharacters(in: .whitespaces))
            }
        }
        return .some(nil)
    }

    /// The workers' own account of the failure: rank 0's `ERROR` log line, else another rank's
    /// `error: rank R: …`, else an argument error `Error: …`, without the timestamp.
    package static func firstErrorMessage(in output: [String]) -> String? {
        if let line = output.first(where: { $0.contains(" ERROR ") }) { return line.text(after: " ERROR ", upTo: nil) }
        if let line = output.first(where: { $0.hasPrefix("error: rank ") }) { return String(line.dropFirst(7)) }
        if let line = output.first(where: { $0.hasPrefix("Error: ") }) { return String(line.dropFirst(7)) }
        return nil
    }
}

extension String {
    /// The text between the first `start` and the next `end` after it (to the end of the line
    /// when `end` is nil), or nil when `start` or `end` does not occur.
    func text(after start: String, upTo end: String?) -> String? {
        guard let from = range(of: start)?.upperBound else { return nil }
        guard let end else { return String(self[from...]) }
        guard let to = self[from...].range(of: end)?.lowerBound else { return nil }
        return String(self[from..<to])
    }
}
