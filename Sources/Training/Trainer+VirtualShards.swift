// The training loop's virtual shards: a rank's step runs each of its shards' batches as micro-batches,
// the gradient exchange averages over shards (exactly, with `reproducible_reduction`), and a resume
// keeps the checkpoint's shards whatever the number of ranks.

import Checkpoints
import Distributed
import GhostNet
import ImageData
import Logging
import TensorEngine

extension Trainer {
    /// V, the job's virtual shards: the global batch is V × `batch_size`.
    var virtualShards: Int { data.shardPlan.virtualShards }

    /// The gradient exchange of a job over `virtualShards` shards.
    static func makeExchange(
        for model: GhostNetModel, communicator: any Communicator, runtime: TrainingConfiguration.Runtime,
        virtualShards: Int
    ) -> GradientExchange {
        GradientExchange(
            parameterShapes: model.parameterSlots.map(\.shape), communicator: communicator,
            configuration: GradientExchange.Configuration(
                bucketCapacityBytes: runtime.bucketCapacityBytes, checksumInterval: runtime.checksumInterval,
                virtualShards: virtualShards, reduction: runtime.reproducibleReduction ? .fixedPoint : .float,
                wireFormat: runtime.gradientWireFormat))
    }

    /// The identity line's "batch per <unit> × <count>": virtual shards appear only when they
    /// differ from ranks.
    var batchUnits: (unit: String, count: String) {
        let plan = data.shardPlan
        guard plan.virtualShards != plan.ranks else { return ("rank", "\(plan.ranks) rank(s)") }
        let fewest = plan.virtualShards / plan.ranks
        let share = plan.isEven ? "\(fewest)" : "\(fewest)-\(fewest + 1)"
        return ("virtual shard", "\(plan.virtualShards) virtual shards (\(share) per rank on \(plan.ranks) rank(s))")
    }

    /// Continues on the resumed checkpoint's virtual shards: rebuilds the loaders, the exchange and
    /// the schedule when they differ from the ones this launch started with.
    ///
    /// - Throws: ``TrainingError`` of kind `.configuration` (on every rank) when
    ///   `runtime.virtual_ranks` contradicts the checkpoint, or there are more ranks than shards.
    func adoptVirtualShards(of point: ResumePoint) throws(TrainingError) {
        let shards: Int
        do {
            shards = try VirtualShardPlan.virtualShards(
                configured: runtime.virtualRanks, checkpoint: point.virtualRanks, ranks: communicator.size,
                file: configuration.file)
            guard shards != virtualShards else { return }
            let plan = try VirtualShardPlan(virtualShards: shards, ranks: communicator.size, file: configuration.file)
            data.assignShards(plan)
        } catch {
            // Every rank decides this from the agreed point, at the same moment.
            throw TrainingError(error.kind, error.message, isCollective: true)
        }
        exchange = Self.makeExchange(
            for: model, communicator: communicator, runtime: runtime, virtualShards: shards)
        // The schedule follows the epoch's steps, which the shards decide; the momentum is the checkpoint's.
        let momentum = optimizer.momentum
        optimizer = OptimizerState(step.trainer, slots: model.parameterSlots, stepsPerEpoch: data.stepsPerEpoch)
        optimizer.momentum = momentum
        let batch = step.dataset.batchSize
        output.logger.info(
            """
            resume: the checkpoint's \(shards) virtual shards; this rank runs shards \(data.shards) of them: \
            batch \(batch) per \(batchUnits.unit) × \(batchUnits.count) = effective global batch \(batch * shards); \
            \(stepsPerEpoch) steps per epoch
            """)
    }

    /// Forward, loss and backward of each of the rank's shard batches, in shard order, each as its
    /// micro-batches; each gradient is accumulated into the exchange as backward produces it, and
    /// each shard's sum is tested for NaN and infinity on its last pass.
    ///
    /// Mixup is keyed by the virtual shard, not the rank. Batch-norm running statistics keep what
    /// the rank's first shard left (rank 0: shard 0), so they do not depend on how many shards a
    /// rank runs.
    func forwardBackward(_ batches: [Batch], epoch: Int) throws(TrainingError) -> MicroBatchPlan.Accumulation {
        var total = MicroBatchPlan.Accumulation()
        var firstShardStatistics: [Tensor]?
        for (position, batch) in batches.enumerated() {
            let shard = data.shards.lowerBound + position
            exchange.beginShard(position, of: batches.count)
            let outcome: MicroBatchPlan.Accumulation
            do {
                let (data, stepInEpoch) = (data, state.stepInEpoch)
                outcome = try data.microBatches.accumulate(
                    images: batch.images, labels: batch.labels.map(Int.init), model: &model, into: exchange
                ) { model, pass, index, gradientReady throws(GhostNetModelError) in
                    try data.trainingStep(
                        &model, pass: pass, index: index, epoch: epoch, stepInEpoch: stepInEpoch, shard: shard,
                        gradientReady: gradientReady
                    ).loss
                }
            } catch {
                throw TrainingError(
                    .model, "rank \(rank), shard \(shard), epoch \(epoch + 1), step \(state.stepInEpoch + 1): \(error)")
            }
            if let exchangeError = outcome.exchangeError {
                throw TrainingError(.communication, "rank \(rank): gradient exchange: \(exchangeError)")
            }
            if position == 0, batches.count > 1 { firstShardStatistics = model.runningStatistics }
            // Every shard's batch has the same size (ShardPlan), so the rank's loss is their plain mean.
            total.loss += outcome.loss / Double(batches.count)
            total.gradientIsFinite = total.gradientIsFinite && outcome.gradientIsFinite
            total.communication += outcome.communication
        }
        if let firstShardStatistics {
            model.updateRunningStatistics { slot, tensor in tensor = firstShardStatistics[slot.index] }
        }
        return total
    }
}
