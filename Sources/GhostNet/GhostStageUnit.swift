// The executable GhostX stage: the ghost branch (projection, thin bottlenecks, merge of pooled features,
// cheap convolution) between the stage's base and end bottlenecks, forward and backward.

import Layers
import TensorEngine

/// The ghost path of a stage with `b > 2` blocks (see ``GhostBranchSpec``).
struct GhostBranchUnit: Sendable {
    /// `layers.0`: 1×1 conv `4p → 4·raw`, no batch norm.
    var projection: ConvolutionUnit
    /// `layers.1…`.
    var bottlenecks: [BottleneckUnit]
    /// `merge.1`, `merge.2` on the pooled features.
    var merge: ConvolutionNormUnit
    /// `cheap.0`, `cheap.1`.
    var cheap: ConvolutionNormUnit

    struct Tape: Sendable {
        let projection: Conv2D.Cache
        var bottlenecks: [BottleneckUnit.Tape]
        /// The channel counts of the pooled pieces: `x0`, then each bottleneck output.
        let pooledChannels: [Int]
        let merge: ConvolutionNormUnit.Tape
        let cheap: ConvolutionNormUnit.Tape
        /// `c = ReLU(cheap(x0) + m)`, whose sign masks the ReLU's gradient.
        let ghost: Tensor
    }

    init(_ spec: GhostBranchSpec, from source: UnitSource) {
        projection = ConvolutionUnit(spec.projection, from: source)
        bottlenecks = spec.bottlenecks.map { BottleneckUnit($0, from: source) }
        merge = ConvolutionNormUnit(spec.merge, from: source)
        cheap = ConvolutionNormUnit(spec.cheap, from: source)
    }

    /// `x0` `[N, H, W, 4p]` → `concat[x, c]` `[N, H, W, 4·raw + 4·cheap]`, the input of `end`.
    ///
    /// The merge branch pools each collected piece separately and concatenates the `[N, 1, 1, C]`
    /// means: the average pool is linear, so this equals pooling the concatenation without
    /// materialising it.
    mutating func forward(_ x0: Tensor, mode: Mode, record: Bool) -> (output: Tensor, tape: Tape?) {
        var (x, projectionCache) = projection.forward(x0)
        var pooled = [globalAveragePool(x0)]
        var bottleneckTapes: [BottleneckUnit.Tape] = []
        for index in bottlenecks.indices {
            let (output, tape) = bottlenecks[index].forward(x, mode: mode, record: record)
            x = output
            pooled.append(globalAveragePool(x))
            if let tape { bottleneckTapes.append(tape) }
        }
        let (m, mergeTape) = merge.forward(concatenateChannels(pooled), mode: mode, record: record)
        var (preActivation, cheapTape) = cheap.forward(x0, mode: mode, record: record)
        broadcastAddInPlace(&preActivation, m)
        let ghost = relu(preActivation)
        let output = concatenateChannels([x, ghost])
        guard record else { return (output, nil) }
        return (
            output,
            Tape(
                projection: projectionCache, bottlenecks: bottleneckTapes, pooledChannels: pooled.map { $0.shape[3] },
                merge: mergeTape!, cheap: cheapTape!, ghost: ghost)
        )
    }

    /// The gradient with respect to `x0`; emits cheap, merge, then `layers.(b−2)` … `layers.0`
    /// (decreasing index).
    func backward(_ gradOutput: Tensor, tape: consuming Tape, emit: GradientSink) -> Tensor {
        let ghostChannels = tape.ghost.shape[3]
        let split = splitChannels(gradOutput, sizes: [gradOutput.shape[3] - ghostChannels, ghostChannels])
        let gradPreActivation = reluBackward(gradOutput: split[1], output: tape.ghost)
        // c = ReLU(cheap(x0) + m broadcast): m's gradient sums over the pixels.
        var gradX0 = cheap.backward(gradPreActivation, tape: tape.cheap, emit: emit)
        let gradPooled = merge.backward(sumOverPixels(gradPreActivation), tape: tape.merge, emit: emit)
        // Each pooled piece spreads its gradient evenly over the pixels of what was pooled.
        let pixels = gradOutput.shape[1] * gradOutput.shape[2]
        let gradPieces = splitChannels(scaled(gradPooled, by: 1 / Float(pixels)), sizes: tape.pooledChannels)
        var gradient = split[0]
        for index in bottlenecks.indices.reversed() {
            broadcastAddInPlace(&gradient, gradPieces[index + 1])
            let blockTape = tape.bottlenecks.removeLast()
            gradient = bottlenecks[index].backward(gradient, tape: blockTape, emit: emit)
        }
        gradient = projection.backward(gradient, cache: tape.projection, emit: emit)
        addInPlace(&gradX0, gradient)
        broadcastAddInPlace(&gradX0, gradPieces[0])
        return gradX0
    }

    mutating func visit(_ body: TensorVisitor) rethrows {
        try projection.visit(body)
        for index in bottlenecks.indices { try bottlenecks[index].visit(body) }
        try merge.visit(body)
        try cheap.visit(body)
    }
}

/// One GhostX stage (see ``GhostStageSpec``): `end(base(input))`, with the ghost path between
/// them when `b > 2`.
struct GhostStageUnit: Sendable {
    var base: BottleneckUnit
    var ghost: GhostBranchUnit?
    var end: BottleneckUnit

    struct Tape: Sendable {
        let base: BottleneckUnit.Tape
        let ghost: GhostBranchUnit.Tape?
        let end: BottleneckUnit.Tape
    }

    init(_ spec: GhostStageSpec, from source: UnitSource) {
        base = BottleneckUnit(spec.base, from: source)
        ghost = spec.ghost.map { GhostBranchUnit($0, from: source) }
        end = BottleneckUnit(spec.end, from: source)
    }

    /// `[N, H, W, inputChannels]` → `[N, H/stride, W/stride, 4p]`.
    mutating func forward(_ input: Tensor, mode: Mode, record: Bool) -> (output: Tensor, tape: Tape?) {
        let (x0, baseTape) = base.forward(input, mode: mode, record: record)
        var endInput = x0
        var ghostTape: GhostBranchUnit.Tape?
        if ghost != nil {
            (endInput, ghostTape) = ghost!.forward(x0, mode: mode, record: record)
        }
        let (output, endTape) = end.forward(endInput, mode: mode, record: record)
        guard record, let baseTape, let endTape else { return (output, nil) }
        return (output, Tape(base: baseTape, ghost: ghostTape, end: endTape))
    }

    /// The input gradient; emits end, the ghost path, then base (decreasing index).
    func backward(_ gradOutput: Tensor, tape: consuming Tape, emit: GradientSink) -> Tensor {
        var gradient = end.backward(gradOutput, tape: tape.end, emit: emit)
        if let ghost { gradient = ghost.backward(gradient, tape: tape.ghost!, emit: emit) }
        return base.backward(gradient, tape: tape.base, emit: emit)
    }

    mutating func visit(_ body: TensorVisitor) rethrows {
        try base.visit(body)
        try ghost?.visit(body)
        try end.visit(body)
    }
}

/// `tensor · factor`, elementwise.
private func scaled(_ tensor: Tensor, by factor: Float) -> Tensor {
    var result = tensor
    result.withUnsafeMutableBufferPointer { values in
        for index in values.indices { values[index] *= factor }
    }
    return result
}
