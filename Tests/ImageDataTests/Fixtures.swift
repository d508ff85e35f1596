// Test fixtures for ImageData: small images with known pixels, JPEG encodings of them, and datasets
// written to disk.

import Foundation
import ImageData
import _TestSupport

/// Small images with known pixels, and datasets on disk, for the ImageData tests.
enum Fixtures {
    /// Four flat quadrants (red, green, blue, grey-ish yellow), `side × side`, packed RGB.
    static let quadrantColors: [[UInt8]] = [[220, 30, 40], [30, 200, 60], [40, 50, 210], [200, 190, 90]]

    static func quadrants(side: Int = 64) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: side * side * 3)
        for y in 0..<side {
            for x in 0..<side {
                let quadrant = (y < side / 2 ? 0 : 2) + (x < side / 2 ? 0 : 1)
                for c in 0..<3 { pixels[(y * side + x) * 3 + c] = quadrantColors[quadrant][c] }
            }
        }
        return RGBImage(width: side, height: side, pixels: pixels)
    }

    /// The decoded colour at the centre of each quadrant.
    static func quadrantCenters(of image: RGBImage) -> [[Double]] {
        let w = image.width
        let h = image.height
        return [(w / 4, h / 4), (3 * w / 4, h / 4), (w / 4, 3 * h / 4), (3 * w / 4, 3 * h / 4)].map { x, y in
            (0..<3).map { Double(image.pixels[(y * w + x) * 3 + $0]) }
        }
    }

    /// A flat-colour RGB JPEG of `width × height`.
    static func flatJPEG(width: Int, height: Int, color: [UInt8] = [120, 130, 140], progressive: Bool = false) throws
        -> [UInt8]
    {
        let pixels = (0..<(width * height)).flatMap { _ in color }
        return try JPEGEncoder.encode(
            pixels, width: width, height: height, format: .rgb, quality: 92, progressive: progressive)
    }

    /// A new empty folder.
    static func folder() throws -> String { try TemporaryDirectory.make(prefix: "ghostnet-imagedata").path }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// A small synthetic dataset (`classes × train` and `classes × val` images).
    static func synthetic(
        classes: Int = 3, train: Int = 4, val: Int = 2, layout: SyntheticDataset.ValidationLayoutKind = .folders,
        seed: UInt64 = 7
    ) throws -> String {
        let root = try folder()
        _ = try SyntheticDataset.write(
            to: root,
            configuration: .init(
                classes: classes, trainPerClass: train, validationPerClass: val, seed: seed,
                validationLayout: layout, sideRange: 40...90))
        return root
    }
}
