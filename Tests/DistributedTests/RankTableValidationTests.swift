// Rank-table validation by the numbered rules of docs/RANKTABLE.md: a table of malformed and tricky cases
// with the error each must give, and the layouts that are only warnings.

import Distributed
import Testing

/// One malformed (or tricky but valid) table, judged by the rules of docs/RANKTABLE.md.
struct TableCase: CustomTestStringConvertible, Sendable {
    var name: String
    var json: String
    /// Text the error's description must contain; nil when the table is valid.
    var expectedError: String?
    var testDescription: String { name }
}

/// A 1.0 table with `servers` × `devices` built from compact device specs.
private func table(
    servers: [(id: String, devices: [String])], serverCount: String? = nil, extraTop: String = ""
) -> String {
    let list = servers.map { server in
        "{\"server_id\": \"\(server.id)\", \"host_nic_ip\": \"reserve\", \"device\": "
            + "[\(server.devices.joined(separator: ", "))]}"
    }
    return """
        {"version": "1.0", "server_count": "\(serverCount ?? String(servers.count))", \(extraTop)
         "server_list": [\(list.joined(separator: ", "))], "status": "completed"}
        """
}

private func device(_ deviceID: String, _ rankID: String, ip: String? = nil) -> String {
    let ipField = ip.map { ", \"device_ip\": \"\($0)\"" } ?? ""
    return "{\"device_id\": \"\(deviceID)\", \"rank_id\": \"\(rankID)\"\(ipField)}"
}

private let twoByTwo: [(id: String, devices: [String])] = [
    ("10.0.0.1", [device("0", "0", ip: "192.168.1.11"), device("1", "1", ip: "192.168.2.11")]),
    ("10.0.0.2", [device("0", "2", ip: "192.168.1.12"), device("1", "3", ip: "192.168.2.12")]),
]

private func singleServer(_ devices: [String]) -> String { table(servers: [("10.0.0.1", devices)]) }

private func rankID(_ text: String) -> String { singleServer([device("0", text)]) }

