// Which servers of the rank table a launch still starts the job on: a server whose ranks failed in
// two starts in a row, or that does not answer a probe, is dropped; one dropped for not answering
// is taken back at the first restart where it answers again.

/// The bookkeeping behind shrinking past a lost server.
///
/// Only a table with more than one server shrinks, and never to no server: the last server is
/// kept whatever happens (the restart budget then ends the launch).
package struct ServerHealth: Sendable, Equatable {
    package enum DropReason: Sendable, Equatable {
        /// Its ranks ended two starts in a row; it stays out for the rest of this launch.
        case failedTwice
        /// It did not answer the probe; it returns once it answers.
        case noAnswer
    }

    /// What changed after a start or a round of probes, for the restart log.
    package enum Change: Sendable, Equatable {
        case dropped(String, DropReason)
        case returned(String)
    }

    /// The table's servers, in rank order.
    package let servers: [String]
    /// Consecutive starts that ended by a failure blamed on each server.
    package private(set) var consecutiveFailures: [String: Int] = [:]
    package private(set) var dropped: [String: DropReason] = [:]

    package init(servers: [String]) {
        self.servers = servers
    }

    /// The servers the next start runs on, in rank order.
    package var active: [String] { servers.filter { dropped[$0] == nil } }

    /// Counts a start that ended with `cause`: the blamed server's count grows (and at two it is
    /// dropped), every other server's count restarts at 0. A start that did not fail, or failed
    /// without naming a server, resets nothing and blames no one.
    package mutating func record(_ cause: ExitCause) -> [Change] {
        guard cause.isRestartable, let blamed = cause.server, servers.contains(blamed), dropped[blamed] == nil else {
            return []
        }
        for server in servers where server != blamed { consecutiveFailures[server] = 0 }
        let count = (consecutiveFailures[blamed] ?? 0) + 1
        consecutiveFailures[blamed] = count
        guard count >= 2 else { return [] }
        return drop(blamed, .failedTwice)
    }

    /// The servers to probe before a restart: every active one and every one dropped for not
    /// answering (a table of one server is not probed).
    package var serversToProbe: [String] {
        guard servers.count > 1 else { return [] }
        return servers.filter { dropped[$0] == nil || dropped[$0] == .noAnswer }
    }

    /// Takes a probe's result: an active server that did not answer is dropped, a server dropped
    /// for not answering that answers again is taken back.
    package mutating func record(probeOf server: String, answered: Bool) -> [Change] {
        switch (dropped[server], answered) {
        case (nil, false):
            return drop(server, .noAnswer)
        case (.noAnswer?, true):
            dropped[server] = nil
            consecutiveFailures[server] = 0
            return [.returned(server)]
        default:
            return []
        }
    }

    private mutating func drop(_ server: String, _ reason: DropReason) -> [Change] {
        guard active.count > 1 else { return [] }
        dropped[server] = reason
        return [.dropped(server, reason)]
    }
}
