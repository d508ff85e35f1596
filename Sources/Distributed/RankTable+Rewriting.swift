// A rank table without some of its servers: what `ghostnet-d launch` writes when it drops a server
// that failed twice in a row or stopped answering. The version stays; the ranks are renumbered.

extension RankTable {
    /// The servers in rank order (by their lowest rank id), each with its rank count: the layout
    /// ``generateJSON(layout:version:)`` writes and an OpenMPI hostfile fills slot by slot.
    package var layout: [(server: String, ranks: Int)] {
        servers
            .sorted { ($0.ranks.map(\.id).min() ?? 0) < ($1.ranks.map(\.id).min() ?? 0) }
            .map { (server: $0.id, ranks: $0.ranks.count) }
    }

    /// The JSON text of this table without the servers in `dropped`: the other servers keep their
    /// order and rank counts, their ranks are numbered server-major from 0, and the version is
    /// this table's (a 1.2 table is written as 1.2 `server_list`, without `super_pod_list`).
    ///
    /// - Parameters:
    ///   - dropped: `server_id` / `node_addr` values of servers to leave out.
    ///   - file: the table's path, for messages.
    /// - Throws: ``RankTableError`` when a dropped name is not a server of the table, or when no
    ///   server would remain.
    package func jsonWithout(servers dropped: Set<String>, file: String) throws(RankTableError) -> String {
        let known = Set(servers.map(\.id))
        if let unknown = dropped.sorted().first(where: { !known.contains($0) }) {
            let names = servers.map(\.id).joined(separator: ", ")
            throw RankTableError(
                .invalid, file: file, message: "cannot drop server '\(unknown)': the table's servers are \(names)")
        }
        let remaining = layout.filter { !dropped.contains($0.server) }
        guard !remaining.isEmpty else {
            throw RankTableError(.invalid, file: file, message: "dropping \(dropped.sorted()) would leave no server")
        }
        return try Self.generateJSON(layout: remaining, version: version)
    }
}
