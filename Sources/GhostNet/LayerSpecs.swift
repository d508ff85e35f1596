// The building blocks of the network as data: each spec knows its PyTorch module path, its
// hyperparameters and the tensors (parameters and buffers) PyTorch would register for it, in
// registration order. Compute is attached in phase 2 by building a Layers value from each spec.

/// One tensor of the model's state: a trainable parameter or a batch-norm running statistic.
package struct TensorSpec: Sendable, Hashable {
    /// How a fresh model fills the tensor.
    package enum Initialization: Sendable, Hashable {
        /// Independent normal samples with mean 0 and this standard deviation.
        case normal(standardDeviation: Double)
        /// Independent samples uniform in `[-bound, bound)`.
        case uniform(bound: Double)
        /// Every element equals the value.
        case constant(Float)
    }

    /// The PyTorch `state_dict` key, e.g. `layer3.merge.1.weight`.
    package let name: String
    /// The PyTorch shape: conv weight `[out, in, kh, kw]`, linear weight `[out, in]`, vectors `[C]`.
    package let shape: [Int]
    /// `true` for parameters the optimizer updates, `false` for running statistics (buffers).
    package let isTrainable: Bool
    /// How ``ModelParameters/initialized(for:seed:)`` fills it.
    package let initialization: Initialization

    /// The number of elements, the product of `shape`.
    package var elementCount: Int { shape.reduce(1, *) }
}

extension Sequence<TensorSpec> {
    /// The number of scalars in the trainable tensors.
    package var trainableScalarCount: Int { filter(\.isTrainable).reduce(0) { $0 + $1.elementCount } }
}

/// The output size of a window of `kernelSize` sliding with `stride` over `inputSize` positions
/// padded by `padding` on both sides (floor mode, as PyTorch).
func slidingWindowOutputSize(inputSize: Int, kernelSize: Int, stride: Int, padding: Int) -> Int {
    (inputSize + 2 * padding - kernelSize) / stride + 1
}

/// A square 2-D convolution without bias, as `torch.nn.Conv2d(bias=False)`, padded by
/// `kernelSize / 2` so that stride 1 keeps the spatial size.
package struct ConvolutionSpec: Sendable, Hashable {
    /// The module path, e.g. `layer1.base.conv2`.
    package let name: String
    package let inputChannels: Int
    package let outputChannels: Int
    package let kernelSize: Int
    package let stride: Int
    package let padding: Int

    init(name: String, inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1) {
        self.name = name
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = kernelSize / 2
    }

    /// `<name>.weight`, shape `[out, in, kh, kw]`, Kaiming normal with fan-out and ReLU gain:
    /// standard deviation `√(2 / (out·kh·kw))`.
    package var weight: TensorSpec {
        let fanOut = outputChannels * kernelSize * kernelSize
        return TensorSpec(
            name: name + ".weight", shape: [outputChannels, inputChannels, kernelSize, kernelSize],
            isTrainable: true, initialization: .normal(standardDeviation: (2 / Double(fanOut)).squareRoot()))
    }

    /// The tensors PyTorch registers for the module, in order.
    package var tensors: [TensorSpec] { [weight] }

    /// The output height (= width) for a square input of `inputSize`.
    package func outputSize(inputSize: Int) -> Int {
        slidingWindowOutputSize(inputSize: inputSize, kernelSize: kernelSize, stride: stride, padding: padding)
    }

    /// Multiply-accumulates for one image of `inputSize`×`inputSize`.
    package func multiplyAccumulates(inputSize: Int) -> Int {
        let outputSize = outputSize(inputSize: inputSize)
        return outputChannels * inputChannels * kernelSize * kernelSize * outputSize * outputSize
    }
}

/// Batch normalisation over channels, as `torch.nn.BatchNorm2d` (ε = 1e-5, momentum 0.1).
///
/// PyTorch also registers an integer `num_batches_tracked` buffer; it only matters with
/// `momentum=None`, so it is not part of the model state here (see ``ModelParameters``).
package struct BatchNormSpec: Sendable, Hashable {
    /// The module path, e.g. `layer3.cheap.1`.
    package let name: String
    package let channels: Int

    /// `<name>.weight` (γ), shape `[C]`, initialised to 1.
    package var weight: TensorSpec { vector("weight", trainable: true, 1) }
    /// `<name>.bias` (β), shape `[C]`, initialised to 0.
    package var bias: TensorSpec { vector("bias", trainable: true, 0) }
    /// `<name>.running_mean`, shape `[C]`, a buffer initialised to 0.
    package var runningMean: TensorSpec { vector("running_mean", trainable: false, 0) }
    /// `<name>.running_var`, shape `[C]`, a buffer initialised to 1 (the unbiased batch variance
    /// is what PyTorch accumulates into it).
    package var runningVariance: TensorSpec { vector("running_var", trainable: false, 1) }

    /// The tensors PyTorch registers for the module, in order.
    package var tensors: [TensorSpec] { [weight, bias, runningMean, runningVariance] }

    private func vector(_ suffix: String, trainable: Bool, _ value: Float) -> TensorSpec {
        TensorSpec(
            name: "\(name).\(suffix)", shape: [channels], isTrainable: trainable, initialization: .constant(value))
    }
}

