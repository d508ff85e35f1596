// How an image becomes a network input: the train and evaluation transforms (torchvision's random-resized
// crop, flip, colour jitter, resize and centre crop), normalisation, and the pixel operations they run.

import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

/// Per-channel normalisation `(x − mean) / std` of RGB values in [0, 1].
package struct Normalization: Sendable {
    package var mean: (red: Float, green: Float, blue: Float)
    package var standardDeviation: (red: Float, green: Float, blue: Float)

    package init(mean: (Float, Float, Float), standardDeviation: (Float, Float, Float)) {
        self.mean = mean
        self.standardDeviation = standardDeviation
    }

    /// ImageNet's statistics, as torchvision uses them.
    package static let imageNet = Normalization(
        mean: (0.485, 0.456, 0.406), standardDeviation: (0.229, 0.224, 0.225))

    /// No change: values stay in [0, 1].
    package static let identity = Normalization(mean: (0, 0, 0), standardDeviation: (1, 1, 1))
}

/// torchvision's `ColorJitter`: brightness, contrast and saturation factors drawn from
/// [1 − s, 1 + s], a hue shift from [−h, h] (in turns), applied in a random order.
package struct ColorJitter: Sendable {
    package var brightness: Double
    package var contrast: Double
    package var saturation: Double
    package var hue: Double

    package init(brightness: Double = 0.4, contrast: Double = 0.4, saturation: Double = 0.4, hue: Double = 0.2) {
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
    }
}

/// How one image becomes a network input of `imageSize × imageSize × 3` floats (HWC).
package enum SampleTransform: Sendable {
    /// Random-resized crop (area fraction `scale`, log-uniform aspect ratio in `aspectRatio`,
    /// 10 attempts then a centre crop, as torchvision), bilinear resize, horizontal flip with
    /// probability `flipProbability`, optional colour jitter, normalisation.
    case train(
        imageSize: Int, scale: ClosedRange<Double> = 0.08...1, aspectRatio: ClosedRange<Double> = 0.75...(4.0 / 3),
        flipProbability: Double = 0.5, colorJitter: ColorJitter? = nil, normalization: Normalization = .imageNet)
    /// Resize the short side to `round(resizeRatio · imageSize)` with antialiasing, centre crop,
    /// normalise. torchvision's ImageNet evaluation uses `resizeRatio` 256/224.
    case evaluation(imageSize: Int, resizeRatio: Double = 256.0 / 224, normalization: Normalization = .imageNet)

    /// The side of the square output.
    package var imageSize: Int {
        switch self {
        case .train(let size, _, _, _, _, _), .evaluation(let size, _, _): size
        }
    }

    var normalization: Normalization {
        switch self {
        case .train(_, _, _, _, _, let normalization), .evaluation(_, _, let normalization): normalization
        }
    }
}

/// A rectangle of source pixels.
package struct CropRectangle {
    package var x: Double
    package var y: Double
    package var width: Double
    package var height: Double

    package init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}

extension SampleTransform {
    /// torchvision's `RandomResizedCrop.get_params` for a `width × height` image.
    package static func randomResizedCrop(
        width: Int, height: Int, scale: ClosedRange<Double>, aspectRatio: ClosedRange<Double>,
        using random: inout SeededRandom
    ) -> CropRectangle {
        let area = Double(width * height)
        let logRatio = (log(aspectRatio.lowerBound), log(aspectRatio.upperBound))
        for _ in 0..<10 {
            let targetArea = area * (scale.lowerBound + (scale.upperBound - scale.lowerBound) * random.nextUnitDouble())
            let ratio = exp(logRatio.0 + (logRatio.1 - logRatio.0) * random.nextUnitDouble())
            let cropWidth = Int((targetArea * ratio).squareRoot().rounded(.toNearestOrEven))
            let cropHeight = Int((targetArea / ratio).squareRoot().rounded(.toNearestOrEven))
            if cropWidth > 0 && cropWidth <= width && cropHeight > 0 && cropHeight <= height {
                let top = Int(random.next() % UInt64(height - cropHeight + 1))
                let left = Int(random.next() % UInt64(width - cropWidth + 1))
                return CropRectangle(
                    x: Double(left), y: Double(top), width: Double(cropWidth), height: Double(cropHeight))
            }
        }
        // Fallback: the whole image, cut to the nearest allowed aspect ratio, centred.
        let inputRatio = Double(width) / Double(height)
        var cropWidth = width
        var cropHeight = height
        if inputRatio < aspectRatio.lowerBound {
            cropHeight = Int((Double(width) / aspectRatio.lowerBound).rounded(.toNearestOrEven))
        } else if inputRatio > aspectRatio.upperBound {
            cropWidth = Int((Double(height) * aspectRatio.upperBound).rounded(.toNearestOrEven))
        }
        return CropRectangle(
            x: Double((width - cropWidth) / 2), y: Double((height - cropHeight) / 2),
            width: Double(cropWidth), height: Double(cropHeight))
    }

