// The learning-rate schedule: PyTorch's closed-form cosine annealing with an optional linear warm-up, by
// epoch or by step.

#if canImport(Glibc)
import Glibc
#endif

/// Cosine annealing (PyTorch's `CosineAnnealingLR` closed form) with optional linear warm-up.
///
/// With position p in epochs (p = epoch when `byEpoch`, else p = epoch + step/stepsPerEpoch),
/// warm-up W epochs and period T (`T_max`, in epochs):
///
///     p <  W:  lr = lr₀ · (p + δ) / W,   δ = 1 per epoch, 1/stepsPerEpoch per step
///     p >= W:  lr = η_min + (lr₀ − η_min) · (1 + cos(π · (p − W) / (T − W))) / 2
///
/// so the warm-up ends at lr₀ and the cosine still reaches η_min at p = T. Without warm-up this is
/// lr(e) = η_min + (lr₀ − η_min)(1 + cos(π·e/T))/2. Like PyTorch's closed form, it is periodic past T.
package struct LearningRateSchedule: Sendable {
    package let baseLearningRate: Double
    package let minimumLearningRate: Double
    package let periodEpochs: Int
    package let warmupEpochs: Int
    package let byEpoch: Bool
    package let stepsPerEpoch: Int

    /// - Precondition: `periodEpochs > warmupEpochs >= 0` and `stepsPerEpoch >= 1`.
    package init(
        baseLearningRate: Double, minimumLearningRate: Double = 0, periodEpochs: Int, warmupEpochs: Int = 0,
        byEpoch: Bool = true, stepsPerEpoch: Int
    ) {
        precondition(
            periodEpochs > warmupEpochs && warmupEpochs >= 0,
            "T_max \(periodEpochs) must exceed warm-up \(warmupEpochs)")
        precondition(stepsPerEpoch >= 1, "an epoch needs at least one step")
        self.baseLearningRate = baseLearningRate
        self.minimumLearningRate = minimumLearningRate
        self.periodEpochs = periodEpochs
        self.warmupEpochs = warmupEpochs
        self.byEpoch = byEpoch
        self.stepsPerEpoch = stepsPerEpoch
    }

    /// The schedule of a `trainer` section for an epoch of `stepsPerEpoch` steps.
    package init(_ trainer: TrainingConfiguration.Trainer, stepsPerEpoch: Int) {
        self.init(
            baseLearningRate: trainer.optimizer.learningRate,
            minimumLearningRate: trainer.scheduler.minimumLearningRate,
            periodEpochs: trainer.scheduler.periodEpochs, warmupEpochs: trainer.warmupEpochs,
            byEpoch: trainer.scheduler.byEpoch, stepsPerEpoch: stepsPerEpoch)
    }

    /// The learning rate for step `stepInEpoch` (0-based) of epoch `epoch` (0-based).
    package func learningRate(epoch: Int, stepInEpoch: Int) -> Double {
        let position = byEpoch ? Double(epoch) : Double(epoch) + Double(stepInEpoch) / Double(stepsPerEpoch)
        let warmup = Double(warmupEpochs)
        if position < warmup {
            let increment = byEpoch ? 1 : 1 / Double(stepsPerEpoch)
            return baseLearningRate * (position + increment) / warmup
        }
        let progress = (position - warmup) / (Double(periodEpochs) - warmup)
        return minimumLearningRate + (baseLearningRate - minimumLearningRate) * (1 + cos(.pi * progress)) / 2
    }
}