/// A fully connected layer with bias, as `torch.nn.Linear`: `y = x·Wᵀ + b`.
package struct LinearSpec: Sendable, Hashable {
    /// The module path, `fc`.
    package let name: String
    package let inputFeatures: Int
    package let outputFeatures: Int

    /// `<name>.weight`, shape `[out, in]`, uniform in ±1/√in.
    package var weight: TensorSpec {
        TensorSpec(
            name: name + ".weight", shape: [outputFeatures, inputFeatures], isTrainable: true,
            initialization: .uniform(bound: initializationBound))
    }
    /// `<name>.bias`, shape `[out]`, uniform in ±1/√in.
    package var bias: TensorSpec {
        TensorSpec(
            name: name + ".bias", shape: [outputFeatures], isTrainable: true,
            initialization: .uniform(bound: initializationBound))
    }

    /// The tensors PyTorch registers for the module, in order.
    package var tensors: [TensorSpec] { [weight, bias] }

    /// Multiply-accumulates for one sample.
    package var multiplyAccumulates: Int { inputFeatures * outputFeatures }

    private var initializationBound: Double { 1 / Double(inputFeatures).squareRoot() }
}

/// A convolution followed by batch norm, as `nn.Sequential(conv, bn)`: the ResNet `downsample`
/// (`<name>.0`, `<name>.1`) and the ghost branch's `cheap`.
package struct ConvolutionNormSpec: Sendable, Hashable {
    package let convolution: ConvolutionSpec
    package let normalization: BatchNormSpec

    init(name: String, inputChannels: Int, outputChannels: Int, stride: Int = 1, firstIndex: Int = 0) {
        convolution = ConvolutionSpec(
            name: "\(name).\(firstIndex)", inputChannels: inputChannels, outputChannels: outputChannels,
            kernelSize: 1, stride: stride)
        normalization = BatchNormSpec(name: "\(name).\(firstIndex + 1)", channels: outputChannels)
    }

    /// The tensors PyTorch registers, in order.
    package var tensors: [TensorSpec] { convolution.tensors + normalization.tensors }
}

/// The ResNet bottleneck block (He et al., *Deep Residual Learning for Image Recognition*, 2016),
/// as torchvision's `Bottleneck` with the stride on the 3×3 convolution.
///
/// Forward, NCHW `[N, inputChannels, H, W]` → `[N, 4·planes, H/stride, W/stride]`:
/// `y = ReLU(bn3(conv3(ReLU(bn2(conv2(ReLU(bn1(conv1(x)))))))) + shortcut(x))`, where `shortcut` is
/// `downsample` (1×1/stride conv + BN) when present and the identity otherwise.
package struct BottleneckSpec: Sendable, Hashable {
    /// The channel expansion of `conv3`.
    package static let expansion = 4

    /// The module path, e.g. `layer3.layers.5`.
    package let name: String
    package let inputChannels: Int
    package let planes: Int
    package let stride: Int
    /// 1×1, `inputChannels` → `planes`.
    package let conv1: ConvolutionSpec
    package let bn1: BatchNormSpec
    /// 3×3/stride, pad 1, `planes` → `planes`.
    package let conv2: ConvolutionSpec
    package let bn2: BatchNormSpec
    /// 1×1, `planes` → `4·planes`.
    package let conv3: ConvolutionSpec
    package let bn3: BatchNormSpec
    /// 1×1/stride `inputChannels` → `4·planes` + BN; present when `stride ≠ 1` or
    /// `inputChannels ≠ 4·planes`.
    package let downsample: ConvolutionNormSpec?

    init(name: String, inputChannels: Int, planes: Int, stride: Int = 1) {
        let outputChannels = Self.expansion * planes
        self.name = name
        self.inputChannels = inputChannels
        self.planes = planes
        self.stride = stride
        conv1 = ConvolutionSpec(
            name: name + ".conv1", inputChannels: inputChannels, outputChannels: planes, kernelSize: 1)
        bn1 = BatchNormSpec(name: name + ".bn1", channels: planes)
        conv2 = ConvolutionSpec(
            name: name + ".conv2", inputChannels: planes, outputChannels: planes, kernelSize: 3, stride: stride)
        bn2 = BatchNormSpec(name: name + ".bn2", channels: planes)
        conv3 = ConvolutionSpec(
            name: name + ".conv3", inputChannels: planes, outputChannels: outputChannels, kernelSize: 1)
        bn3 = BatchNormSpec(name: name + ".bn3", channels: outputChannels)
        downsample =
            stride != 1 || inputChannels != outputChannels
            ? ConvolutionNormSpec(
                name: name + ".downsample", inputChannels: inputChannels, outputChannels: outputChannels, stride: stride
            )
            : nil
    }

    /// `4·planes`.
    package var outputChannels: Int { Self.expansion * planes }

    /// The tensors PyTorch registers, in order (conv1, bn1, conv2, bn2, conv3, bn3, downsample).
    package var tensors: [TensorSpec] {
        conv1.tensors + bn1.tensors + conv2.tensors + bn2.tensors + conv3.tensors + bn3.tensors
            + (downsample?.tensors ?? [])
    }

    /// The output size for an input of `inputSize`.
    package func outputSize(inputSize: Int) -> Int { conv2.outputSize(inputSize: inputSize) }

    /// Multiply-accumulates of all convolutions for one image of `inputSize`×`inputSize`.
    package func multiplyAccumulates(inputSize: Int) -> Int {
        let innerSize = conv2.outputSize(inputSize: inputSize)
        return conv1.multiplyAccumulates(inputSize: inputSize) + conv2.multiplyAccumulates(inputSize: inputSize)
            + conv3.multiplyAccumulates(inputSize: innerSize)
            + (downsample?.convolution.multiplyAccumulates(inputSize: inputSize) ?? 0)
    }
}
