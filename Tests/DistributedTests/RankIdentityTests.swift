// Resolving a rank's identity from MPI, the environment and the rank table: server and device choice, the
// fail-fast cross-checks, and the mismatches that are only warnings.

import Distributed
import Testing

@Suite struct RankIdentityTests {
    /// 2 servers × 2 ranks, server-major.
    let table: RankTable = try! RankTable.parse(
        Array(RankTable.generateJSON(servers: ["10.0.0.1", "10.0.0.2"], ranksPerServer: 2).utf8), file: "t.json")

    func environment(_ variables: [String: String], host: String = "node2", addresses: [String] = ["10.0.0.2"])
        -> LaunchEnvironment
    {
        LaunchEnvironment(
            variables: variables, hostName: host, hostAddresses: ["127.0.0.1"] + addresses, processorCount: 8)
    }

    func mpi(rank: Int, size: Int, _ extra: [String: String] = [:]) -> [String: String] {
        ["OMPI_COMM_WORLD_RANK": "\(rank)", "OMPI_COMM_WORLD_SIZE": "\(size)"].merging(extra) { $1 }
    }

    func expectFailure(
        _ variables: [String: String], _ message: String, table: RankTable?,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            _ = try RankIdentity.resolve(table: table, environment: environment(variables))
            Issue.record("accepted; expected \(message)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.description.contains(message), "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func mpiRankSelectsServerAndDevice() throws {
        let identity = try RankIdentity.resolve(table: table, environment: environment(mpi(rank: 3, size: 4)))
        #expect(identity.rank == 3)
        #expect(identity.worldSize == 4)
        #expect(identity.serverIndex == 1)
        #expect(identity.serverName == "10.0.0.2")
        #expect(identity.deviceID == 1)
        #expect(identity.ranksOnServer == 2)
        #expect(identity.defaultOpenBLASThreads(processorCount: 8) == 4)
        #expect(identity.warnings.count == 2, "only the table's shared-device_ip warnings: \(identity.warnings)")
        #expect(identity.exportedVariables.map(\.value) == ["3", "4", "1", "1"])
        #expect(
            identity.summary(openBLASKernel: "Haswell", openBLASThreads: 4)
                == "rank 3/4 server 1 '10.0.0.2' device 1 host node2 openblas Haswell×4")
    }

    @Test func crossChecksFailFast() {
        expectFailure(
            mpi(rank: 0, size: 2),
            "MPI world size 2 ≠ the rank table's 4 ranks; start one process per rank (mpirun -np 4)", table: table)
        expectFailure(
            mpi(rank: 1, size: 4, ["RANK_SIZE": "16"]), "RANK_SIZE=16 but the rank table defines 4 ranks", table: table)
        expectFailure(mpi(rank: 3, size: 4, ["RANK_ID": "5"]), "MPI rank 3 ≠ RANK_ID 5", table: table)
        expectFailure(
            mpi(rank: 3, size: 4, ["RANK_OFFSET": "2"]), "RANK_ID=5 is outside the rank table's 0..3", table: table)
        expectFailure(["RANK_ID": "8"], "RANK_ID=8 is outside the rank table's 0..3", table: table)
        expectFailure(["RANK_ID": "x"], "RANK_ID='x' is not a non-negative decimal integer", table: table)
        expectFailure(
            ["RANK_ID": "1"], "the rank table defines 4 ranks but this process was not started by mpirun", table: table)
        expectFailure(["RANK_ID": "1"], "RANK_ID=1 but this process runs alone (world size 1)", table: nil)
    }

    @Test func deviceAndHostMismatchesAreWarnings() throws {
        let identity = try RankIdentity.resolve(
            table: table,
            environment: environment(mpi(rank: 1, size: 4, ["DEVICE_ID": "0"]), host: "node1", addresses: []))
        #expect(identity.warnings.contains("DEVICE_ID=0 but rank 1 is device 1 on '10.0.0.1'"), "\(identity.warnings)")
        #expect(
            identity.warnings.contains {
                $0.contains("does not match server '10.0.0.1' of rank 1; check the hostfile order")
            })
    }

    /// A swapped hostfile puts rank 1 (server 10.0.0.1) on the host that is server 10.0.0.2.
    @Test func aRankOnAnotherServerOfTheTableFailsFast() {
        do {
            _ = try RankIdentity.resolve(table: table, environment: environment(mpi(rank: 1, size: 4)))
            Issue.record("accepted a rank placed on another server of the table")
        } catch {
            #expect(
                error.description
                    == "rank 1 belongs to server '10.0.0.1' (server 0 of the rank table) but runs on this host ('node2'), "
                    + "which is server '10.0.0.2' (server 1); check the hostfile order: it must list the servers in "
                    + "rank-table order "
                    + "(ghostnet-d ranktable hostfile)")
        }
    }

    @Test func withoutMPIOrTableTheProcessIsRankZeroOfOne() throws {
        let identity = try RankIdentity.resolve(table: nil, environment: environment([:]))
        #expect(identity.rank == 0)
        #expect(identity.worldSize == 1)
        #expect(identity.defaultOpenBLASThreads(processorCount: 8) == 8)
    }

    @Test func nodeListHostRanksUseTheirPositionAsDevice() throws {
        let nodeTable = try RankTable.parse(
            Array(
                RankTable.generateJSON(servers: ["10.0.0.1", "10.0.0.2"], ranksPerServer: 3, version: .nodeList).utf8),
            file: "n.json")
        let identity = try RankIdentity.resolve(table: nodeTable, environment: environment(mpi(rank: 4, size: 6)))
        #expect(identity.deviceID == 1)
        #expect(identity.serverIndex == 1)
        #expect(identity.warnings.isEmpty, "\(identity.warnings)")
    }
}
