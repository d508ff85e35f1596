// The index arithmetic of sharding a split over ranks: which samples a rank reads, how they form
// batches, and how many batches (optimizer steps) an epoch has.

import TensorEngine

/// Which samples one rank reads in an epoch, and how they form batches.
///
/// Training (`DistributedSampler` semantics): one permutation of all `sampleCount` indices from
/// (seed, epoch), the same on every rank; padded by repeating its head up to a multiple of
/// `worldSize` (or cut down to one, with `dropLast`); rank `r` takes positions r, r+W, r+2W, …
/// Every rank therefore has the same number of samples and of batches in every epoch, which the
/// gradient all-reduce needs (an uneven count would deadlock it).
///
/// Evaluation: no shuffling and no padding; rank `r` takes r, r+W, … so ranks may differ by one
/// sample and one batch; metrics must be reduced as sums.
///
/// Batches are consecutive runs of `batchSize` of the rank's samples; the last one may be short.
/// In training, a last batch of fewer than `minimumBatchSize` samples is left out (batch norm with
/// batch statistics cannot normalise a single image), so ``batchesPerEpoch`` is the epoch's step count.
package struct ShardPlan: Sendable {
    package enum Mode: Sendable {
        case training(seed: UInt64, dropLast: Bool, minimumBatchSize: Int = 1)
        case evaluation
    }

    package let sampleCount: Int
    package let rank: Int
    package let worldSize: Int
    package let batchSize: Int
    package let mode: Mode

    /// The stream that keys the epoch permutation, kept apart from augmentation streams.
    static let permutationStream: UInt64 = 0x5045_524D  // "PERM"

    /// - Precondition: `0 ≤ rank < worldSize`, `batchSize ≥ 1`, `sampleCount ≥ 0`.
    package init(sampleCount: Int, rank: Int, worldSize: Int, batchSize: Int, mode: Mode) {
        precondition(
            worldSize >= 1 && (0..<worldSize).contains(rank),
            "rank \(rank) is outside a world of \(worldSize)")
        precondition(batchSize >= 1, "batch size must be at least 1, got \(batchSize)")
        precondition(sampleCount >= 0, "sample count must be non-negative, got \(sampleCount)")
        self.sampleCount = sampleCount
        self.rank = rank
        self.worldSize = worldSize
        self.batchSize = batchSize
        self.mode = mode
    }

    /// The number of samples this rank reads per epoch.
    package var samplesPerEpoch: Int {
        switch mode {
        case .training(_, let dropLast, _):
            dropLast ? sampleCount / worldSize : (sampleCount + worldSize - 1) / worldSize
        case .evaluation:
            rank < sampleCount ? (sampleCount - rank + worldSize - 1) / worldSize : 0
        }
    }

    /// The number of batches this rank reads per epoch (the same on every rank in training),
    /// without a last batch below the minimum size.
    package var batchesPerEpoch: Int {
        let batches = (samplesPerEpoch + batchSize - 1) / batchSize
        return leavesOutLastBatch ? batches - 1 : batches
    }

    /// Whether the epoch's last batch is left out for holding fewer than `minimumBatchSize` samples.
    package var leavesOutLastBatch: Bool {
        guard case .training(_, _, let minimumBatchSize) = mode, samplesPerEpoch > 0 else { return false }
        let remainder = samplesPerEpoch % batchSize
        return remainder > 0 && remainder < minimumBatchSize
    }

    /// The dataset indices this rank reads in `epoch`, in order.
    package func samples(epoch: Int) -> [Int] {
        switch mode {
        case .training(let seed, _, _):
            let permutation = ShardPlan.permutation(count: sampleCount, seed: seed, epoch: epoch)
            // Position p of the padded permutation is permutation[p mod N]: the head repeats.
            return (0..<samplesPerEpoch).map { permutation[(rank + $0 * worldSize) % sampleCount] }
        case .evaluation:
            return Array(stride(from: rank, to: sampleCount, by: worldSize))
        }
    }

    /// The positions in `samples(epoch:)` that form batch `step`.
    package func batchRange(step: Int) -> Range<Int> {
        precondition((0..<batchesPerEpoch).contains(step), "step \(step) is outside 0..<\(batchesPerEpoch)")
        return (step * batchSize)..<min((step + 1) * batchSize, samplesPerEpoch)
    }

    /// A uniformly random permutation of `0..<count` (Fisher–Yates) keyed by (seed, epoch).
    package static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var random = SeededRandom(seed: seed, streams: permutationStream, UInt64(epoch))
        var order = Array(0..<count)
        var i = count - 1
        while i > 0 {
            order.swapAt(i, Int(random.next() % UInt64(i + 1)))
            i -= 1
        }
        return order
    }
}