let malformedTables: [TableCase] = [
    TableCase(name: "empty file", json: "", expectedError: "rank table 't.json': the file is empty"),
    TableCase(name: "array", json: "[]", expectedError: "must be a JSON object, got array"),
    TableCase(
        name: "truncated", json: "{\"version\": \"1.0\",\n \"status\": ",
        expectedError: "is not valid JSON: unexpected end of input, expected a value at line 2:12"),
    TableCase(name: "missing status", json: "{\"version\": \"1.0\"}", expectedError: "missing required field 'status'"),
    TableCase(
        name: "status initializing", json: "{\"version\": \"1.0\", \"status\": \"initializing\"}",
        expectedError: "status: rank table not ready (status 'initializing')"),
    TableCase(
        name: "status done", json: "{\"version\": \"1.0\", \"status\": \"done\"}",
        expectedError: "status: unknown status 'done'"),
    TableCase(
        name: "version missing", json: "{\"status\": \"completed\", \"server_list\": []}",
        expectedError: "missing required field 'version' (supported: 1.0, 1.1, 1.2)"),
    TableCase(
        name: "version as number", json: "{\"status\": \"completed\", \"version\": 1.0}",
        expectedError: "version: must be a string like \"1.0\", got number 1.0"),
    TableCase(
        name: "version 9.9", json: "{\"status\": \"completed\", \"version\": \"9.9\"}",
        expectedError: "unsupported rank table version '9.9' (supported: 1.0, 1.1, 1.2)"),
    TableCase(
        name: "legacy group_list", json: "{\"status\": \"completed\", \"group_count\": \"1\", \"group_list\": []}",
        expectedError: "legacy group_list rank table (no \"version\") is not supported; convert it to version 1.0"),
    TableCase(
        name: "server_list missing", json: "{\"version\": \"1.0\", \"status\": \"completed\", \"server_count\": \"1\"}",
        expectedError: "missing required field 'server_list'"),
    TableCase(
        name: "server_list object", json: "{\"version\": \"1.0\", \"status\": \"completed\", \"server_list\": {}}",
        expectedError: "server_list: must be an array, got object"),
    TableCase(
        name: "server_list empty", json: "{\"version\": \"1.0\", \"status\": \"completed\", \"server_list\": []}",
        expectedError: "server_list: server_list is empty"),
    TableCase(
        name: "server without devices", json: table(servers: [("10.0.0.1", [])]),
        expectedError: "server_list[0].device: server '10.0.0.1' has no devices"),
    TableCase(
        name: "device missing rank_id", json: singleServer(["{\"device_id\": \"0\"}"]),
        expectedError: "server_list[0].device[0]: missing required field 'rank_id'"),
    TableCase(
        name: "device missing device_id", json: singleServer(["{\"rank_id\": \"0\"}"]),
        expectedError: "server_list[0].device[0]: missing required field 'device_id'"),
    TableCase(
        name: "rank_id as number", json: singleServer(["{\"device_id\": \"0\", \"rank_id\": 0}"]),
        expectedError: "server_list[0].device[0].rank_id: must be a string like \"2\", got number 0"),
    TableCase(name: "rank_id -1", json: rankID("-1"), expectedError: "rank_id '-1' is not a decimal integer"),
    TableCase(name: "rank_id 01", json: rankID("01"), expectedError: "rank_id '01' is not a decimal integer"),
    TableCase(name: "rank_id 1.0", json: rankID("1.0"), expectedError: "rank_id '1.0' is not a decimal integer"),
    TableCase(name: "rank_id empty", json: rankID(""), expectedError: "rank_id '' is not a decimal integer"),
    TableCase(name: "rank_id abc", json: rankID("abc"), expectedError: "rank_id 'abc' is not a decimal integer"),
    TableCase(name: "rank_id with space", json: rankID(" 2"), expectedError: "rank_id ' 2' is not a decimal integer"),
    TableCase(name: "rank_id 2a", json: rankID("2a"), expectedError: "rank_id '2a' is not a decimal integer"),
    TableCase(
        name: "rank_id 2^32", json: rankID("4294967296"),
        expectedError: "rank_id '4294967296' is too large (at most 4294967295)"),
    TableCase(
        name: "duplicate rank_id across servers",
        json: table(servers: [
            ("10.0.0.1", [device("0", "0", ip: "1.1.1.1"), device("1", "1", ip: "1.1.1.2")]),
            ("10.0.0.2", [device("0", "2", ip: "1.1.1.3"), device("1", "1", ip: "1.1.1.4")]),
        ]),
        expectedError: "server_list[1].device[1].rank_id: rank_id 1 used twice (server_list[0].device[1], "
            + "server_list[1].device[1])"),
    TableCase(
        name: "duplicate rank_id within a server", json: singleServer([device("0", "0"), device("1", "0")]),
        expectedError: "rank_id 0 used twice (server_list[0].device[0], server_list[0].device[1])"),
    TableCase(
        name: "gap in rank_ids", json: singleServer([device("0", "0"), device("1", "1"), device("2", "3")]),
        expectedError:
            "server_list[0].device[2].rank_id: rank_id 3 ≥ number of ranks 3 (rank_ids must be 0..2; missing 2)"),
    TableCase(
        name: "rank_ids not starting at 0", json: singleServer([device("0", "1"), device("1", "2")]),
        expectedError: "rank_id 2 ≥ number of ranks 2 (rank_ids must be 0..1; missing 0)"),
    TableCase(
        name: "server_count 3 vs 2 servers", json: table(servers: twoByTwo, serverCount: "3"),
        expectedError: "server_count: server_count is \"3\" but server_list has 2 entries"),
    TableCase(
        name: "server_count two", json: table(servers: twoByTwo, serverCount: "two"),
        expectedError: "server_count: server_count 'two' is not a decimal integer"),
    TableCase(
        name: "duplicate server_id",
        json: table(servers: [
            ("10.0.0.1", [device("0", "0", ip: "1.1.1.1")]), ("10.0.0.1", [device("0", "1", ip: "1.1.1.2")]),
        ]),
        expectedError: "server_list[1].server_id: duplicate server_id '10.0.0.1' (server_list[0], server_list[1])"),
    TableCase(
        name: "empty server_id", json: table(servers: [("", [device("0", "0")])]),
        expectedError: "server_list[0].server_id: server_id is empty"),
    TableCase(
        name: "duplicate device_id on one server", json: singleServer([device("1", "0"), device("1", "1")]),
        expectedError: "server_list[0].device[1].device_id: device_id 1 appears twice on server '10.0.0.1'"),
    TableCase(name: "same device_id on different servers (valid)", json: table(servers: twoByTwo), expectedError: nil),
    TableCase(
        name: "duplicate device_ip across servers",
        json: table(servers: [
            ("10.0.0.1", [device("0", "0", ip: "192.168.1.11")]), ("10.0.0.2", [device("0", "1", ip: "192.168.1.11")]),
        ]),
        expectedError: "server_list[1].device[0].device_ip: device_ip '192.168.1.11' used by two devices "
            + "(server_list[0].device[0].device_ip, server_list[1].device[0].device_ip)"),
    TableCase(
        name: "invalid device_ip", json: singleServer([device("0", "0", ip: "300.1.1.1")]),
        expectedError: "server_list[0].device[0].device_ip: device_ip '300.1.1.1' is not an IP address"),
    TableCase(
        name: "multi-server table without device_ip",
        json: table(servers: [("10.0.0.1", [device("0", "0")]), ("10.0.0.2", [device("0", "1")])]),
        expectedError: "server_list[0].device[0].device_ip: device_ip is required on multi-server tables "
            + "(server_list[0].device[0])"),
    TableCase(
        name: "single-server table without device_ip (valid)",
        json: singleServer([device("0", "0"), device("1", "1")]), expectedError: nil),
    TableCase(
        name: "unequal devices per server",
        json: table(servers: [
            ("10.0.0.1", [device("0", "0", ip: "1.1.1.1"), device("1", "1", ip: "1.1.1.2")]),
            ("10.0.0.2", [device("0", "2", ip: "1.1.1.3")]),
        ]),
        expectedError: "server '10.0.0.2' has 1 device(s), server '10.0.0.1' has 2; every server needs the same number"),
    TableCase(
        name: "unknown extra keys (valid)",
        json: table(
            servers: [("10.0.0.1", ["{\"device_id\": \"0\", \"rank_id\": \"0\", \"numa_id\": \"1\", \"x\": [1]}"])],
            extraTop: "\"cluster_list\": [],"),
        expectedError: nil),
    TableCase(
        name: "1.2 super_pod_list names a missing server",
        json: """
            {"version": "1.2", "server_count": "1", "status": "completed",
             "server_list": [{"server_id": "10.0.0.1", "device": [{"device_id": "0", "rank_id": "0", "super_device_id": "5"}]}],
             "super_pod_list": [{"super_pod_id": "0", "server_list": [{"server_id": "10.0.0.9"}]}]}
            """,
        expectedError:
            "super_pod_list[0].server_list[0].server_id: super_pod_list server_id '10.0.0.9' is not in server_list"),
    TableCase(
        name: "1.2 duplicate super_device_id in a pod",
        json: """
            {"version": "1.2", "server_count": "1", "status": "completed",
             "server_list": [{"server_id": "10.0.0.1", "device": [{"device_id": "0", "rank_id": "0", "super_device_id": "5"},
                                                                 {"device_id": "1", "rank_id": "1", "super_device_id": "5"}]}],
             "super_pod_list": [{"super_pod_id": "0", "server_list": [{"server_id": "10.0.0.1"}]}]}
            """,
        expectedError: "duplicate super_device_id 5 in super pod '0'"),
    TableCase(
        name: "port out of range",
        json: singleServer(["{\"device_id\": \"0\", \"rank_id\": \"0\", \"device_port\": \"0\"}"]),
        expectedError: "server_list[0].device[0].device_port: port 0 is outside 1..65535"),
    TableCase(
        name: "1.1 node without ranks",
        json: "{\"version\": \"1.1\", \"status\": \"completed\", \"node_list\": [{\"node_addr\": \"10.0.0.1\", "
            + "\"ranks\": []}]}",
        expectedError: "node_list[0].ranks: node '10.0.0.1' has no ranks"),
    TableCase(
        name: "1.1 node_addr not an address",
        json:
            "{\"version\": \"1.1\", \"status\": \"completed\", \"node_list\": [{\"node_addr\": \"h1\", \"ranks\": [{\"rank_id\": \"0\"}]}]}",
        expectedError: "node_list[0].node_addr: node_addr 'h1' is not an IP address"),
    TableCase(
        name: "1.1 host ranks (valid)",
        json: """
            {"version": "1.1", "status": "completed", "collective_id": "job-7", "mode": "tcp",
             "node_list": [{"node_addr": "10.0.0.1", "ranks": [{"rank_id": "0"}, {"rank_id": "1", "port": "60001"}]},
                           {"node_addr": "10.0.0.2", "ranks": [{"rank_id": "2"}, {"rank_id": "3"}]}]}
            """,
        expectedError: nil),
]

