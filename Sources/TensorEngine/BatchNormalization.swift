// Batch normalisation of NHWC tensors: the forward pass (batch or running statistics, optional fused ReLU),
// its backward pass, the running-statistics update and inference's folded affine map. The SIMD row loops it
// runs on are in ChannelKernels.swift.

/// The per-channel normalisation a batch-norm forward pass applied, kept for its backward pass.
package struct BatchNormNormalization: Sendable {
    /// The mean subtracted from each channel, `[C]` (batch mean in training, running mean in inference).
    package var mean: Tensor
    /// The biased variance of each channel, `[C]` (batch variance in training, running in inference).
    package var variance: Tensor
    /// `1 / √(variance + ε)`, `[C]`.
    package var inverseStandardDeviation: Tensor
    /// Whether `mean` and `variance` were computed from the batch itself, so that the backward pass
    /// must differentiate through them.
    package var usesBatchStatistics: Bool
    /// Values per channel that the statistics were taken over (`N·H·W`).
    package var countPerChannel: Int
    /// The affine map the forward pass applied, `y = x·scale + shift`, `[C]` each.
    var scale: Tensor, shift: Tensor
    /// Whether the output was `max(0, x·scale + shift)` (ReLU fused, no residual): the backward
    /// pass then zeroes the gradient where `x·scale + shift ≤ 0`, recomputed from the input exactly
    /// as the forward pass computed it, instead of reading the output again.
    package var fusedReLU: Bool
}

/// Batch normalisation of an NHWC tensor over `N·H·W` for each channel, optionally followed by ReLU
/// in the same pass.
///
/// `y = (x − mean) / √(variance + ε) · weight + bias`. In training the statistics are the batch's
/// (biased variance, as PyTorch normalises); in inference they are the running averages. The
/// batch statistics are accumulated in one sweep in `Double`, shifted by each channel's first
/// value so that a large mean does not cancel the variance.
///
/// - Parameters:
///   - input: `[N, H, W, C]`.
///   - weight: `[C]` (γ).
///   - bias: `[C]` (β).
///   - running: In inference, the running mean and variance (`[C]` each); `nil` in training.
///   - epsilon: Added to the variance (PyTorch's default is 1e-5).
///   - fusingReLU: Whether to apply `max(0, ·)` to the result.
///   - batchStatistics: In training, the batch's mean and biased variance when already known
///     (``conv2dWithChannelMoments(_:weight:geometry:)`` computes them); otherwise they are
///     computed from `input`.
///   - residual: Added before the ReLU (a residual block's sum), `[N, H, W, C]`. The backward pass
///     does not see it: differentiate that ReLU and the sum outside.
/// - Returns: The output `[N, H, W, C]` and the normalisation for
///   ``batchNormBackward(gradOutput:input:weight:normalization:)``.
/// - Precondition: in training there is more than one value per channel (PyTorch raises the same
///   error); every `[C]` tensor matches the input's channel count.
package func batchNorm(
    _ input: Tensor, weight: Tensor, bias: Tensor,
    running: (mean: Tensor, variance: Tensor)?, epsilon: Float, fusingReLU: Bool = false,
    batchStatistics: (mean: Tensor, variance: Tensor)? = nil, residual: Tensor? = nil
) -> (output: Tensor, normalization: BatchNormNormalization) {
    KernelProfiler.measure(.batchNorm) {
        ensure(input.shape.count == 4, "batchNorm: input \(input.shape) must be NHWC [N, H, W, C]")
        let channels = input.shape[3]
        let count = input.count / max(channels, 1)
        ensure(running == nil || batchStatistics == nil, "batchNorm: give running or batch statistics, not both")
        ensure(
            residual.map { $0.shape == input.shape } ?? true,
            "batchNorm: residual \(residual?.shape ?? []) does not match input \(input.shape)")
        let given = running ?? batchStatistics
        for (name, tensor) in [("weight", weight), ("bias", bias)]
            + (given.map { [("mean", $0.mean), ("variance", $0.variance)] } ?? [])
        {
            ensure(
                tensor.shape == [channels],
                "batchNorm: input \(input.shape) has \(channels) channels but \(name) is \(tensor.shape)")
        }
        let mean: Tensor
        let variance: Tensor
        if let running {
            (mean, variance) = (running.mean, running.variance)
        } else {
            ensure(
                count > 1,
                "batchNorm: expected more than 1 value per channel when training, got input \(input.shape)")
            (mean, variance) = batchStatistics ?? channelMeanAndVariance(input)
        }
        let inverseStandardDeviation = inverseStandardDeviations(variance, epsilon: epsilon)
        let (scale, shift) = affine(
            weight: weight, bias: bias, mean: mean, inverseStandardDeviation: inverseStandardDeviation)
        let output = Tensor(shape: input.shape) { output in
            input.withUnsafeBufferPointer { input in
                residual.withUnsafeBaseAddress { residual in
                    scale.withUnsafeBufferPointer { scale in
                        shift.withUnsafeBufferPointer { shift in
                            inRowBands(rows: count, rowLength: channels) { band in
                                let first = band.lowerBound * channels
                                scaleAndShiftRows(
                                    input.baseAddress! + first, output.baseAddress! + first, rows: band.count,
                                    channels: channels, scale: scale.baseAddress!, shift: shift.baseAddress!,
                                    adding: residual.map { $0 + first }, clampAtZero: fusingReLU)
                            }
                        }
                    }
                }
            }
        }
        let normalization = BatchNormNormalization(
            mean: mean, variance: variance, inverseStandardDeviation: inverseStandardDeviation,
            usesBatchStatistics: running == nil, countPerChannel: count, scale: scale, shift: shift,
            fusedReLU: fusingReLU && residual == nil)
        return (output, normalization)
    }
}

