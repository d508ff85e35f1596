// The units the model is assembled from (convolution, batch norm, convolution + batch norm, bottleneck)
// and the slot indices that tie their tensors to the model's flat order.

import Layers
import TensorEngine

// The executable building blocks of ``GhostNetModel``: Layers values built from the phase-1 specs,
// each tagged with the flat indices of its tensors (see ``TensorSlot``). Every unit
//
//   - `forward(_:mode:record:)` returns its output and, when `record` is true, a tape of what its
//     backward pass needs (otherwise the layers' caches die as soon as the next layer has run);
//   - `backward(_:tape:emit:)` consumes its tape, calls `emit(parameterIndex, gradient)` for each of
//     its parameters in decreasing index order as soon as the gradient is final, and returns the
//     input gradient;
//   - `visit(_:)` hands each of its tensors (parameters and running statistics) to a closure for
//     reading or in-place update.
//
// Activations are NHWC; convolution weights are OHWI inside, PyTorch OIHW at the boundary.

/// Receives one parameter gradient, by parameter index, in internal (OHWI) layout; nil for a frozen
/// parameter whose gradient was not computed (the model announces zeros for it).
typealias GradientSink = (_ parameterIndex: Int, _ gradient: Tensor?) -> Void

/// Which flat list a visited tensor belongs to.
enum ModelTensorKind: Sendable {
    /// A trainable parameter, indexed in ``GhostNetModel/parameterSlots``.
    case parameter
    /// A batch-norm running statistic, indexed in ``GhostNetModel/bufferSlots``.
    case buffer
}

/// Receives each tensor of a unit with its kind and index in that kind's list.
typealias TensorVisitor = (_ kind: ModelTensorKind, _ index: Int, _ tensor: inout Tensor) throws -> Void

/// The flat indices of a structure's tensors: parameters and buffers each numbered in
/// `state_dict()` order.
struct SlotIndices {
    private let parameters: [String: Int]
    private let buffers: [String: Int]

    init(structure: GhostNetStructure) {
        let trainable = structure.tensors.filter(\.isTrainable)
        let running = structure.tensors.filter { !$0.isTrainable }
        parameters = Dictionary(uniqueKeysWithValues: trainable.enumerated().map { ($1.name, $0) })
        buffers = Dictionary(uniqueKeysWithValues: running.enumerated().map { ($1.name, $0) })
    }

    func parameter(_ spec: TensorSpec) -> Int { parameters[spec.name]! }
    func buffer(_ spec: TensorSpec) -> Int { buffers[spec.name]! }
}

/// The tensors of a unit come from ``ModelParameters`` (PyTorch layout) by spec.
struct UnitSource {
    let parameters: ModelParameters
    let indices: SlotIndices
}

/// A bias-free convolution and the index of its weight.
struct ConvolutionUnit: Sendable {
    var layer: Conv2D
    let weightIndex: Int
    /// A frozen weight gets no gradient: backward computes the input gradient alone.
    var isFrozen = false

    init(_ spec: ConvolutionSpec, from source: UnitSource) {
        layer = Conv2D(
            inputChannels: spec.inputChannels, outputChannels: spec.outputChannels, kernelSize: spec.kernelSize,
            stride: spec.stride, padding: spec.padding, pytorchWeight: source.parameters[spec.weight])
        weightIndex = source.indices.parameter(spec.weight)
    }

    func forward(_ input: Tensor) -> (output: Tensor, cache: Conv2D.Cache) {
        layer.forward(input, mode: .training)
    }

    func backward(_ gradOutput: Tensor, cache: Conv2D.Cache, emit: GradientSink) -> Tensor {
        guard !isFrozen else {
            emit(weightIndex, nil)
            return layer.inputGradient(gradOutput, cache: cache)
        }
        let (gradInput, gradients) = layer.backward(gradOutput, cache: cache)
        emit(weightIndex, gradients.weight)
        return gradInput
    }

    /// Adds the input gradient to `inputGradient` (a shortcut's gradient) and emits the weight's.
    func backward(
        _ gradOutput: Tensor, cache: Conv2D.Cache, accumulatingInto inputGradient: inout Tensor, emit: GradientSink
    ) {
        guard !isFrozen else {
            emit(weightIndex, nil)
            inputGradient = layer.inputGradient(gradOutput, cache: cache, accumulatingInto: consume inputGradient)
            return
        }
        emit(
            weightIndex, layer.backward(gradOutput, cache: cache, accumulatingInputGradientInto: &inputGradient).weight)
    }

    /// The weight gradient alone, for the stem, whose input (the image) needs no gradient.
    func backwardWithoutInputGradient(_ gradOutput: Tensor, cache: Conv2D.Cache, emit: GradientSink) {
        guard !isFrozen else { return emit(weightIndex, nil) }
        emit(weightIndex, layer.parameterGradients(gradOutput, cache: cache).weight)
    }

    mutating func visit(_ body: TensorVisitor) rethrows {
        try body(.parameter, weightIndex, &layer.parameters.weight)
    }
}

