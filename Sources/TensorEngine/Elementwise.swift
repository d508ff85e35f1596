// The cheap tensor operations between convolutions: ReLU, additions and broadcast additions, channel
// concatenation and split, pixel sums and global average pooling, each with the gradient the model needs.

/// `max(0, x)` elementwise, any shape.
package func relu(_ input: Tensor) -> Tensor {
    KernelProfiler.measure(.reluAdd) {
        Tensor(shape: input.shape) { output in
            input.withUnsafeBufferPointer { input in
                inFlatBands(count: input.count) { elements in
                    for index in elements { output[index] = max(0, input[index]) }
                }
            }
        }
    }
}

/// The gradient of ``relu(_:)`` computed from its output: `gradOutput` where `output > 0`, else 0.
///
/// Using the output (not the input) lets a ReLU that overwrote its input still be differentiated.
/// - Precondition: `gradOutput` and `output` have the same shape.
package func reluBackward(gradOutput: Tensor, output: Tensor) -> Tensor {
    KernelProfiler.measure(.reluAdd) {
        ensure(
            gradOutput.shape == output.shape,
            "relu backward: gradient \(gradOutput.shape) does not match output \(output.shape)")
        return Tensor(shape: output.shape) { gradInput in
            gradOutput.withUnsafeBufferPointer { gradOutput in
                output.withUnsafeBufferPointer { output in
                    inFlatBands(count: output.count) { elements in
                        maskByPositive(
                            gradOutput.baseAddress! + elements.lowerBound,
                            mask: output.baseAddress! + elements.lowerBound,
                            gradInput.baseAddress! + elements.lowerBound, count: elements.count)
                    }
                }
            }
        }
    }
}

/// `a + b` elementwise. Its gradient passes `gradOutput` unchanged to both operands.
/// - Precondition: `a` and `b` have the same shape.
package func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    var sum = a
    addInPlace(&sum, b)
    return sum
}

/// `accumulator += addend` elementwise, e.g. to sum gradients where a tensor feeds two branches.
/// - Precondition: both have the same shape.
package func addInPlace(_ accumulator: inout Tensor, _ addend: Tensor) {
    KernelProfiler.measure(.reluAdd) {
        ensure(
            accumulator.shape == addend.shape,
            "add: shapes \(accumulator.shape) and \(addend.shape) differ")
        addend.withUnsafeBufferPointer { addend in
            accumulator.withUnsafeMutableBufferPointer { accumulator in
                inFlatBands(count: accumulator.count) { elements in
                    for index in elements { accumulator[index] += addend[index] }
                }
            }
        }
    }
}

/// Concatenates NHWC tensors along the channel axis (strided row copies).
///
/// - Parameter parts: `[N, H, W, C_i]` each, equal in `N, H, W`.
/// - Returns: `[N, H, W, ΣC_i]`. Its gradient is ``splitChannels(_:sizes:)`` with the parts' channel counts.
package func concatenateChannels(_ parts: [Tensor]) -> Tensor {
    KernelProfiler.measure(.reluAdd) {
        ensure(!parts.isEmpty, "concatenateChannels: no tensors given")
        let pixelShape = Array(parts[0].shape.dropLast())
        for part in parts {
            ensure(
                part.shape.count == 4 && Array(part.shape.dropLast()) == pixelShape,
                "concatenateChannels: \(part.shape) does not match \(parts[0].shape) outside the channel axis")
        }
        let totalChannels = parts.reduce(0) { $0 + $1.shape[3] }
        let pixels = pixelShape.reduce(1, *)
        return Tensor(shape: pixelShape + [totalChannels]) { output in
            var channelOffset = 0
            for part in parts {
                let channels = part.shape[3]
                part.withUnsafeBufferPointer { source in
                    inRowBands(rows: pixels, rowLength: channels) { band in
                        for pixel in band {
                            (output.baseAddress! + pixel * totalChannels + channelOffset)
                                .initialize(from: source.baseAddress! + pixel * channels, count: channels)
                        }
                    }
                }
                channelOffset += channels
            }
        }
    }
}

