// Who this worker is: the launch environment (variables, host, cores) and the rank identity resolved from
// MPI, the environment and the rank table, cross-checked before any collective runs.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a worker process knows about how it was started: environment variables, host name and
/// addresses, core count. Tests build one by hand; ``current`` reads the real process.
package struct LaunchEnvironment: Sendable {
    package var variables: [String: String]
    package var hostName: String
    /// This host's numeric interface addresses (IPv4 and IPv6, loopback included).
    package var hostAddresses: [String]
    /// Cores this process may run on.
    package var processorCount: Int

    package init(variables: [String: String], hostName: String, hostAddresses: [String], processorCount: Int) {
        self.variables = variables
        self.hostName = hostName
        self.hostAddresses = hostAddresses
        self.processorCount = processorCount
    }

    /// The running process's environment.
    package static var current: LaunchEnvironment {
        LaunchEnvironment(
            variables: ProcessInfo.processInfo.environment,
            hostName: ProcessInfo.processInfo.hostName,
            hostAddresses: interfaceAddresses(),
            processorCount: ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Whether OpenMPI's launcher started this process: `mpirun` sets `OMPI_COMM_WORLD_SIZE` and
    /// `OMPI_COMM_WORLD_RANK` for every rank. Without them the process runs alone and MPI is not
    /// initialised at all (a singleton `MPI_Init` works but starts a runtime daemon, which is slow).
    package var isUnderMPILauncher: Bool {
        variables["OMPI_COMM_WORLD_SIZE"] != nil && variables["OMPI_COMM_WORLD_RANK"] != nil
    }

    private static func interfaceAddresses() -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var addresses: [String] = []
        var entry = list
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            guard let address = current.pointee.ifa_addr else { continue }
            let family = Int32(address.pointee.sa_family)
            guard family == AF_INET || family == AF_INET6 else { continue }
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
            if getnameinfo(address, length, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 {
                addresses.append(String(filledCBuffer: text).split(separator: "%").first.map(String.init) ?? "")
            }
        }
        return addresses
    }
}

/// A worker's place in the job: its global rank, the world size, its server and device.
package struct RankIdentity: Sendable, Equatable {
    /// The global rank, the table's `rank_id`.
    package var rank: Int
    /// The number of ranks.
    package var worldSize: Int
    /// The 0-based index of this rank's server in the table (`SERVER_ID`), or 0 without a table.
    package var serverIndex: Int
    /// The table's `server_id` / `node_addr`, or this host's name without a table.
    package var serverName: String
    /// The device this rank stands for (`DEVICE_ID`): the table's `device_id`, else its position
    /// among the ranks of its server.
    package var deviceID: Int
    /// How many ranks share this rank's server (divides the cores among them).
    package var ranksOnServer: Int
    /// This host's name.
    package var hostName: String
    /// Non-fatal findings (DEVICE_ID mismatch, host not matching its server, table warnings).
    package var warnings: [String]

    /// Works out this process's identity and cross-checks every source (rules 17-20 of
    /// docs/RANKTABLE.md) before any collective runs.
    ///
    /// Under mpirun the MPI world rank (plus `RANK_OFFSET`) is the rank; otherwise `RANK_ID`
    /// (default 0). Errors: world size, `RANK_SIZE` or the rank outside the table's rank count,
    /// `RANK_ID` different from the MPI rank, a host that is another server of the table than the
    /// rank's (a hostfile out of table order). Warnings: `DEVICE_ID` different from the table's
    /// device, a host whose name and addresses match no server of the table.
    ///
    /// - Parameter table: the rank table, if the job has one.
    package static func resolve(
        table: RankTable?, environment: LaunchEnvironment
    ) throws(RankIdentityError) -> RankIdentity {
        let variables = environment.variables
        func number(_ name: String) throws(RankIdentityError) -> Int? {
            guard let text = variables[name] else { return nil }
            guard !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let value = Int(text) else {
                throw RankIdentityError("\(name)='\(text)' is not a non-negative decimal integer")
            }
            return value
        }
        let rankID = try number("RANK_ID")
        let rankSize = try number("RANK_SIZE")
        let rank: Int
        let worldSize: Int
        if environment.isUnderMPILauncher {
            guard let mpiRank = try number("OMPI_COMM_WORLD_RANK"), let mpiSize = try number("OMPI_COMM_WORLD_SIZE")
            else {
                throw RankIdentityError("OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE are not set by the launcher")
            }
            let offset = try number("RANK_OFFSET") ?? 0
            rank = mpiRank + offset
            worldSize = mpiSize
            if let rankID, rankID != rank {
                let offsetNote = offset == 0 ? "" : " (MPI rank \(mpiRank) + RANK_OFFSET \(offset))"
                throw RankIdentityError(
                    "MPI rank \(rank)\(offsetNote) ≠ RANK_ID \(rankID); unset RANK_ID under mpirun or fix it")
            }
        } else {
            rank = rankID ?? 0
            worldSize = 1
        }
        let rankCount = table?.rankCount ?? worldSize
        guard rank < rankCount else {
            throw RankIdentityError(
                table == nil
                    ? "RANK_ID=\(rank) but this process runs alone (world size 1)"
                    : "RANK_ID=\(rank) is outside the rank table's 0..\(rankCount - 1)")
        }
        if let rankSize, rankSize != rankCount {
            throw RankIdentityError(
                table == nil
                    ? "RANK_SIZE=\(rankSize) but the world has \(worldSize) rank(s)"
                    : "RANK_SIZE=\(rankSize) but the rank table defines \(rankCount) ranks")
        }
        guard worldSize == rankCount else {
            throw RankIdentityError(
                environment.isUnderMPILauncher
                    ? "MPI world size \(worldSize) ≠ the rank table's \(rankCount) ranks; start one process per rank "
                        + "(mpirun -np \(rankCount))"
                    : "the rank table defines \(rankCount) ranks "
                        + "but this process was not started by mpirun (world size 1); "
                        + "launch it with deploy/run_distributed.sh")
        }

        var warnings = table?.warnings ?? []
        guard let table else {
            let localRank = try number("OMPI_COMM_WORLD_LOCAL_RANK") ?? 0
            return RankIdentity(
                rank: rank, worldSize: worldSize, serverIndex: 0, serverName: environment.hostName,
                deviceID: localRank, ranksOnServer: try number("OMPI_COMM_WORLD_LOCAL_SIZE") ?? 1,
                hostName: environment.hostName, warnings: warnings)
        }
        let entry = table.rank(rank)
        let server = table.servers[entry.serverIndex]
        let deviceID = entry.deviceID ?? server.ranks.firstIndex { $0.id == rank }!
        if let environmentDevice = try number("DEVICE_ID"), environmentDevice != deviceID {
            warnings.append("DEVICE_ID=\(environmentDevice) but rank \(rank) is device \(deviceID) on '\(server.id)'")
        }
        let shortName = environment.hostName.split(separator: ".").first.map(String.init) ?? environment.hostName
        let names = Set([environment.hostName, shortName] + environment.hostAddresses)
        func isThisHost(_ candidate: RankTable.Server) -> Bool {
            let candidateShortName =
                IPAddress.family(of: candidate.id) == nil
                ? candidate.id.split(separator: ".").first.map(String.init) ?? candidate.id : candidate.id
            return !names.isDisjoint(with: [candidate.id, candidateShortName] + [candidate.hostIP].compactMap { $0 })
        }
        if !isThisHost(server) {
            // This host is another server of the table: the launcher placed the rank wrongly (a
            // hostfile out of table order), and its device, thread and data-shard choices would be
            // another server's. A host matching no server may just be named differently: warn only.
            if let hostServer = table.servers.firstIndex(where: isThisHost) {
                throw RankIdentityError(
                    "rank \(rank) belongs to server '\(server.id)' (server \(entry.serverIndex) of the rank table) "
                        + "but runs on this host ('\(environment.hostName)'), "
                        + "which is server '\(table.servers[hostServer].id)' (server \(hostServer)); "
                        + "check the hostfile order: it must list the servers in rank-table order "
                        + "(ghostnet-d ranktable hostfile)")
            }
            warnings.append(
                "this host ('\(environment.hostName)', addresses "
                    + "\(environment.hostAddresses.joined(separator: ", "))) does not match "
                    + "server '\(server.id)' of rank \(rank); check the hostfile order")
        }
        return RankIdentity(
            rank: rank, worldSize: worldSize, serverIndex: entry.serverIndex, serverName: server.id, deviceID: deviceID,
            ranksOnServer: server.ranks.count, hostName: environment.hostName, warnings: warnings)
    }

    /// OpenBLAS threads when nothing overrides them: this server's cores shared by its ranks, at
    /// least one.
    package func defaultOpenBLASThreads(processorCount: Int) -> Int {
        Self.defaultOpenBLASThreads(processorCount: processorCount, ranksOnServer: ranksOnServer)
    }

    /// `processorCount` cores shared by `ranksOnServer` ranks, at least one each.
    package static func defaultOpenBLASThreads(processorCount: Int, ranksOnServer: Int) -> Int {
        max(1, processorCount / max(ranksOnServer, 1))
    }

    /// The conventional variables children of this worker expect (the worker launch exports them).
    package var exportedVariables: [(name: String, value: String)] {
        [
            ("RANK_ID", "\(rank)"), ("RANK_SIZE", "\(worldSize)"), ("DEVICE_ID", "\(deviceID)"),
            ("SERVER_ID", "\(serverIndex)"),
        ]
    }

    /// The one-line summary each worker logs, e.g.
    /// `rank 1/2 server 0 '127.0.0.1' device 1 host node7 openblas Haswell×1`.
    package func summary(openBLASKernel: String, openBLASThreads: Int) -> String {
        "rank \(rank)/\(worldSize) server \(serverIndex) '\(serverName)' device \(deviceID) host \(hostName) "
            + "openblas \(openBLASKernel)×\(openBLASThreads)"
    }
}

/// A worker whose identity contradicts its rank table or launcher; the job must not start.
package struct RankIdentityError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
}