@Suite struct RankTableValidationTests {
    @Test(arguments: malformedTables + hostileTables)
    func tableIsJudgedAsTheSpecSays(_ testCase: TableCase) {
        do {
            let table = try RankTable.parse(Array(testCase.json.utf8), file: "t.json")
            #expect(testCase.expectedError == nil, "accepted, expected: \(testCase.expectedError ?? "")")
            #expect(table.rankCount >= 1)
        } catch {
            guard let expected = testCase.expectedError else {
                Issue.record("rejected a valid table: \(error)")
                return
            }
            #expect(error.description.hasPrefix("rank table 't.json'"), "\(error)")
            #expect(error.description.contains(expected), "\(error)")
        }
    }

    @Test func validTableModelsServersAndRanks() throws {
        let table = try RankTable.parse(Array(table(servers: twoByTwo).utf8), file: "t.json")
        #expect(table.version == .serverList)
        #expect(table.servers.map(\.id) == ["10.0.0.1", "10.0.0.2"])
        #expect(table.rankCount == 4)
        #expect(table.rank(3).serverIndex == 1)
        #expect(table.rank(3).deviceID == 1)
        #expect(table.rank(2).jsonPath == "server_list[1].device[0]")
        #expect(table.warnings.isEmpty, "\(table.warnings)")
    }

