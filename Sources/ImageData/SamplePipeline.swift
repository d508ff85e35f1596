// One loader thread's per-image path: read the file, decode the JPEG, transform into a batch slot, reusing
// every buffer across images.

import TensorEngine

/// Reads, decodes and transforms one image at a time into a slot of a batch, reusing every buffer
/// (file bytes, decoded pixels, resampling scratch) across images.
///
/// Not thread-safe: the loader gives each of its threads its own pipeline.
package struct SamplePipeline {
    private let decoder: JPEGDecoder
    private var fileBytes: [UInt8] = []
    private var decoded: [UInt8] = []
    private var resampler = Resampler()
    private var unnormalized: [Float] = []

    /// - Parameter maximumSide: images with a longer side are refused before allocation.
    package init(maximumSide: Int = JPEGDecoder.defaultMaximumSide) {
        decoder = JPEGDecoder(maximumSide: maximumSide)
    }

    /// Loads the JPEG at `path` and writes `transform`'s output, `imageSize × imageSize × 3` floats
    /// in HWC order, to `output`.
    ///
    /// - Parameters:
    ///   - random: the sample's own generator (e.g. keyed by epoch and sample index); the
    ///     evaluation transform draws nothing from it.
    ///   - output: exactly `imageSize · imageSize · 3` floats.
    /// - Throws: `DataError` when the file cannot be read or decoded; `output` is then unspecified.
    package mutating func load(
        path: String, transform: SampleTransform, random: inout SeededRandom,
        into output: UnsafeMutableBufferPointer<Float>
    ) throws(DataError) {
        let size = transform.imageSize
        precondition(
            output.count == size * size * 3,
            "an output slot for \(size) x \(size) RGB needs \(size * size * 3) floats, got \(output.count)")
        let length = try ImageFile.read(path, into: &fileBytes)

        // Decide the source region from the header, then decode just large enough for it.
        var region = CropRectangle(x: 0, y: 0, width: 1, height: 1)
        var regionIsCrop = true
        var sourceSize = (width: 1, height: 1)
        let decoder = self.decoder
        let decodedSize = try fileBytes.withUnsafeBufferPointer { bytes throws(DataError) in
            try decoder.decode(UnsafeBufferPointer(rebasing: bytes[..<length]), path: path, into: &decoded) { header in
                sourceSize = (header.width, header.height)
                switch transform {
                case .train(_, let scale, let aspectRatio, _, _, _):
                    region = SampleTransform.randomResizedCrop(
                        width: header.width, height: header.height, scale: scale, aspectRatio: aspectRatio,
                        using: &random)
                    regionIsCrop = true
                case .evaluation(_, let resizeRatio, _):
                    region =
                        SampleTransform.evaluationRegion(
                            width: header.width, height: header.height, imageSize: size, resizeRatio: resizeRatio
                        ).region
                    regionIsCrop = false
                }
                return SamplePipeline.minimumDecodeSize(header: header, region: region, outputSize: size)
            }
        }

        // Map the region into the (possibly DCT-downscaled) decoded image.
        let scaleX = Double(decodedSize.width) / Double(sourceSize.width)
        let scaleY = Double(decodedSize.height) / Double(sourceSize.height)
        let scaled = CropRectangle(
            x: region.x * scaleX, y: region.y * scaleY, width: region.width * scaleX, height: region.height * scaleY)
        let horizontalBounds =
            regionIsCrop ? SamplePipeline.pixelSpan(scaled.x, scaled.width, decodedSize.width) : 0..<decodedSize.width
        let verticalBounds =
            regionIsCrop
            ? SamplePipeline.pixelSpan(scaled.y, scaled.height, decodedSize.height) : 0..<decodedSize.height

        var mirrored = false
        var jitter: ColorJitter?
        if case .train(_, _, _, let flipProbability, let colorJitter, _) = transform {
            mirrored = random.nextUnitDouble() < flipProbability
            jitter = colorJitter
        }
        let horizontal = ResampleAxis(
            outputCount: size, regionStart: scaled.x, regionLength: scaled.width, bounds: horizontalBounds,
            weightScale: 1.0 / 255, mirrored: mirrored)
        let vertical = ResampleAxis(
            outputCount: size, regionStart: scaled.y, regionLength: scaled.height, bounds: verticalBounds)

        if unnormalized.count != output.count { unnormalized = [Float](repeating: 0, count: output.count) }
        decoded.withUnsafeBufferPointer { pixels in
            unnormalized.withUnsafeMutableBufferPointer { target in
                resampler.resample(
                    source: pixels.baseAddress!, sourceWidth: decodedSize.width,
                    horizontal: horizontal, vertical: vertical, into: target.baseAddress!)
                if let jitter { PixelOperations.applyColorJitter(jitter, to: target, using: &random) }
                PixelOperations.normalize(UnsafeBufferPointer(target), with: transform.normalization, into: output)
            }
        }
    }

    /// The size to ask libjpeg for: the region must keep at least `outputSize` pixels a side, and
    /// DCT-domain scaling is used only when the output is at most half the region.
    package static func minimumDecodeSize(header: JPEGHeader, region: CropRectangle, outputSize: Int) -> (
        width: Int, height: Int
    ) {
        let target = Double(outputSize)
        guard 2 * target <= region.width && 2 * target <= region.height else {
            return (header.width, header.height)
        }
        let width = (Double(header.width) * target / region.width).rounded(.up)
        let height = (Double(header.height) * target / region.height).rounded(.up)
        return (Int(width), Int(height))
    }

    /// The whole pixels covered by [start, start + length), clipped to `0..<limit` and never empty.
    private static func pixelSpan(_ start: Double, _ length: Double, _ limit: Int) -> Range<Int> {
        let low = min(max(Int(start.rounded(.down)), 0), limit - 1)
        let high = min(max(Int((start + length).rounded(.up)), low + 1), limit)
        return low..<high
    }
}
