// A rank's data loader: loader options, the `Batch` it yields, and `ShardedLoader`, which decodes this
// rank's shard of each epoch into batches, replacing bad images unless data is strict.

import Foundation
import TensorEngine

/// Settings of a `ShardedLoader` beyond the dataset, shard and batch size.
package struct LoaderOptions: Sendable {
    /// Background threads that decode and augment. The default 1 leaves the other cores to
    /// OpenBLAS, which the training step keeps busy.
    package var threadCount: Int
    /// Batches decoded ahead of the consumer (at least 2; raised to `threadCount` if lower).
    package var prefetchDepth: Int
    /// Training only: cut the epoch permutation down to a multiple of the world size instead of
    /// padding it by repeating its head.
    package var dropLast: Bool
    /// Training only: leave out an epoch's last batch when it holds fewer samples (see ``ShardPlan``).
    package var minimumBatchSize: Int
    /// Make a bad image an error instead of skipping it and using a replacement.
    package var strictData: Bool
    /// Training only: the area fraction range of the random-resized crop (torchvision: 0.08…1;
    /// small synthetic images train better with a larger lower bound).
    package var cropScale: ClosedRange<Double>
    /// Training only: colour jitter after the crop and flip (nil for none).
    package var colorJitter: ColorJitter?
    package var normalization: Normalization
    /// Images with a longer side are refused before allocation.
    package var maximumSide: Int
    /// How many replacement samples are tried for one bad image before giving up.
    package var maximumReplacementAttempts: Int

    package init(
        threadCount: Int = 1, prefetchDepth: Int = 2, dropLast: Bool = false, minimumBatchSize: Int = 1,
        strictData: Bool = false,
        cropScale: ClosedRange<Double> = 0.08...1, colorJitter: ColorJitter? = nil,
        normalization: Normalization = .imageNet,
        maximumSide: Int = JPEGDecoder.defaultMaximumSide, maximumReplacementAttempts: Int = 16
    ) {
        self.threadCount = threadCount
        self.prefetchDepth = prefetchDepth
        self.dropLast = dropLast
        self.minimumBatchSize = minimumBatchSize
        self.strictData = strictData
        self.cropScale = cropScale
        self.colorJitter = colorJitter
        self.normalization = normalization
        self.maximumSide = maximumSide
        self.maximumReplacementAttempts = maximumReplacementAttempts
    }
}

/// One batch of network inputs.
package struct Batch: Sendable {
    /// The images, NHWC `[count, imageSize, imageSize, 3]`, normalised.
    package let images: Tensor
    /// The class index of each image.
    package let labels: [Int32]
    /// The dataset index (within the split) of each image; a bad image's replacement shows here.
    package let sampleIndices: [Int]
    package let epoch: Int
    package let step: Int

    package var count: Int { labels.count }
}

