// Image resizing as PIL and torchvision do it: antialiased bilinear filter taps per axis, applied in two
// separable passes that reuse their buffers.

#if canImport(Glibc)
import Glibc
#endif

/// The source taps and weights that produce each output sample along one axis.
///
/// The filter is a triangle (bilinear) whose support widens by the reduction factor when
/// downscaling, which is PIL's antialiased bilinear resize (torchvision's `antialias=True`); when
/// upscaling it is plain bilinear interpolation with half-pixel centres.
package struct ResampleAxis {
    /// Taps per output sample (the same for all, zero-padded).
    package let taps: Int
    /// First source index of each output sample's window.
    package let starts: [Int]
    /// `outputCount × taps` weights, each row summing to `weightScale`.
    package let weights: [Float]

    /// Builds the taps that map the source interval [`regionStart`, `regionStart + regionLength`)
    /// onto `outputCount` samples.
    ///
    /// - Parameters:
    ///   - bounds: the source indices the filter may read (the crop, or the whole image).
    ///   - weightScale: multiplies every weight (e.g. 1/255 to produce values in [0, 1]).
    ///   - mirrored: output sample `i` takes the taps of `outputCount − 1 − i` (horizontal flip).
    package init(
        outputCount: Int, regionStart: Double, regionLength: Double, bounds: Range<Int>,
        weightScale: Float = 1, mirrored: Bool = false
    ) {
        precondition(
            outputCount > 0 && regionLength > 0 && !bounds.isEmpty,
            "cannot resample \(regionLength) source samples in \(bounds) to \(outputCount)")
        let scale = regionLength / Double(outputCount)
        let filterScale = max(scale, 1)
        let support = filterScale
        let taps = min(2 * Int(support.rounded(.up)) + 1, bounds.count)
        var starts = [Int](repeating: 0, count: outputCount)
        var weights = [Float](repeating: 0, count: outputCount * taps)
        var window = [Double](repeating: 0, count: taps)
        for output in 0..<outputCount {
            let center = regionStart + (Double(output) + 0.5) * scale
            let first = max(Int((center - support + 0.5).rounded(.down)), bounds.lowerBound)
            let end = min(Int((center + support + 0.5).rounded(.down)), bounds.upperBound)
            let start = max(min(first, bounds.upperBound - taps), bounds.lowerBound)
            var total = 0.0
            for k in 0..<taps { window[k] = 0 }
            if first < end {
                for source in first..<end {
                    let distance = abs((Double(source) - center + 0.5) / filterScale)
                    let weight = max(0, 1 - distance)
                    window[source - start] = weight
                    total += weight
                }
            }
            if total == 0 {
                // The centre lies outside every tap's reach (tiny bounds): take the nearest sample.
                let nearest = min(max(Int(center.rounded(.down)), bounds.lowerBound), bounds.upperBound - 1)
                window[nearest - start] = 1
                total = 1
            }
            let slot = mirrored ? outputCount - 1 - output : output
            starts[slot] = start
            for k in 0..<taps { weights[slot * taps + k] = Float(window[k] / total) * weightScale }
        }
        self.taps = taps
        self.starts = starts
        self.weights = weights
    }

    /// The source indices any output sample reads.
    var sourceRange: Range<Int> {
        guard let low = starts.min(), let high = starts.max() else { return 0..<0 }
        return low..<(high + taps)
    }
}

/// Resamples a region of an 8-bit RGB image to a float RGB image, separably (rows, then columns).
struct Resampler {
    /// Horizontal-pass output for the source rows in use, `rows × outputWidth × 3`, reused.
    private var intermediate: [Float] = []

    /// Writes `vertical.starts.count × horizontal.starts.count × 3` floats to `output` (HWC).
    ///
    /// - Parameters:
    ///   - source: packed RGB rows of `sourceWidth` pixels; every index the axes read must exist.
    ///   - output: room for `outputHeight · outputWidth · 3` floats.
    mutating func resample(
        source: UnsafePointer<UInt8>, sourceWidth: Int,
        horizontal: ResampleAxis, vertical: ResampleAxis,
        into output: UnsafeMutablePointer<Float>
    ) {
        let outputWidth = horizontal.starts.count
        let outputHeight = vertical.starts.count
        let rowLength = outputWidth * 3
        let rows = vertical.sourceRange
        let needed = rows.count * rowLength
        if intermediate.count < needed { intermediate = [Float](repeating: 0, count: needed) }

        intermediate.withUnsafeMutableBufferPointer { buffer in
            let staging = buffer.baseAddress!
            horizontal.starts.withUnsafeBufferPointer { starts in
                horizontal.weights.withUnsafeBufferPointer { weights in
                    let taps = horizontal.taps
                    for (rowIndex, sourceRow) in rows.enumerated() {
                        let row = source + sourceRow * sourceWidth * 3
                        let destination = staging + rowIndex * rowLength
                        for x in 0..<outputWidth {
                            var red: Float = 0
                            var green: Float = 0
                            var blue: Float = 0
                            var pixel = row + starts[x] * 3
                            let tapWeights = weights.baseAddress! + x * taps
                            for k in 0..<taps {
                                let weight = tapWeights[k]
                                red += weight * Float(pixel[0])
                                green += weight * Float(pixel[1])
                                blue += weight * Float(pixel[2])
                                pixel += 3
                            }
                            destination[3 * x] = red
                            destination[3 * x + 1] = green
                            destination[3 * x + 2] = blue
                        }
                    }
                }
            }
            vertical.weights.withUnsafeBufferPointer { weights in
                let taps = vertical.taps
                for y in 0..<outputHeight {
                    let destination = output + y * rowLength
                    let first = staging + (vertical.starts[y] - rows.lowerBound) * rowLength
                    let weight0 = weights[y * taps]
                    for j in 0..<rowLength { destination[j] = weight0 * first[j] }
                    for k in 1..<taps {
                        let weight = weights[y * taps + k]
                        if weight == 0 { continue }
                        let tapRow = first + k * rowLength
                        for j in 0..<rowLength { destination[j] += weight * tapRow[j] }
                    }
                }
            }
        }
    }
}