/// Splits an NHWC tensor along the channel axis into consecutive parts.
///
/// - Parameters:
///   - input: `[N, H, W, C]`.
///   - sizes: The channel count of each part; they must add up to `C`.
/// - Returns: `[N, H, W, sizes[i]]` for each part. Its gradient is ``concatenateChannels(_:)``.
package func splitChannels(_ input: Tensor, sizes: [Int]) -> [Tensor] {
    KernelProfiler.measure(.reluAdd) {
        ensure(
            input.shape.count == 4 && sizes.allSatisfy({ $0 >= 0 }) && sizes.reduce(0, +) == input.shape[3],
            "splitChannels: channel sizes \(sizes) do not add up to the channels of \(input.shape)")
        let totalChannels = input.shape[3]
        let pixels = input.count / max(totalChannels, 1)
        var channelOffset = 0
        return sizes.map { channels in
            defer { channelOffset += channels }
            return Tensor(shape: Array(input.shape.dropLast()) + [channels]) { part in
                input.withUnsafeBufferPointer { source in
                    inRowBands(rows: pixels, rowLength: channels) { band in
                        for pixel in band {
                            (part.baseAddress! + pixel * channels)
                                .initialize(
                                    from: source.baseAddress! + pixel * totalChannels + channelOffset, count: channels)
                        }
                    }
                }
            }
        }
    }
}

/// Adds a per-image, per-channel vector to every pixel: `output[n, h, w, c] = input[n, h, w, c] + addend[n, 0, 0, c]`.
///
/// - Parameters:
///   - input: `[N, H, W, C]`.
///   - addend: `[N, 1, 1, C]`.
/// - Returns: `[N, H, W, C]`. Gradients: `gradOutput` for `input`, ``sumOverPixels(_:)`` of it for `addend`.
package func broadcastAdd(_ input: Tensor, _ addend: Tensor) -> Tensor {
    KernelProfiler.measure(.reluAdd) {
        let (batch, pixels, channels) = broadcastExtents(input.shape, addend.shape)
        return Tensor(shape: input.shape) { output in
            input.withUnsafeBufferPointer { input in
                addend.withUnsafeBufferPointer { addend in
                    addPerImageVector(
                        input.baseAddress!, addend.baseAddress!, output.baseAddress!,
                        batch: batch, pixels: pixels, channels: channels)
                }
            }
        }
    }
}

/// ``broadcastAdd(_:_:)`` in place: `input[n, h, w, c] += addend[n, 0, 0, c]`.
package func broadcastAddInPlace(_ input: inout Tensor, _ addend: Tensor) {
    KernelProfiler.measure(.reluAdd) {
        let (batch, pixels, channels) = broadcastExtents(input.shape, addend.shape)
        addend.withUnsafeBufferPointer { addend in
            input.withUnsafeMutableBufferPointer { input in
                addPerImageVector(
                    input.baseAddress!, addend.baseAddress!, input.baseAddress!,
                    batch: batch, pixels: pixels, channels: channels)
            }
        }
    }
}

/// Checks a broadcast addition's shapes (`[N, H, W, C]` and `[N, 1, 1, C]`); returns `N`, `H·W`, `C`.
private func broadcastExtents(_ input: [Int], _ addend: [Int]) -> (batch: Int, pixels: Int, channels: Int) {
    ensure(
        input.count == 4 && addend == [input[0], 1, 1, input[3]],
        "broadcastAdd: addend \(addend) must be [N, 1, 1, C] for input \(input)")
    return (input[0], input[1] * input[2], input[3])
}

/// `output[n, p, c] = input[n, p, c] + addend[n, c]`; `output` may be `input`.
private func addPerImageVector(
    _ input: UnsafePointer<Float>, _ addend: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
    batch: Int, pixels: Int, channels: Int
) {
    inRowBands(rows: batch * pixels, rowLength: channels) { band in
        for row in band {
            let vector = addend + row / pixels * channels
            let (source, destination) = (input + row * channels, output + row * channels)
            for c in 0..<channels { destination[c] = source[c] + vector[c] }
        }
    }
}

/// Sums an NHWC tensor over its pixels: `[N, H, W, C]` → `[N, 1, 1, C]`.
///
/// This is the gradient of ``broadcastAdd(_:_:)`` with respect to its addend, and
/// ``globalAveragePool(_:)`` is this divided by `H·W`.
package func sumOverPixels(_ input: Tensor) -> Tensor {
    KernelProfiler.measure(.reluAdd) { pixelSums(input, scaledBy: 1, "sumOverPixels") }
}

