// `ranktable` through the built binary: the shipped example and the demo table, an invalid table's exit and
// message, generate then hostfile, and an unknown version refused.

import Foundation
import Testing
import _TestSupport

@Suite struct RankTableCLITests {
    static let shippedTables = [
        "rank_table_1x2.json", "rank_table_1x8.json", "rank_table_2x8.json", "rank_table_2x2_node_list.json",
    ]

    @Test(arguments: shippedTables)
    func shippedExampleIsValid(_ name: String) throws {
        let path = BuiltProducts.packageRoot.appendingPathComponent("rank_tables/\(name)").path
        let result = try BuiltProducts.runGhostnet(["ranktable", "check", path], timeout: 60)
        #expect(result.status == 0, "\(result.combined)")
        #expect(result.standardOutput.contains("server 0 '"), "\(result.standardOutput)")
    }

    @Test func demoTableIsOneServerWithTwoRanks() throws {
        let path = BuiltProducts.packageRoot.appendingPathComponent("rank_tables/rank_table_1x2.json").path
        let result = try BuiltProducts.runGhostnet(["ranktable", "check", path], timeout: 60)
        #expect(
            result.standardOutput == """
                rank table version 1.0: 1 server(s), 2 rank(s)
                  server 0 '127.0.0.1': ranks 0 (device 0), 1 (device 1)

                """)
    }

    @Test func invalidTableExitsOneNamingFileAndPath() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("bad.json").path
        try """
        {"version": "1.0", "server_count": "1", "status": "completed",
         "server_list": [{"server_id": "h", "device": [{"device_id": "0", "rank_id": 0}]}]}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try BuiltProducts.runGhostnet(["ranktable", "check", path], timeout: 60)
        #expect(result.status == 1)
        #expect(
            result.standardError.contains(
                "rank table '\(path)': server_list[0].device[0].rank_id: must be a string like \"2\", got number 0"),
            "\(result.combined)")
    }

    @Test(arguments: ["1.0", "1.1"])
    func generateThenHostfileRoundTrips(version: String) throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("t.json").path
        let generate = try BuiltProducts.runGhostnet(
            [
                "ranktable", "generate", "--servers", "10.1.0.1,10.1.0.2", "--ranks-per-server", "4", "--version",
                version, "--out", path,
            ],
            timeout: 60)
        #expect(generate.status == 0, "\(generate.combined)")
        let check = try BuiltProducts.runGhostnet(["ranktable", "check", path], timeout: 60)
        #expect(check.status == 0, "\(check.combined)")
        #expect(check.standardOutput.contains("2 server(s), 8 rank(s)"))
        let hostfile = try BuiltProducts.runGhostnet(["ranktable", "hostfile", path], timeout: 60)
        #expect(hostfile.standardOutput == "10.1.0.1 slots=4\n10.1.0.2 slots=4\n", "\(hostfile.combined)")
    }

    @Test func generateRejectsAnUnknownVersion() throws {
        let result = try BuiltProducts.runGhostnet(
            ["ranktable", "generate", "--servers", "h", "--ranks-per-server", "1", "--version", "1.2"], timeout: 60)
        #expect(result.status != 0)
        #expect(
            result.standardError.contains("--version must be 1.0 or 1.1; version 1.2 tables are read, not generated"),
            "\(result.combined)")
    }
}
