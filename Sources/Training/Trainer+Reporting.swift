// What the training loop tells the world: its start-up and finish lines, progress, the per-epoch
// bad-image summary, and the evaluation rank 0 logs and reports as a record.

import Checkpoints
import Distributed
import Foundation
import GhostNet
import ImageData
import Logging
import PerformanceRecords
import TensorEngine

/// The output side of a run: log lines, the progress display and rank 0's records.
struct TrainingOutput {
    let logger: Logger
    /// Shows progress (a live bar on a terminal); rank 0 only.
    let progressSink: TrainingLogSink?
    /// Rank 0's records; nil on the other ranks.
    let reporter: PerformanceReporter?
    /// The record's `flops` and `params` fields for the network being trained.
    let figures: (flops: Double, params: Double)
}

extension Trainer {
    // MARK: - Start and finish

    /// How a full batch runs, for the identity line: empty when it runs in one pass.
    private var microBatchText: String {
        let sizes = data.microBatches.sizes(of: step.dataset.batchSize)
        guard sizes.count > 1 else { return "" }
        let lanes = data.microBatches.laneCount(of: step.dataset.batchSize)
        return " (\(sizes.count) micro-batches of "
            + "\(sizes.max()!)\(sizes.min() == sizes.max() ? "" : " or \(sizes.min()!)")"
            + "\(lanes > 1 ? ", \(lanes) at a time" : ""), gradients accumulated)"
    }

    func logStart() {
        let logger = output.logger
        let network = model.structure.configuration
        let dataset = step.dataset
        let trainer = step.trainer
        logger.info(
            """
            model \(network.architectureName) blocks \(network.blocksText) width \(network.width), \
            \(network.classes) classes, \(dataset.imageSize)×\(dataset.imageSize) input
            """)
        logger.info(
            """
            model size: params \(model.structure.parametersInThousands) K, \
            flops \(model.structure.multiplyAccumulatesInBillions) G
            """)
        logger.info(
            """
            batch \(dataset.batchSize) per \(batchUnits.unit)\(microBatchText) × \(batchUnits.count) = \
            effective global batch \(dataset.batchSize * virtualShards); \
            \(stepsPerEpoch) steps per epoch, \(epochs) epochs
            """)
        logger.info("memory plan: \(data.memoryPlan.description)")
        if data.loaders[0].plan.leavesOutLastBatch {
            logger.warning(
                """
                the last batch of each epoch would hold 1 image per rank, too few for batch statistics; \
                it is left out (set drop_last or change the batch size)
                """)
        }
        let optimizer = trainer.optimizer
        logger.info(
            "SGD lr \(optimizer.learningRate) momentum \(optimizer.momentum) weight decay \(optimizer.weightDecay)")
        let extras =
            (trainer.mixup ? "; mixup α \(trainer.mixupAlpha)" : "")
            + (runtime.freezeBatchNorm ? "; batch norm frozen" : "")
        logger.info("precision: \(precision.label) (trainer.precision \(trainer.precision.rawValue))")
        logger.info("schedule: cosine T_max \(trainer.scheduler.periodEpochs) warm-up \(trainer.warmupEpochs)\(extras)")
        if rank == 0, !runtime.resume, let existing = try? checkpoints.list(), !existing.isEmpty {
            logger.warning(
                """
                \(checkpoints.url.path) already holds \(existing.count) checkpoint(s); this run starts afresh \
                and its checkpoints replace them (use --resume to continue instead)
                """)
        }
    }

    func logFinish() {
        let hex = String(type(of: communicator).checksum(model.parameters), radix: 16)
        let checksum = String(repeating: "0", count: 16 - hex.count) + hex
        output.logger.info(
            "training finished: epoch \(state.epoch), global step \(state.globalStep), parameter checksum \(checksum)")
    }

    /// Shows `report` (rank 0), followed by `note` when given.
    func showProgress(_ report: ProgressReport, note: String? = nil) {
        let suffix = note.map { "; \($0)" } ?? ""
        guard let sink = output.progressSink else {
            output.logger.info("\(report.line)\(suffix)")
            return
        }
        sink.showProgress((sink.showsLiveBar ? report.bar() : report.line) + suffix)
    }

    /// Logs (rank 0) how many samples of the epoch were replaced because their files were bad, and
    /// how many distinct bad files the job has met, both summed over ranks.
    func summarizeBadImages(epoch: Int, iterators: [EpochIterator]) throws(TrainingError) {
        let own = BadImageCounts(
            replacedSamples: iterators.reduce(0) { $0 + $1.replacedSampleCount },
            badFiles: data.loaders.reduce(0) { $0 + $1.badImageErrors.count })
        let counts = try collective("summing bad-image counts") { () throws(CommunicatorError) in
            try communicator.agree(own)
        }
        guard rank == 0 else { return }
        output.logger.info(
            """
            epoch \(epoch + 1) data: \(counts.replacedSamples) sample(s) replaced for bad files; \
            \(counts.badFiles) bad file(s) met by the ranks so far
            """)
    }

    // MARK: - Evaluation

    /// Replaces every rank's batch-norm running statistics by their average over ranks, so every
    /// rank evaluates and checkpoints the same model. With `reproducible_reduction`, by rank 0's
    /// instead: they come from virtual shard 0 alone (see ``forwardBackward(_:epoch:)``), so they do
    /// not depend on the number of ranks.
    func synchronizeRunningStatistics() throws(TrainingError) {
        guard communicator.size > 1 else { return }
        let reproducible = runtime.reproducibleReduction
        let what = reproducible ? "broadcasting rank 0's batch-norm statistics" : "averaging batch-norm statistics"
        try collective(what) { () throws(CommunicatorError) in
            var statistics = model.runningStatistics
            if reproducible {
                try communicator.broadcastParameters(&statistics)
            } else {
                try communicator.averageAcrossRanks(&statistics)
            }
            model.updateRunningStatistics { slot, tensor in tensor = statistics[slot.index] }
        }
        try synchronizeAverageStatistics()
    }

    /// Evaluates on the validation split; rank 0 logs and reports the record. Updates the best
    /// accuracy (on every rank: the metrics are the same everywhere).
    func evaluateAndReport() throws(TrainingError) -> ValidationMetrics {
        let metrics = try data.validation.evaluate(&model)
        output.logger.info("validation after epoch \(state.epoch): \(metrics.summary)")
        let averageTop1: [PerformanceMetrics.Element] =
            try evaluateAverage().map { [("accuracy_top1_ema", $0.top1)] } ?? []
        if let reporter = output.reporter, metrics.loss.isFinite {
            reporter.report(
                PerformanceRecord(
                    workerID: "0", rank: rank, epoch: state.epoch, step: state.globalStep,
                    performance: PerformanceMetrics(
                        [
                            ("accuracy_top1", metrics.top1), ("accuracy_top5", metrics.top5), ("loss", metrics.loss),
                            ("flops", output.figures.flops), ("params", output.figures.params),
                        ] + averageTop1),
                    timestamp: LogTimestamp.now()))
        }
        if metrics.top1 > (state.bestAccuracy ?? -1) {
            state.bestAccuracy = metrics.top1
            state.bestCheckpoint = checkpoints.entry(epoch: state.epoch, globalStep: state.globalStep).name
        }
        return metrics
    }
}
