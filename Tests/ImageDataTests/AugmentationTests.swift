// The transforms against torchvision: random-resized crop ranges, the evaluation crop, resampling weights
// and antialiasing, the minimum decode size, and colour jitter.

import Foundation
import ImageData
import TensorEngine
import Testing
import _TestSupport

@Suite struct AugmentationTests {
    /// torchvision's parameters: area fraction 0.08–1 and aspect 3/4–4/3 before the sides are
    /// rounded to whole pixels, inside the image; otherwise the centred fallback crop.
    @Test(arguments: [(500, 375), (375, 500), (64, 64), (1000, 100)])
    func randomResizedCropStaysInRange(width: Int, height: Int) {
        var random = SeededRandom(seed: 1, streams: UInt64(width), UInt64(height))
        let fallbackWidth = min(width, Int((Double(height) * 4 / 3).rounded()))
        for _ in 0..<2000 {
            let crop = SampleTransform.randomResizedCrop(
                width: width, height: height, scale: 0.08...1, aspectRatio: 0.75...(4.0 / 3), using: &random)
            #expect(
                crop.x >= 0 && crop.y >= 0 && crop.x + crop.width <= Double(width)
                    && crop.y + crop.height <= Double(height))
            let (w, h) = (crop.width, crop.height)
            let sampled =
                w >= 0.75 * (h - 0.5) - 0.5 && w <= 4.0 / 3 * (h + 0.5) + 0.5
                && (w + 0.5) * (h + 0.5) >= 0.08 * Double(width * height)
                && (w - 0.5) * (h - 0.5) <= Double(width * height)
            let fallback = Int(w) == fallbackWidth && Int(h) == height && crop.x == Double((width - fallbackWidth) / 2)
            #expect(sampled || fallback, "crop \(crop) of \(width) x \(height)")
        }
    }

    /// 500×375 at 224: short side 256, long side int(256·500/375) = 341, crop offset round(58.5) = 58.
    @Test func evaluationRegionMatchesTorchvision() {
        let (region, resizedWidth, resizedHeight) = SampleTransform.evaluationRegion(
            width: 500, height: 375, imageSize: 224, resizeRatio: 256.0 / 224)
        #expect(resizedWidth == 341 && resizedHeight == 256)
        expectClose(region.x, 58 * 500.0 / 341, relative: 1e-12)
        expectClose(region.y, 16 * 375.0 / 256, relative: 1e-12)
        expectClose(region.width, 224 * 500.0 / 341, relative: 1e-12)
    }

    @Test(arguments: [(8, 0.0, 32.0), (32, 0.0, 8.0), (10, 3.5, 20.0), (7, 0.0, 100.0)])
    func resampleWeightsSumToOne(outputs: Int, start: Double, length: Double) {
        let axis = ResampleAxis(outputCount: outputs, regionStart: start, regionLength: length, bounds: 0..<100)
        for output in 0..<outputs {
            let sum = axis.weights[(output * axis.taps)..<((output + 1) * axis.taps)].reduce(0, +)
            expectClose(Double(sum), 1, relative: 0, absolute: 1e-5)
            #expect(axis.starts[output] >= 0 && axis.starts[output] + axis.taps <= 100)
        }
        // Antialiasing: a 4× reduction uses a 4× wider triangle (9 taps), an enlargement 3.
        if length / Double(outputs) == 4 { #expect(axis.taps == 9) }
        if length < Double(outputs) { #expect(axis.taps == 3) }
    }

    /// DCT scaling is asked for only when the output is at most half the region.
    @Test func minimumDecodeSize() throws {
        let photo = try JPEGDecoder().readHeader(try Fixtures.flatJPEG(width: 500, height: 375), path: "photo")
        let whole = CropRectangle(x: 0, y: 0, width: 500, height: 375)
        #expect(SamplePipeline.minimumDecodeSize(header: photo, region: whole, outputSize: 224) == (500, 375))
        #expect(SamplePipeline.minimumDecodeSize(header: photo, region: whole, outputSize: 64) == (64, 64))
        let quarter = CropRectangle(x: 100, y: 100, width: 250, height: 180)
        #expect(SamplePipeline.minimumDecodeSize(header: photo, region: quarter, outputSize: 64) == (128, 134))
    }

    /// A one-pixel checkerboard reduced 16× must come out flat grey (no aliasing).
    @Test func evaluationResizeIsAntialiased() throws {
        let side = 512
        let pixels = (0..<(side * side)).map { ($0 % side + $0 / side) % 2 == 0 ? UInt8(255) : 0 }
        let path = try Fixtures.folder() + "/checkers.JPEG"
        try Fixtures.write(
            try JPEGEncoder.encode(pixels, width: side, height: side, format: .grayscale, quality: 100), to: path)
        var pipeline = SamplePipeline()
        var random = SeededRandom(seed: 0)
        var output = [Float](repeating: 0, count: 32 * 32 * 3)
        try output.withUnsafeMutableBufferPointer { buffer in
            try pipeline.load(
                path: path, transform: .evaluation(imageSize: 32, normalization: .identity), random: &random,
                into: buffer)
        }
        expectClose(output, [Float](repeating: 0.5, count: output.count), relative: 0, absolute: 0.03)
    }

    @Test func colorJitterKeepsValuesInRangeAndChangesThem() throws {
        let path = try Fixtures.folder() + "/quadrants.JPEG"
        let image = Fixtures.quadrants(side: 96)
        try Fixtures.write(
            try JPEGEncoder.encode(image.pixels, width: 96, height: 96, format: .rgb, quality: 95), to: path)
        var pipeline = SamplePipeline()
        func load(_ jitter: ColorJitter?) throws -> [Float] {
            var random = SeededRandom(seed: 5)
            var output = [Float](repeating: 0, count: 48 * 48 * 3)
            try output.withUnsafeMutableBufferPointer { buffer in
                try pipeline.load(
                    path: path,
                    transform: .train(imageSize: 48, flipProbability: 0, colorJitter: jitter, normalization: .identity),
                    random: &random, into: buffer)
            }
            return output
        }
        let plain = try load(nil)
        let jittered = try load(ColorJitter())
        #expect(jittered.allSatisfy { $0 >= 0 && $0 <= 1 })
        let change = zip(plain, jittered).map { abs($0 - $1) }.reduce(0, +) / Float(plain.count)
        #expect(change > 0.01, "jitter changed the image by only \(change) on average")
    }
}
