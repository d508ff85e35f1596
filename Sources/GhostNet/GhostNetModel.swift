// `GhostNetModel`, the executable network: the flat slot order of its tensors, bulk access to parameters and
// running statistics, the forward pass (training and inference, with input checks), the stem and classifier.

import Layers
import TensorEngine

/// One tensor in the model's flat ordering: a trainable parameter (``GhostNetModel/parameterSlots``)
/// or a batch-norm running statistic (``GhostNetModel/bufferSlots``).
///
/// Each list is numbered in PyTorch `state_dict()` order, so the order is the same in every process
/// and every run: the optimizer, the gradient all-reduce and the rank-0 broadcast can all address
/// tensors by ``index``.
package struct TensorSlot: Sendable, Hashable {
    /// The position in its list.
    package let index: Int
    /// The PyTorch `state_dict` key, e.g. `layer3.merge.1.weight`.
    package let name: String
    /// The shape inside the model: convolution weights OHWI `[out, kh, kw, in]`, others as PyTorch.
    package let shape: [Int]
    /// The PyTorch shape: convolution weights `[out, in, kh, kw]`.
    package let pytorchShape: [Int]
    /// The number of scalars.
    package let scalarCount: Int
    /// Where the tensor starts in the concatenation of all tensors of its list, in scalars (for
    /// flat communication buffers).
    package let offset: Int

    /// Whether the model stores the tensor in another layout than PyTorch (a convolution weight).
    package var isConvolutionWeight: Bool { pytorchShape.count == 4 }

    /// Converts a tensor of this slot from the model's layout to PyTorch's.
    package func pytorchLayout(_ tensor: Tensor) -> Tensor {
        isConvolutionWeight ? Convolution2DGeometry.toPyTorchLayout(tensor) : tensor
    }

    /// The slots of `specs`, in order.
    static func slots(_ specs: [TensorSpec]) -> [TensorSlot] {
        var offset = 0
        return specs.enumerated().map { index, spec in
            defer { offset += spec.elementCount }
            let shape =
                spec.shape.count == 4
                ? [spec.shape[0], spec.shape[2], spec.shape[3], spec.shape[1]]
                : spec.shape
            return TensorSlot(
                index: index, name: spec.name, shape: shape, pytorchShape: spec.shape,
                scalarCount: spec.elementCount, offset: offset)
        }
    }
}

