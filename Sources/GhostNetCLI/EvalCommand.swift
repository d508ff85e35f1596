//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser
import Distributed
import Foundation
import Logging
import PerformanceRecords
import Training

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
            when none could be evaluated.
            """)

    @Option(help: "The YAML configuration file with an eval step (see conf/eval.yml).")
    var config: String

    @Option(name: .customLong("set"), help: ArgumentHelp(
        "Override a value, e.g. eval.dataset.common.batch_size=64 (repeatable; typed by the key).",
        valueName: "key.path=value"))
    var overrides: [String] = []

    @Option(help: "A folder of checkpoints (eval.pipe_step.models_folder).")
    var modelsFolder: String?

    @Option(help: "One checkpoint file to evaluate instead of a folder.")
    var checkpoint: String?

    @Option(help: "The ImageNet-layout dataset folder (eval.dataset.common.data_path).")
    var dataPath: String?

    @Option(help: "The coordinator's http://host:port URL (runtime.coordinator_url; else $GHOSTNET_COORDINATOR).")
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
        let files: [String]
        if let checkpoint {
            guard FileManager.default.fileExists(atPath: checkpoint) else {
                throw ValidationError("--checkpoint \(checkpoint) does not exist")
            }
            files = [checkpoint]
        } else if let folder = step.modelsFolder {
            files = try CheckpointEvaluation.modelFiles(in: folder)
        } else {
            throw ValidationError("\(configuration.file): no eval.pipe_step.models_folder; give --models-folder or --checkpoint")
        }
        let launch = try WorkerLaunch(configuration: configuration, step: .eval, distributed: distributed)
        let evaluation = CheckpointEvaluation(
            configuration: configuration, step: step, dataset: launch.dataset, communicator: launch.worker.communicator)
        let reporter = launch.worker.identity.rank == 0 ? PerformanceReporter(coordinator: launch.coordinator, logger: launch.logger) : nil
        var results: [CheckpointEvaluation.Result] = []
        for file in files {
            do {
                let result = try evaluation.evaluate(checkpointAt: file)
                results.append(result)
                launch.logger.info(
                    "\(file): epoch \(result.epoch) step \(result.step): top-1 \(result.metrics.top1) top-5 \(result.metrics.top5) loss \(result.metrics.loss) (\(result.metrics.imageCount) images)")
                if result.metrics.loss.isFinite { reporter?.report(result.record) }
            } catch let error where error.kind == .checkpoint && error.isCollective {
                launch.logger.warning("skipping \(file): \(error.message)")
            } catch {
                try launch.fail(with: error)
            }
        }
        guard let best = results.max(by: { $0.metrics.top1 < $1.metrics.top1 }) else {
            try launch.fail(with: TrainingError(.checkpoint, "no checkpoint could be evaluated", isCollective: true))
        }
        launch.logger.info("best: \(best.path)")
        // The sink writes "<time> INFO <message>", the coordinator's BestValuesLine.logLine format.
        launch.logger.info("\(BestValuesLine.message(for: [best.record]))")
        reporter?.finish(logBestValues: false)
        try launch.worker.finish()
    }

    private func loadConfiguration() throws -> TrainingConfiguration {
        var assignments = try ConfigurationOverride.parsing(overrides, file: config)
        // A single checkpoint stands for its folder, so the file's models_folder need not exist.
        if let folder = modelsFolder ?? checkpoint.map({ URL(fileURLWithPath: $0).deletingLastPathComponent().path }) {
            assignments.append(ConfigurationOverride(keyPath: "eval.pipe_step.models_folder", value: folder, origin: "--models-folder \(folder)"))
        }
        if let dataPath {
            assignments.append(ConfigurationOverride(keyPath: "eval.dataset.common.data_path", value: dataPath, origin: "--data-path \(dataPath)"))
        }
        if let coordinator {
            assignments.append(ConfigurationOverride(keyPath: "runtime.coordinator_url", value: coordinator, origin: "--coordinator \(coordinator)"))
        }
        assignments += distributed.configurationOverrides
        return try TrainingConfiguration.load(contentsOf: config, overrides: assignments)
    }
}