/// Reads one rank's shard of a dataset split as batches, decoding and augmenting on background
/// threads into reused batch buffers.
///
/// Everything random (the epoch permutation, each image's crop, flip and jitter, the choice of a
/// replacement for a bad image) is keyed by (seed, epoch, sample index), so batches are the same
/// for any thread count and timing, and a run resumed at (epoch, step) sees the same remaining
/// batches.
///
/// A bad image (unreadable, not JPEG, corrupt or truncated, too large) is reported once with its
/// path, counted, and replaced by another sample of the same shard chosen deterministically; with
/// `strictData` it is an error instead.
package final class ShardedLoader: Sendable {
    package let dataset: DatasetIndex
    package let split: DatasetSplit
    package let plan: ShardPlan
    package let transform: SampleTransform
    package let options: LoaderOptions
    package let seed: UInt64
    private let badImages: BadImageRegistry

    /// The stream that keys replacement choices, kept apart from augmentation streams.
    static let replacementStream: UInt64 = 0x5245_504C  // "REPL"

    /// Creates the loader of rank `rank`'s shard.
    ///
    /// - Parameters:
    ///   - split: `.train` shuffles, pads and augments (random-resized crop, flip, optional
    ///     jitter); `.validation` keeps order, does not pad, and resizes + centre-crops.
    ///   - imageSize: the side of the square network input.
    ///   - reportBadImage: called once per bad file (default: a warning on standard error).
    /// - Precondition: `0 ≤ rank < worldSize`, `batchSize ≥ 1`, `threadCount ≥ 1`.
    package init(
        dataset: DatasetIndex, split: DatasetSplit, rank: Int, worldSize: Int, batchSize: Int,
        seed: UInt64, imageSize: Int = 224, options: LoaderOptions = LoaderOptions(),
        reportBadImage: @escaping @Sendable (DataError) -> Void = ShardedLoader.warnOnStandardError
    ) {
        precondition(options.threadCount >= 1, "the loader needs at least one thread, got \(options.threadCount)")
        precondition(imageSize >= 1, "image size must be positive, got \(imageSize)")
        precondition(
            options.cropScale.lowerBound > 0 && options.cropScale.upperBound <= 1,
            "crop scale must lie in (0, 1], got \(options.cropScale)")
        self.dataset = dataset
        self.split = split
        self.seed = seed
        self.options = options
        let sampleCount = dataset[split].count
        switch split {
        case .train:
            plan = ShardPlan(
                sampleCount: sampleCount, rank: rank, worldSize: worldSize, batchSize: batchSize,
                mode: .training(seed: seed, dropLast: options.dropLast, minimumBatchSize: options.minimumBatchSize))
            transform = .train(
                imageSize: imageSize, scale: options.cropScale, colorJitter: options.colorJitter,
                normalization: options.normalization)
        case .validation:
            plan = ShardPlan(
                sampleCount: sampleCount, rank: rank, worldSize: worldSize, batchSize: batchSize,
                mode: .evaluation)
            transform = .evaluation(imageSize: imageSize, normalization: options.normalization)
        }
        badImages = BadImageRegistry(report: reportBadImage)
    }

    /// Prints `warning: skipping bad image <path>: <reason>` on standard error.
    package static let warnOnStandardError: @Sendable (DataError) -> Void = { error in
        FileHandle.standardError.write(Data("warning: skipping bad image \(error)\n".utf8))
    }

    /// Batches this rank reads per epoch (the same on every rank for `.train`).
    package var batchesPerEpoch: Int { plan.batchesPerEpoch }
    /// Samples this rank reads per epoch.
    package var samplesPerEpoch: Int { plan.samplesPerEpoch }
    /// The side of the square images.
    package var imageSize: Int { transform.imageSize }

    /// Every distinct bad image found so far (in any epoch), in the order found.
    package var badImageErrors: [DataError] { badImages.all }

    /// Starts reading `epoch` from batch `step` (0 for the beginning; a checkpoint's step to resume).
    package func makeEpoch(epoch: Int, startingAtStep step: Int = 0) -> EpochIterator {
        precondition((0...batchesPerEpoch).contains(step), "step \(step) is outside 0...\(batchesPerEpoch)")
        return EpochIterator(loader: self, epoch: epoch, firstStep: step)
    }

    /// Reads batch `step` of `epoch` into `buffer` (reused when it has the batch's shape).
    func makeBatch(
        step: Int, epoch: Int, samples: [Int], buffer: Tensor?, pipeline: inout SamplePipeline,
        replacements: inout Int
    ) throws(DataError) -> Batch {
        let positions = plan.batchRange(step: step)
        let size = transform.imageSize
        let shape = [positions.count, size, size, 3]
        var images = buffer.flatMap { $0.shape == shape ? $0 : nil } ?? Tensor(shape: shape)
        var labels: [Int32] = []
        var indices: [Int] = []
        let perImage = size * size * 3
        let labelsOfSplit = dataset[split].labels
        try images.withUnsafeMutableBufferPointer { all throws(DataError) in
            for (slot, position) in positions.enumerated() {
                let output = UnsafeMutableBufferPointer(rebasing: all[(slot * perImage)..<((slot + 1) * perImage)])
                let (index, replaced) = try loadSample(
                    position: position, epoch: epoch, samples: samples, pipeline: &pipeline, into: output)
                indices.append(index)
                labels.append(labelsOfSplit[index])
                if replaced { replacements += 1 }
            }
        }
        return Batch(images: images, labels: labels, sampleIndices: indices, epoch: epoch, step: step)
    }

    /// Loads the sample at `position` of this rank's epoch order, or a replacement when it is bad.
    ///
    /// - Returns: the dataset index actually loaded, and whether it is a replacement.
    private func loadSample(
        position: Int, epoch: Int, samples: [Int], pipeline: inout SamplePipeline,
        into output: UnsafeMutableBufferPointer<Float>
    ) throws(DataError) -> (index: Int, replaced: Bool) {
        let original = samples[position]
        var candidate = original
        var lastError: DataError?
        for attempt in 0...options.maximumReplacementAttempts {
            if attempt > 0 {
                var chooser = SeededRandom(
                    seed: seed, streams: ShardedLoader.replacementStream, UInt64(epoch), UInt64(original),
                    UInt64(attempt))
                candidate = samples[Int(chooser.next() % UInt64(samples.count))]
            }
            if let known = badImages.error(for: candidate) {
                if options.strictData { throw known }
                lastError = known
                continue
            }
            var random = SeededRandom(seed: seed, streams: UInt64(epoch), UInt64(candidate))
            do {
                try pipeline.load(
                    path: dataset.path(of: candidate, in: split), transform: transform, random: &random, into: output)
                return (candidate, attempt > 0)
            } catch  where error.isBadImage {
                badImages.record(error, for: candidate)
                if options.strictData { throw error }
                lastError = error
            }
        }
        throw DataError(
            .tooManyBadFiles, path: dataset.path(of: original, in: split),
            "this image and \(options.maximumReplacementAttempts) replacements from the same shard are all bad (last: "
                + "\(lastError.map { "\($0)" } ?? "none")); check the dataset with `ghostnet-d dataset check`")
    }
}

/// The bad images one loader has found, each reported once.
private final class BadImageRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var errorsBySample: [Int: DataError] = [:]
    private var ordered: [DataError] = []
    private let report: @Sendable (DataError) -> Void

    init(report: @escaping @Sendable (DataError) -> Void) { self.report = report }

    func error(for sample: Int) -> DataError? {
        lock.withLock { errorsBySample[sample] }
    }

    func record(_ error: DataError, for sample: Int) {
        let isNew = lock.withLock {
            guard errorsBySample[sample] == nil else { return false }
            errorsBySample[sample] = error
            ordered.append(error)
            return true
        }
        if isNew { report(error) }
    }

    var all: [DataError] { lock.withLock { ordered } }
}
