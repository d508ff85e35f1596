// The model's backward pass and training step: per-slot parameter gradients, announced as soon as each is
// final (so the all-reduce can overlap the pass), and the input gradient `model grad` reports.

import Layers
import TensorEngine

/// The gradient of a loss with respect to every trainable tensor of a ``GhostNetModel``, one
/// tensor per ``TensorSlot``, in slot order and the model's internal layout (OHWI convolution
/// weights), so that ``tensors`` lines up with ``GhostNetModel/parameters``.
package struct ParameterGradients: Sendable {
    /// The model's parameter slots.
    package let slots: [TensorSlot]
    /// `∂loss/∂parameter` for each slot; the all-reduce may replace them with averages.
    package var tensors: [Tensor]

    /// The gradient of the parameter named `name` (a PyTorch `state_dict` key).
    ///
    /// - Precondition: `name` is a parameter of the model.
    package subscript(name: String) -> Tensor {
        guard let slot = slots.first(where: { $0.name == name }) else {
            preconditionFailure("no parameter named '\(name)'")
        }
        return tensors[slot.index]
    }
}

/// The outcome of ``GhostNetModel/trainingStep(images:labels:gradientReady:)``.
package struct TrainingStepResult: Sendable {
    /// The mean cross-entropy over the batch.
    package let loss: Double
    /// The training-mode logits, `[N, classes]` (e.g. for training accuracy).
    package let logits: Tensor
    /// The gradient of ``loss`` for every parameter.
    package var gradients: ParameterGradients
}

extension GhostNetModel {
    /// Differentiates a training-mode forward pass, from the last layer back to the first.
    ///
    /// Each parameter's gradient is final as soon as its layer has been differentiated, so it is
    /// announced right then: parameters are announced exactly once each, in strictly decreasing
    /// slot index (`fc.bias` first, `conv1.weight` last). A caller can start reducing a gradient
    /// while earlier layers are still being differentiated. The tape's activations are released
    /// stage by stage as the pass moves back.
    ///
    /// - Parameters:
    ///   - tape: What ``forwardForTraining(_:)`` recorded; consumed.
    ///   - gradLogits: `∂loss/∂logits`, `[N, classes]`.
    ///   - gradientReady: Called with each parameter's slot and gradient (internal layout).
    /// - Returns: All parameter gradients, in slot order.
    package func backward(
        _ tape: consuming ForwardTape, gradLogits: Tensor,
        gradientReady: (TensorSlot, Tensor) -> Void = { _, _ in }
    ) -> ParameterGradients {
        differentiate(tape, gradLogits: gradLogits, inputGradient: false, gradientReady: gradientReady).parameters
    }

    /// ``backward(_:gradLogits:gradientReady:)`` that also returns the gradient with respect to the
    /// images, `[N, H, W, 3]` (training itself does not need it).
    package func backwardWithInputGradient(
        _ tape: consuming ForwardTape, gradLogits: Tensor,
        gradientReady: (TensorSlot, Tensor) -> Void = { _, _ in }
    ) -> (parameters: ParameterGradients, images: Tensor) {
        let result = differentiate(tape, gradLogits: gradLogits, inputGradient: true, gradientReady: gradientReady)
        return (result.parameters, result.images!)
    }

