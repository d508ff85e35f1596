// Which virtual shards each physical rank runs: the data is sharded over `runtime.virtual_ranks`
// shards fixed at the first launch, so a job relaunched on fewer ranks keeps its global batch,
// sample order, schedule and epoch length.

/// How a job's virtual shards are spread over its physical ranks.
///
/// The training split is sharded over ``virtualShards`` shards exactly as it would be over that
/// many ranks (``ShardPlan`` with the shard as rank); physical rank r of P runs the contiguous
/// shards ⌊r·V/P⌋ ..< ⌊(r+1)·V/P⌋, one after the other, each as its own micro-batches. When P
/// divides V every rank runs V/P shards; otherwise (3 ranks over 4 shards: 1, 1, 2) the split is
/// uneven, which changes only the step time: the ranks with fewer shards wait in the all-reduce.
/// Rank 0 always runs shard 0, whose batches alone update the batch-norm running statistics in a
/// reproducible run.
package struct VirtualShardPlan: Sendable, Equatable {
    /// V: the shards the data is split into.
    package let virtualShards: Int
    /// P: the physical ranks of this launch.
    package let ranks: Int

    /// - Throws: ``TrainingError`` of kind `.configuration`, naming `runtime.virtual_ranks` in
    ///   `file`, when there are more ranks than shards (a rank would have nothing to run).
    package init(virtualShards: Int, ranks: Int, file: String) throws(TrainingError) {
        precondition(virtualShards >= 1 && ranks >= 1, "\(virtualShards) shard(s) over \(ranks) rank(s)")
        guard ranks <= virtualShards else {
            throw TrainingError(
                .configuration,
                "\(file): runtime.virtual_ranks is \(virtualShards) but the job has \(ranks) ranks; every rank needs "
                    + "at least one virtual shard (set runtime.virtual_ranks to at least \(ranks), or launch at most "
                    + "\(virtualShards) ranks)")
        }
        self.virtualShards = virtualShards
        self.ranks = ranks
    }

    /// The virtual shards rank `rank` runs, in the order it runs them.
    package func shards(ofRank rank: Int) -> Range<Int> {
        precondition((0..<ranks).contains(rank), "rank \(rank) is outside 0..<\(ranks)")
        return (rank * virtualShards / ranks)..<((rank + 1) * virtualShards / ranks)
    }

    /// Whether every rank runs the same number of shards.
    package var isEven: Bool { virtualShards % ranks == 0 }

    /// The virtual shards of a launch: the checkpoint's when resuming (a configured value must
    /// agree), else the configured value, else one per rank.
    ///
    /// - Parameters:
    ///   - configured: `runtime.virtual_ranks`, if set.
    ///   - checkpoint: The resumed checkpoint's `training.virtual_ranks`, if resuming.
    /// - Throws: ``TrainingError`` of kind `.configuration` naming `runtime.virtual_ranks` when the
    ///   configured value contradicts the checkpoint's.
    package static func virtualShards(
        configured: Int?, checkpoint: Int?, ranks: Int, file: String
    ) throws(TrainingError) -> Int {
        guard let checkpoint else { return configured ?? ranks }
        if let configured, configured != checkpoint {
            throw TrainingError(
                .configuration,
                "\(file): runtime.virtual_ranks is \(configured) but the checkpoint being resumed was trained over "
                    + "\(checkpoint) virtual shards; remove the key or set it to \(checkpoint) to continue that run")
        }
        return checkpoint
    }
}
