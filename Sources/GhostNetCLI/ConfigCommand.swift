// `ghostnet-d config check`: the validator `train` and `eval` run, on its own, with the resolved result.

import ArgumentParser
import Distributed
import Foundation
import GhostNet
import Training

/// `ghostnet-d config`: configuration files.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with training and evaluation configuration files.",
        subcommands: [Check.self])
}

extension ConfigCommand {
    /// `ghostnet-d config check FILE [--set key=value ...]`
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file and print it resolved, with every default filled in.",
            discussion: """
                Runs the validator train and eval run, so it refuses exactly what they would refuse, with \
                the same message: unknown keys, wrong types, empty values, out-of-range values (every number has \
                a range), values that contradict each other or describe no buildable network, YAML anchors and \
                aliases, tags and YAML 1.1 forms such as base-60 1:30. Each problem names the file, line and key \
                path, with a suggestion for misspellings. Unless --skip-environment is given, the paths the file \
                names (data_path, models_folder, checkpoint and log folders) are checked too. Relative \
                paths resolve against the current directory. With a fully_train step it prints the memory plan of one rank \
                (micro-batch, passes per step, predicted peak, global batch) and refuses a runtime.memory_limit that \
                fits no micro-batch; with --rank-table the plan is for a rank of the table's busiest server (an \
                auto limit is shared by the ranks of a server) and the global batch counts the table's ranks, \
                else for one rank alone on this server. Exits non-zero on any problem.
                """)

        @Argument(help: "The YAML configuration file.")
        var file: String

        @OptionGroup var settings: ConfigurationSetOptions

        @Flag(help: "Check only the file, not the paths it names.")
        var skipEnvironment = false

        @Option(help: "A rank table JSON: plan memory for the ranks per server it lists (default: one rank).")
        var rankTable: String?

        func run() throws {
            let parsedOverrides = try settings.overrides(of: file)
            let configuration = try TrainingConfiguration.load(contentsOf: file, overrides: parsedOverrides)
            print("# \(file): resolved configuration")
            print(configuration.resolvedYAML, terminator: "")
            if !skipEnvironment {
                try configuration.validateEnvironment()
            }
            if let step = configuration.fullyTrain {
                let network = try GhostNetConfiguration(
                    blocksPerStage: step.model.blocks, width: step.model.width, classes: step.model.classCount,
                    imageSize: step.model.imageSize)
                let table = try rankTable.map { path throws(RankTableError) in try RankTable.load(path: path) }
                let ranksOnServer = table?.servers.map(\.ranks.count).max() ?? 1
                let process = ProcessInfo.processInfo
                let threads = WorkerLaunch.openBLASThreads(
                    configured: configuration.runtime.threads > 0 ? configuration.runtime.threads : nil,
                    variables: process.environment, processorCount: process.activeProcessorCount,
                    ranksOnServer: ranksOnServer)
                let plan = try configuration.memoryPlan(
                    for: step, structure: GhostNetStructure(configuration: network), ranksOnServer: ranksOnServer,
                    threads: threads)
                let ranks = table.map { "\($0.rankCount) ranks of \(rankTable ?? "")" } ?? "ranks"
                let global = table.map { " = \(step.dataset.batchSize * $0.rankCount)" } ?? ""
                print(
                    "# memory plan (\(ranksOnServer) rank(s) on the server, \(threads) thread(s) each): "
                        + "\(plan.description); global batch "
                        + "\(step.dataset.batchSize) × \(ranks)\(global)")
            }
            print("# configuration OK")
        }
    }
}
