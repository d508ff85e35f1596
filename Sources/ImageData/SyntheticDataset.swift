// `dataset synth`: a small ImageNet-layout dataset of real JPEG files with class-dependent shapes and
// colours, for demos, smoke tests and benchmarks without ImageNet.

import Foundation
import TensorEngine

/// A small ImageNet-layout dataset of real JPEG files with class-dependent structure, for demos,
/// smoke tests and benchmarks without ImageNet.
///
/// Class `c` draws shape `c mod 10` (disc, square, triangle, ring, plus, horizontal bars, vertical
/// bars, diagonal bars, checkerboard, diamond) in a colour of its own hue (`classHue`), at a
/// random position and scale over a noisy low-saturation background. Shape and colour are each
/// enough to tell ten classes apart (grayscale files keep the shape), so a small network learns
/// them at 32–64 px within a few epochs.
package enum SyntheticDataset {
    /// How `val/` is written.
    package enum ValidationLayoutKind: String, Sendable, CaseIterable {
        /// `val/<wnid>/*.JPEG`.
        case folders
        /// `val/ILSVRC2012_val_NNNNNNNN.JPEG` plus `LOC_val_solution.csv` in the output folder.
        case flat
    }

    package struct Configuration: Sendable {
        package var classes: Int
        package var trainPerClass: Int
        package var validationPerClass: Int
        package var seed: UInt64
        package var validationLayout: ValidationLayoutKind
        /// Every image gets this size (e.g. 500 × 375 for photo-sized benchmark files); nil draws
        /// each side uniformly from `sideRange`.
        package var fixedSize: (width: Int, height: Int)?
        package var sideRange: ClosedRange<Int>
        /// Fractions of files written as grayscale, progressive, and Adobe CMYK JPEGs.
        package var grayscaleFraction: Double
        package var progressiveFraction: Double
        package var cmykFraction: Double

        package init(
            classes: Int = 10, trainPerClass: Int = 100, validationPerClass: Int = 20, seed: UInt64 = 0,
            validationLayout: ValidationLayoutKind = .folders, fixedSize: (width: Int, height: Int)? = nil,
            sideRange: ClosedRange<Int> = 100...500, grayscaleFraction: Double = 0.1,
            progressiveFraction: Double = 0.2, cmykFraction: Double = 0.02
        ) {
            self.classes = classes
            self.trainPerClass = trainPerClass
            self.validationPerClass = validationPerClass
            self.seed = seed
            self.validationLayout = validationLayout
            self.fixedSize = fixedSize
            self.sideRange = sideRange
            self.grayscaleFraction = grayscaleFraction
            self.progressiveFraction = progressiveFraction
            self.cmykFraction = cmykFraction
        }
    }

    /// What was written.
    package struct Summary: Sendable {
        package var trainImages = 0
        package var validationImages = 0
        package var grayscaleImages = 0
        package var progressiveImages = 0
        package var cmykImages = 0
        package var bytes = 0
    }

    /// The wnid-like folder name of class `index`, e.g. `n00000003`; sorting the names gives the
    /// class order.
    package static func className(_ index: Int) -> String {
        let digits = String(index)
        return "n" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// The official flat validation file name of image `number` (1-based).
    package static func validationFileStem(_ number: Int) -> String {
        let digits = String(number)
        return "ILSVRC2012_val_" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// One file to write.
    private struct Job: Sendable {
        var relativePath: String
        var classIndex: Int
        var stream: [UInt64]
    }

    /// Writes the dataset under `directory` (created if needed), using all cores.
    ///
    /// The files depend only on the configuration (each image has its own generator), not on
    /// thread timing.
    /// - Throws: `DataError` of kind `.write` naming the file that could not be written.
    package static func write(to directory: String, configuration: Configuration) throws(DataError) -> Summary {
        precondition(configuration.classes >= 1, "need at least one class, got \(configuration.classes)")
        precondition(configuration.trainPerClass >= 1, "need at least one train image per class")
        precondition(configuration.validationPerClass >= 0, "validation images per class must be non-negative")
        let root = DatasetIndex.normalizedRoot(directory)
        var jobs: [Job] = []
        var solutionRows = ["ImageId,PredictionString"]
        var folders = ["train", "val"]
        for classIndex in 0..<configuration.classes {
            let wnid = className(classIndex)
            folders.append("train/" + wnid)
            for image in 0..<configuration.trainPerClass {
                jobs.append(
                    Job(
                        relativePath: "train/\(wnid)/\(wnid)_\(image + 1).JPEG", classIndex: classIndex,
                        stream: [0, UInt64(classIndex), UInt64(image)]))
            }
            if configuration.validationLayout == .folders { folders.append("val/" + wnid) }
        }
        // Validation images are numbered across classes in an interleaved order, as in ImageNet.
        for number in 1...max(1, configuration.classes * configuration.validationPerClass)
        where configuration.validationPerClass > 0 {
            let classIndex = (number - 1) % configuration.classes
            let stem = validationFileStem(number)
            let wnid = className(classIndex)
            switch configuration.validationLayout {
            case .folders:
                jobs.append(
                    Job(relativePath: "val/\(wnid)/\(stem).JPEG", classIndex: classIndex, stream: [1, UInt64(number)]))
            case .flat:
                jobs.append(Job(relativePath: "val/\(stem).JPEG", classIndex: classIndex, stream: [1, UInt64(number)]))
                solutionRows.append("\(stem),\(wnid) 0 0 1 1")
            }
        }
        for folder in folders {
            do {
                try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
            } catch {
                throw DataError(
                    .write, path: root + "/" + folder, "cannot create the folder: \(FileErrorText.reason(error))")
            }
        }
        if configuration.validationLayout == .flat {
            let path = root + "/" + DatasetIndex.validationLabelsFileName
            do {
                try (solutionRows.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw DataError(.write, path: path, "cannot write: \(FileErrorText.reason(error))")
            }
        }

        let results = SynchronizedResults<WrittenImage>(count: jobs.count)
        let allJobs = jobs
        DispatchQueue.concurrentPerform(iterations: allJobs.count) { jobIndex in
            let job = allJobs[jobIndex]
            results.store(
                Result { () throws(DataError) in
                    try writeImage(job, root: root, configuration: configuration)
                }, at: jobIndex)
        }
        var summary = Summary()
        for (job, result) in zip(jobs, results.values) {
            let written = try result!.get()
            if job.relativePath.hasPrefix("train/") { summary.trainImages += 1 } else { summary.validationImages += 1 }
            summary.bytes += written.bytes
            switch written.kind {
            case .grayscale: summary.grayscaleImages += 1
            case .cmyk: summary.cmykImages += 1
            case .rgb: break
            }
            if written.progressive { summary.progressiveImages += 1 }
        }
        return summary
    }

    fileprivate enum WrittenKind { case rgb, grayscale, cmyk }
    fileprivate typealias WrittenImage = (bytes: Int, kind: WrittenKind, progressive: Bool)

    private static func writeImage(
        _ job: Job, root: String, configuration: Configuration
    ) throws(DataError) -> WrittenImage {
        var random = SeededRandom(seed: configuration.seed, streamPath: job.stream)
        let width: Int
        let height: Int
        if let fixed = configuration.fixedSize {
            (width, height) = fixed
        } else {
            width = Int.random(in: configuration.sideRange, using: &random)
            height = Int.random(in: configuration.sideRange, using: &random)
        }
        let image = render(
            classIndex: job.classIndex, classCount: configuration.classes, width: width, height: height, using: &random)
        let draw = random.nextUnitDouble()
        let progressive = random.nextUnitDouble() < configuration.progressiveFraction
        let quality = Int.random(in: 80...95, using: &random)
        let kind: WrittenKind
        let bytes: [UInt8]
        if draw < configuration.grayscaleFraction {
            kind = .grayscale
            bytes = try JPEGEncoder.encode(
                image.luma(), width: width, height: height, format: .grayscale,
                quality: quality, progressive: progressive)
        } else if draw < configuration.grayscaleFraction + configuration.cmykFraction {
            kind = .cmyk
            bytes = try JPEGEncoder.encode(
                JPEGEncoder.adobeCMYK(fromRGB: image.pixels), width: width, height: height,
                format: .cmyk(storeAsYCCK: false), quality: quality, progressive: progressive)
        } else {
            kind = .rgb
            bytes = try JPEGEncoder.encode(
                image.pixels, width: width, height: height, format: .rgb,
                quality: quality, progressive: progressive)
        }
        let path = root + "/" + job.relativePath
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw DataError(.write, path: path, "cannot write the file")
        }
        return (bytes.count, kind, progressive)
    }

    /// Draws one image of class `classIndex` (see the type's description for the scheme).
    package static func render(
        classIndex: Int, classCount: Int, width: Int, height: Int, using random: inout SeededRandom
    ) -> RGBImage {
        let hue = classHue(classIndex, classCount: classCount)
        let foreground = rgb(
            hue: hue + (random.nextUnitDouble() - 0.5) * 0.04, saturation: 0.75 + 0.25 * random.nextUnitDouble(),
            value: 0.75 + 0.25 * random.nextUnitDouble())
        let background = rgb(
            hue: random.nextUnitDouble(), saturation: 0.15 * random.nextUnitDouble(),
            value: random.nextUnitDouble() < 0.5
                ? 0.1 + 0.2 * random.nextUnitDouble() : 0.55 + 0.2 * random.nextUnitDouble())
        let shortSide = Double(min(width, height))
        let radius = shortSide * (0.25 + 0.17 * random.nextUnitDouble())
        let centerX = radius + (Double(width) - 2 * radius) * random.nextUnitDouble()
        let centerY = radius + (Double(height) - 2 * radius) * random.nextUnitDouble()
        let gradient = (random.nextUnitDouble() - 0.5) * 0.3
        let shape = classIndex % 10

        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        pixels.withUnsafeMutableBufferPointer { output in
            var noiseBits: UInt64 = 0
            var noiseLeft = 0
            for y in 0..<height {
                let v = (Double(y) + 0.5 - centerY) / radius
                let shade = Float(255 * (1 + gradient * (Double(y) / Double(height) - 0.5)))
                let rowForeground = foreground * shade
                let rowBackground = background * shade
                for x in 0..<width {
                    let u = (Double(x) + 0.5 - centerX) / radius
                    let color = isInside(shape: shape, u: u, v: v) ? rowForeground : rowBackground
                    if noiseLeft < 3 {
                        noiseBits = random.next()
                        noiseLeft = 8
                    }
                    let noise =
                        SIMD3<Float>(
                            Float(Int(noiseBits & 0xFF) - 128), Float(Int((noiseBits >> 8) & 0xFF) - 128),
                            Float(Int((noiseBits >> 16) & 0xFF) - 128)) * 0.12
                    noiseBits >>= 24
                    noiseLeft -= 3
                    let value = (color + noise).rounded(.toNearestOrAwayFromZero)
                        .clamped(lowerBound: SIMD3(repeating: 0), upperBound: SIMD3(repeating: 255))
                    let base = (y * width + x) * 3
                    output[base] = UInt8(value.x)
                    output[base + 1] = UInt8(value.y)
                    output[base + 2] = UInt8(value.z)
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Up to 12 classes get evenly spaced hues (at least 30° apart); more classes step by the
    /// golden angle, so every class still gets its own hue.
    static func classHue(_ classIndex: Int, classCount: Int) -> Double {
        classCount <= 12
            ? Double(classIndex) / Double(classCount)
            : (Double(classIndex) * 0.381_966_011).truncatingRemainder(dividingBy: 1)
    }

    /// Whether (u, v), in units of the object's radius around its centre, is inside `shape`.
    private static func isInside(shape: Int, u: Double, v: Double) -> Bool {
        let inSquare = abs(u) <= 0.85 && abs(v) <= 0.85
        switch shape {
        case 0: return u * u + v * v <= 1
        case 1: return inSquare
        case 2: return v >= -0.8 && v <= 0.8 && abs(u) <= (v + 0.8) * 0.6
        case 3:
            let r = (u * u + v * v).squareRoot()
            return r >= 0.55 && r <= 1
        case 4: return (abs(u) <= 0.3 && abs(v) <= 1) || (abs(v) <= 0.3 && abs(u) <= 1)
        case 5: return inSquare && Int(((v + 0.85) * 3.5).rounded(.down)) % 2 == 0
        case 6: return inSquare && Int(((u + 0.85) * 3.5).rounded(.down)) % 2 == 0
        case 7: return u * u + v * v <= 1 && Int(((u + v + 2) * 2.5).rounded(.down)) % 2 == 0
        case 8:
            return inSquare
                && (Int(((u + 0.85) * 2.35).rounded(.down)) + Int(((v + 0.85) * 2.35).rounded(.down))) % 2 == 0
        default: return abs(u) + abs(v) <= 1
        }
    }

    /// HSV (hue in turns, wrapped) to RGB in [0, 1].
    private static func rgb(hue: Double, saturation: Double, value: Double) -> SIMD3<Float> {
        let wrapped = hue - hue.rounded(.down)
        let sector = wrapped * 6
        let fraction = sector - sector.rounded(.down)
        let p = value * (1 - saturation)
        let q = value * (1 - saturation * fraction)
        let t = value * (1 - saturation * (1 - fraction))
        let rgb: SIMD3<Double>
        switch Int(sector) % 6 {
        case 0: rgb = [value, t, p]
        case 1: rgb = [q, value, p]
        case 2: rgb = [p, value, t]
        case 3: rgb = [p, q, value]
        case 4: rgb = [t, p, value]
        default: rgb = [value, p, q]
        }
        return SIMD3<Float>(rgb)
    }
}

/// Per-job results written from `concurrentPerform`'s threads.
private final class SynchronizedResults<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Result<Value, DataError>?]

    init(count: Int) { storage = Array(repeating: nil, count: count) }

    func store(_ result: Result<Value, DataError>, at index: Int) {
        lock.withLock { storage[index] = result }
    }

    var values: [Result<Value, DataError>?] { lock.withLock { storage } }
}
