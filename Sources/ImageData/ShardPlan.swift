//===----------------------------------------------------------------------===//
// ghostnet-d — ImageData
//===----------------------------------------------------------------------===//

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
public struct ShardPlan: Sendable {
    public enum Mode: Sendable {
        case training(seed: UInt64, dropLast: Bool)
        case evaluation
    }

    public let sampleCount: Int
    public let rank: Int
    public let worldSize: Int
    public let batchSize: Int
    public let mode: Mode

    /// The stream that keys the epoch permutation, kept apart from augmentation streams.
    static let permutationStream: UInt64 = 0x5045_524D  // "PERM"

    /// - Precondition: `0 ≤ rank < worldSize`, `batchSize ≥ 1`, `sampleCount ≥ 0`.
    public init(sampleCount: Int, rank: Int, worldSize: Int, batchSize: Int, mode: Mode) {
        precondition(worldSize >= 1 && (0..<worldSize).contains(rank),
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
    public var samplesPerEpoch: Int {
        switch mode {
        case .training(_, let dropLast):
            dropLast ? sampleCount / worldSize : (sampleCount + worldSize - 1) / worldSize
        case .evaluation:
            rank < sampleCount ? (sampleCount - rank + worldSize - 1) / worldSize : 0
        }
    }

    /// The number of batches this rank reads per epoch (the same on every rank in training).
    public var batchesPerEpoch: Int { (samplesPerEpoch + batchSize - 1) / batchSize }

    /// The dataset indices this rank reads in `epoch`, in order.
    public func samples(epoch: Int) -> [Int] {
        switch mode {
        case .training(let seed, _):
            let permutation = ShardPlan.permutation(count: sampleCount, seed: seed, epoch: epoch)
            // Position p of the padded permutation is permutation[p mod N]: the head repeats.
            return (0..<samplesPerEpoch).map { permutation[(rank + $0 * worldSize) % sampleCount] }
        case .evaluation:
            return Array(stride(from: rank, to: sampleCount, by: worldSize))
        }
    }

    /// The positions in `samples(epoch:)` that form batch `step`.
    public func batchRange(step: Int) -> Range<Int> {
        precondition((0..<batchesPerEpoch).contains(step), "step \(step) is outside 0..<\(batchesPerEpoch)")
        return (step * batchSize)..<min((step + 1) * batchSize, samplesPerEpoch)
    }

    /// A uniformly random permutation of `0..<count` (Fisher–Yates) keyed by (seed, epoch).
    public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
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