/// A GhostNet-D network that runs: the ``GhostNetStructure`` with its tensors, forward in training
/// or inference mode, and backward to every parameter.
///
/// Images are NHWC float32 `[N, H, W, 3]`; logits are `[N, classes]`. Any image size works (the
/// configuration's `imageSize` only sets the summary's shapes). Batch norm follows PyTorch:
/// ε = 1e-5, momentum 0.1, biased batch variance for normalising and unbiased for the running
/// average.
///
/// Training uses ``trainingStep(images:labels:gradientReady:)`` (or the `targets:` variant for
/// mixup), which runs forward, the loss and backward and announces each parameter gradient as soon
/// as it is final; ``evaluate(images:)`` infers with the running statistics. Parameters and running
/// statistics are addressed by ``TensorSlot``; ``parameters`` / ``updateParameters(_:)`` and
/// ``runningStatistics`` / ``updateRunningStatistics(_:)`` read and write them in bulk.
package struct GhostNetModel: Sendable {
    package let structure: GhostNetStructure
    /// The trainable tensors, in `state_dict()` order.
    package let parameterSlots: [TensorSlot]
    /// The batch-norm running means and variances, in `state_dict()` order.
    package let bufferSlots: [TensorSlot]

    var stem: StemUnit
    var stages: [GhostStageUnit]
    var classifier: ClassifierUnit

    /// The parameter slots that are not trained (see ``freeze(_:)``); empty unless frozen.
    package internal(set) var frozenParameters: Set<Int> = []
    /// How many units at the start (the stem, then stages) are wholly frozen, and their parameter count.
    var frozenLeadingUnits = 0
    var frozenLeadingSlots = 0

    /// Builds the network holding `parameters`' tensors (converted to the internal layout).
    package init(_ parameters: ModelParameters) {
        let structure = parameters.structure
        let source = UnitSource(parameters: parameters, indices: SlotIndices(structure: structure))
        self.structure = structure
        parameterSlots = TensorSlot.slots(structure.tensors.filter(\.isTrainable))
        bufferSlots = TensorSlot.slots(structure.tensors.filter { !$0.isTrainable })
        stem = StemUnit(structure.stem, from: source)
        stages = structure.stages.map { GhostStageUnit($0, from: source) }
        classifier = ClassifierUnit(structure.classifier, from: source)
    }

    /// A freshly initialised network (see ``ModelParameters/initialized(for:seed:)``).
    package init(configuration: GhostNetConfiguration, seed: UInt64) {
        self.init(ModelParameters.initialized(for: GhostNetStructure(configuration: configuration), seed: seed))
    }

    /// The number of trainable scalars, ``GhostNetStructure/parameterCount``.
    package var numberOfParameters: Int { parameterSlots.last.map { $0.offset + $0.scalarCount } ?? 0 }

    /// The number of running-statistic scalars.
    package var numberOfBufferScalars: Int { bufferSlots.last.map { $0.offset + $0.scalarCount } ?? 0 }

    // MARK: - State

    /// Every tensor, parameters and running statistics, in PyTorch layout and `state_dict()` order,
    /// for checkpoints.
    package var exportedParameters: ModelParameters {
        var model = self
        var parameters = [Tensor?](repeating: nil, count: parameterSlots.count)
        var buffers = [Tensor?](repeating: nil, count: bufferSlots.count)
        model.visit { kind, index, tensor in
            switch kind {
            case .parameter: parameters[index] = parameterSlots[index].pytorchLayout(tensor)
            case .buffer: buffers[index] = tensor
            }
        }
        var nextParameter = parameters.makeIterator()
        var nextBuffer = buffers.makeIterator()
        let tensors = structure.tensors.map { ($0.isTrainable ? nextParameter.next() : nextBuffer.next())!! }
        return ModelParameters(structure: structure, orderedTensors: tensors)
    }

    /// The trainable tensors in slot order and internal layout (shared storage, no copies).
    package var parameters: [Tensor] { collect(.parameter, count: parameterSlots.count) }

    /// The running means and variances in slot order (shared storage, no copies).
    package var runningStatistics: [Tensor] { collect(.buffer, count: bufferSlots.count) }

    /// Calls `body` with every trainable tensor, in slot order, for in-place update (SGD, the rank-0
    /// broadcast). The storage is updated in place when nothing else holds it.
    ///
    /// - Precondition: `body` keeps each tensor's shape.
    package mutating func updateParameters(_ body: (TensorSlot, inout Tensor) throws -> Void) rethrows {
        try update(.parameter, slots: parameterSlots, body)
    }

    /// Calls `body` with every running mean and variance, in slot order, for in-place update
    /// (averaging across ranks before evaluation and checkpoints).
    ///
    /// - Precondition: `body` keeps each tensor's shape.
    package mutating func updateRunningStatistics(_ body: (TensorSlot, inout Tensor) throws -> Void) rethrows {
        try update(.buffer, slots: bufferSlots, body)
    }

    /// Calls `body` with the trainable tensor at `index` for in-place update.
    ///
    /// - Precondition: `index` is a parameter slot; `body` keeps the shape.
    package mutating func updateParameter(at index: Int, _ body: (inout Tensor) throws -> Void) rethrows {
        try update(.parameter, slots: parameterSlots) { slot, tensor in
            if slot.index == index { try body(&tensor) }
        }
    }

    private func collect(_ wanted: ModelTensorKind, count: Int) -> [Tensor] {
        var model = self
        var tensors = [Tensor](repeating: Tensor(shape: [0]), count: count)
        model.visit { kind, index, tensor in
            if kind == wanted { tensors[index] = tensor }
        }
        return tensors
    }

    private mutating func update(
        _ wanted: ModelTensorKind, slots: [TensorSlot], _ body: (TensorSlot, inout Tensor) throws -> Void
    ) rethrows {
        try visit { kind, index, tensor in
            guard kind == wanted else { return }
            let slot = slots[index]
            try body(slot, &tensor)
            ensure(tensor.shape == slot.shape, "\(slot.name) must keep its shape \(slot.shape), got \(tensor.shape)")
        }
    }

    private mutating func visit(_ body: TensorVisitor) rethrows {
        try stem.visit(body)
        for index in stages.indices { try stages[index].visit(body) }
        try classifier.visit(body)
    }

    // MARK: - Forward

    /// Runs the network on `images` without keeping anything for a backward pass.
    ///
    /// - Parameters:
    ///   - images: `[N, H, W, 3]`, NHWC float32.
    ///   - mode: `.training` normalises with batch statistics and updates the running statistics;
    ///     `.inference` uses the running statistics.
    /// - Returns: The logits, `[N, classes]`.
    /// - Throws: ``GhostNetModelError`` for images of the wrong shape, or in training mode when a
    ///   batch norm would see a single value per channel (e.g. a batch of one image, whose `merge`
    ///   batch norm normalises `[1, 1, 1, C]`).
    package mutating func forward(_ images: Tensor, mode: Mode) throws(GhostNetModelError) -> Tensor {
        try checkInput(images, mode: mode)
        return run(images, mode: mode, record: false).logits
    }

    /// Inference: ``forward(_:mode:)`` with the running statistics.
    package mutating func evaluate(images: Tensor) throws(GhostNetModelError) -> Tensor {
        try forward(images, mode: .inference)
    }

    /// Runs a forward pass that records what ``backward(_:gradLogits:gradientReady:)`` needs.
    ///
    /// - Parameters:
    ///   - images: `[N, H, W, 3]`.
    ///   - batchNormMode: `.training` (the default) normalises with batch statistics and updates the
    ///     running statistics; `.inference` trains with frozen batch norm, normalising with the
    ///     running statistics and leaving them unchanged.
    /// - Returns: The logits `[N, classes]` and the tape of the pass; the tape holds every cached
    ///   activation until backward consumes it.
    package mutating func forwardForTraining(
        _ images: Tensor, batchNormMode: Mode = .training
    ) throws(GhostNetModelError) -> (logits: Tensor, tape: ForwardTape) {
        try checkInput(images, mode: batchNormMode)
        let (logits, tape) = run(images, mode: batchNormMode, record: true)
        return (logits, tape!)
    }

    private mutating func run(_ images: Tensor, mode: Mode, record: Bool) -> (logits: Tensor, tape: ForwardTape?) {
        var (x, stemTape) = stem.forward(images, mode: mode, record: record)
        var stageTapes: [GhostStageUnit.Tape] = []
        for index in stages.indices {
            let (output, tape) = stages[index].forward(x, mode: mode, record: record)
            x = output
            if let tape { stageTapes.append(tape) }
        }
        let (logits, classifierTape) = classifier.forward(x)
        guard record else { return (logits, nil) }
        return (logits, ForwardTape(stem: stemTape!, stages: stageTapes, classifier: classifierTape))
    }

    /// Checks the image batch's shape and, in training, that every batch norm sees more than one
    /// value per channel.
    private func checkInput(_ images: Tensor, mode: Mode) throws(GhostNetModelError) {
        let shape = images.shape
        guard shape.count == 4, shape[0] >= 1, shape[1] >= 1, shape[2] >= 1,
            shape[3] == GhostNetStructure.imageChannels
        else {
            throw GhostNetModelError(
                "images must be NHWC [N, H, W, \(GhostNetStructure.imageChannels)] with N, H, W ≥ 1, got \(shape)")
        }
        guard mode == .training else { return }
        if let (name, shape) = smallestNormalization(batch: shape[0], height: shape[1], width: shape[2]),
            shape.dropLast().reduce(1, *) <= 1
        {
            throw GhostNetModelError(
                "expected more than 1 value per channel when training: with batch size \(images.shape[0]) "
                    + "and \(images.shape[1])×\(images.shape[2]) images, batch norm \(name) normalises \(shape) "
                    + "(one value per channel); use a batch of at least 2 images or inference mode")
        }
    }

    /// The first batch norm (in forward order) with the fewest values per channel and its input
    /// shape, for images of `height`×`width`.
    private func smallestNormalization(batch: Int, height: Int, width: Int) -> (name: String, shape: [Int])? {
        var candidates: [(name: String, shape: [Int])] = []
        func sizes(_ transform: (Int) -> Int) -> (Int, Int) { (transform(height), transform(width)) }
        let (convolvedHeight, convolvedWidth) = sizes { structure.stem.conv1.outputSize(inputSize: $0) }
        candidates.append(
            (structure.stem.bn1.name, [batch, convolvedHeight, convolvedWidth, structure.stem.bn1.channels]))
        var (h, w) = sizes { structure.stem.outputSize(inputSize: $0) }
        for stage in structure.stages {
            candidates.append((stage.base.bn1.name, [batch, h, w, stage.base.bn1.channels]))
            (h, w) = (stage.outputSize(inputSize: h), stage.outputSize(inputSize: w))
            candidates.append((stage.base.bn2.name, [batch, h, w, stage.base.bn2.channels]))
            if let ghost = stage.ghost {
                candidates.append((ghost.merge.normalization.name, [batch, 1, 1, ghost.merge.normalization.channels]))
            }
        }
        return candidates.min { $0.shape.dropLast().reduce(1, *) < $1.shape.dropLast().reduce(1, *) }
    }
}