/// A batch norm and the indices of its weight, bias and running statistics.
struct NormalizationUnit: Sendable {
    var layer: BatchNorm2D
    /// γ; β is `weightIndex + 1`.
    let weightIndex: Int
    /// The running mean; the running variance is `runningMeanIndex + 1`.
    let runningMeanIndex: Int
    /// The PyTorch module path, e.g. `layer3.merge.2`, for error messages.
    let name: String
    /// Whether ReLU follows, fused into the same pass.
    let fusesReLU: Bool
    /// γ and β are both frozen: the layer normalises with its running statistics, which stay untouched.
    var isFrozen = false

    init(_ spec: BatchNormSpec, fusingReLU: Bool, from source: UnitSource) {
        let parameters = source.parameters
        layer = BatchNorm2D(
            channels: spec.channels,
            parameters: .init(weight: parameters[spec.weight], bias: parameters[spec.bias]),
            runningMean: parameters[spec.runningMean], runningVariance: parameters[spec.runningVariance])
        weightIndex = source.indices.parameter(spec.weight)
        runningMeanIndex = source.indices.buffer(spec.runningMean)
        name = spec.name
        fusesReLU = fusingReLU
    }

    /// `convolution`, then this batch norm; in training the batch statistics are gathered while
    /// the convolution's output is in cache.
    /// With `residual`, the output is `ReLU(normalised + residual)`, whose ReLU the caller
    /// differentiates (see ``BatchNorm2D/forward(_:mode:fusingReLU:batchStatistics:addingThenClamping:)``).
    mutating func forward(
        convolving input: Tensor, with convolution: ConvolutionUnit, mode: Mode,
        addingThenClamping residual: Tensor? = nil
    ) -> (output: Tensor, convolution: Conv2D.Cache, normalization: BatchNorm2D.Cache) {
        let mode = isFrozen ? .inference : mode
        let convolved: Tensor
        let convolutionCache: Conv2D.Cache
        var moments: (mean: Tensor, variance: Tensor)?
        if mode == .training {
            (convolved, convolutionCache, moments) = convolution.layer.forwardWithChannelMoments(input)
        } else {
            (convolved, convolutionCache) = convolution.forward(input)
        }
        let (output, cache) = layer.forward(
            convolved, mode: mode, fusingReLU: fusesReLU, batchStatistics: moments, addingThenClamping: residual)
        return (output, convolutionCache, cache)
    }

    /// Inference without a tape: `convolution`, this batch norm with its running statistics, then
    /// (when given) `residual` added and ReLU, finished block by block while the output is in cache.
    func infer(convolving input: Tensor, with convolution: ConvolutionUnit, addingThenClamping residual: Tensor? = nil)
        -> Tensor
    {
        convolution.layer.forward(
            input, normalizedBy: layer, residual: residual, clampAtZero: fusesReLU || residual != nil)
    }

    func backward(_ gradOutput: Tensor, cache: BatchNorm2D.Cache, emit: GradientSink) -> Tensor {
        let (gradInput, gradients) = layer.backward(gradOutput, cache: cache)
        emit(weightIndex + 1, gradients.bias)
        emit(weightIndex, gradients.weight)
        return gradInput
    }

    mutating func visit(_ body: TensorVisitor) rethrows {
        try body(.parameter, weightIndex, &layer.parameters.weight)
        try body(.parameter, weightIndex + 1, &layer.parameters.bias)
        try body(.buffer, runningMeanIndex, &layer.runningMean)
        try body(.buffer, runningMeanIndex + 1, &layer.runningVariance)
    }
}

/// A 1×1 convolution followed by batch norm without ReLU: a ResNet `downsample`, the ghost
/// branch's `cheap` and the convolution and batch norm of its `merge`.
struct ConvolutionNormUnit: Sendable {
    var convolution: ConvolutionUnit
    var normalization: NormalizationUnit

    struct Tape: Sendable {
        let convolution: Conv2D.Cache
        let normalization: BatchNorm2D.Cache
    }

    init(_ spec: ConvolutionNormSpec, from source: UnitSource) {
        convolution = ConvolutionUnit(spec.convolution, from: source)
        normalization = NormalizationUnit(spec.normalization, fusingReLU: false, from: source)
    }

    /// The tape is nil when neither `record` nor training asks for one: inference then fuses the
    /// batch norm into the convolution.
    mutating func forward(_ input: Tensor, mode: Mode, record: Bool) -> (output: Tensor, tape: Tape?) {
        guard mode == .training || record else { return (infer(input), nil) }
        let (output, convolutionCache, normalizationCache) = normalization.forward(
            convolving: input, with: convolution, mode: mode)
        return (output, Tape(convolution: convolutionCache, normalization: normalizationCache))
    }

    /// Inference without a tape, the batch norm applied as the convolution's output is produced.
    func infer(_ input: Tensor) -> Tensor {
        normalization.infer(convolving: input, with: convolution)
    }

    func backward(_ gradOutput: Tensor, tape: consuming Tape, emit: GradientSink) -> Tensor {
        let gradConvolved = normalization.backward(gradOutput, cache: tape.normalization, emit: emit)
        return convolution.backward(gradConvolved, cache: tape.convolution, emit: emit)
    }

