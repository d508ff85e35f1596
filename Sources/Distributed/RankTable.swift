// `RankTable`, the one in-memory model of an HCCL-style rank table (servers and their ranks) that all three
// file versions load into; reading is in RankTable+Loading.swift and RankTableValidator.swift, writing in
// RankTable+Writing.swift.

/// An HCCL-style rank table: which servers take part in a job and which global ranks run on each.
///
/// Three variants are read (see `RankTableValidator.swift` and the format in docs/RANKTABLE.md):
/// version `"1.0"` and `"1.2"` list servers in `server_list` with one `device` entry per rank;
/// version `"1.1"` lists nodes in `node_list` with host (CPU) `ranks`.
/// Both become the same model: servers in file order, each holding its ranks in file order.
package struct RankTable: Sendable, Equatable {
    /// The table format versions this loader accepts.
    package enum Version: String, Sendable, CaseIterable {
        /// `server_list` of servers with `device` entries, the format every generator writes.
        case serverList = "1.0"
        /// `node_list` of nodes with host `ranks` (HCCL's heterogeneous format).
        case nodeList = "1.1"
        /// `server_list` plus super-pod information (Atlas A3).
        case superPod = "1.2"
    }

    /// One global rank (one worker process).
    package struct Rank: Sendable, Equatable {
        /// The global rank, `0..<rankCount`.
        package var id: Int
        /// The table's `device_id` for this rank; `nil` for a 1.1 host rank without one.
        package var deviceID: Int?
        /// The index of the rank's server in ``RankTable/servers``.
        package var serverIndex: Int
        /// Where the rank is defined, e.g. `server_list[1].device[0]`.
        package var jsonPath: String
    }

    /// One host (a `server_list` entry or a `node_list` node).
    package struct Server: Sendable, Equatable {
        /// `server_id` (1.0/1.2) or `node_addr` (1.1): the host name or address mpirun reaches.
        package var id: String
        /// The optional `host_ip` of a 1.0/1.2 server.
        package var hostIP: String?
        /// The server's ranks in file order.
        package var ranks: [Rank]
    }

    /// The format the table was written in.
    package var version: Version
    /// The servers in file order.
    package var servers: [Server]
    /// Non-fatal findings: layout a launch script would mis-assign, Ascend-only rules that do not
    /// apply to CPU ranks, a missing 1.2 `super_pod_list`.
    package var warnings: [String]

    /// The number of ranks, N; rank ids are exactly `0..<N`.
    package var rankCount: Int { servers.reduce(0) { $0 + $1.ranks.count } }

    /// Every rank ordered by id.
    package var ranksByID: [Rank] {
        servers.flatMap(\.ranks).sorted { $0.id < $1.id }
    }

    /// The rank with `id`.
    ///
    /// - Precondition: `0 <= id < rankCount`.
    package func rank(_ id: Int) -> Rank {
        precondition((0..<rankCount).contains(id), "rank \(id) is outside the table's 0..\(rankCount - 1)")
        return ranksByID[id]
    }

    /// Whether every server's ranks form one contiguous block of ids, the layout mpirun's by-slot
    /// mapping of a hostfile produces.
    package var hasContiguousServerBlocks: Bool {
        servers.allSatisfy { server in
            let ids = server.ranks.map(\.id).sorted()
            guard let first = ids.first else { return false }
            return ids == Array(first..<first + ids.count)
        }
    }
}

extension RankTable: CustomStringConvertible {
    /// The table as servers → ranks, one server per line, e.g.
    /// `server 0 '10.0.0.1': ranks 0-7 (devices 0-7)`.
    package var description: String {
        var lines = ["rank table version \(version.rawValue): \(servers.count) server(s), \(rankCount) rank(s)"]
        for (index, server) in servers.enumerated() {
            let ranks = server.ranks.map { rank in
                rank.deviceID.map { "\(rank.id) (device \($0))" } ?? "\(rank.id) (host)"
            }
            lines.append("  server \(index) '\(server.id)': ranks \(ranks.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }
}