/// The mean over pixels: `[N, H, W, C]` → `[N, 1, 1, C]`.
package func globalAveragePool(_ input: Tensor) -> Tensor {
    KernelProfiler.measure(.pool) {
        pixelSums(
            input, scaledBy: 1 / Double(input.shape.count == 4 ? input.shape[1] * input.shape[2] : 1),
            "globalAveragePool")
    }
}

/// Each image's channel sums times `scale`, from bands of pixels summed at the same time.
private func pixelSums(_ input: Tensor, scaledBy scale: Double, _ operation: String) -> Tensor {
    ensure(input.shape.count == 4, "\(operation): input \(input.shape) must be NHWC [N, H, W, C]")
    let (batch, pixels, channels) = (input.shape[0], input.shape[1] * input.shape[2], input.shape[3])
    let parts = bandCount(rows: batch * pixels, rowLength: channels)
    let sums = ImageChannelSums(images: batch, pixelsPerImage: pixels, channels: channels, parts: parts)
    input.withUnsafeBufferPointer { input in
        inParallel(parts) { part in
            let band = share(part, of: parts, in: batch * pixels)
            sums.add(input.baseAddress! + band.lowerBound * channels, pixels: band, part: part)
        }
    }
    return sums.total(scaledBy: scale)
}

/// Each image's per-channel sums over NHWC pixel rows, gathered in parts (one per thread) from
/// bands of rows that may cross image boundaries (so a batch of one still uses every thread). The
/// parts are added in part order, so the sums do not depend on timing.
final class ImageChannelSums {
    private let images: Int, pixelsPerImage: Int, channels: Int, parts: Int
    /// `[part][image][channel]`.
    private let sums: UnsafeMutableBufferPointer<Double>

    init(images: Int, pixelsPerImage: Int, channels: Int, parts: Int) {
        (self.images, self.pixelsPerImage, self.channels, self.parts) = (images, pixelsPerImage, channels, parts)
        sums = .allocate(capacity: parts * images * channels)
        sums.initialize(repeating: 0)
    }

    deinit { sums.deallocate() }

    /// Adds the pixel rows `pixels` (indices into `[N·H·W]`), whose values start at `values`, to
    /// part `part`; one thread per part at a time.
    func add(_ values: UnsafePointer<Float>, pixels: Range<Int>, part: Int) {
        var pixel = pixels.lowerBound
        while pixel < pixels.upperBound {
            let image = pixel / pixelsPerImage
            let end = min(pixels.upperBound, (image + 1) * pixelsPerImage)
            accumulateChannelSums(
                values + (pixel - pixels.lowerBound) * channels, rows: end - pixel, channels: channels,
                sum: sums.baseAddress! + (part * images + image) * channels)
            pixel = end
        }
    }

    /// The sums `[N, 1, 1, C]`, times `scale`.
    func total(scaledBy scale: Double) -> Tensor {
        Tensor(shape: [images, 1, 1, channels]) { output in
            for index in output.indices {
                var sum = 0.0
                for part in 0..<parts { sum += sums[part * images * channels + index] }
                output[index] = Float(sum * scale)
            }
        }
    }
}

/// The gradient of ``globalAveragePool(_:)``: each pixel receives `gradOutput / (H·W)`.
///
/// - Parameters:
///   - gradOutput: `[N, 1, 1, C]`.
///   - inputShape: The forward input's shape `[N, H, W, C]`.
package func globalAveragePoolBackward(gradOutput: Tensor, inputShape: [Int]) -> Tensor {
    KernelProfiler.measure(.pool) {
        ensure(
            inputShape.count == 4 && gradOutput.shape == [inputShape[0], 1, 1, inputShape[3]],
            "globalAveragePool backward: gradient \(gradOutput.shape) does not match input \(inputShape)")
        let (batch, pixels, channels) = (inputShape[0], inputShape[1] * inputShape[2], inputShape[3])
        let scale = 1 / Float(pixels)
        return Tensor(shape: inputShape) { gradInput in
            gradOutput.withUnsafeBufferPointer { gradOutput in
                inRowBands(rows: batch * pixels, rowLength: channels) { band in
                    for row in band {
                        let vector = gradOutput.baseAddress! + row / pixels * channels
                        let destination = gradInput.baseAddress! + row * channels
                        for c in 0..<channels { destination[c] = vector[c] * scale }
                    }
                }
            }
        }
    }
}
