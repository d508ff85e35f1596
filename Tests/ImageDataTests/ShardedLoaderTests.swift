// The sharded loader: NHWC batches and labels, the same batches for any thread count, resuming at a step,
// per-rank shards, the evaluation transform, and bad files skipped, counted and replaced.

import Foundation
import ImageData
import TensorEngine
import Testing
import _TestSupport

@Suite struct ShardedLoaderTests {
    private func loader(
        _ index: DatasetIndex, split: DatasetSplit = .train, rank: Int = 0, worldSize: Int = 1, batchSize: Int = 4,
        seed: UInt64 = 3, imageSize: Int = 24, options: LoaderOptions = LoaderOptions(),
        report: @escaping @Sendable (DataError) -> Void = { _ in }
    ) -> ShardedLoader {
        ShardedLoader(
            dataset: index, split: split, rank: rank, worldSize: worldSize, batchSize: batchSize, seed: seed,
            imageSize: imageSize, options: options, reportBadImage: report)
    }

    private func allBatches(_ loader: ShardedLoader, epoch: Int, from step: Int = 0) throws -> [Batch] {
        let iterator = loader.makeEpoch(epoch: epoch, startingAtStep: step)
        var batches: [Batch] = []
        while let batch = try iterator.next() { batches.append(batch) }
        return batches
    }

