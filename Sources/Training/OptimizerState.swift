// The optimizer side of a training run: SGD's settings, the learning-rate schedule and the
// momentum buffers, and the update that applies the exchange's averaged gradients to the model.

import GhostNet
import TensorEngine

/// SGD with momentum over every parameter of a model, on a schedule.
struct OptimizerState {
    var sgd: SGDOptimizer
    let schedule: LearningRateSchedule
    /// Velocity of every parameter, slot order, internal layout (what a checkpoint saves).
    var momentum: [Tensor]

    init(_ trainer: TrainingConfiguration.Trainer, slots: [TensorSlot], stepsPerEpoch: Int) {
        sgd = SGDOptimizer(trainer.optimizer)
        schedule = LearningRateSchedule(trainer, stepsPerEpoch: stepsPerEpoch)
        momentum = slots.map { Tensor(shape: $0.shape) }
    }

    /// Sets the scheduled learning rate of a step and returns it.
    mutating func startStep(epoch: Int, stepInEpoch: Int) -> Double {
        let learningRate = schedule.learningRate(epoch: epoch, stepInEpoch: stepInEpoch)
        sgd.learningRate = Float(learningRate)
        return learningRate
    }

    /// One SGD update of every parameter of `model` from `gradients`: the exchange's flat buffer,
    /// parameters in slot order at the slots' offsets.
    ///
    /// - Parameter isFirstStep: true on the run's first step, which initialises the velocities.
    mutating func update(_ model: inout GhostNetModel, gradients: UnsafeBufferPointer<Float>, isFirstStep: Bool) {
        sgd.update(&model, gradients: gradients, momentum: &momentum, buffersAreInitialized: !isFirstStep)
    }
}