    @Test func nonContiguousLayoutAndLargeDeviceIDsAreWarnings() throws {
        let json = table(servers: [
            ("10.0.0.1", [device("0", "0", ip: "1.1.1.1"), device("16", "2", ip: "1.1.1.2")]),
            ("10.0.0.2", [device("0", "1", ip: "1.1.1.3"), device("1", "3", ip: "1.1.1.4")]),
        ])
        let table = try RankTable.parse(Array(json.utf8), file: "t.json")
        #expect(
            table.warnings.contains { $0.contains("server '10.0.0.1' ranks [0,2] are not contiguous") },
            "\(table.warnings)")
        #expect(
            table.warnings.contains { $0.contains("device_id 16 is beyond an Ascend host's 0..15") },
            "\(table.warnings)")
        #expect(!table.hasContiguousServerBlocks)
    }

    @Test func ranksSharingADeviceIPOnOneServerIsAWarning() throws {
        let json = table(servers: [
            ("10.0.0.1", [device("0", "0", ip: "10.0.0.1"), device("1", "1", ip: "10.0.0.1")]),
            ("10.0.0.2", [device("0", "2", ip: "10.0.0.2"), device("1", "3", ip: "10.0.0.2")]),
        ])
        let table = try RankTable.parse(Array(json.utf8), file: "t.json")
        #expect(table.warnings.count == 2, "\(table.warnings)")
        #expect(table.warnings[0].contains("server '10.0.0.1': several ranks share device_ip 10.0.0.1"))
    }
}
