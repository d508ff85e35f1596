// Rank-table files: generate and read back server-major tables, refuse bad server lists and interleaved
// hostfiles, write atomically, find the path (option, MindSpore, RANK_TABLE_FILE) and wait while initializing.

import Distributed
import Foundation
import Testing
import _TestSupport

@Suite struct RankTableFileTests {
    @Test(arguments: [RankTable.Version.serverList, .nodeList])
    func generatedTableRoundTripsServerMajor(version: RankTable.Version) throws {
        let text = try RankTable.generateJSON(
            servers: ["10.0.0.1", "10.0.0.2", "10.0.0.3"], ranksPerServer: 4, version: version)
        #expect(text.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("\"status\": \"completed\"\n}"))
        let table = try RankTable.parse(Array(text.utf8), file: "generated.json")
        #expect(table.version == version)
        #expect(table.rankCount == 12)
        for rank in 0..<12 {
            #expect(table.rank(rank).serverIndex == rank / 4)
        }
        #expect(try table.hostfile(file: "generated.json") == "10.0.0.1 slots=4\n10.0.0.2 slots=4\n10.0.0.3 slots=4\n")
    }

    @Test func singleServerTableNeedsNoAddresses() throws {
        let text = try RankTable.generateJSON(servers: ["worker-a"], ranksPerServer: 2)
        #expect(!text.contains("device_ip"))
        let table = try RankTable.parse(Array(text.utf8), file: "g.json")
        #expect(table.servers.map(\.id) == ["worker-a"])
        #expect(table.warnings.isEmpty)
    }

    @Test func generatorRefusesBadServerLists() {
        #expect(throws: RankTableError.self) { try RankTable.generateJSON(servers: ["a", "a"], ranksPerServer: 1) }
        #expect(throws: RankTableError.self) { try RankTable.generateJSON(servers: [""], ranksPerServer: 1) }
        #expect(throws: RankTableError.self) { try RankTable.generateJSON(servers: ["a"], ranksPerServer: 0) }
        do {
            _ = try RankTable.generateJSON(servers: ["no-such-host.invalid", "10.0.0.2"], ranksPerServer: 1)
            Issue.record("an unresolvable server name was accepted")
        } catch {
            #expect(error.description.contains("server 'no-such-host.invalid' does not resolve to an IPv4 address"))
        }
    }

    @Test func hostfileRefusesInterleavedRanks() throws {
        let json = """
            {"version": "1.1", "status": "completed", "node_list": [
              {"node_addr": "10.0.0.1", "ranks": [{"rank_id": "0"}, {"rank_id": "2"}]},
              {"node_addr": "10.0.0.2", "ranks": [{"rank_id": "1"}, {"rank_id": "3"}]}]}
            """
        let table = try RankTable.parse(Array(json.utf8), file: "x.json")
        #expect(throws: RankTableError.self) { try table.hostfile(file: "x.json") }
    }

    @Test func atomicWriteLeavesOnlyTheTarget() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("t.json").path
        try RankTable.writeAtomically(RankTable.generateJSON(servers: ["h"], ranksPerServer: 3), to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["t.json"])
        #expect(try RankTable.load(path: path).rankCount == 3)
    }

    @Test func pathComesFromOptionThenMindSporeThenRankTableFile() throws {
        let both = ["MINDSPORE_HCCL_CONFIG_PATH": "/a.json", "RANK_TABLE_FILE": "/b.json"]
        #expect(try RankTable.resolvePath(explicitPath: "/c.json", environment: both).path == "/c.json")
        let fromEnvironment = try RankTable.resolvePath(explicitPath: nil, environment: both)
        #expect(fromEnvironment.path == "/a.json")
        #expect(fromEnvironment.warnings.count == 1)
        #expect(
            try RankTable.resolvePath(explicitPath: nil, environment: ["RANK_TABLE_FILE": "/b.json"]).path == "/b.json")
        do {
            _ = try RankTable.resolvePath(explicitPath: nil, environment: [:])
            Issue.record("no table was accepted")
        } catch {
            #expect(error.code == .notConfigured)
            #expect(error.description.contains("pass --rank-table FILE or set RANK_TABLE_FILE"))
        }
    }

    @Test func missingFileIsNamed() {
        do {
            _ = try RankTable.load(path: "/nonexistent/t.json")
            Issue.record("a missing file was accepted")
        } catch {
            #expect(error.description == "rank table '/nonexistent/t.json': does not exist or is not a readable file")
        }
    }

    /// A table still "initializing" fails at once without a wait, and is picked up once a writer
    /// atomically replaces it with the completed one while the loader waits.
    @Test func initializingTableIsAwaited() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("t.json").path
        let completed = try RankTable.generateJSON(servers: ["h"], ranksPerServer: 2)
        try RankTable.writeAtomically(
            completed.replacingOccurrences(of: "\"completed\"", with: "\"initializing\""), to: path)
        #expect(throws: RankTableError.self) { try RankTable.load(path: path) }

        let writer = Thread {
            Thread.sleep(forTimeInterval: 0.2)
            try? RankTable.writeAtomically(completed, to: path)
        }
        writer.start()
        let table = try RankTable.load(path: path, readinessTimeout: .seconds(30), pollInterval: .milliseconds(20))
        #expect(table.rankCount == 2)
    }
}