    private func expectSame(_ a: [Batch], _ b: [Batch], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, sourceLocation: sourceLocation)
        for (x, y) in zip(a, b) {
            #expect(x.sampleIndices == y.sampleIndices, sourceLocation: sourceLocation)
            #expect(x.labels == y.labels, sourceLocation: sourceLocation)
            #expect(x.images.shape == y.images.shape, sourceLocation: sourceLocation)
            expectClose(x.images.scalars, y.images.scalars, relative: 0, absolute: 1e-6, sourceLocation: sourceLocation)
        }
    }

    @Test func batchesHaveNHWCShapeAndLabels() throws {
        let index = try DatasetIndex.scan(dataPath: try Fixtures.synthetic(classes: 3, train: 5))
        let train = loader(index, batchSize: 4, imageSize: 24)
        #expect(train.batchesPerEpoch == 4)  // 15 samples: 4 + 4 + 4 + 3
        let batches = try allBatches(train, epoch: 0)
        #expect(batches.map(\.images.shape) == [[4, 24, 24, 3], [4, 24, 24, 3], [4, 24, 24, 3], [3, 24, 24, 3]])
        #expect(batches.flatMap(\.sampleIndices).sorted() == Array(0..<15))
        for batch in batches {
            #expect(batch.labels == batch.sampleIndices.map { index.train.labels[$0] })
            #expect(batch.images.scalars.allSatisfy { $0.isFinite && abs($0) < 3 })
        }
    }

    @Test func sameSeedSameBatchesAnyThreadCount() throws {
        let index = try DatasetIndex.scan(dataPath: try Fixtures.synthetic(classes: 3, train: 6))
        let oneThread = try allBatches(
            loader(index, options: LoaderOptions(threadCount: 1, colorJitter: ColorJitter())), epoch: 2)
        let twoThreads = try allBatches(
            loader(index, options: LoaderOptions(threadCount: 2, prefetchDepth: 3, colorJitter: ColorJitter())),
            epoch: 2)
        expectSame(oneThread, twoThreads)

        let nextEpoch = try allBatches(loader(index), epoch: 3)
        #expect(nextEpoch.flatMap(\.sampleIndices) != oneThread.flatMap(\.sampleIndices))
        let otherSeed = try allBatches(loader(index, seed: 4), epoch: 2)
        #expect(otherSeed.flatMap(\.sampleIndices) != oneThread.flatMap(\.sampleIndices))
    }

    @Test func resumingAtAStepYieldsTheRemainingBatches() throws {
        let index = try DatasetIndex.scan(dataPath: try Fixtures.synthetic(classes: 3, train: 6))
        let train = loader(index, batchSize: 3)
        let full = try allBatches(train, epoch: 5)
        let resumed = try allBatches(train, epoch: 5, from: 2)
        expectSame(Array(full.dropFirst(2)), resumed)
        #expect(resumed.first?.step == 2)
        #expect(try allBatches(train, epoch: 5, from: train.batchesPerEpoch).isEmpty)
    }

    @Test func ranksReadTheirOwnShard() throws {
        let index = try DatasetIndex.scan(dataPath: try Fixtures.synthetic(classes: 3, train: 3))
        let ranks = (0..<2).map { loader(index, rank: $0, worldSize: 2, batchSize: 4) }
        let shards = try ranks.map { try allBatches($0, epoch: 1) }
        #expect(shards[0].count == shards[1].count)
        #expect(Set(shards.flatMap { $0.flatMap(\.sampleIndices) }) == Set(0..<9))

        let validation = (0..<2).map { loader(index, split: .validation, rank: $0, worldSize: 4, batchSize: 2) }
        #expect(try validation.map { try allBatches($0, epoch: 0).flatMap(\.sampleIndices) } == [[0, 4], [1, 5]])
    }

    /// A flat-colour image through the evaluation transform is the normalised colour everywhere.
    @Test func evaluationTransformNormalises() throws {
        let folder = try Fixtures.folder()
        let path = folder + "/flat.JPEG"
        try Fixtures.write(try Fixtures.flatJPEG(width: 300, height: 200, color: [200, 100, 50]), to: path)
        var pipeline = SamplePipeline()
        var random = SeededRandom(seed: 0)
        var output = [Float](repeating: .nan, count: 32 * 32 * 3)
        try output.withUnsafeMutableBufferPointer { buffer in
            try pipeline.load(path: path, transform: .evaluation(imageSize: 32), random: &random, into: buffer)
        }
        let mean: [Float] = [0.485, 0.456, 0.406]
        let deviation: [Float] = [0.229, 0.224, 0.225]
        let expected = (0..<(32 * 32)).flatMap { _ in
            [200, 100, 50].enumerated().map { c, value in (Float(value) / 255 - mean[c]) / deviation[c] }
        }
        expectClose(output, expected, relative: 0, absolute: 0.05)
    }

    /// The evaluation centre crop of a left-red / right-blue image keeps the split in the middle;
    /// a train crop with flip probability 1 mirrors it.
    @Test func evaluationCropKeepsGeometryAndFlipMirrors() throws {
        let folder = try Fixtures.folder()
        let path = folder + "/halves.JPEG"
        let width = 320
        let height = 160
        let pixels = (0..<(width * height)).flatMap {
            $0 % width < width / 2 ? [230, 20, 20] : [20, 20, 230] as [UInt8]
        }
        try Fixtures.write(
            try JPEGEncoder.encode(pixels, width: width, height: height, format: .rgb, quality: 95), to: path)
        var pipeline = SamplePipeline()
        func redness(_ transform: SampleTransform) throws -> (left: Float, right: Float) {
            var random = SeededRandom(seed: 9)
            var output = [Float](repeating: 0, count: 16 * 16 * 3)
            try output.withUnsafeMutableBufferPointer { buffer in
                try pipeline.load(path: path, transform: transform, random: &random, into: buffer)
            }
            // Red minus blue (normalised) at the middle row, first and last column.
            let row = 8 * 16 * 3
            return (output[row] - output[row + 2], output[row + 15 * 3] - output[row + 15 * 3 + 2])
        }
        let plain = try redness(.evaluation(imageSize: 16))
        #expect(plain.left > 1 && plain.right < -1)
        let mirrored = try redness(.train(imageSize: 16, scale: 1...1, aspectRatio: 2...2, flipProbability: 1))
        #expect(mirrored.left < -1 && mirrored.right > 1)
    }

    @Test func badFilesAreSkippedCountedAndReplaced() throws {
        let root = try Fixtures.synthetic(classes: 2, train: 6)
        let good = try Data(contentsOf: URL(fileURLWithPath: root + "/train/n00000000/n00000000_1.JPEG"))
        try Fixtures.write(Array(good.prefix(good.count / 2)), to: root + "/train/n00000000/truncated.JPEG")
        try Fixtures.write([], to: root + "/train/n00000000/empty.jpeg")
        try Fixtures.write(
            [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13], to: root + "/train/n00000001/image.JPEG")
        try Fixtures.write(Array("not an image\n".utf8), to: root + "/train/n00000001/notes.JPEG")
        let index = try DatasetIndex.scan(dataPath: root)
        let badNames = ["truncated.JPEG", "empty.jpeg", "image.JPEG", "notes.JPEG"]
        let badIndices = Set(
            index.train.relativePaths.indices.filter {
                badNames.contains((index.train.relativePaths[$0] as NSString).lastPathComponent)
            })
        #expect(badIndices.count == 4)

        let reports = ReportLog()
        let train = loader(index, batchSize: 4, report: reports.append)
        for epoch in 0..<2 {
            let iterator = train.makeEpoch(epoch: epoch)
            var seen: [Int] = []
            while let batch = try iterator.next() {
                seen += batch.sampleIndices
                #expect(batch.images.scalars.allSatisfy { $0.isFinite })
            }
            #expect(seen.count == 16)
            #expect(badIndices.isDisjoint(with: seen))
            #expect(iterator.replacedSampleCount == 4)
        }
        #expect(train.badImageErrors.count == 4)
        #expect(reports.lines.count == 4, "each bad file is reported once: \(reports.lines)")
        #expect(
            Set(train.badImageErrors.compactMap(\.path).map { ($0 as NSString).lastPathComponent }) == Set(badNames))

        let strict = loader(index, batchSize: 4, options: LoaderOptions(strictData: true))
        let error = #expect(throws: DataError.self) { _ = try allBatches(strict, epoch: 0) }
        #expect(error?.isBadImage == true)
        #expect(badNames.contains { error?.path?.hasSuffix($0) == true })
    }
}

/// Collects the loader's bad-image reports.
private final class ReportLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    var lines: [String] { lock.withLock { stored } }
    func append(_ error: DataError) { lock.withLock { stored.append("\(error)") } }
}