/// What a training-mode forward pass keeps for the backward pass: every layer's cache, by stage.
///
/// ``GhostNetModel/backward(_:gradLogits:gradientReady:)`` consumes it and releases each stage's
/// activations as soon as that stage has been differentiated.
package struct ForwardTape: Sendable {
    let stem: StemUnit.Tape
    var stages: [GhostStageUnit.Tape]
    let classifier: ClassifierUnit.Tape
}

/// A network input or setting the model cannot run.
package struct GhostNetModelError: Error, CustomStringConvertible, Sendable {
    package let description: String

    package init(_ description: String) { self.description = description }
}

/// The stem: `conv1` 7×7/2, `bn1` with ReLU fused, max-pool 3×3/2.
struct StemUnit: Sendable {
    var conv1: ConvolutionUnit
    var bn1: NormalizationUnit
    let pool: MaxPool2D

    struct Tape: Sendable {
        let conv1: Conv2D.Cache
        let bn1: BatchNorm2D.Cache
        let pool: MaxPool2D.Cache
    }

    init(_ spec: StemSpec, from source: UnitSource) {
        conv1 = ConvolutionUnit(spec.conv1, from: source)
        bn1 = NormalizationUnit(spec.bn1, fusingReLU: true, from: source)
        pool = MaxPool2D(
            kernelSize: StemSpec.poolKernelSize, stride: StemSpec.poolStride, padding: StemSpec.poolPadding)
    }

