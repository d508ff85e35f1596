// Rank tables without a dropped server (version kept, ranks renumbered server-major), tables from
// recorded Slurm environments, and the mpirun and worker command lines the supervisor builds.

import Distributed
import Supervisor
import Testing

@Suite struct RankTableRewritingTests {
    func parse(_ text: String) throws -> RankTable { try RankTable.parse(Array(text.utf8), file: "t.json") }

    @Test(arguments: [RankTable.Version.serverList, .nodeList])
    func droppingTheFirstServerRenumbersTheRest(version: RankTable.Version) throws {
        let table = try parse(
            RankTable.generateJSON(servers: ["10.0.0.1", "10.0.0.2", "10.0.0.3"], ranksPerServer: 2, version: version))
        let shrunk = try parse(table.jsonWithout(servers: ["10.0.0.1"], file: "t.json"))
        #expect(shrunk.version == version)
        #expect(shrunk.servers.map(\.id) == ["10.0.0.2", "10.0.0.3"])
        #expect(shrunk.rankCount == 4)
        #expect(shrunk.ranksByID.map(\.serverIndex) == [0, 0, 1, 1])
        #expect(try shrunk.hostfile(file: "t.json") == "10.0.0.2 slots=2\n10.0.0.3 slots=2\n")
    }

    @Test func droppingTheMiddleOfAnUnevenTableKeepsEachServersRankCount() throws {
        let layout = [("10.0.0.1", 3), ("10.0.0.2", 1), ("10.0.0.3", 2)]
        #expect(throws: RankTableError.self) { try RankTable.generateJSON(layout: layout, version: .serverList) }
        let table = try parse(RankTable.generateJSON(layout: layout, version: .nodeList))
        #expect(table.version == .nodeList)
        let shrunk = try parse(table.jsonWithout(servers: ["10.0.0.2"], file: "t.json"))
        #expect(shrunk.layout.map(\.server) == ["10.0.0.1", "10.0.0.3"])
        #expect(shrunk.layout.map(\.ranks) == [3, 2])
        #expect(shrunk.ranksByID.map(\.id) == Array(0..<5))
    }

    @Test func aTwoServerTableShrinksToOneWithoutAddresses() throws {
        let table = try parse(RankTable.generateJSON(servers: ["10.77.0.1", "10.77.0.2"], ranksPerServer: 1))
        let text = try table.jsonWithout(servers: ["10.77.0.2"], file: "t.json")
        #expect(!text.contains("device_ip"))
        #expect(try parse(text).servers.map(\.id) == ["10.77.0.1"])
    }

    @Test func unknownOrAllServersAreRefused() throws {
        let table = try parse(RankTable.generateJSON(servers: ["10.0.0.1", "10.0.0.2"], ranksPerServer: 1))
        #expect(throws: RankTableError.self) { try table.jsonWithout(servers: ["10.0.0.9"], file: "t.json") }
        #expect(throws: RankTableError.self) {
            try table.jsonWithout(servers: ["10.0.0.1", "10.0.0.2"], file: "t.json")
        }
    }
}