    private func differentiate(
        _ tape: consuming ForwardTape, gradLogits: Tensor, inputGradient: Bool,
        gradientReady: (TensorSlot, Tensor) -> Void
    ) -> (parameters: ParameterGradients, images: Tensor?) {
        ensure(
            gradLogits.shape == [tape.classifier.featureShape[0], structure.configuration.classes],
            "GhostNetModel.backward: gradLogits \(gradLogits.shape) "
                + "must be [\(tape.classifier.featureShape[0]), \(structure.configuration.classes)]")
        var gradients = [Tensor?](repeating: nil, count: parameterSlots.count)
        func emit(_ index: Int, _ gradient: Tensor?) {
            ensure(gradients[index] == nil, "gradient of \(parameterSlots[index].name) announced twice")
            // A frozen parameter's gradient is zero, whether or not its layer computed one.
            let final =
                frozenParameters.contains(index) ? Tensor(shape: parameterSlots[index].shape) : gradient!
            gradients[index] = final
            gradientReady(parameterSlots[index], final)
        }
        // Wholly frozen units at the start of the network are not differentiated at all (unless the
        // caller wants the image gradient, which runs through them).
        let skippedUnits = inputGradient ? 0 : frozenLeadingUnits
        var gradient = classifier.backward(gradLogits, tape: tape.classifier, emit: emit)
        for index in stages.indices.reversed() where index + 1 >= skippedUnits {
            let stageTape = tape.stages.removeLast()
            gradient = stages[index].backward(gradient, tape: stageTape, emit: emit)
        }
        var imageGradient: Tensor?
        if skippedUnits == 0 {
            imageGradient = stem.backward(gradient, tape: tape.stem, inputGradient: inputGradient, emit: emit)
        } else {
            for index in (0..<frozenLeadingSlots).reversed() { emit(index, nil) }
        }
        let tensors = gradients.enumerated().map { index, gradient in
            guard let gradient else { preconditionFailure("no gradient for \(parameterSlots[index].name)") }
            return gradient
        }
        return (ParameterGradients(slots: parameterSlots, tensors: tensors), imageGradient)
    }

    // MARK: - Loss

    /// One training step's computation: training-mode forward, mean softmax cross-entropy against
    /// integer labels, backward. Updates the running statistics; does not change the parameters.
    ///
    /// - Parameters:
    ///   - images: `[N, H, W, 3]`, NHWC.
    ///   - labels: `N` class indices in `0..<classes`.
    ///   - batchNormMode: `.training` normalises with batch statistics (the default); `.inference`
    ///     trains with frozen batch norm (see ``forwardForTraining(_:batchNormMode:)``).
    ///   - gradientReady: Called with each parameter gradient as soon as it is final (see
    ///     ``backward(_:gradLogits:gradientReady:)``).
    /// - Throws: ``GhostNetModelError`` for a bad image shape, a label count or value that does not
    ///   fit, or a batch too small for training-mode batch norm.
    package mutating func trainingStep(
        images: Tensor, labels: [Int], batchNormMode: Mode = .training,
        gradientReady: (TensorSlot, Tensor) -> Void = { _, _ in }
    ) throws(GhostNetModelError) -> TrainingStepResult {
        let classes = structure.configuration.classes
        guard labels.count == images.shape.first else {
            throw GhostNetModelError("\(labels.count) labels for a batch of \(images.shape.first ?? 0) images")
        }
        if let bad = labels.firstIndex(where: { !(0..<classes).contains($0) }) {
            throw GhostNetModelError("label \(labels[bad]) of image \(bad) is outside 0..<\(classes)")
        }
        return try step(images: images, batchNormMode: batchNormMode, gradientReady: gradientReady) {
            softmaxCrossEntropy(logits: $0, labels: labels)
        }
    }

    /// ``trainingStep(images:labels:gradientReady:)`` against soft targets (mixup, label
    /// smoothing): `targets` is `[N, classes]`, rows of non-negative weights summing to 1.
    package mutating func trainingStep(
        images: Tensor, targets: Tensor, batchNormMode: Mode = .training,
        gradientReady: (TensorSlot, Tensor) -> Void = { _, _ in }
    ) throws(GhostNetModelError) -> TrainingStepResult {
        let expected = [images.shape.first ?? 0, structure.configuration.classes]
        guard targets.shape == expected else {
            throw GhostNetModelError("targets \(targets.shape) must be [N, classes] = \(expected)")
        }
        return try step(images: images, batchNormMode: batchNormMode, gradientReady: gradientReady) {
            softmaxCrossEntropy(logits: $0, targets: targets)
        }
    }

    private mutating func step(
        images: Tensor, batchNormMode: Mode, gradientReady: (TensorSlot, Tensor) -> Void,
        loss: (Tensor) -> LossAndGradient
    ) throws(GhostNetModelError) -> TrainingStepResult {
        let (logits, tape) = try forwardForTraining(images, batchNormMode: batchNormMode)
        let objective = loss(logits)
        let gradients = backward(tape, gradLogits: objective.gradLogits, gradientReady: gradientReady)
        return TrainingStepResult(loss: objective.loss, logits: logits, gradients: gradients)
    }
}
