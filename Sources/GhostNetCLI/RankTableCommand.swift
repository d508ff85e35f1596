// `ghostnet-d ranktable`: check a rank table, generate one, or turn one into an OpenMPI hostfile.

import ArgumentParser
import Distributed
import Foundation

/// `ghostnet-d ranktable`: check, generate and convert HCCL-style rank tables.
struct RankTableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ranktable",
        abstract: "Check, generate and convert HCCL-style rank tables (versions 1.0, 1.1, 1.2).",
        subcommands: [Check.self, Generate.self, Hostfile.self])

    /// `ranktable check FILE`.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a rank table and print it as servers → ranks (exit status 1 when invalid).")

        @Argument(help: "The rank table JSON file.")
        var file: String

        func run() throws {
            let table = try RankTable.load(path: file)
            for warning in table.warnings { StandardError.print("warning: \(warning)") }
            print(table)
        }
    }

    /// `ranktable generate --servers h1,h2 --ranks-per-server 4`, or `--from-slurm` inside an allocation.
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Write a rank table: ranks numbered server-major in the order of --servers (or of the Slurm "
                + "allocation), status written last, atomic write.",
            discussion: """
                --from-slurm reads the allocation from the environment: the hosts of SLURM_JOB_NODELIST \
                (compressed, e.g. node[01-03,07],gpu5) and their task counts from SLURM_TASKS_PER_NODE \
                (e.g. 2(x3),1), else SLURM_NTASKS_PER_NODE; --ranks-per-server replaces the counts. Different \
                counts per server need --version 1.1.
                """)

        @Option(help: "Comma-separated server host names or addresses, in rank order.")
        var servers: String?

        @Flag(help: "Take the servers and ranks per server from the Slurm allocation's environment.")
        var fromSlurm = false

        @Option(
            parsing: .unconditional,
            help: "Worker processes per server (1-\(RankTable.maximumRanksPerServer); with --from-slurm optional).")
        var ranksPerServer: Int?

        @Option(help: "Table version: 1.0 (server_list) or 1.1 (node_list of host ranks).")
        var version: RankTable.Version = .serverList

        @Option(help: "Output file (default: standard output).")
        var out: String?

        func validate() throws {
            try OptionRange.check("--ranks-per-server", ranksPerServer, 1...RankTable.maximumRanksPerServer)
            guard version != .superPod else {
                throw ValidationError("--version must be 1.0 or 1.1; version 1.2 tables are read, not generated")
            }
            guard (servers != nil) != fromSlurm else {
                throw ValidationError("give either --servers or --from-slurm")
            }
            guard fromSlurm || ranksPerServer != nil else {
                throw ValidationError("--servers needs --ranks-per-server")
            }
        }

        func run() throws {
            let layout: [(server: String, ranks: Int)]
            if let servers, let ranksPerServer {
                layout = servers.split(separator: ",", omittingEmptySubsequences: false).map {
                    (server: String($0), ranks: ranksPerServer)
                }
            } else {
                layout = try SlurmNodeList.layout(
                    environment: ProcessInfo.processInfo.environment, ranksPerServer: ranksPerServer)
            }
            let text = try RankTable.generateJSON(layout: layout, version: version)
            if let out {
                try RankTable.writeAtomically(text, to: out)
            } else {
                print(text, terminator: "")
            }
        }
    }

    /// `ranktable hostfile FILE`.
    struct Hostfile: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an OpenMPI hostfile for a rank table: one 'host slots=N' line per server, in rank order.")

        @Argument(help: "The rank table JSON file.")
        var file: String

        func run() throws {
            let table = try RankTable.load(path: file)
            print(try table.hostfile(file: file), terminator: "")
        }
    }
}

extension RankTable.Version: ExpressibleByArgument {}
