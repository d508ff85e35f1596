// Batch norm folded into the convolutions for inference: each convolution of the network with its
// folded OIHW weight and bias, in module order, and the safetensors file of those weights.

import Checkpoints
import GhostNet
import TensorEngine

/// One convolution of the inference network: the weight OIHW `[out, in, kh, kw]` with the following
/// batch norm (if any) folded in, and the bias that folding produces.
struct FoldedConvolution {
    let spec: ConvolutionSpec
    /// `[out, in, kh, kw]`, ONNX's and PyTorch's layout.
    let weight: Tensor
    /// `[out]`; `nil` for a convolution without batch norm (the ghost branch's projection).
    let bias: Tensor?

    /// PyTorch's batch-norm ε (``BatchNormSpec``).
    static let epsilon = 1e-5

    /// `W' = W · γ/√(σ² + ε)` per output channel and `b' = β − μ · γ/√(σ² + ε)`, in double precision.
    init(_ spec: ConvolutionSpec, normalizedBy normalization: BatchNormSpec?, parameters: ModelParameters) {
        self.spec = spec
        let weight = parameters[spec.weight]
        guard let normalization else {
            self.weight = weight
            bias = nil
            return
        }
        let gamma = parameters[normalization.weight].scalars
        let beta = parameters[normalization.bias].scalars
        let mean = parameters[normalization.runningMean].scalars
        let variance = parameters[normalization.runningVariance].scalars
        let scales = gamma.indices.map { Double(gamma[$0]) / (Double(variance[$0]) + Self.epsilon).squareRoot() }
        let perOutput = spec.inputChannels * spec.kernelSize * spec.kernelSize
        let scalars = weight.scalars
        self.weight = Tensor(shape: weight.shape) { values in
            for index in values.indices { values[index] = Float(Double(scalars[index]) * scales[index / perOutput]) }
        }
        bias = Tensor(shape: [spec.outputChannels]) { values in
            for index in values.indices {
                values[index] = Float(Double(beta[index]) - Double(mean[index]) * scales[index])
            }
        }
    }
}

/// The inference weights of a model: every convolution folded with its batch norm, and `fc`.
package struct InferenceWeights {
    package let structure: GhostNetStructure
    let parameters: ModelParameters

    package init(_ parameters: ModelParameters) {
        structure = parameters.structure
        self.parameters = parameters
    }

    /// Folds `convolution` with `normalization`.
    func fold(_ convolution: ConvolutionSpec, _ normalization: BatchNormSpec?) -> FoldedConvolution {
        FoldedConvolution(convolution, normalizedBy: normalization, parameters: parameters)
    }

    /// Every convolution of the network with its batch norm, in `state_dict()` order.
    var convolutions: [(ConvolutionSpec, BatchNormSpec?)] {
        func pair(_ unit: ConvolutionNormSpec) -> (ConvolutionSpec, BatchNormSpec?) {
            (unit.convolution, unit.normalization)
        }
        func bottleneck(_ block: BottleneckSpec) -> [(ConvolutionSpec, BatchNormSpec?)] {
            [(block.conv1, block.bn1), (block.conv2, block.bn2), (block.conv3, block.bn3)]
                + (block.downsample.map { [pair($0)] } ?? [])
        }
        var list: [(ConvolutionSpec, BatchNormSpec?)] = [(structure.stem.conv1, structure.stem.bn1)]
        for stage in structure.stages {
            list += bottleneck(stage.base)
            if let ghost = stage.ghost {
                list.append((ghost.projection, nil))
                list += ghost.bottlenecks.flatMap(bottleneck)
                list += [pair(ghost.merge), pair(ghost.cheap)]
            }
            list += bottleneck(stage.end)
        }
        return list
    }

    /// The folded weights as a safetensors file: `<conv>.weight` OIHW and `<conv>.bias` for every
    /// convolution (no bias for a convolution without batch norm), then `fc.weight` and `fc.bias`.
    package var file: SafeTensorsFile {
        let configuration = structure.configuration
        typealias Key = Checkpoint.MetadataKey
        var file = SafeTensorsFile(metadata: [
            "format": "ghostnet-d-inference", Key.architecture: configuration.architectureName,
            Key.blocks: configuration.blocksText, Key.width: "\(configuration.width)",
            Key.classes: "\(configuration.classes)", Key.imageSize: "\(configuration.imageSize)",
        ])
        for (convolution, normalization) in convolutions {
            let folded = fold(convolution, normalization)
            file.append(folded.weight, named: convolution.weight.name)
            if let bias = folded.bias { file.append(bias, named: convolution.name + ".bias") }
        }
        file.append(parameters[structure.classifier.weight], named: structure.classifier.weight.name)
        file.append(parameters[structure.classifier.bias], named: structure.classifier.bias.name)
        return file
    }
}
