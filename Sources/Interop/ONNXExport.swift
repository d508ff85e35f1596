// `model export`: the inference graph of a GhostNet-D model as ONNX (opset 17, NCHW, batch norm folded
// into the convolutions, the ghost branch as plain Conv/GlobalAveragePool/Concat/Add/Relu nodes) or its
// folded weights as safetensors, written atomically.

import Checkpoints
import GhostNet
import TensorEngine

/// What `model export` writes.
package enum ExportFormat: String, Sendable, CaseIterable {
    /// An ONNX model: input `input` FLOAT `[N, 3, S, S]` (N dynamic), output `logits` `[N, classes]`.
    case onnx
    /// The folded inference weights (see ``InferenceWeights/file``).
    case safetensors
}

/// Exports a model for inference runtimes.
package enum ModelExport {
    /// The graph's input and output names.
    package static let inputName = "input"
    package static let outputName = "logits"

    /// Reads `checkpoint` (see ``ModelInteroperability/loadParameters(checkpoint:untaggedConfiguration:)``)
    /// and writes it to `output` in `format`, replacing `output` atomically.
    ///
    /// - Throws: ``InteropError`` `.badOutputPath` when `output` is a directory, before anything is
    ///   read; the loader's errors for the checkpoint; ``SafeTensorsError`` when writing fails.
    package static func export(
        checkpoint: String, format: ExportFormat, output: String, untaggedConfiguration: GhostNetConfiguration
    ) throws {
        try OutputPath.check(output)
        let parameters = try ModelInteroperability.loadParameters(
            checkpoint: checkpoint, untaggedConfiguration: untaggedConfiguration)
        switch format {
        case .onnx:
            let bytes = onnxModel(InferenceWeights(parameters)).serialized
            try bytes.withUnsafeBytes { try POSIXFile.write([$0], to: output) }
        case .safetensors:
            try InferenceWeights(parameters).file.write(to: output)
        }
    }

    /// The ONNX model of `weights`' network at its configuration's image size.
    static func onnxModel(_ weights: InferenceWeights) -> ONNXModel {
        let structure = weights.structure
        let side = structure.configuration.imageSize
        var graph = GraphBuilder(weights: weights)
        var x = graph.convolution(inputName, structure.stem.conv1, structure.stem.bn1, relu: true)
        x = graph.add(
            "MaxPool", [x], name: "maxpool",
            attributes: window(StemSpec.poolKernelSize, StemSpec.poolStride, StemSpec.poolPadding))
        for stage in structure.stages {
            let x0 = graph.bottleneck(x, stage.base)
            x = x0
            if let ghost = stage.ghost { x = graph.ghostBranch(x0, ghost) }
            x = graph.bottleneck(x, stage.end)
        }
        x = graph.add("GlobalAveragePool", [x], name: "avgpool")
        x = graph.add("Flatten", [x], name: "flatten", attributes: [.integer("axis", 1)])
        let fc = structure.classifier
        graph.model.initializers += [
            ONNXInitializer(name: fc.weight.name, tensor: weights.parameters[fc.weight]),
            ONNXInitializer(name: fc.bias.name, tensor: weights.parameters[fc.bias]),
        ]
        graph.model.nodes.append(
            ONNXNode(
                operation: "Gemm", inputs: [x, fc.weight.name, fc.bias.name], output: outputName,
                attributes: [.integer("transB", 1)]))
        graph.model.inputs = [
            ONNXValueInfo(name: inputName, shape: [.symbolic("N"), .fixed(3), .fixed(side), .fixed(side)])
        ]
        graph.model.outputs = [
            ONNXValueInfo(name: outputName, shape: [.symbolic("N"), .fixed(structure.classifier.outputFeatures)])
        ]
        return graph.model
    }

    /// Square window attributes for Conv and MaxPool.
    static func window(_ kernel: Int, _ stride: Int, _ padding: Int) -> [ONNXAttribute] {
        [
            .integers("kernel_shape", [kernel, kernel]), .integers("strides", [stride, stride]),
            .integers("pads", [padding, padding, padding, padding]),
        ]
    }
}

/// Appends the nodes and initializers of the network's units; each method returns the name of the
/// unit's output.
private struct GraphBuilder {
    let weights: InferenceWeights
    var model: ONNXModel

    init(weights: InferenceWeights) {
        self.weights = weights
        model = ONNXModel(name: weights.structure.configuration.architectureName)
    }

    mutating func add(
        _ operation: String, _ inputs: [String], name: String, attributes: [ONNXAttribute] = []
    ) -> String {
        model.nodes.append(ONNXNode(operation: operation, inputs: inputs, output: name, attributes: attributes))
        return name
    }

    /// `convolution` with `normalization` folded in, then ReLU when asked.
    mutating func convolution(
        _ input: String, _ convolution: ConvolutionSpec, _ normalization: BatchNormSpec?, relu: Bool
    ) -> String {
        let folded = weights.fold(convolution, normalization)
        var inputs = [input, convolution.weight.name]
        model.initializers.append(ONNXInitializer(name: convolution.weight.name, tensor: folded.weight))
        if let bias = folded.bias {
            inputs.append(convolution.name + ".bias")
            model.initializers.append(ONNXInitializer(name: convolution.name + ".bias", tensor: bias))
        }
        let output = add(
            "Conv", inputs, name: convolution.name,
            attributes: ModelExport.window(convolution.kernelSize, convolution.stride, convolution.padding))
        return relu ? add("Relu", [output], name: convolution.name + ".relu") : output
    }

    /// `ReLU(bn3(conv3(…)) + shortcut)`.
    mutating func bottleneck(_ input: String, _ block: BottleneckSpec) -> String {
        var x = convolution(input, block.conv1, block.bn1, relu: true)
        x = convolution(x, block.conv2, block.bn2, relu: true)
        x = convolution(x, block.conv3, block.bn3, relu: false)
        let shortcut =
            block.downsample.map {
                convolution(input, $0.convolution, $0.normalization, relu: false)
            } ?? input
        let sum = add("Add", [x, shortcut], name: block.name + ".add")
        return add("Relu", [sum], name: block.name + ".relu")
    }

    /// The ghost path of ``GhostStageSpec``: `concat[x, ReLU(cheap(x0) + merge(pooled pieces))]`.
    /// Pooling each piece and concatenating the means equals pooling the concatenation.
    mutating func ghostBranch(_ x0: String, _ ghost: GhostBranchSpec) -> String {
        let stage = ghost.merge.convolution.name.split(separator: ".").first.map(String.init) ?? "ghost"
        var x = convolution(x0, ghost.projection, nil, relu: false)
        var pooled = [add("GlobalAveragePool", [x0], name: stage + ".pool.0")]
        for (index, block) in ghost.bottlenecks.enumerated() {
            x = bottleneck(x, block)
            pooled.append(add("GlobalAveragePool", [x], name: "\(stage).pool.\(index + 1)"))
        }
        let mixed = add("Concat", pooled, name: stage + ".merge.0", attributes: [.integer("axis", 1)])
        let m = convolution(mixed, ghost.merge.convolution, ghost.merge.normalization, relu: false)
        let cheap = convolution(x0, ghost.cheap.convolution, ghost.cheap.normalization, relu: false)
        let sum = add("Add", [cheap, m], name: stage + ".ghost.add")
        let ghostFeatures = add("Relu", [sum], name: stage + ".ghost")
        return add("Concat", [x, ghostFeatures], name: stage + ".concat", attributes: [.integer("axis", 1)])
    }
}
