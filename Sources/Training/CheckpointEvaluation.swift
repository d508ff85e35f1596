// `ghostnet-d eval` as a library: the validation accuracy of a folder of checkpoints (or one), of
// their trained weights or their weight averages (`--weights ema`), sharded over the ranks, with the
// per-checkpoint lines and the best one's Best values line.

import Checkpoints
import CoordinatorClient
import Distributed
import Foundation
import GhostNet
import ImageData
import Logging
import PerformanceRecords
import TensorEngine

/// `ghostnet-d eval`: the validation accuracy of saved checkpoints, sharded over the ranks of a
/// communicator (one rank without `mpirun`).
///
/// The network (architecture, width, classes, input size) comes from each checkpoint's metadata;
/// the configuration's `eval` step supplies the dataset, batch size and decoding threads. Every
/// rank reads the checkpoint itself, so under `mpirun` the file must be visible on every server.
/// Batches run as micro-batches under `runtime.memory_limit` (or `runtime.micro_batch_size`), as in
/// training.
package struct CheckpointEvaluation {
    /// Which weights of a checkpoint are evaluated (timm's `validate.py --use-ema`).
    package enum Weights: String, Sendable, CaseIterable {
        /// The trained parameters and running statistics of the model file.
        case model
        /// The weights' moving average (`trainer.ema_decay`): the `ema.` tensors of the optimizer
        /// file beside the model file.
        case ema

        /// How the log lines name them.
        package var label: String {
            switch self {
            case .model: "the trained weights (model file)"
            case .ema: "the weight average (ema.* tensors of each checkpoint's optimizer file)"
            }
        }
    }

    /// The evaluation of one checkpoint.
    package struct Result: Sendable {
        /// The model file evaluated.
        package var path: String
        /// Which of its weights.
        package var weights: Weights
        package var configuration: GhostNetConfiguration
        /// Completed epochs and steps when the checkpoint was written.
        package var epoch: Int
        package var step: Int
        package var metrics: ValidationMetrics
        /// How each batch ran: micro-batch, passes and predicted peak per rank.
        package var memoryPlan: MemoryPlan
        /// G multiply-accumulates per image and thousands of parameters (the record's fields).
        package var flops: Double
        package var params: Double

        /// The record rank 0 reports: the reference's `accuracy_top1`, `flops`, `params`.
        package var record: PerformanceRecord {
            PerformanceRecord(
                workerID: "0", rank: 0, epoch: epoch, step: step,
                performance: PerformanceMetrics([("accuracy_top1", metrics.top1), ("flops", flops), ("params", params)]
                ),
                timestamp: LogTimestamp.now())
        }
    }

    package let step: TrainingConfiguration.Step
    package let dataset: DatasetIndex
    package let communicator: any Communicator
    package let seed: UInt64
    package let strictData: Bool
    /// Plans each checkpoint's micro-batches (`runtime.memory_limit`, `runtime.micro_batch_size`).
    package let configuration: TrainingConfiguration
    /// The ranks sharing this server, which share an `auto` memory limit.
    package let ranksOnServer: Int
    /// Which weights of each checkpoint are evaluated.
    package let weights: Weights

    package init(
        configuration: TrainingConfiguration, step: TrainingConfiguration.Step, dataset: DatasetIndex,
        communicator: any Communicator, ranksOnServer: Int = 1, weights: Weights = .model
    ) {
        self.configuration = configuration
        self.weights = weights
        self.ranksOnServer = ranksOnServer
        self.step = step
        self.dataset = dataset
        self.communicator = communicator
        seed = configuration.general.seed
        strictData = configuration.runtime.strictData
    }

    /// The files to evaluate: `checkpoint` when given, else the model files of the eval step's
    /// `models_folder`.
    ///
    /// - Throws: ``TrainingError`` of kind `.checkpoint` naming the missing file or folder.
    package static func modelFiles(
        checkpoint: String?, step: TrainingConfiguration.Step, configurationFile: String
    ) throws(TrainingError) -> [String] {
        if let checkpoint {
            guard FileManager.default.fileExists(atPath: checkpoint) else {
                throw TrainingError(.checkpoint, "--checkpoint \(checkpoint) does not exist")
            }
            return [checkpoint]
        }
        guard let folder = step.modelsFolder else {
            throw TrainingError(
                .checkpoint,
                "\(configurationFile): no eval.pipe_step.models_folder; give --models-folder or --checkpoint")
        }
        return try modelFiles(in: folder)
    }

    /// The model files of a folder of checkpoints: every `*.safetensors` except optimizer state
    /// (`*.optimizer.safetensors`), in name order (for `ckpt-e…` names: oldest first).
    ///
    /// - Throws: ``TrainingError`` of kind `.checkpoint` when the folder cannot be listed or holds none.
    package static func modelFiles(in folder: String) throws(TrainingError) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw TrainingError(.checkpoint, "cannot list the models folder \(folder): \(FileErrorText.reason(error))")
        }
        let files = names.filter { $0.hasSuffix(".safetensors") && !$0.hasSuffix(".optimizer.safetensors") }.sorted()
        guard !files.isEmpty else {
            throw TrainingError(.checkpoint, "the models folder \(folder) holds no checkpoint (*.safetensors)")
        }
        return files.map { URL(fileURLWithPath: folder).appendingPathComponent($0).path }
    }

    /// Evaluates ``weights`` of the checkpoint at `path` on the validation split.
    ///
    /// All ranks first agree whether every one of them could read the checkpoint, so an unreadable
    /// file is skipped together and never leaves a rank waiting.
    ///
    /// - Throws: ``TrainingError`` of kind `.checkpoint` (unreadable, corrupt, without a weight
    ///   average when ``weights`` is `.ema`, for another number of classes than the dataset has, or
    ///   too large for `runtime.memory_limit`; `isCollective`), or from the evaluation.
    package func evaluate(checkpointAt path: String) throws(TrainingError) -> Result {
        var failure: String?
        var checkpoint: Checkpoint?
        var memoryPlan: MemoryPlan?
        do {
            checkpoint = try Checkpoint(contentsOf: path)
            if weights == .ema, let structure = checkpoint?.parameters.structure {
                checkpoint?.parameters = try TrainingCheckpoint.average(besideModelFile: path, structure: structure)
            }
        } catch {
            failure = "\(error)"
        }
        if let checkpoint, checkpoint.configuration.classes != dataset.classNames.count {
            failure =
                "\(path): the checkpoint scores \(checkpoint.configuration.classes) classes "
                + "but \(dataset.root) has \(dataset.classNames.count)"
        } else if let checkpoint {
            // Inside the agreement below, so a limit that one server's share cannot meet skips the
            // checkpoint on every rank instead of leaving the others waiting.
            do throws(MemoryPlanError) {
                memoryPlan = try configuration.evaluationPlan(
                    batchSize: step.dataset.validationBatchSize,
                    structure: GhostNetStructure(configuration: checkpoint.configuration), ranksOnServer: ranksOnServer)
            } catch {
                failure = "\(path): \(configuration.file): \(error.description)"
            }
        }
        let status: CheckpointStatus
        do {
            status = try communicator.agree(CheckpointStatus(failed: failure != nil))
        } catch {
            throw TrainingError(.communication, "rank \(communicator.rank): agreeing on \(path): \(error)")
        }
        guard status.succeeded, let checkpoint, let memoryPlan else {
            let reason = failure ?? "\(path): unreadable on \(status.failedRanks) other rank(s)"
            throw TrainingError(.checkpoint, reason, isCollective: true)
        }
        let configuration = checkpoint.configuration
        var model = GhostNetModel(checkpoint.parameters)
        let evaluation = ShardedEvaluation(
            dataset: dataset, batchSize: step.dataset.validationBatchSize, imageSize: configuration.imageSize,
            threads: max(1, step.dataset.workers), seed: seed, strictData: strictData, communicator: communicator,
            microBatches: MicroBatchPlan(microBatchSize: memoryPlan.microBatchSize, minimumSize: 1))
        let metrics = try evaluation.evaluate(&model)
        let figures = PerformanceReporter.modelFigures(of: model.structure)
        return Result(
            path: path, weights: weights, configuration: configuration, epoch: checkpoint.epoch, step: checkpoint.step,
            metrics: metrics, memoryPlan: memoryPlan, flops: figures.flops, params: figures.params)
    }

    /// Evaluates every file in turn and logs the best one's `Best values` line. Rank 0 logs one
    /// line per checkpoint and sends each record to the coordinator when one is configured; a
    /// checkpoint some rank cannot read is skipped with a warning on every rank.
    ///
    /// - Returns: The best evaluation (highest top-1).
    /// - Throws: ``TrainingError``; of kind `.checkpoint` (collective) when no file could be evaluated.
    @discardableResult
    package func run(
        files: [String], logger: Logger, coordinator: CoordinatorClientConfiguration?
    ) throws(TrainingError) -> Result {
        let reporter = communicator.rank == 0 ? PerformanceReporter(coordinator: coordinator, logger: logger) : nil
        var results: [Result] = []
        logger.info("evaluating \(weights.label) of \(files.count) checkpoint(s)")
        for file in files {
            do {
                let result = try evaluate(checkpointAt: file)
                if result.memoryPlan != results.last?.memoryPlan {
                    logger.info("memory plan: \(result.memoryPlan.description)")
                }
                results.append(result)
                let weights = result.weights == .ema ? " (ema weights)" : ""
                logger.info("\(file): epoch \(result.epoch) step \(result.step)\(weights): \(result.metrics.summary)")
                if result.metrics.loss.isFinite { reporter?.report(result.record) }
            } catch  where error.kind == .checkpoint && error.isCollective {
                logger.warning("skipping \(file): \(error.message)")
            }
        }
        guard let best = results.max(by: { $0.metrics.top1 < $1.metrics.top1 }) else {
            throw TrainingError(.checkpoint, "no checkpoint could be evaluated", isCollective: true)
        }
        logger.info("best: \(best.path) (\(best.weights.rawValue) weights)")
        // The sink writes "<time> INFO <message>", the coordinator's BestValuesLine.logLine format.
        logger.info("\(BestValuesLine.message(for: [best.record]))")
        reporter?.finish(logBestValues: false)
        return best
    }
}
