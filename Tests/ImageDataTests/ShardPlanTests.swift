// The shard plan: training shards cover every index with equal batch counts, drop-last, disjoint unpadded
// evaluation shards, and permutations keyed by seed and epoch only.

import ImageData
import Testing

@Suite struct ShardPlanTests {
    static let shapes: [(samples: Int, world: Int, batch: Int)] = [
        (100, 4, 8), (101, 4, 8), (7, 4, 8), (3, 4, 2), (1, 3, 1), (64, 2, 32), (50, 7, 3), (13, 13, 5),
    ]

    private func plans(_ shape: (samples: Int, world: Int, batch: Int), dropLast: Bool = false) -> [ShardPlan] {
        (0..<shape.world).map {
            ShardPlan(
                sampleCount: shape.samples, rank: $0, worldSize: shape.world, batchSize: shape.batch,
                mode: .training(seed: 42, dropLast: dropLast))
        }
    }

    @Test(arguments: shapes)
    func trainingShardsCoverEveryIndexWithEqualBatchCounts(shape: (samples: Int, world: Int, batch: Int)) {
        let ranks = plans(shape)
        let batchCounts = Set(ranks.map(\.batchesPerEpoch))
        #expect(batchCounts.count == 1, "ranks disagree on batches per epoch: \(batchCounts)")
        #expect(batchCounts.first! >= 1)
        for epoch in 0..<3 {
            let shards = ranks.map { $0.samples(epoch: epoch) }
            #expect(Set(shards.map(\.count)).count == 1)
            let union = shards.flatMap { $0 }
            #expect(Set(union) == Set(0..<shape.samples), "epoch \(epoch) misses indices")
            // Padding repeats the permutation's head: exactly padded-count − N duplicates.
            #expect(union.count == (shape.samples + shape.world - 1) / shape.world * shape.world)
            let ranges = (0..<ranks[0].batchesPerEpoch).map { ranks[0].batchRange(step: $0) }
            #expect(ranges.map(\.count).reduce(0, +) == shards[0].count)
        }
    }

    @Test(arguments: shapes)
    func dropLastCutsToAMultipleOfTheWorld(shape: (samples: Int, world: Int, batch: Int)) {
        let ranks = plans(shape, dropLast: true)
        let union = ranks.flatMap { $0.samples(epoch: 1) }
        #expect(union.count == shape.samples / shape.world * shape.world)
        #expect(Set(union).count == union.count, "dropLast must not repeat samples")
        #expect(Set(ranks.map(\.batchesPerEpoch)).count == 1)
    }

    @Test(arguments: shapes)
    func evaluationShardsAreDisjointAndUnpadded(shape: (samples: Int, world: Int, batch: Int)) {
        let shards = (0..<shape.world).map {
            ShardPlan(
                sampleCount: shape.samples, rank: $0, worldSize: shape.world, batchSize: shape.batch, mode: .evaluation)
        }
        let union = shards.flatMap { $0.samples(epoch: 0) }
        #expect(union.sorted() == Array(0..<shape.samples))
        for plan in shards { #expect(plan.samples(epoch: 0).count == plan.samplesPerEpoch) }
    }

    @Test func permutationDependsOnSeedAndEpochOnly() {
        let a = ShardPlan.permutation(count: 1000, seed: 1, epoch: 0)
        #expect(a == ShardPlan.permutation(count: 1000, seed: 1, epoch: 0))
        #expect(a != ShardPlan.permutation(count: 1000, seed: 1, epoch: 1))
        #expect(a != ShardPlan.permutation(count: 1000, seed: 2, epoch: 0))
        #expect(a.sorted() == Array(0..<1000))
        #expect(ShardPlan.permutation(count: 0, seed: 1, epoch: 0).isEmpty)
    }
}
