// Writing rank tables (the generator, atomic replacement) and OpenMPI hostfiles from them.

import Foundation
internal import StrictJSON
import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Generating tables

extension RankTable {
    /// The most ranks one server may hold, in a generated or a loaded table (rule 24): far above
    /// the cores of any CPU host, low enough that a typo cannot make a table of millions of ranks.
    package static let maximumRanksPerServer = 1024

    /// The JSON text of a table for `servers` with `ranksPerServer` CPU ranks each, as the
    /// reference `hccl_tools.py` + `merge_hccl.py` would write it: ranks numbered server-major in
    /// the given server order, every scalar a string, `status` last.
    ///
    /// Version 1.0 writes `server_list` with `device_id` 0..<ranksPerServer per server. A CPU rank has
    /// no Ascend NIC; on a multi-server table (where `device_ip` is required) each rank's
    /// `device_ip` is its server's IPv4 address, so the ranks of one server share it (the loader
    /// warns once per server). Version 1.1 writes `node_list` with host ranks (no `device_id`), the
    /// format HCCL itself uses for CPU ranks; `node_addr` must be an address.
    ///
    /// - Parameters:
    ///   - servers: host names (RFC 1123) or addresses, in rank order; names are resolved to IPv4
    ///     where the format needs an address.
    ///   - ranksPerServer: worker processes per server, `1...maximumRanksPerServer`.
    ///   - version: `.serverList` (1.0) or `.nodeList` (1.1).
    /// - Throws: ``RankTableError`` for an empty, repeated or malformed server, a name that does
    ///   not resolve, or a rank count out of range.
    package static func generateJSON(
        servers: [String], ranksPerServer: Int, version: Version = .serverList
    ) throws(RankTableError) -> String {
        try generateJSON(layout: servers.map { ($0, ranksPerServer) }, version: version)
    }

