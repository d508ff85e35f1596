// The network's module tree as data: the ghost branch, GhostX stage and stem specs, and `GhostNetStructure`,
// the single source of tensor names, shapes, order, parameter counts and multiply-accumulates.

/// The ghost path of a GhostX stage with `b > 2` blocks (Han et al., *GhostNets on Heterogeneous
/// Devices via Cheap Operations*, 2022): a thinner chain of bottlenecks produces the intrinsic
/// features, and a cheap 1×1 convolution of the base output, corrected by a "mix" of pooled
/// intermediate features, produces the ghost features.
///
/// With `p` planes, `cheap = ⌊p/2⌋` and `raw = p − cheap`; every tensor is NCHW.
package struct GhostBranchSpec: Sendable, Hashable {
    /// Planes of the intrinsic bottlenecks, `raw = p − ⌊p/2⌋`.
    package let rawPlanes: Int
    /// Planes of the ghost features, `⌊p/2⌋`.
    package let cheapPlanes: Int
    /// `layers.0`: 1×1 conv `4p → 4·raw` without batch norm (it replaces channel slicing).
    package let projection: ConvolutionSpec
    /// `layers.1…layers.(b−2)`: `Bottleneck(4·raw, raw)` without downsample.
    package let bottlenecks: [BottleneckSpec]
    /// `merge.1` and `merge.2` (`merge.0` is the global average pool, which has no state):
    /// 1×1 conv `(4p + (b−2)·4·raw) → 4·cheap` + BN, applied to `[N, C, 1, 1]`.
    package let merge: ConvolutionNormSpec
    /// `cheap.0` and `cheap.1`: 1×1 conv `4p → 4·cheap` + BN.
    package let cheap: ConvolutionNormSpec

    init(stageName: String, planes: Int, blocks: Int) {
        let expansion = BottleneckSpec.expansion
        cheapPlanes = planes / 2
        rawPlanes = planes - cheapPlanes
        projection = ConvolutionSpec(
            name: stageName + ".layers.0", inputChannels: expansion * planes,
            outputChannels: expansion * rawPlanes, kernelSize: 1)
        bottlenecks = (1...(blocks - 2)).map { [rawPlanes] index in
            BottleneckSpec(
                name: "\(stageName).layers.\(index)", inputChannels: expansion * rawPlanes, planes: rawPlanes)
        }
        merge = ConvolutionNormSpec(
            name: stageName + ".merge",
            inputChannels: expansion * planes + bottlenecks.count * expansion * rawPlanes,
            outputChannels: expansion * cheapPlanes, firstIndex: 1)
        cheap = ConvolutionNormSpec(
            name: stageName + ".cheap", inputChannels: expansion * planes, outputChannels: expansion * cheapPlanes)
    }

    /// The tensors PyTorch registers, in order (layers, merge, cheap).
    package var tensors: [TensorSpec] {
        projection.tensors + bottlenecks.flatMap(\.tensors) + merge.tensors + cheap.tensors
    }

    /// Multiply-accumulates for one image whose stage features are `size`×`size`.
    package func multiplyAccumulates(size: Int) -> Int {
        projection.multiplyAccumulates(inputSize: size)
            + bottlenecks.reduce(0) { $0 + $1.multiplyAccumulates(inputSize: size) }
            + merge.convolution.multiplyAccumulates(inputSize: 1)
            + cheap.convolution.multiplyAccumulates(inputSize: size)
    }
}

/// One GhostX stage, `layer1` … `layer4`: `[N, inputChannels, H, W]` → `[N, 4p, H/s, W/s]`.
///
/// Forward (NCHW, concatenation along channels):
/// ```
/// x0 = base(input)                                   // [N, 4p, H', W']
/// if ghost == nil: return end(x0)                    // b ≤ 2
/// x  = layers.0(x0); collected = [x0]               // projection output is not collected
/// for block in layers.1…: x = block(x); collected.append(x)
/// m  = merge.2(merge.1(globalAveragePool(concat(collected))))   // [N, 4·cheap, 1, 1]
/// c  = ReLU(cheap(x0) + m broadcast over H'×W')      // [N, 4·cheap, H', W']
/// return end(concat[x, c])                           // 4·raw + 4·cheap = 4p channels in
/// ```
package struct GhostStageSpec: Sendable, Hashable {
    /// `layer1` … `layer4`.
    package let name: String
    package let inputChannels: Int
    package let planes: Int
    package let stride: Int
    /// The stage's block count `b` (base + `b − 2` ghost bottlenecks + end).
    package let blocks: Int
    /// `Bottleneck(inputChannels, p, stride)` with the stage's `downsample`.
    package let base: BottleneckSpec
    /// The ghost path; `nil` when `b ≤ 2`, where the stage is `end(base(input))`.
    package let ghost: GhostBranchSpec?
    /// `Bottleneck(4p, p, 1)`.
    package let end: BottleneckSpec

    init(index: Int, inputChannels: Int, planes: Int, stride: Int, blocks: Int) {
        name = "layer\(index + 1)"
        self.inputChannels = inputChannels
        self.planes = planes
        self.stride = stride
        self.blocks = blocks
        base = BottleneckSpec(name: name + ".base", inputChannels: inputChannels, planes: planes, stride: stride)
        ghost = blocks > 2 ? GhostBranchSpec(stageName: name, planes: planes, blocks: blocks) : nil
        end = BottleneckSpec(name: name + ".end", inputChannels: base.outputChannels, planes: planes)
    }

    /// `4p`.
    package var outputChannels: Int { end.outputChannels }

    /// The tensors PyTorch registers, in order (base, layers, merge, cheap, end).
    package var tensors: [TensorSpec] { base.tensors + (ghost?.tensors ?? []) + end.tensors }

    /// The output size for an input of `inputSize`.
    package func outputSize(inputSize: Int) -> Int { base.outputSize(inputSize: inputSize) }

    /// Multiply-accumulates for one image of `inputSize`×`inputSize`.
    package func multiplyAccumulates(inputSize: Int) -> Int {
        let size = outputSize(inputSize: inputSize)
        return base.multiplyAccumulates(inputSize: inputSize) + (ghost?.multiplyAccumulates(size: size) ?? 0)
            + end.multiplyAccumulates(inputSize: size)
    }
}

