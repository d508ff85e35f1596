//===----------------------------------------------------------------------===//
// ghostnet-d — Training
//===----------------------------------------------------------------------===//

import Distributed
import Foundation
import GhostNet
import ImageData
import PerformanceRecords

/// `ghostnet-d eval`: the validation accuracy of saved checkpoints, sharded over the ranks of a
/// communicator (one rank without `mpirun`).
///
/// The network (architecture, width, classes, input size) comes from each checkpoint's metadata;
/// the configuration's `eval` step supplies the dataset, batch size and decoding threads. Every
/// rank reads the checkpoint itself, so under `mpirun` the file must be visible on every server.
public struct CheckpointEvaluation {
    /// The evaluation of one checkpoint.
    public struct Result: Sendable {
        /// The model file evaluated.
        public var path: String
        public var configuration: GhostNetConfiguration
        /// Completed epochs and steps when the checkpoint was written.
        public var epoch: Int
        public var step: Int
        public var metrics: ValidationMetrics
        /// G multiply-accumulates per image and thousands of parameters (the record's fields).
        public var flops: Double
        public var params: Double

        /// The record rank 0 reports: the reference's `accuracy_top1`, `flops`, `params`.
        public var record: PerformanceRecord {
            PerformanceRecord(
                workerID: "0", rank: 0, epoch: epoch, step: step,
                performance: PerformanceMetrics([("accuracy_top1", metrics.top1), ("flops", flops), ("params", params)]),
                timestamp: LogTimestamp.now())
        }
    }

    public let step: TrainingConfiguration.Step
    public let dataset: DatasetIndex
    public let communicator: any Communicator
    public let seed: UInt64
    public let strictData: Bool

    public init(configuration: TrainingConfiguration, step: TrainingConfiguration.Step, dataset: DatasetIndex, communicator: any Communicator) {
        self.step = step
        self.dataset = dataset
        self.communicator = communicator
        seed = configuration.general.seed
        strictData = configuration.runtime.strictData
    }

    /// The model files of a folder of checkpoints: every `*.safetensors` except optimizer state
    /// (`*.optimizer.safetensors`), in name order (for `ckpt-e…` names: oldest first).
    ///
    /// - Throws: ``TrainingError`` of kind `.checkpoint` when the folder cannot be listed or holds none.
    public static func modelFiles(in folder: String) throws(TrainingError) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw TrainingError(.checkpoint, "cannot list the models folder \(folder): \(error.localizedDescription)")
        }
        let files = names.filter { $0.hasSuffix(".safetensors") && !$0.hasSuffix(".optimizer.safetensors") }.sorted()
        guard !files.isEmpty else {
            throw TrainingError(.checkpoint, "the models folder \(folder) holds no checkpoint (*.safetensors)")
        }
        return files.map { URL(fileURLWithPath: folder).appendingPathComponent($0).path }
    }

    /// Evaluates the checkpoint at `path` on the validation split.
    ///
    /// All ranks first agree whether every one of them could read the checkpoint, so an unreadable
    /// file is skipped together and never leaves a rank waiting.
    ///
    /// - Throws: ``TrainingError`` of kind `.checkpoint` (unreadable, corrupt, or for another
    ///   number of classes than the dataset has; `isCollective`), or from the evaluation.
    public func evaluate(checkpointAt path: String) throws(TrainingError) -> Result {
        var failure: String?
        var checkpoint: Checkpoint?
        do {
            checkpoint = try Checkpoint(contentsOf: path)
        } catch {
            failure = "\(error)"
        }
        if let checkpoint, checkpoint.configuration.classes != dataset.classNames.count {
            failure = "\(path): the checkpoint scores \(checkpoint.configuration.classes) classes but \(dataset.root) has \(dataset.classNames.count)"
        }
        var failedRanks: [Int64] = [failure == nil ? 0 : 1]
        do {
            try failedRanks.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in try communicator.allreduceSum(buffer) }
        } catch {
            throw TrainingError(.communication, "rank \(communicator.rank): agreeing on \(path): \(error)")
        }
        guard failedRanks[0] == 0, let checkpoint else {
            throw TrainingError(.checkpoint, failure ?? "\(path): unreadable on \(failedRanks[0]) other rank(s)", isCollective: true)
        }
        let configuration = checkpoint.configuration
        var model = GhostNetModel(checkpoint.parameters)
        let evaluation = ShardedEvaluation(
            dataset: dataset, batchSize: step.dataset.validationBatchSize, imageSize: configuration.imageSize,
            threads: max(1, step.dataset.workers), seed: seed, strictData: strictData, communicator: communicator)
        let metrics = try evaluation.evaluate(&model)
        let figures = PerformanceReporter.modelFigures(of: model.structure)
        return Result(
            path: path, configuration: configuration, epoch: checkpoint.epoch, step: checkpoint.step, metrics: metrics,
            flops: figures.flops, params: figures.params)
    }
}
