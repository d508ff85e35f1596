// `model grad-error`'s measurement: one batch's parameter gradients computed in fp32, in bf16 and in the
// reference precision (float64-accumulated products), how far fp32 and bf16 lie from the reference tensor by
// tensor, and the bound bf16's error keeps relative to fp32's.

import TensorEngine

/// How far each parameter gradient computed in ``Precision/fp32`` and in ``Precision/bf16`` lies from the same
/// gradient computed in ``Precision/reference``.
///
/// The three runs differ only in their matrix products: batch norm, ReLU, pooling and the loss are the same
/// fp32 code in all three, so the reference is "float64-accumulated products", not a float64 network, and the
/// errors measure what the products' arithmetic does to the gradient.
package struct GradientPrecisionErrors: Sendable {
    /// The error of one computed gradient tensor `g` against the reference `r`.
    package struct Deviation: Sendable {
        /// ‖g − r‖₂ / ‖r‖₂.
        package let relative: Double
        /// max|g − r| / max|r|: the worst element against the tensor's scale.
        package let largest: Double

        init(_ gradient: [Float], reference: [Float]) {
            var (difference, norm, largestDifference, scale) = (0.0, 0.0, 0.0, 0.0)
            for (value, exact) in zip(gradient, reference) {
                let (value, exact) = (Double(value), Double(exact))
                difference += (value - exact) * (value - exact)
                norm += exact * exact
                largestDifference = max(largestDifference, abs(value - exact))
                scale = max(scale, abs(exact))
            }
            func ratio(_ error: Double, _ size: Double) -> Double {
                size > 0 ? error / size : (error == 0 ? 0 : .infinity)
            }
            relative = ratio(difference.squareRoot(), norm.squareRoot())
            largest = ratio(largestDifference, scale)
        }
    }

    /// One parameter tensor's errors.
    package struct Row: Sendable {
        /// The PyTorch name, e.g. `layer3.cheap.0.weight`.
        package let name: String
        package let scalars: Int
        package let fp32: Deviation
        package let bf16: Deviation

        /// bf16's relative error over fp32's.
        package var ratio: Double { bf16.relative / fp32.relative }
    }

    /// The most bf16's relative error may exceed fp32's while both stay in the first-order regime:
    /// `√2 · u_bf16 / u_fp32 + 1` ≈ 92 683.
    ///
    /// To first order a gradient's error is a fixed linear map (the same network's derivatives in every
    /// precision) of the errors the products commit, so a tensor's bf16/fp32 ratio lies between the smallest
    /// and largest ratio of one product's errors. In a product `Σᵢ₌₁ᵏ aᵢbᵢ` bf16 rounds each operand
    /// (relative error ≤ u_bf16 = 2⁻⁸ each, independent), an rms error of `√2 · σ_bf16 · √(Σ(aᵢbᵢ)²)`; fp32
    /// rounds each running sum `sⱼ` (j = 2…k, relative ≤ u_fp32 = 2⁻²⁴), `σ_fp32 · √(Σ sⱼ²)`, with
    /// σ_bf16/σ_fp32 = u_bf16/u_fp32 = 2¹⁶. For generic terms the running sums are no smaller than single
    /// terms, so one product's ratio is at most `√2 · 2¹⁶` (at k = 2; a random walk's growth gives `≈ 2¹⁷/√k`
    /// for longer ones), and bf16's own fp32 sums add fp32's error once more: the `+ 1`. Not a bound where
    /// bf16's error is no longer small (ReLU and max-pool decisions flipped, batch norm's projections
    /// amplifying): docs/PERFORMANCE.md shows whole-model gradients at initialisation reaching that regime.
    package static let ratioBound = 2.0.squareRoot() * BFloat16.unitRoundoff / 0x1p-24 + 1

    /// The least bf16's relative error exceeds fp32's unless bf16's saturates: `√(u_bf16 / u_fp32)` = 2⁸.
    /// First-order errors scale with the unit roundoff (ratio ≈ 2¹⁷/√k, at least 1 931 for the longest
    /// reductions, k ≤ 4 608); errors dominated by flipped ReLU or max-pool decisions grow as its square root
    /// (the flipped fraction is proportional to the perturbation, their contributions add in quadrature).
    package static let smallestRatio = (BFloat16.unitRoundoff / 0x1p-24).squareRoot()

    /// Every parameter tensor, in slot order.
    package let rows: [Row]
    /// The batch's mean cross-entropy in each precision.
    package let losses: (fp32: Double, bf16: Double, reference: Double)

    /// Computes `model`'s training-mode gradient of the mean cross-entropy of `images` against `labels` in the
    /// three precisions (the model itself is left as it is: each run updates its own copy's statistics).
    package init(model: GhostNetModel, images: Tensor, labels: [Int]) throws(GhostNetModelError) {
        func step(_ precision: Precision) throws(GhostNetModelError) -> TrainingStepResult {
            var copy = model
            return try withPrecision(precision) { () throws(GhostNetModelError) in
                try copy.trainingStep(images: images, labels: labels)
            }
        }
        let reference = try step(.reference)
        let fp32 = try step(.fp32)
        let bf16 = try step(.bf16)
        rows = model.parameterSlots.map { slot in
            let exact = reference.gradients.tensors[slot.index].scalars
            return Row(
                name: slot.name, scalars: slot.scalarCount,
                fp32: Deviation(fp32.gradients.tensors[slot.index].scalars, reference: exact),
                bf16: Deviation(bf16.gradients.tensors[slot.index].scalars, reference: exact))
        }
        losses = (fp32.loss, bf16.loss, reference.loss)
    }

    /// A reproducible batch for `configuration`: Gaussian pixels with per-image colour offsets and contrast (so
    /// pooled features differ between images and the merge batch norms, which normalise over the batch alone,
    /// see a spread) and uniform labels, all drawn from `seed`.
    package static func syntheticBatch(
        configuration: GhostNetConfiguration, batch: Int, seed: UInt64
    ) -> (images: Tensor, labels: [Int]) {
        let side = configuration.imageSize
        let channels = GhostNetStructure.imageChannels
        var random = SeededRandom(seed: seed, streams: 0x6772_6164)
        let images = Tensor(shape: [batch, side, side, channels]) { values in
            let pixels = side * side * channels
            for image in 0..<batch {
                let contrast = 1 + 0.3 * random.nextGaussian()
                let offsets = (0..<channels).map { _ in random.nextGaussian() }
                for index in 0..<pixels {
                    values[image * pixels + index] =
                        Float(random.nextGaussian() * contrast + offsets[index % channels])
                }
            }
        }
        let labels = (0..<batch).map { _ in Int(random.next() % UInt64(configuration.classes)) }
        return (images, labels)
    }
}