    /// The JSON text of a table whose servers may hold different numbers of ranks (a Slurm
    /// allocation's `2(x3),1`, a table with a server dropped); otherwise as
    /// ``generateJSON(servers:ranksPerServer:version:)``.
    ///
    /// - Parameter layout: each server with its rank count, in rank order.
    package static func generateJSON(
        layout: [(server: String, ranks: Int)], version: Version = .serverList
    ) throws(RankTableError) -> String {
        let file = "(generated)"
        let servers = layout.map(\.server)
        guard !servers.isEmpty else { throw RankTableError(.invalid, file: file, message: "no servers given") }
        if let wrong = layout.first(where: { !(1...maximumRanksPerServer).contains($0.ranks) }) {
            let which = Set(layout.map(\.ranks)).count == 1 ? "" : " for '\(wrong.server)'"
            throw RankTableError(
                .invalid, file: file,
                message: "ranks per server must be 1...\(maximumRanksPerServer), got \(wrong.ranks)\(which)")
        }
        if version != .nodeList, let other = layout.first(where: { $0.ranks != layout[0].ranks }) {
            throw RankTableError(
                .invalid, file: file,
                message: "a version \(version.rawValue) table needs the same number of ranks on every server "
                    + "(rule 13), but '\(other.server)' has \(other.ranks) and "
                    + "'\(layout[0].server)' \(layout[0].ranks); "
                    + "write version 1.1 (node_list) instead")
        }
        let firstRank = layout.indices.map { index in layout[..<index].reduce(0) { $0 + $1.ranks } }
        if let empty = servers.firstIndex(where: \.isEmpty) {
            throw RankTableError(.invalid, file: file, message: "server \(empty) has an empty name")
        }
        for server in servers {
            if let problem = HostName.problem(with: server) {
                let quoted = JSONValue.string(server).serialized
                throw RankTableError(
                    .invalid, file: file, message: "server \(quoted) is not a host name or an IP address: \(problem)")
            }
        }
        if let repeated = servers.enumerated().first(where: { servers[..<$0.offset].contains($0.element) }) {
            throw RankTableError(.invalid, file: file, message: "server '\(repeated.element)' is listed twice")
        }
        let needsAddresses = version == .nodeList || servers.count > 1
        var addresses: [String] = []
        if needsAddresses {
            for server in servers {
                guard let address = IPAddress.family(of: server) != nil ? server : IPAddress.resolveIPv4(server) else {
                    throw RankTableError(
                        .invalid, file: file,
                        message: "server '\(server)' does not resolve to an IPv4 address, which this table format "
                            + "needs; give its address")
                }
                addresses.append(address)
            }
        }
        func quoted(_ text: String) -> String { JSONValue.string(text).serialized }
        var lines: [String] = ["{", "  \"version\": \(quoted(version.rawValue)),"]
        switch version {
        case .serverList, .superPod:
            lines.append("  \"server_count\": \(quoted(String(servers.count))),")
            lines.append("  \"server_list\": [")
            for (serverIndex, server) in servers.enumerated() {
                lines.append("    {")
                lines.append("      \"server_id\": \(quoted(server)),")
                lines.append("      \"host_nic_ip\": \"reserve\",")
                lines.append("      \"device\": [")
                let ranksPerServer = layout[serverIndex].ranks
                for local in 0..<ranksPerServer {
                    var fields = ["\"device_id\": \(quoted(String(local)))"]
                    if needsAddresses { fields.append("\"device_ip\": \(quoted(addresses[serverIndex]))") }
                    fields.append("\"rank_id\": \(quoted(String(firstRank[serverIndex] + local)))")
                    let separator = local == ranksPerServer - 1 ? "" : ","
                    lines.append("        {\(fields.joined(separator: ", "))}\(separator)")
                }
                lines.append("      ]")
                lines.append("    }\(serverIndex == servers.count - 1 ? "" : ",")")
            }
            lines.append("  ],")
        case .nodeList:
            lines.append("  \"collective_id\": \"ghostnet-d\",")
            lines.append("  \"mode\": \"tcp\",")
            lines.append("  \"node_list\": [")
            for serverIndex in servers.indices {
                let ranks = (0..<layout[serverIndex].ranks).map {
                    "{\"rank_id\": \(quoted(String(firstRank[serverIndex] + $0)))}"
                }
                let separator = serverIndex == servers.count - 1 ? "" : ","
                lines.append(
                    "    {\"node_addr\": \(quoted(addresses[serverIndex])), \"ranks\": "
                        + "[\(ranks.joined(separator: ", "))]}\(separator)")
            }
            lines.append("  ],")
        }
        lines.append("  \"status\": \"completed\"")
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes `text` to `path` atomically: a temporary file in the same folder, then `rename`, so a
    /// reader polling the path never sees a partial table.
    package static func writeAtomically(_ text: String, to path: String) throws(RankTableError) {
        let target = URL(fileURLWithPath: path)
        let temporary = target.deletingLastPathComponent()
            .appendingPathComponent(".\(target.lastPathComponent).tmp-\(getpid())")
        do {
            try Data(text.utf8).write(to: temporary)
        } catch {
            throw RankTableError(
                .unreadable, file: path,
                message: "cannot write temporary file '\(temporary.path)': \(FileErrorText.reason(error))")
        }
        guard rename(temporary.path, target.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary.path)
            throw RankTableError(
                .unreadable, file: path, message: "cannot rename the temporary file into place: \(reason)")
        }
    }
}

// MARK: - OpenMPI hostfile

extension RankTable {
    /// An OpenMPI hostfile placing every rank on its server: one `host slots=K` line per server,
    /// in rank order.
    ///
    /// mpirun maps ranks by slot, filling the first line's host with ranks `0..<K`, then the next;
    /// so this is exact only when each server holds one contiguous block of rank ids.
    ///
    /// A loaded table has passed rule 21, but a table built in code has not, so every host is
    /// checked again here: a name with a space, newline, `=` or leading `-` would add hosts, slot
    /// counts or options to what mpirun and ssh read.
    ///
    /// - Throws: ``RankTableError`` when a server's ranks are not contiguous, or a server is not a
    ///   host name or an IP address.
    package func hostfile(file: String) throws(RankTableError) -> String {
        for server in servers {
            if let problem = HostName.problem(with: server.id) {
                throw RankTableError(
                    .invalid, file: file,
                    message: "server \(JSONValue.string(server.id).serialized) is not a host name or an IP address "
                        + "(\(problem)); refusing to write it into a hostfile")
            }
        }
        guard hasContiguousServerBlocks else {
            let server = servers.first { server in
                let ids = server.ranks.map(\.id).sorted()
                return ids != Array(ids[0]..<ids[0] + ids.count)
            }!
            throw RankTableError(
                .invalid, file: file,
                message: "server '\(server.id)' ranks are not one contiguous block, "
                    + "so an OpenMPI hostfile (by-slot mapping) "
                    + "cannot place them; renumber the table server-major")
        }
        return
            servers
            .sorted { $0.ranks.map(\.id).min()! < $1.ranks.map(\.id).min()! }
            .map { "\($0.id) slots=\($0.ranks.count)\n" }
            .joined()
    }
}
