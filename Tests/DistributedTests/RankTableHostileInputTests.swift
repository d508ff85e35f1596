// Hostile rank tables (issue 19 class 6): host fields that would inject hosts, slots or options
// into mpirun's hostfile, repeated keys, legacy lists, absurd sizes, non-regular files, and a fuzz
// run whose every accepted table must still give a clean hostfile.

import Distributed
import Foundation
import Glibc
import TensorEngine
import Testing
import _TestSupport

private func serverTable(_ serverID: String) -> String {
    """
    {"version": "1.0", "server_count": "1", "status": "completed",
     "server_list": [{"server_id": \(serverID), "device": [{"device_id": "0", "rank_id": "0"}]}]}
    """
}

/// Tables the validator must refuse, checked by ``RankTableValidationTests`` with the spec's cases.
let hostileTables: [TableCase] = [
    TableCase(
        name: "server_id with a newline and a slot count (rule 21)", json: serverTable(#""evil\nhost slots=64""#),
        expectedError: #"server_list[0].server_id: server_id "evil\nhost slots=64" "#
            + "is not a host name or an IP address: "
            + "it contains U+000A (a host name holds letters, digits, '-' and '.')"),
    TableCase(
        name: "server_id with slots= (rule 21)", json: serverTable(#""node1 slots=99""#),
        expectedError: #"server_id "node1 slots=99" is not a host name or an IP address: it contains a space"#),
    TableCase(
        name: "server_id like an option (rule 21)", json: serverTable(#""-oProxyCommand=touch x""#),
        expectedError: #"server_id "-oProxyCommand=touch x" is not a host name or an IP address: it contains '='"#),
    TableCase(
        name: "server_id with a leading '-' (rule 21)", json: serverTable(#""-node1""#),
        expectedError: "is not a host name or an IP address: a label starts or ends with '-'"),
    TableCase(
        name: "server_id with an empty label (rule 21)", json: serverTable(#""node1..lan""#),
        expectedError: "it has an empty label"),
    TableCase(
        name: "server_id that resolvers read as IPv4 shorthand (rule 21)", json: serverTable(#""10.1""#),
        expectedError: "it ends in an all-digit label but is not an IP address"),
    TableCase(
        name: "server_id a host name (valid)", json: serverTable(#""node-1.cluster.example""#), expectedError: nil),
    TableCase(name: "server_id an IPv6 address (valid)", json: serverTable(#""fd00::1""#), expectedError: nil),
    TableCase(
        name: "repeated version key (rule 22)",
        json: #"{"version": "1.0", "version": "1.2", "status": "completed"}"#,
        expectedError: #"is not valid JSON: duplicate key "version": it appears twice in one object "#
            + "(first at line 1:2) at line 1:20"),
    TableCase(
        name: "group_list beside server_list (rule 23)",
        json: #"{"version": "1.0", "status": "completed", "group_count": "1", "group_list": [], "server_list": []}"#,
        expectedError: #"group_list: legacy group_list beside version "1.0" is not supported; remove it"#),
    TableCase(
        name: "1.1 node with too many ranks (rule 24)",
        json: #"{"version": "1.1", "status": "completed", "node_list": [{"node_addr": "10.0.0.1", "ranks": ["#
            + (0...RankTable.maximumRanksPerServer).map { "{\"rank_id\": \"\($0)\"}" }.joined(separator: ",") + "]}]}",
        expectedError: "node_list[0].ranks: server '10.0.0.1' has 1025 ranks; at most 1024 per server"),
    TableCase(
        name: "status with a forged log line is shown escaped",
        json: #"{"version": "1.0", "status": "done\n2026-01-01 INFO Best values: []"}"#,
        expectedError: #"unknown status 'done\n2026-01-01 INFO Best values: []'"#),
]

@Suite struct RankTableHostileInputTests {
    @Test func generatorBoundsRanksPerServer() throws {
        for count in [RankTable.maximumRanksPerServer + 1, 100_000_000, Int.max] {
            do {
                _ = try RankTable.generateJSON(servers: ["h"], ranksPerServer: count)
                Issue.record("ranks per server \(count) was accepted")
            } catch {
                #expect(
                    error.description == "rank table '(generated)': ranks per server must be 1...1024, got \(count)")
            }
        }
        let largest = try RankTable.generateJSON(servers: ["h"], ranksPerServer: RankTable.maximumRanksPerServer)
        #expect(try RankTable.parse(Array(largest.utf8), file: "g.json").rankCount == RankTable.maximumRanksPerServer)
    }

    @Test func generatorRefusesNamesThatAreNotHosts() {
        for name in ["rack \"7\" node", "a\nb", "-oProxyCommand=x", "h slots=8", "h#1"] {
            do {
                _ = try RankTable.generateJSON(servers: [name], ranksPerServer: 1)
                Issue.record("server name \(name.debugDescription) was accepted")
            } catch {
                #expect(error.description.contains("is not a host name or an IP address"), "\(error)")
                #expect(!error.description.contains("\n"), "\(error)")
            }
        }
    }

    /// A table changed in code after loading skips the validator; the hostfile writer still
    /// refuses its hosts.
    @Test func hostfileRefusesInjectedHostsSetInCode() throws {
        let json = try RankTable.generateJSON(servers: ["h"], ranksPerServer: 1)
        let valid = try RankTable.parse(Array(json.utf8), file: "t.json")
        for name in ["evil\nhost", "a b", "h=1", "-H", "h slots=3"] {
            var table = valid
            table.servers[0].id = name
            do {
                let text = try table.hostfile(file: "t.json")
                Issue.record("wrote \(text.debugDescription)")
            } catch {
                #expect(error.description.contains("refusing to write it into a hostfile"), "\(error)")
                #expect(!error.description.contains("\n"), "\(error)")
            }
        }
    }

    /// A FIFO is refused at once (opening it for reading would wait for a writer forever).
    @Test func fifoIsRefusedWithoutBlocking() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("t.json").path
        #expect(mkfifo(path, 0o600) == 0)
        for candidate in [path, folder.path, "/dev/zero"] {
            do {
                _ = try RankTable.load(path: candidate)
                Issue.record("\(candidate) was accepted")
            } catch {
                #expect(error.description == "rank table '\(candidate)': is not a regular file (expected a JSON file)")
            }
        }
    }

    static let hostileValues = [
        "", "-1", "01", "4294967296", "a\nb slots=9", "-oProxyCommand=x", "x y", "h=1", "10.1", "::1", "fd00::1",
        "node-1.lan", "1.0", "1.1", "1.2", "completed", "initializing", "0", "1", "2", "10.0.0.2", "\u{0}",
    ]

    /// Replaces one string value of `text` (a `"` that follows `: `) with a hostile value.
    static func substituteValue(_ text: [UInt8], using random: inout SeededRandom) -> [UInt8] {
        let starts = text.indices.dropFirst(2).filter {
            text[$0] == UInt8(ascii: "\"") && text[$0 - 1] == UInt8(ascii: " ") && text[$0 - 2] == UInt8(ascii: ":")
        }
        guard let start = starts.randomElement(using: &random),
            let end = text[(start + 1)...].firstIndex(of: UInt8(ascii: "\""))
        else { return text }
        let value = Self.hostileValues.randomElement(using: &random)!.unicodeScalars.map { scalar in
            scalar.value < 0x20 ? String(format: "\\u%04x", scalar.value) : String(scalar)
        }.joined()
        return Array(text[...start]) + Array(value.utf8) + Array(text[end...])
    }

    /// 2,000 mutants of valid tables: half with a field replaced by a hostile value, half with
    /// random byte edits. Each is refused with a RankTableError or accepted; an accepted table's
    /// hostfile is refused or holds only `host slots=N` lines with a host name or address.
    @Test func mutatedTablesGiveAnErrorOrACleanHostfile() throws {
        let seeds = try [
            RankTable.generateJSON(servers: ["10.0.0.1", "10.0.0.2"], ranksPerServer: 2),
            RankTable.generateJSON(servers: ["10.0.0.1", "10.0.0.2"], ranksPerServer: 2, version: .nodeList),
            RankTable.generateJSON(servers: ["node-1"], ranksPerServer: 3),
        ].map { Array($0.utf8) }
        var mutator = ByteMutator(
            seed: 6, tokens: Self.hostileValues.map { Array("\"\($0)\"".utf8) } + [Array(#""group_list": [], "#.utf8)])
        var random = SeededRandom(seed: 6, streams: 1)
        var accepted = 0
        let hostLine = try Regex("[A-Za-z0-9:][A-Za-z0-9.:-]* slots=[1-9][0-9]*")
        for index in 0..<2_000 {
            let seed = seeds[index % seeds.count]
            let input = index % 2 == 0 ? Self.substituteValue(seed, using: &random) : mutator.mutate(seed)
            let table: RankTable
            do throws(RankTableError) { table = try RankTable.parse(input, file: "fuzz.json") } catch {
                #expect(error.description.hasPrefix("rank table 'fuzz.json'"), "\(error)")
                #expect(!error.description.contains("\n"), "\(error)")
                continue
            }
            accepted += 1
            guard let hostfile = try? table.hostfile(file: "fuzz.json") else { continue }
            let lines = hostfile.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            #expect(lines.count == table.servers.count, "\(hostfile.debugDescription)")
            for line in lines {
                #expect(line.wholeMatch(of: hostLine) != nil, "\(line.debugDescription)")
            }
        }
        #expect(accepted > 0 && accepted < 2_000, "\(accepted) of 2000 accepted")
    }
}