/// The stem: `conv1` 7×7/2 pad 3 (3 → width), `bn1`, ReLU, max-pool 3×3/2 pad 1.
package struct StemSpec: Sendable, Hashable {
    package static let poolKernelSize = 3
    package static let poolStride = 2
    package static let poolPadding = 1

    package let conv1: ConvolutionSpec
    package let bn1: BatchNormSpec

    init(inputChannels: Int, width: Int) {
        conv1 = ConvolutionSpec(
            name: "conv1", inputChannels: inputChannels, outputChannels: width, kernelSize: 7, stride: 2)
        bn1 = BatchNormSpec(name: "bn1", channels: width)
    }

    /// The tensors PyTorch registers, in order.
    package var tensors: [TensorSpec] { conv1.tensors + bn1.tensors }

    /// The output size after the max-pool for an image of `inputSize`.
    package func outputSize(inputSize: Int) -> Int {
        slidingWindowOutputSize(
            inputSize: conv1.outputSize(inputSize: inputSize), kernelSize: Self.poolKernelSize,
            stride: Self.poolStride, padding: Self.poolPadding)
    }
}

/// The whole GhostNet-D network as data: stem, four GhostX stages, global average pool and `fc`.
///
/// This is the single source of the module tree: parameter names and shapes, their order (the
/// order of PyTorch's `state_dict()`), parameter counts and multiply-accumulates all derive from it.
/// The input is an RGB image batch, NCHW `[N, 3, imageSize, imageSize]`; the output is logits
/// `[N, classes]`.
package struct GhostNetStructure: Sendable, Hashable {
    /// Colour channels of the input image.
    package static let imageChannels = 3

    package let configuration: GhostNetConfiguration
    package let stem: StemSpec
    /// `layer1` … `layer4`.
    package let stages: [GhostStageSpec]
    /// `fc`: `4 · 8 · width` → `classes`.
    package let classifier: LinearSpec
    /// Every parameter and buffer, in `state_dict()` order.
    package let tensors: [TensorSpec]

    package init(configuration: GhostNetConfiguration) {
        self.configuration = configuration
        stem = StemSpec(inputChannels: Self.imageChannels, width: configuration.width)
        var stages: [GhostStageSpec] = []
        var channels = configuration.width
        for (index, blocks) in configuration.blocksPerStage.enumerated() {
            let stage = GhostStageSpec(
                index: index, inputChannels: channels, planes: configuration.width << index,
                stride: index == 0 ? 1 : 2, blocks: blocks)
            stages.append(stage)
            channels = stage.outputChannels
        }
        self.stages = stages
        classifier = LinearSpec(name: "fc", inputFeatures: channels, outputFeatures: configuration.classes)
        tensors = stem.tensors + stages.flatMap(\.tensors) + classifier.tensors
    }

    /// The parameters the optimizer updates (no running statistics), in `state_dict()` order.
    package var trainableTensors: [TensorSpec] { tensors.filter(\.isTrainable) }

    /// The number of trainable scalars (38,216,872 for ghostnet101).
    package var parameterCount: Int { tensors.trainableScalarCount }

    /// The forward pass's multiply-accumulates per image (convolutions and `fc`) at the
    /// configuration's image size (4,538,613,760 for ghostnet101 at 224).
    package var multiplyAccumulates: Int { summary.reduce(0) { $0 + $1.multiplyAccumulates } }

    /// Per-part output shapes, parameters and multiply-accumulates at the configuration's image
    /// size: `stem`, `layer1` … `layer4`, `fc` (which includes the global average pool).
    package var summary: [PartSummary] {
        var size = configuration.imageSize
        var parts: [PartSummary] = []
        size = stem.outputSize(inputSize: size)
        parts.append(
            PartSummary(
                name: "stem", outputShape: [stem.conv1.outputChannels, size, size], tensors: stem.tensors,
                multiplyAccumulates: stem.conv1.multiplyAccumulates(inputSize: configuration.imageSize)))
        for stage in stages {
            let macs = stage.multiplyAccumulates(inputSize: size)
            size = stage.outputSize(inputSize: size)
            parts.append(
                PartSummary(
                    name: stage.name, outputShape: [stage.outputChannels, size, size], tensors: stage.tensors,
                    multiplyAccumulates: macs))
        }
        parts.append(
            PartSummary(
                name: classifier.name, outputShape: [classifier.outputFeatures], tensors: classifier.tensors,
                multiplyAccumulates: classifier.multiplyAccumulates))
        return parts
    }
}

/// One row of ``GhostNetStructure/summary``.
package struct PartSummary: Sendable, Hashable {
    /// `stem`, `layer1` … `layer4` or `fc`.
    package let name: String
    /// The output of one image: `[C, H, W]` for feature maps, `[classes]` for `fc`.
    package let outputShape: [Int]
    /// Trainable scalars of the part.
    package let parameterCount: Int
    /// Multiply-accumulates of the part's convolutions / linear layer for one image.
    package let multiplyAccumulates: Int

    init(name: String, outputShape: [Int], tensors: [TensorSpec], multiplyAccumulates: Int) {
        self.name = name
        self.outputShape = outputShape
        self.parameterCount = tensors.trainableScalarCount
        self.multiplyAccumulates = multiplyAccumulates
    }
}
