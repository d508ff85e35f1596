// How a preempted run stops so that `--resume` continues as if nothing had happened: the checkpoint
// of the step the ranks agreed on, with every rank's own batch-norm running statistics (which are
// only averaged at an epoch's end), and their return to each rank on resume.

import Checkpoints
import Distributed
import Foundation
import GhostNet
import Logging
import TensorEngine

extension Trainer {
    /// Ends the run at a step boundary after `ranks` asked it to stop (SIGTERM, SIGUSR1): rank 0
    /// writes the checkpoint of this step, unless the epoch's own was just written, and every rank
    /// throws the same `.preempted` error, so the job ends cleanly with the "preempted" status.
    ///
    /// Mid-epoch, each rank's running statistics are its own until the epoch's averaging; the
    /// checkpoint keeps them all (the model file holds their average, for evaluation).
    func stopForPreemption(requestedBy ranks: [Int], checkpointWritten: Bool) throws(TrainingError) -> Never {
        if !checkpointWritten {
            let own = try gatherRunningStatistics()
            try synchronizeRunningStatistics()
            try saveCheckpoint(rankStatistics: own)
        }
        let entry = checkpoints.entry(epoch: state.epoch, globalStep: state.globalStep)
        let asked = ranks.count == 1 ? "rank \(ranks[0])" : "ranks \(ranks.map(String.init).joined(separator: ", "))"
        throw TrainingError(
            .preempted,
            "preempted: \(asked) received SIGTERM or SIGUSR1; checkpoint \(entry.modelURL.path) holds global step "
                + "\(state.globalStep) (epoch \(state.epoch + 1), step \(state.stepInEpoch) of \(stepsPerEpoch) done); "
                + "--resume continues from it",
            isCollective: true)
    }

    /// Every rank's own running statistics, in rank order, on rank 0 (the others get none): one
    /// byte-exact all-gather. None on a single rank, whose own statistics are the average.
    private func gatherRunningStatistics() throws(TrainingError) -> [[Tensor]] {
        guard communicator.size > 1 else { return [] }
        let own = model.runningStatistics.flatMap(\.scalars)
        let gathered = try collective("gathering every rank's batch-norm statistics") { () throws(CommunicatorError) in
            try communicator.allGather(own.withUnsafeBytes { Array($0) })
        }
        guard rank == 0 else { return [] }
        return gathered.map { bytes in
            var scalars = [Float](repeating: 0, count: own.count)
            scalars.withUnsafeMutableBytes { destination in bytes.withUnsafeBytes { destination.copyMemory(from: $0) } }
            return model.bufferSlots.map { slot in
                Tensor(shape: slot.shape, scalars: Array(scalars[slot.offset..<slot.offset + slot.scalarCount]))
            }
        }
    }

    /// On a resume from a preemption checkpoint written by as many ranks as this job has, hands
    /// every rank its own running statistics (rank 0 holds them all); `count` is the agreed number
    /// of ranks the checkpoint holds statistics of. At another world size the ranks keep the
    /// average rank 0 broadcast.
    func restoreRankStatistics(_ loaded: [[Tensor]], count: Int) throws(TrainingError) {
        guard count == communicator.size, count > 1 else { return }
        try collective("handing every rank its batch-norm statistics") { () throws(CommunicatorError) in
            for owner in 0..<count {
                var statistics = rank == 0 ? loaded[owner] : model.runningStatistics
                try communicator.broadcastParameters(&statistics)
                if owner == rank { model.updateRunningStatistics { slot, tensor in tensor = statistics[slot.index] } }
            }
        }
        output.logger.info("resume: every rank continues with its own batch-norm running statistics")
    }
}