    /// The source region the evaluation transform samples from a `width × height` image: the
    /// centre crop of the image resized so its short side is `round(resizeRatio · imageSize)`.
    ///
    /// - Returns: the region, and the resized image size (torchvision truncates the long side).
    package static func evaluationRegion(
        width: Int, height: Int, imageSize: Int, resizeRatio: Double
    ) -> (region: CropRectangle, resizedWidth: Int, resizedHeight: Int) {
        // Python's round() and int(round(...)) as torchvision uses them: halves go to even.
        let shortSide = Int((resizeRatio * Double(imageSize)).rounded(.toNearestOrEven))
        let resizedWidth: Int
        let resizedHeight: Int
        if width <= height {
            resizedWidth = shortSide
            resizedHeight = Int(Double(shortSide) * Double(height) / Double(width))
        } else {
            resizedHeight = shortSide
            resizedWidth = Int(Double(shortSide) * Double(width) / Double(height))
        }
        let top = Int((Double(resizedHeight - imageSize) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(resizedWidth - imageSize) / 2).rounded(.toNearestOrEven))
        let scaleX = Double(width) / Double(resizedWidth)
        let scaleY = Double(height) / Double(resizedHeight)
        let region = CropRectangle(
            x: Double(left) * scaleX, y: Double(top) * scaleY,
            width: Double(imageSize) * scaleX, height: Double(imageSize) * scaleY)
        return (region, resizedWidth, resizedHeight)
    }
}

// MARK: - Pixel operations on HWC float images in [0, 1]

enum PixelOperations {
    /// Applies `jitter` to `count` RGB pixels in place, in torchvision's random order.
    static func applyColorJitter(
        _ jitter: ColorJitter, to pixels: UnsafeMutableBufferPointer<Float>, using random: inout SeededRandom
    ) {
        func factor(_ strength: Double) -> Float {
            Float(max(0, 1 - strength + 2 * strength * random.nextUnitDouble()))
        }
        var order = [0, 1, 2, 3]
        for i in stride(from: 3, to: 0, by: -1) {
            order.swapAt(i, Int(random.next() % UInt64(i + 1)))
        }
        let brightness = factor(jitter.brightness)
        let contrast = factor(jitter.contrast)
        let saturation = factor(jitter.saturation)
        let hueShift = Float(-jitter.hue + 2 * jitter.hue * random.nextUnitDouble())
        for operation in order {
            switch operation {
            case 0 where jitter.brightness > 0:
                for i in pixels.indices { pixels[i] = min(max(pixels[i] * brightness, 0), 1) }
            case 1 where jitter.contrast > 0:
                var total: Float = 0
                for p in stride(from: 0, to: pixels.count, by: 3) { total += gray(pixels, p) }
                let mean = total / Float(max(pixels.count / 3, 1))
                for i in pixels.indices { pixels[i] = min(max(contrast * pixels[i] + (1 - contrast) * mean, 0), 1) }
            case 2 where jitter.saturation > 0:
                for p in stride(from: 0, to: pixels.count, by: 3) {
                    let luminance = gray(pixels, p)
                    for c in 0..<3 {
                        pixels[p + c] = min(max(saturation * pixels[p + c] + (1 - saturation) * luminance, 0), 1)
                    }
                }
            case 3 where jitter.hue > 0:
                for p in stride(from: 0, to: pixels.count, by: 3) { shiftHue(pixels, p, by: hueShift) }
            default:
                break
            }
        }
    }

    /// ITU-R 601 luma, as torchvision's `rgb_to_grayscale`.
    private static func gray(_ pixels: UnsafeMutableBufferPointer<Float>, _ p: Int) -> Float {
        0.299 * pixels[p] + 0.587 * pixels[p + 1] + 0.114 * pixels[p + 2]
    }

    /// Rotates the hue of one pixel by `shift` turns (RGB → HSV → RGB).
    private static func shiftHue(_ pixels: UnsafeMutableBufferPointer<Float>, _ p: Int, by shift: Float) {
        let red = pixels[p]
        let green = pixels[p + 1]
        let blue = pixels[p + 2]
        let maximum = max(red, green, blue)
        let minimum = min(red, green, blue)
        let chroma = maximum - minimum
        guard chroma > 0 else { return }
        var hue: Float
        if maximum == red {
            hue = (green - blue) / chroma
        } else if maximum == green {
            hue = (blue - red) / chroma + 2
        } else {
            hue = (red - green) / chroma + 4
        }
        hue = hue / 6 + shift
        hue -= hue.rounded(.down)
        let saturation = chroma / maximum
        let sector = hue * 6
        let index = Int(sector) % 6
        let fraction = sector - sector.rounded(.down)
        let value = maximum
        let low = value * (1 - saturation)
        let falling = value * (1 - saturation * fraction)
        let rising = value * (1 - saturation * (1 - fraction))
        let rgb: (Float, Float, Float)
        switch index {
        case 0: rgb = (value, rising, low)
        case 1: rgb = (falling, value, low)
        case 2: rgb = (low, value, rising)
        case 3: rgb = (low, falling, value)
        case 4: rgb = (rising, low, value)
        default: rgb = (value, low, falling)
        }
        pixels[p] = rgb.0
        pixels[p + 1] = rgb.1
        pixels[p + 2] = rgb.2
    }

    /// Writes `(source − mean) / std` per channel into `destination` (both HWC RGB).
    static func normalize(
        _ source: UnsafeBufferPointer<Float>, with normalization: Normalization,
        into destination: UnsafeMutableBufferPointer<Float>
    ) {
        let mean = normalization.mean
        let deviation = normalization.standardDeviation
        let scale = (1 / deviation.red, 1 / deviation.green, 1 / deviation.blue)
        for p in stride(from: 0, to: source.count, by: 3) {
            destination[p] = (source[p] - mean.red) * scale.0
            destination[p + 1] = (source[p + 1] - mean.green) * scale.1
            destination[p + 2] = (source[p + 2] - mean.blue) * scale.2
        }
    }
}