/// The gradients of ``batchNorm(_:weight:bias:running:epsilon:fusingReLU:)``.
///
/// With batch statistics this is the full derivative through the mean and variance:
/// `dx = γ·σ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂))`; with running statistics it is `dy·γ·σ⁻¹`.
///
/// - Parameters:
///   - gradOutput: `[N, H, W, C]`.
///   - input: The forward input `[N, H, W, C]`.
///   - weight: γ, `[C]`.
///   - normalization: What the forward pass returned; when it fused a ReLU, the gradient is zeroed
///     where the output was not positive.
/// - Returns: Gradients of the input `[N, H, W, C]`, weight `[C]` and bias `[C]`.
package func batchNormBackward(
    gradOutput: Tensor, input: Tensor, weight: Tensor, normalization: BatchNormNormalization
) -> (input: Tensor, weight: Tensor, bias: Tensor) {
    KernelProfiler.measure(.batchNorm) {
        ensure(
            gradOutput.shape == input.shape,
            "batchNorm backward: gradient \(gradOutput.shape) does not match input \(input.shape)")
        let channels = input.shape[3]
        let count = input.count / max(channels, 1)
        let n = Double(normalization.countPerChannel)
        // Per channel: Σdy and Σdy·(x − mean) in Double, with dy masked by the fused ReLU.
        var sumGrad = [Double](repeating: 0, count: channels)
        var sumGradCentered = [Double](repeating: 0, count: channels)
        // dx = a·dy − b·x + offset per channel.
        var a = [Float](repeating: 0, count: channels)
        var b = [Float](repeating: 0, count: channels)
        var offset = [Float](repeating: 0, count: channels)
        gradOutput.withUnsafeBufferPointer { dy in
            input.withUnsafeBufferPointer { x in
                normalization.withReLUGate { gate in
                    normalization.mean.withUnsafeBufferPointer { mean in
                        sumGrad.withUnsafeMutableBufferPointer { sumGrad in
                            sumGradCentered.withUnsafeMutableBufferPointer { sumGradCentered in
                                accumulatingInRowBands(
                                    rows: count, channels: channels,
                                    totals: [sumGrad.baseAddress!, sumGradCentered.baseAddress!]
                                ) { band, sums in
                                    let first = band.lowerBound * channels
                                    accumulateChannelGradientSums(
                                        gradient: dy.baseAddress! + first, input: x.baseAddress! + first,
                                        gate: gate, center: mean.baseAddress!,
                                        rows: band.count, channels: channels, sumGrad: sums[0], sumGradCentered: sums[1]
                                    )
                                }
                            }
                        }
                    }
                }
            }
        }
        weight.withUnsafeBufferPointer { weight in
            normalization.mean.withUnsafeBufferPointer { mean in
                normalization.inverseStandardDeviation.withUnsafeBufferPointer { inverse in
                    for c in 0..<channels {
                        let scale = Double(weight[c]) * Double(inverse[c])
                        a[c] = Float(scale)
                        guard normalization.usesBatchStatistics else { continue }
                        let centeredTerm = scale * Double(inverse[c]) * Double(inverse[c]) * sumGradCentered[c] / n
                        b[c] = Float(centeredTerm)
                        offset[c] = Float(centeredTerm * Double(mean[c]) - scale * sumGrad[c] / n)
                    }
                }
            }
        }
        let gradInput = Tensor(shape: input.shape) { dx in
            gradOutput.withUnsafeBufferPointer { dy in
                input.withUnsafeBufferPointer { x in
                    normalization.withReLUGate { gate in
                        a.withUnsafeBufferPointer { a in
                            b.withUnsafeBufferPointer { b in
                                offset.withUnsafeBufferPointer { offset in
                                    inRowBands(rows: count, rowLength: channels) { band in
                                        let first = band.lowerBound * channels
                                        affineGradientRows(
                                            gradient: dy.baseAddress! + first, input: x.baseAddress! + first,
                                            gate: gate,
                                            result: dx.baseAddress! + first, rows: band.count, channels: channels,
                                            a: a.baseAddress!, b: b.baseAddress!, offset: offset.baseAddress!)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let gradWeight = Tensor(shape: [channels]) { gradWeight in
            normalization.inverseStandardDeviation.withUnsafeBufferPointer { inverse in
                for c in 0..<channels { gradWeight[c] = Float(sumGradCentered[c]) * inverse[c] }
            }
        }
        let gradBias = Tensor(shape: [channels], scalars: sumGrad.map { Float($0) })
        return (gradInput, gradWeight, gradBias)
    }
}

/// Moves running averages towards a batch's statistics, PyTorch style:
/// `running = (1 − momentum)·running + momentum·batch`, where the variance uses the unbiased batch
/// variance `variance · n / (n − 1)`.
///
/// - Parameters:
///   - runningMean: `[C]`, updated in place.
///   - runningVariance: `[C]`, updated in place.
///   - batch: The normalisation a training-mode ``batchNorm(_:weight:bias:running:epsilon:fusingReLU:)`` returned.
///   - momentum: The weight of the new batch (PyTorch's default is 0.1).
package func updateRunningStatistics(
    runningMean: inout Tensor, runningVariance: inout Tensor,
    from batch: BatchNormNormalization, momentum: Float
) {
    KernelProfiler.measure(.batchNorm) {
        ensure(batch.usesBatchStatistics, "batchNorm: running statistics update needs batch statistics")
        ensure(
            runningMean.shape == batch.mean.shape && runningVariance.shape == batch.variance.shape,
            "batchNorm: running statistics \(runningMean.shape), \(runningVariance.shape) "
                + "do not match the batch's \(batch.mean.shape)")
        let unbiasing = Float(Double(batch.countPerChannel) / Double(batch.countPerChannel - 1))
        batch.mean.withUnsafeBufferPointer { mean in
            runningMean.withUnsafeMutableBufferPointer { running in
                for c in running.indices { running[c] = (1 - momentum) * running[c] + momentum * mean[c] }
            }
        }
        batch.variance.withUnsafeBufferPointer { variance in
            runningVariance.withUnsafeMutableBufferPointer { running in
                for c in running.indices {
                    running[c] = (1 - momentum) * running[c] + momentum * variance[c] * unbiasing
                }
            }
        }
    }
}

extension BatchNormNormalization {
    /// Calls `body` with the gate of the fused ReLU, or nil when the forward pass fused none.
    func withReLUGate<R>(_ body: (ReLUGate?) -> R) -> R {
        guard fusedReLU else { return body(nil) }
        return scale.withUnsafeBufferPointer { scale in
            shift.withUnsafeBufferPointer { shift in
                body(ReLUGate(scale: scale.baseAddress!, shift: shift.baseAddress!))
            }
        }
    }
}

/// The per-channel affine map `y = x·scale + shift` that batch norm applies with the given
/// statistics: `scale = weight / √(variance + ε)`, `shift = bias − mean·scale`. With running
/// statistics this is inference's batch norm, for ``conv2d(_:weight:geometry:scale:shift:residual:clampAtZero:)``.
package func batchNormAffine(
    weight: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: Float
) -> (scale: Tensor, shift: Tensor) {
    for (name, tensor) in [("bias", bias), ("mean", mean), ("variance", variance)] {
        ensure(tensor.shape == weight.shape, "batchNorm: weight \(weight.shape) and \(name) \(tensor.shape) differ")
    }
    return affine(
        weight: weight, bias: bias, mean: mean,
        inverseStandardDeviation: inverseStandardDeviations(variance, epsilon: epsilon))
}

/// `1 / √(variance + ε)` per channel.
private func inverseStandardDeviations(_ variance: Tensor, epsilon: Float) -> Tensor {
    Tensor(shape: variance.shape) { inverse in
        variance.withUnsafeBufferPointer { variance in
            for c in variance.indices { inverse[c] = 1 / (variance[c] + epsilon).squareRoot() }
        }
    }
}

/// `scale = weight · σ⁻¹`, `shift = bias − mean·scale` per channel.
private func affine(
    weight: Tensor, bias: Tensor, mean: Tensor, inverseStandardDeviation: Tensor
) -> (scale: Tensor, shift: Tensor) {
    let (weight, bias, mean, inverse) = (weight.scalars, bias.scalars, mean.scalars, inverseStandardDeviation.scalars)
    let scale = weight.indices.map { weight[$0] * inverse[$0] }
    let shift = scale.indices.map { bias[$0] - mean[$0] * scale[$0] }
    return (Tensor(shape: [scale.count], scalars: scale), Tensor(shape: [shift.count], scalars: shift))
}

/// Per-channel mean and biased variance of an NHWC tensor, in one sweep split over threads.
private func channelMeanAndVariance(_ input: Tensor) -> (mean: Tensor, variance: Tensor) {
    let channels = input.shape[3]
    let count = input.count / channels
    let parts = bandCount(rows: count, rowLength: channels)
    let moments = ChannelMoments(channels: channels, parts: parts)
    input.withUnsafeBufferPointer { x in
        inParallel(parts) { part in
            let rows = share(part, of: parts, in: count)
            moments.add(x.baseAddress! + rows.lowerBound * channels, rows: rows.count, part: part)
        }
    }
    return moments.meanAndVariance()
}

/// Per-channel moments gathered in parts (one per thread) from blocks of NHWC rows.
///
/// Each part sums values shifted by the first row it saw, in float blocks with `Double` totals, so
/// that a large mean does not cancel the variance; ``meanAndVariance()`` combines the parts in
/// part order (Chan et al.'s pairwise update), so the result does not depend on timing.
final class ChannelMoments {
    private let channels: Int
    private let parts: Int
    /// Per part: `Σ (x − shift)` then `Σ (x − shift)²`, `channels` each.
    private let sums: UnsafeMutableBufferPointer<Double>
    /// Per part: the shift, one value per channel.
    private let shifts: UnsafeMutableBufferPointer<Float>
    /// Per part: rows added so far.
    private let counts: UnsafeMutableBufferPointer<Int>

    init(channels: Int, parts: Int) {
        (self.channels, self.parts) = (channels, parts)
        sums = .allocate(capacity: 2 * parts * channels)
        sums.initialize(repeating: 0)
        shifts = .allocate(capacity: parts * channels)
        shifts.initialize(repeating: 0)
        counts = .allocate(capacity: parts)
        counts.initialize(repeating: 0)
    }

    deinit {
        sums.deallocate()
        shifts.deallocate()
        counts.deallocate()
    }

    /// Adds `rows` rows of `channels` values to part `part`; one thread per part at a time.
    func add(_ values: UnsafePointer<Float>, rows: Int, part: Int) {
        guard rows > 0 else { return }
        let shift = shifts.baseAddress! + part * channels
        if counts[part] == 0 { shift.update(from: values, count: channels) }
        let sum = sums.baseAddress! + 2 * part * channels
        accumulateChannelMoments(
            values, rows: rows, channels: channels, shift: shift, sum: sum, sumOfSquares: sum + channels)
        counts[part] += rows
    }

    /// The mean and biased variance over every row added.
    func meanAndVariance() -> (mean: Tensor, variance: Tensor) {
        var mean = [Double](repeating: 0, count: channels)
        var squaredDeviations = [Double](repeating: 0, count: channels)
        var total = 0.0
        for part in 0..<parts where counts[part] > 0 {
            let count = Double(counts[part])
            let sum = sums.baseAddress! + 2 * part * channels
            for c in 0..<channels {
                let shiftedMean = sum[c] / count
                let partMean = Double(shifts[part * channels + c]) + shiftedMean
                let partSquaredDeviations = max(0, sum[channels + c] - shiftedMean * sum[c])
                let delta = partMean - mean[c]
                mean[c] += delta * count / (total + count)
                squaredDeviations[c] += partSquaredDeviations + delta * delta * total * count / (total + count)
            }
            total += count
        }
        return (
            Tensor(shape: [channels], scalars: mean.map { Float($0) }),
            Tensor(shape: [channels], scalars: squaredDeviations.map { Float($0 / max(total, 1)) })
        )
    }
}
