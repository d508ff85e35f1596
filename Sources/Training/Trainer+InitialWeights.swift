// `runtime.init_from`: a new run starts from a weights file instead of the seed's initialisation.
// Rank 0 reads and matches the file, every rank agrees on the outcome, and the run's one broadcast
// (shareRankZeroReplica) then gives every rank rank 0's weights; the optimizer starts fresh.

import Checkpoints
import Distributed
import Foundation
import GhostNet
import Interop
import Logging

extension Trainer {
    /// Rank 0 replaces its replica's weights with the matching tensors of `path` and logs the
    /// match summary; every rank learns whether it worked.
    ///
    /// - Throws: ``TrainingError`` of kind `.configuration` on every rank when rank 0 could not
    ///   read or match the file, or when the checkpoint folder already holds a run (which
    ///   `--resume` continues; an init would overwrite its checkpoints).
    func startFromInitialWeights(_ path: String) throws(TrainingError) {
        var failure: String?
        if rank == 0 {
            do {
                try refuseCheckpointsToResume()
                let weights = try InitialWeights(contentsOf: path)
                let (parameters, report) = try weights.apply(
                    to: model.exportedParameters, partial: runtime.initPartial)
                model = GhostNetModel(parameters)
                for line in report.summary { output.logger.info("\(line)") }
                if !report.isComplete {
                    output.logger.warning(
                        """
                        init-from: --init-partial: missing and mis-shaped tensors keep the seed's initialisation, \
                        unexpected ones are ignored
                        """)
                }
            } catch {
                failure = "\(error)"
                output.logger.error("cannot start from \(ConfigurationKeys.initFrom.path) \(path): \(error)")
            }
        }
        let status = try collective("sharing the outcome of reading runtime.init_from") {
            () throws(CommunicatorError) in
            try communicator.agree(CheckpointStatus(failed: failure != nil))
        }
        guard status.succeeded else {
            let reason = failure ?? "rank 0 could not use \(path) (see its log)"
            throw TrainingError(
                .configuration, "\(ConfigurationKeys.initFrom.path) (--init-from): \(reason)", isCollective: true)
        }
    }

    /// Rank 0: refuses to start from a file when the checkpoint folder holds a run to resume.
    private func refuseCheckpointsToResume() throws {
        guard let newest = try checkpoints.list().first else { return }
        throw TrainingError(
            .configuration,
            "\(checkpoints.url.path) already holds checkpoint \(newest.name) of a run; init_from starts a new run "
                + "from a file's weights (fresh optimizer, epoch 0) and would overwrite it, resume continues that "
                + "run (its weights, optimizer state and epoch): pass --resume without --init-from (or with --set "
                + "runtime.init_from=null) to continue it, or give the new run another --checkpoint-dir")
    }
}