    /// The tape is nil when neither `record` nor training asks for one (inference fuses bn1 and
    /// its ReLU into conv1).
    mutating func forward(_ images: Tensor, mode: Mode, record: Bool) -> (output: Tensor, tape: Tape?) {
        guard mode == .training || record else {
            return (pool.forward(bn1.infer(convolving: images, with: conv1), mode: mode).output, nil)
        }
        let (activated, conv1Cache, bn1Cache) = bn1.forward(convolving: images, with: conv1, mode: mode)
        let (pooled, poolCache) = pool.forward(activated, mode: mode)
        return (pooled, Tape(conv1: conv1Cache, bn1: bn1Cache, pool: poolCache))
    }

    /// Emits bn1 and conv1; the image gradient only when `inputGradient` is true.
    func backward(_ gradOutput: Tensor, tape: consuming Tape, inputGradient: Bool, emit: GradientSink) -> Tensor? {
        let gradActivated = pool.backward(gradOutput, cache: tape.pool)
        let gradConvolved = bn1.backward(gradActivated, cache: tape.bn1, emit: emit)
        guard inputGradient else {
            conv1.backwardWithoutInputGradient(gradConvolved, cache: tape.conv1, emit: emit)
            return nil
        }
        return conv1.backward(gradConvolved, cache: tape.conv1, emit: emit)
    }

    mutating func visit(_ body: TensorVisitor) rethrows {
        try conv1.visit(body)
        try bn1.visit(body)
    }
}

/// Global average pool and `fc`: `[N, H, W, C]` → `[N, classes]`.
struct ClassifierUnit: Sendable {
    var fc: Linear
    let weightIndex: Int

    struct Tape: Sendable {
        let featureShape: [Int]
        let fc: Linear.Cache
    }

    init(_ spec: LinearSpec, from source: UnitSource) {
        fc = Linear(
            inputFeatures: spec.inputFeatures, outputFeatures: spec.outputFeatures,
            weight: source.parameters[spec.weight], bias: source.parameters[spec.bias])
        weightIndex = source.indices.parameter(spec.weight)
    }

    func forward(_ features: Tensor) -> (logits: Tensor, tape: Tape) {
        let pooled = globalAveragePool(features).reshaped(to: [features.shape[0], features.shape[3]])
        let (logits, cache) = fc.forward(pooled, mode: .inference)
        return (logits, Tape(featureShape: features.shape, fc: cache))
    }

    /// Emits `fc.bias` and `fc.weight`; returns the gradient of the features.
    func backward(_ gradLogits: Tensor, tape: Tape, emit: GradientSink) -> Tensor {
        let (gradPooled, gradients) = fc.backward(gradLogits, cache: tape.fc)
        emit(weightIndex + 1, gradients.bias)
        emit(weightIndex, gradients.weight)
        let shape = tape.featureShape
        return globalAveragePoolBackward(
            gradOutput: gradPooled.reshaped(to: [shape[0], 1, 1, shape[3]]), inputShape: shape)
    }

    mutating func visit(_ body: TensorVisitor) rethrows {
        try body(.parameter, weightIndex, &fc.parameters.weight)
        try body(.parameter, weightIndex + 1, &fc.parameters.bias)
    }
}
