//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser

/// The `ghostnet-d` command tree. Each subcommand parses and validates its options, builds a
/// configuration and calls the library layer below; no training logic lives here.
struct GhostNetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ghostnet-d",
        abstract: "Data-parallel GhostNet-D training on CPU clusters (OpenBLAS, libjpeg-turbo, OpenMPI).",
        version: "0.1.0",
        subcommands: [
            SystemCommand.self,
            ConfigCommand.self,
            ModelCommand.self,
            CoordinatorCommand.self,
            RankTableCommand.self,
            DiagnoseCommand.self,
            DatasetCommand.self,
            BenchCommand.self,
            TrainCommand.self,
            EvalCommand.self,
        ])
}
