// `bench`: the group of throughput measurements (train, infer, data, allreduce).

import ArgumentParser

/// `ghostnet-d bench`: throughput measurements of the pipeline's parts.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the throughput of parts of the training pipeline.",
        subcommands: [
            BenchTrainCommand.self, BenchInferCommand.self, BenchDataCommand.self, BenchAllreduceCommand.self,
        ])
}
