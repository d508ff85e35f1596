// Virtual shards: which shards 1, 2, 3 and 4 ranks run over 4 shards, the errors for too many ranks and
// for a configured value contradicting the checkpoint, and `training.virtual_ranks` in checkpoint metadata.

import Checkpoints
import ImageData
import Testing
import Training

@Suite struct VirtualShardPlanTests {
    @Test(arguments: [
        (1, [0..<4]),
        (2, [0..<2, 2..<4]),
        // Uneven: the last rank runs two shards and the others wait for it in the all-reduce.
        (3, [0..<1, 1..<2, 2..<4]),
        (4, [0..<1, 1..<2, 2..<3, 3..<4]),
    ])
    func fourShardsOverRanks(ranks: Int, expected: [Range<Int>]) throws {
        let plan = try VirtualShardPlan(virtualShards: 4, ranks: ranks, file: "job.yml")
        #expect((0..<ranks).map(plan.shards(ofRank:)) == expected)
        #expect(plan.isEven == (ranks != 3))
    }

    @Test func everyShardRunsExactlyOnceAndRankZeroRunsShardZero() throws {
        for shards in 1...9 {
            for ranks in 1...shards {
                let plan = try VirtualShardPlan(virtualShards: shards, ranks: ranks, file: "job.yml")
                let all = (0..<ranks).flatMap { plan.shards(ofRank: $0) }
                #expect(all == Array(0..<shards), "\(shards) shards over \(ranks) ranks")
                #expect((0..<ranks).allSatisfy { !plan.shards(ofRank: $0).isEmpty })
                #expect(plan.shards(ofRank: 0).first == 0)
            }
        }
    }

    @Test func moreRanksThanShardsIsAConfigurationErrorNamingTheKey() {
        #expect {
            try VirtualShardPlan(virtualShards: 4, ranks: 5, file: "job.yml")
        } throws: { error in
            let error = error as! TrainingError
            return error.kind == .configuration
                && error.message.contains("job.yml: runtime.virtual_ranks is 4 but the job has 5 ranks")
        }
    }

    @Test func theCheckpointDecidesAndAContradictingValueIsAnError() throws {
        #expect(try VirtualShardPlan.virtualShards(configured: nil, checkpoint: nil, ranks: 2, file: "j") == 2)
        #expect(try VirtualShardPlan.virtualShards(configured: 8, checkpoint: nil, ranks: 2, file: "j") == 8)
        #expect(try VirtualShardPlan.virtualShards(configured: nil, checkpoint: 4, ranks: 1, file: "j") == 4)
        #expect(try VirtualShardPlan.virtualShards(configured: 4, checkpoint: 4, ranks: 1, file: "j") == 4)
        #expect {
            try VirtualShardPlan.virtualShards(configured: 2, checkpoint: 4, ranks: 1, file: "job.yml")
        } throws: { error in
            (error as! TrainingError).message.contains(
                "job.yml: runtime.virtual_ranks is 2 but the checkpoint being resumed was trained over 4 virtual shards"
            )
        }
    }

    @Test func checkpointMetadataKeepsTheVirtualRanks() throws {
        let state = TrainingState(seed: 3, learningRate: 0.1, worldSize: 1, virtualRanks: 4)
        #expect(state.metadata["training.virtual_ranks"] == "4")
        #expect(try TrainingState(metadata: state.metadata) == state)
        // A checkpoint from before virtual shards: one shard per rank that wrote it.
        var old = TrainingState(seed: 3, learningRate: 0.1, worldSize: 2).metadata
        old["training.virtual_ranks"] = nil
        #expect(try TrainingState(metadata: old).virtualRanks == 2)
        old["training.virtual_ranks"] = "0"
        #expect(throws: TrainingStateError.self) { try TrainingState(metadata: old) }
    }

    /// A virtual shard reads what the rank of that number reads in a job of that many ranks, so the
    /// samples of a step do not depend on the physical ranks.
    @Test func shardsOfTheGlobalBatchPartitionTheEpoch() {
        let shards = (0..<4).map {
            ShardPlan(
                sampleCount: 30, rank: $0, worldSize: 4, batchSize: 3, mode: .training(seed: 5, dropLast: false))
        }
        let epoch = shards.map { $0.samples(epoch: 2) }
        // 30 samples padded to 32: every sample appears, two of them twice.
        #expect(Set(epoch.flatMap { $0 }) == Set(0..<30))
        #expect(epoch.allSatisfy { $0.count == 8 })
        #expect(shards.allSatisfy { $0.batchesPerEpoch == 3 })
    }
}
