// The root of the `ghostnet-d` command tree: its name, version and the list of subcommands.

import ArgumentParser
import Training

/// The `ghostnet-d` command tree. Each subcommand parses and validates its options, builds a
/// configuration and calls the library layer below; no training logic lives here.
struct GhostNetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ghostnet-d",
        abstract: "Data-parallel GhostNet-D training on CPU clusters (OpenBLAS, libjpeg-turbo, OpenMPI).",
        version: WorldFingerprint.Build.programVersion,
        subcommands: [
            SystemCommand.self,
            ConfigCommand.self,
            ModelCommand.self,
            CoordinatorCommand.self,
            JobsCommand.self,
            FollowCommand.self,
            RankTableCommand.self,
            DiagnoseCommand.self,
            DatasetCommand.self,
            BenchCommand.self,
            TrainCommand.self,
            LaunchCommand.self,
            EvalCommand.self,
        ])
}
