// Checkpoints of the training loop: rank 0 writes them and every rank agrees on the outcome; a
// resume reads rank 0's newest valid one and makes every rank's replica rank 0's.

import Checkpoints
import Distributed
import Foundation
import GhostNet
import Logging
import TensorEngine

extension Trainer {
    /// Makes every rank's replica rank 0's: parameters, batch-norm running statistics and momentum.
    /// The one broadcast of a run: before the first step, fresh or resumed.
    func shareRankZeroReplica() throws(TrainingError) {
        try collective("broadcasting rank 0's parameters, statistics and momentum") { () throws(CommunicatorError) in
            var parameters = model.parameters
            try communicator.broadcastParameters(&parameters)
            model.updateParameters { slot, tensor in tensor = parameters[slot.index] }
            var statistics = model.runningStatistics
            try communicator.broadcastParameters(&statistics)
            model.updateRunningStatistics { slot, tensor in tensor = statistics[slot.index] }
            try communicator.broadcastParameters(&optimizer.momentum)
        }
    }

    /// Rank 0 writes the checkpoint of the current state and prunes old ones; every rank learns
    /// whether it worked (the agreement doubles as the barrier after the save).
    ///
    /// - Parameter rankStatistics: Every rank's own running statistics (a preemption checkpoint's).
    /// - Throws: ``TrainingError`` of kind `.checkpoint` on every rank when rank 0 could not write.
    func saveCheckpoint(rankStatistics: [[Tensor]] = []) throws(TrainingError) {
        let entry = checkpoints.entry(epoch: state.epoch, globalStep: state.globalStep)
        let failure = rank == 0 ? write(entry, rankStatistics: rankStatistics) : nil
        let status = try collective("waiting for the checkpoint") { () throws(CommunicatorError) in
            try communicator.agree(CheckpointStatus(failed: failure != nil))
        }
        guard !status.succeeded else { return }
        let previous = (try? checkpoints.list().first?.modelURL.path) ?? nil
        let advice =
            previous.map {
                "the previous checkpoint \($0) is intact; resume from it with --resume once the folder is writable"
            } ?? "no earlier checkpoint exists"
        throw TrainingError(
            .checkpoint,
            "cannot write checkpoint \(entry.name) at epoch \(state.epoch), global step \(state.globalStep): "
                + "\(failure ?? "see rank 0's log"); \(advice)",
            isCollective: true)
    }

    /// Rank 0: writes `entry` and prunes the folder.
    ///
    /// - Returns: Why it failed, or nil.
    private func write(_ entry: CheckpointDirectory.Entry, rankStatistics: [[Tensor]]) -> String? {
        do {
            try FileManager.default.createDirectory(at: checkpoints.url, withIntermediateDirectories: true)
            var checkpoint = TrainingCheckpoint(
                parameters: model.exportedParameters, momentum: optimizer.momentum, state: state,
                average: average?.model.exportedParameters)
            checkpoint.rankStatistics = rankStatistics
            try checkpoint.write(to: entry, slots: model.parameterSlots, seed: seed)
            let pruned = try checkpoints.prune(keepingAlso: state.bestCheckpoint)
            let removed = pruned.isEmpty ? "" : " (removed \(pruned.map(\.name).joined(separator: ", ")))"
            output.logger.info("checkpoint \(entry.modelURL.path)\(removed)")
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Continues from rank 0's newest valid checkpoint on every rank: rank 0 reads and verifies the
    /// files, the ranks agree on the state, and rank 0's replica and momentum are broadcast, so the
    /// other ranks need no access to the checkpoint folder.
    func resume() throws(TrainingError) {
        var loaded: TrainingCheckpoint?
        var failure: String?
        if rank == 0 {
            do {
                loaded = try newestValidCheckpoint()
            } catch {
                failure = "\(error)"
                output.logger.error("cannot resume: \(error)")
            }
        }
        let contribution: ResumeAgreement =
            failure != nil ? .failed : loaded.map { .resume(ResumePoint($0)) } ?? .startAfresh
        let agreed = try collective("sharing the resume state") { () throws(CommunicatorError) in
            try communicator.agree(contribution)
        }
        switch agreed {
        case .startAfresh:
            output.logger.info("resume: no checkpoint in \(checkpoints.url.path); starting from the beginning")
            try shareRankZeroReplica()
        case .failed:
            let reason = failure ?? "rank 0 could not read its checkpoint (see its log)"
            throw TrainingError(.checkpoint, "cannot resume: \(reason)", isCollective: true)
        case .resume(let point):
            if let loaded {
                model = GhostNetModel(loaded.parameters)
                optimizer.momentum = loaded.momentum
                average = loaded.average.map { WeightEMA(decay: step.trainer.emaDecay, startingAt: GhostNetModel($0)) }
            }
            try shareRankZeroReplica()
            try restoreRankStatistics(loaded?.rankStatistics ?? [], count: point.rankStatistics)
            try adoptVirtualShards(of: point)
            resumeRun(at: point, bestCheckpoint: loaded?.state.bestCheckpoint)
        }
    }

    /// Takes over the agreed resume point, on the checkpoint's virtual shards (already adopted), so
    /// the step, the global batch and the sample order are those of the run that wrote it.
    private func resumeRun(at point: ResumePoint, bestCheckpoint: String?) {
        state = TrainingState(
            epoch: point.epoch, globalStep: point.globalStep, stepInEpoch: point.stepInEpoch, seed: seed,
            samplerPosition: point.samplerPosition, learningRate: point.learningRate,
            bestAccuracy: point.bestAccuracy, bestCheckpoint: bestCheckpoint, worldSize: communicator.size,
            virtualRanks: virtualShards, precision: precision.rawValue)
        if point.worldSize != communicator.size {
            output.logger.info(
                """
                resume: the checkpoint was written by \(point.worldSize) rank(s), this job has \(communicator.size); \
                the same \(virtualShards) virtual shards keep the global batch, sample order and schedule
                """)
        }
        if state.stepInEpoch >= stepsPerEpoch { state.startNextEpoch() }
        exchange.step = state.globalStep
        output.logger.info(
            """
            resume: continuing at epoch \(state.epoch + 1), step \(state.stepInEpoch + 1) \
            (global step \(state.globalStep + 1)), lr \(ProgressReport.significant(state.learningRate))
            """)
    }

    /// Rank 0: the newest checkpoint in the folder that reads, verifies, and holds this run's
    /// network; corrupt or partial ones are skipped with a warning.
    private func newestValidCheckpoint() throws -> TrainingCheckpoint? {
        var loaded: TrainingCheckpoint?
        let slots = model.parameterSlots
        let entry = try checkpoints.newestValid(
            validate: { entry in loaded = try TrainingCheckpoint(contentsOf: entry, slots: slots) },
            warn: { [output] in output.logger.warning("\($0)") })
        guard let entry, let loaded else { return nil }
        let expected = model.structure.configuration
        let found = loaded.parameters.structure.configuration
        guard expected == found else {
            throw TrainingError(
                .checkpoint,
                "\(entry.modelURL.path) holds a \(found.architectureName) network (blocks \(found.blocksText), "
                    + "width \(found.width), \(found.classes) classes) but \(configuration.file) describes "
                    + "blocks \(expected.blocksText), width \(expected.width), \(expected.classes) classes")
        }
        output.logger.info("resume: reading \(entry.modelURL.path)")
        return loaded
    }
}