@Suite struct SlurmNodeListTests {
    @Test func compressedHostListsExpandInOrderKeepingPadding() throws {
        #expect(
            try SlurmNodeList.hosts("node[01-03,07],gpu5") == ["node01", "node02", "node03", "node07", "gpu5"])
        #expect(try SlurmNodeList.hosts("r[1-2]n[8-9]") == ["r1n8", "r1n9", "r2n8", "r2n9"])
        #expect(try SlurmNodeList.hosts("cn[098-101]-ib") == ["cn098-ib", "cn099-ib", "cn100-ib", "cn101-ib"])
        #expect(try SlurmNodeList.hosts("single") == ["single"])
    }

    @Test func malformedListsNameTheVariable() {
        for bad in ["node[01-", "node[3-1]", "a,,b", "node[1-2]]", "n[[1]]", "n[1-x]", "n[0-99999999]", ""] {
            #expect(throws: SlurmNodeListError.self, "\(bad)") { try SlurmNodeList.hosts(bad) }
        }
        do {
            _ = try SlurmNodeList.hosts("node[01-")
        } catch {
            #expect(error.description.hasPrefix("SLURM_JOB_NODELIST=node[01-: unclosed `[`"))
        }
    }

    @Test func taskCountsExpandRepeats() throws {
        #expect(try SlurmNodeList.taskCounts("2(x3),1") == [2, 2, 2, 1])
        #expect(try SlurmNodeList.taskCounts("4") == [4])
        for bad in ["0", "2(x0)", "2(3)", "2(x3", "x", "", "1,,1"] {
            #expect(throws: SlurmNodeListError.self, "\(bad)") { try SlurmNodeList.taskCounts(bad) }
        }
    }

    @Test func anAllocationBecomesATable() throws {
        // Recorded from `sbatch -N 4 --ntasks=7` on a four-node partition.
        let environment = [
            "SLURM_JOB_NODELIST": "cpu[01-03],cpu07", "SLURM_TASKS_PER_NODE": "2(x3),1", "SLURM_NTASKS": "7",
        ]
        let layout = try SlurmNodeList.layout(environment: environment)
        #expect(layout.map(\.server) == ["cpu01", "cpu02", "cpu03", "cpu07"])
        #expect(layout.map(\.ranks) == [2, 2, 2, 1])
        let table = try RankTable.parse(
            Array(RankTable.generateJSON(layout: [("127.0.0.1", 2), ("127.0.0.2", 1)], version: .nodeList).utf8),
            file: "t.json")
        #expect(table.ranksByID.map(\.serverIndex) == [0, 0, 1])
        #expect(try SlurmNodeList.layout(environment: environment, ranksPerServer: 3).map(\.ranks) == [3, 3, 3, 3])
        let uniform = ["SLURM_NODELIST": "n[1-2]", "SLURM_NTASKS_PER_NODE": "4"]
        #expect(try SlurmNodeList.layout(environment: uniform).map(\.ranks) == [4, 4])
    }

    @Test func mismatchedOrMissingVariablesAreRefused() {
        #expect(throws: SlurmNodeListError.self) {
            try SlurmNodeList.layout(environment: ["SLURM_JOB_NODELIST": "n[1-3]", "SLURM_TASKS_PER_NODE": "2(x2)"])
        }
        #expect(throws: SlurmNodeListError.self) { try SlurmNodeList.layout(environment: [:]) }
        #expect(throws: SlurmNodeListError.self) { try SlurmNodeList.layout(environment: ["SLURM_JOB_NODELIST": "a"]) }
    }
}

@Suite struct MPIRunCommandTests {
    let command = MPIRunCommand(
        environment: [
            "MPIRUN": "ip netns exec a mpirun", "MPIRUN_ARGS": "--mca btl self,tcp", "GHOSTNET_CACHE_DIR": "/c",
        ],
        runsAsRoot: true)

    @Test func oneServerRunsOverLoopbackAndSeveralFromTheHostfile() {
        let local = command.arguments(ranks: 2, hostfile: nil, worker: ["/bin/g", "train"])
        #expect(local.prefix(9) == ["ip", "netns", "exec", "a", "mpirun", "-np", "2", "--bind-to", "none"])
        #expect(local.contains("btl_tcp_if_include") && local.contains("lo") && local.contains("--allow-run-as-root"))
        #expect(local.suffix(7) == ["-x", "GHOSTNET_CACHE_DIR", "--mca", "btl", "self,tcp", "/bin/g", "train"])
        let remote = command.arguments(ranks: 4, hostfile: "/s/hosts", worker: ["/bin/g"])
        #expect(remote.contains("--hostfile") && remote.contains("/s/hosts") && !remote.contains("lo"))
        #expect(
            command.probeArguments(server: "10.0.0.2").suffix(6) == [
                "10.0.0.2", "--allow-run-as-root", "--mca", "btl", "self,tcp", "hostname",
            ])
    }

    @Test func onlyARestartOfTrainResumes() {
        #expect(
            MPIRunCommand.worker(["/g", "train", "--config", "c"], resuming: true)
                == ["/g", "train", "--config", "c", "--resume", "--set", "runtime.init_from=null"])
        #expect(MPIRunCommand.worker(["/g", "train", "--config", "c"], resuming: false).last == "c")
        #expect(MPIRunCommand.worker(["/g", "diagnose", "allreduce"], resuming: true).last == "allreduce")
        #expect(
            MPIRunCommand.worker(["/g", "train", "--resume"], resuming: true).filter { $0 == "--resume" }.count == 1)
    }

    /// A fine-tuning job's restart continues its own run: the first start's `--init-from` would be
    /// refused beside `--resume`.
    @Test func aRestartOfAFineTuningRunDropsItsInitialWeights() {
        let first = ["/g", "train", "--init-from", "w.safetensors", "--init-partial", "--init-from=x", "--config", "c"]
        #expect(MPIRunCommand.worker(first, resuming: false) == first)
        #expect(
            MPIRunCommand.worker(first, resuming: true)
                == ["/g", "train", "--config", "c", "--resume", "--set", "runtime.init_from=null"])
    }
}