    mutating func visit(_ body: TensorVisitor) rethrows {
        try convolution.visit(body)
        try normalization.visit(body)
    }
}

/// The ResNet bottleneck (see ``BottleneckSpec``):
/// `ReLU(bn3(conv3(ReLU(bn2(conv2(ReLU(bn1(conv1(x)))))))) + shortcut(x))`.
struct BottleneckUnit: Sendable {
    var conv1: ConvolutionUnit
    var bn1: NormalizationUnit
    var conv2: ConvolutionUnit
    var bn2: NormalizationUnit
    var conv3: ConvolutionUnit
    var bn3: NormalizationUnit
    var downsample: ConvolutionNormUnit?

    struct Tape: Sendable {
        let conv1: Conv2D.Cache
        let bn1: BatchNorm2D.Cache
        let conv2: Conv2D.Cache
        let bn2: BatchNorm2D.Cache
        let conv3: Conv2D.Cache
        let bn3: BatchNorm2D.Cache
        let downsample: ConvolutionNormUnit.Tape?
        /// The block's output, whose sign masks the final ReLU's gradient.
        let output: Tensor
    }

    init(_ spec: BottleneckSpec, from source: UnitSource) {
        conv1 = ConvolutionUnit(spec.conv1, from: source)
        bn1 = NormalizationUnit(spec.bn1, fusingReLU: true, from: source)
        conv2 = ConvolutionUnit(spec.conv2, from: source)
        bn2 = NormalizationUnit(spec.bn2, fusingReLU: true, from: source)
        conv3 = ConvolutionUnit(spec.conv3, from: source)
        bn3 = NormalizationUnit(spec.bn3, fusingReLU: false, from: source)
        downsample = spec.downsample.map { ConvolutionNormUnit($0, from: source) }
    }

    /// `[N, H, W, inputChannels]` → `[N, H/stride, W/stride, 4·planes]`.
    mutating func forward(_ input: Tensor, mode: Mode, record: Bool) -> (output: Tensor, tape: Tape?) {
        guard mode == .training || record else { return (infer(input), nil) }
        let (a1, conv1Cache, bn1Cache) = bn1.forward(convolving: input, with: conv1, mode: mode)
        let (a2, conv2Cache, bn2Cache) = bn2.forward(convolving: a1, with: conv2, mode: mode)
        var shortcut = input
        var downsampleTape: ConvolutionNormUnit.Tape?
        if downsample != nil { (shortcut, downsampleTape) = downsample!.forward(input, mode: mode, record: record) }
        // ReLU(bn3 + shortcut) in bn3's pass.
        let (output, conv3Cache, bn3Cache) = bn3.forward(
            convolving: a2, with: conv3, mode: mode, addingThenClamping: shortcut)
        guard record else { return (output, nil) }
        return (
            output,
            Tape(
                conv1: conv1Cache, bn1: bn1Cache, conv2: conv2Cache, bn2: bn2Cache, conv3: conv3Cache,
                bn3: bn3Cache, downsample: downsampleTape, output: output)
        )
    }

    /// Inference without a tape: each batch norm, ReLU and finally the shortcut are applied to a
    /// convolution's output block by block as it is produced.
    private func infer(_ input: Tensor) -> Tensor {
        let a1 = bn1.infer(convolving: input, with: conv1)
        let a2 = bn2.infer(convolving: a1, with: conv2)
        let shortcut = downsample?.infer(input) ?? input
        return bn3.infer(convolving: a2, with: conv3, addingThenClamping: shortcut)
    }

    /// The input gradient; emits downsample, bn3, conv3, bn2, conv2, bn1, conv1 (decreasing index).
    func backward(_ gradOutput: Tensor, tape: consuming Tape, emit: GradientSink) -> Tensor {
        let gradSum = reluBackward(gradOutput: gradOutput, output: tape.output)
        let downsampleGradient = downsample.map { $0.backward(gradSum, tape: tape.downsample!, emit: emit) }
        var gradient = bn3.backward(gradSum, cache: tape.bn3, emit: emit)
        gradient = conv3.backward(gradient, cache: tape.conv3, emit: emit)
        gradient = bn2.backward(gradient, cache: tape.bn2, emit: emit)
        gradient = conv2.backward(gradient, cache: tape.conv2, emit: emit)
        gradient = bn1.backward(gradient, cache: tape.bn1, emit: emit)
        // conv1's input gradient is added straight into the shortcut's.
        var gradInput: Tensor
        if let downsampleGradient { gradInput = downsampleGradient } else { gradInput = consume gradSum }
        conv1.backward(gradient, cache: tape.conv1, accumulatingInto: &gradInput, emit: emit)
        return gradInput
    }

    mutating func visit(_ body: TensorVisitor) rethrows {
        try conv1.visit(body)
        try bn1.visit(body)
        try conv2.visit(body)
        try bn2.visit(body)
        try conv3.visit(body)
        try bn3.visit(body)
        try downsample?.visit(body)
    }
}
