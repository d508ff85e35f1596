// `ghostnet-d eval`: its options (which checkpoints, which of their weights) and configuration, then
// the library's checkpoint evaluation on a launched worker.

import ArgumentParser
import Distributed
import Foundation
import Training

extension CheckpointEvaluation.Weights: ExpressibleByArgument {}

/// `ghostnet-d eval`: validation accuracy of saved checkpoints (the seed's `eval.py`).
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate checkpoints on the val split and print the best one's Best values line.",
        discussion: """
            Evaluates every checkpoint of --models-folder (default: the file's eval.pipe_step.models_folder), \
            or the one --checkpoint names, on the val/ split of eval.dataset.common.data_path; works alone and \
            under mpirun (each rank evaluates its shard; every rank must see the files). The network comes \
            from each checkpoint's metadata. Rank 0 prints top-1 and top-5 per checkpoint, then \
            'INFO Best values: [...]' for the checkpoint with the highest top-1, and sends each checkpoint's \
            record to the coordinator when one is configured; the lines also go to runtime.log_dir's \
            train-rank<r>.log. Unreadable checkpoints are reported and skipped; the exit status is non-zero \
            when none could be evaluated. Batches run as micro-batches of at most runtime.micro_batch_size \
            images, else of the size the memory planner chooses under runtime.memory_limit (as in training; \
            'memory plan: ...' is logged); batch norm uses its running statistics, so the split does not \
            change the metrics. --weights ema evaluates each checkpoint's weight average instead (the ema.* \
            tensors that a run with trainer.ema_decay keeps in the optimizer file beside the model file, as \
            timm's validate.py --use-ema); a checkpoint without one is reported by name and skipped. The log \
            names the weights evaluated, and the record's accuracy_top1 is theirs.
            """)

    @Option(help: "The YAML configuration file with an eval step (see conf/eval.yml).")
    var config: String

    @OptionGroup var settings: ConfigurationSetOptions

    @Option(help: "A folder of checkpoints (eval.pipe_step.models_folder).")
    var modelsFolder: String?

    @Option(help: "One checkpoint file to evaluate instead of a folder.")
    var checkpoint: String?

    @Option(help: "Which weights of each checkpoint: model (the trained weights) or ema (the weight average).")
    var weights: CheckpointEvaluation.Weights = .model

    @Option(help: "The ImageNet-layout dataset folder (eval.dataset.common.data_path).")
    var dataPath: String?

    @Option(help: "The coordinator's http(s)://host:port URL (runtime.coordinator_url; else $GHOSTNET_COORDINATOR).")
    var coordinator: String?

    @OptionGroup var distributed: DistributedOptions

    func validate() throws {
        if modelsFolder != nil && checkpoint != nil {
            throw ValidationError("give either --models-folder or --checkpoint, not both")
        }
    }

    func run() throws {
        let configuration = try loadConfiguration()
        let step = try configuration.step(.eval)
        let files = try CheckpointEvaluation.modelFiles(
            checkpoint: checkpoint, step: step, configurationFile: configuration.file)
        let launch = try RunLaunch(configuration: configuration, step: .eval, options: distributed.workerOptions)
        launch.printNotes()
        do {
            try CheckpointEvaluation(
                configuration: configuration, step: step, dataset: launch.dataset, communicator: launch.communicator,
                ranksOnServer: launch.worker.identity.ranksOnServer, weights: weights
            ).run(files: files, logger: launch.logger, coordinator: launch.coordinator)
        } catch {
            try launch.exit(after: error)
        }
        try launch.worker.finish()
    }

    private func loadConfiguration() throws -> TrainingConfiguration {
        typealias Key = ConfigurationKeys
        var assignments = try settings.overrides(of: config)
        // A single checkpoint stands for its folder, so the file's models_folder need not exist.
        let folder = modelsFolder ?? checkpoint.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
        assignments += [
            ConfigurationOverride(flag: "--models-folder", key: Key.modelsFolder, step: .eval, value: folder),
            ConfigurationOverride(flag: "--data-path", key: Key.dataPath, step: .eval, value: dataPath),
            ConfigurationOverride(flag: "--coordinator", key: Key.coordinatorURL, value: coordinator),
        ].compactMap { $0 }
        assignments += distributed.configurationOverrides
        return try TrainingConfiguration.load(contentsOf: config, overrides: assignments)
    }
}
