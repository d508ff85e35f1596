// PyTorch interoperability on safetensors files: `model forward` and `model grad` load a ghostnet-d
// checkpoint or a plain PyTorch `state_dict` export, read NCHW images and labels, and write logits or
// gradients under PyTorch names.

import GhostNet
import Layers
import TensorEngine

/// The `model forward` and `model grad` computations on safetensors files, for users who check
/// this implementation against PyTorch: images arrive NCHW as PyTorch holds them, and gradients
/// leave in PyTorch layout under the parameters' `state_dict` names.
package enum ModelInteroperability {
    /// The images tensor of an input file: F32 `[N, 3, H, W]`.
    package static let inputName = "input"
    /// The labels tensor of a labels file: I64 or I32 `[N]`.
    package static let labelsName = "labels"
    /// The logits tensor `model forward` writes: F32 `[N, classes]`.
    package static let logitsName = "logits"
    /// The loss tensor `model grad` writes: F32, 0-d.
    package static let lossName = "loss"

    /// Loads a model from a ghostnet-d checkpoint, whose metadata fixes the network, or from a
    /// plain `state_dict` export without that metadata (e.g. PyTorch's `save_file`), which is read
    /// as `untaggedConfiguration`.
    ///
    /// - Throws: ``SafeTensorsError``, ``ModelFileError`` or ``ModelParametersError`` naming the
    ///   file and what does not fit.
    package static func loadModel(checkpoint path: String, untaggedConfiguration: GhostNetConfiguration) throws
        -> GhostNetModel
    {
        GhostNetModel(try loadParameters(checkpoint: path, untaggedConfiguration: untaggedConfiguration))
    }

    /// The tensors of ``loadModel(checkpoint:untaggedConfiguration:)``, in PyTorch layout.
    package static func loadParameters(checkpoint path: String, untaggedConfiguration: GhostNetConfiguration) throws
        -> ModelParameters
    {
        let untagged = GhostNetStructure(configuration: untaggedConfiguration)
        let file = try SafeTensorsFile(contentsOf: path) { header in
            if header.metadata[Checkpoint.MetadataKey.formatVersion] == nil {
                try ModelParameters.checkDataLength(header.dataLength, for: untagged, path: path)
            }
        }
        if file.metadata[Checkpoint.MetadataKey.formatVersion] != nil {
            return try Checkpoint(file: file).parameters
        }
        return try ModelParameters(structure: untagged, loadingFrom: file)
    }

    /// Reads the F32 tensor ``inputName`` `[N, 3, H, W]` from `path` and returns it NHWC
    /// `[N, H, W, 3]`.
    package static func readImages(from path: String) throws -> Tensor {
        let file = try SafeTensorsFile(contentsOf: path)
        let images = try file.tensor(named: inputName)
        let shape = images.shape
        let sides = GhostNetConfiguration.imageSizeRange
        guard shape.count == 4, shape[1] == GhostNetStructure.imageChannels, shape[0] >= 1,
            sides.contains(shape[2]), sides.contains(shape[3])
        else {
            throw ModelFileError(
                .tensors, path: path,
                "tensor '\(inputName)' has shape \(shape), expected NCHW [N, \(GhostNetStructure.imageChannels), H, W] "
                    + "with N ≥ 1 and H, W in \(sides.lowerBound)…\(sides.upperBound)")
        }
        return images.permuted([0, 2, 3, 1])
    }

    /// Reads the integer tensor ``labelsName`` `[count]` from `path`.
    package static func readLabels(from path: String, count: Int, classes: Int) throws -> [Int] {
        let file = try SafeTensorsFile(contentsOf: path)
        let labels = try file.integers(named: labelsName)
        let shape = file.entry(named: labelsName)!.shape
        guard shape == [count] else {
            throw ModelFileError(
                .tensors, path: path,
                "tensor '\(labelsName)' has shape \(shape), expected [\(count)] (one label per image)")
        }
        if let bad = labels.firstIndex(where: { !(0..<Int64(classes)).contains($0) }) {
            throw ModelFileError(
                .tensors, path: path, "label \(labels[bad]) at position \(bad) is outside 0..<\(classes)")
        }
        return labels.map { Int($0) }
    }

    /// Runs the model on the images of `input` and writes their logits to `output`.
    ///
    /// - Parameters:
    ///   - trainingMode: Normalise with batch statistics (PyTorch's `model.train()`) instead of the
    ///     running statistics.
    /// - Returns: The logits' shape `[N, classes]`.
    @discardableResult
    package static func forward(
        checkpoint: String, input: String, output: String, trainingMode: Bool,
        untaggedConfiguration: GhostNetConfiguration
    ) throws -> [Int] {
        var model = try loadModel(checkpoint: checkpoint, untaggedConfiguration: untaggedConfiguration)
        let images = try readImages(from: input)
        let logits = try model.forward(images, mode: trainingMode ? .training : .inference)
        var file = SafeTensorsFile()
        file.append(logits, named: logitsName)
        try file.write(to: output)
        return logits.shape
    }

    /// Computes the mean cross-entropy of the images of `input` against `labels` with batch norm in
    /// training mode, and writes ``lossName`` and every parameter's gradient (PyTorch layout, under
    /// the parameter's name) to `output`.
    ///
    /// - Returns: The loss.
    @discardableResult
    package static func gradient(
        checkpoint: String, input: String, labels labelsPath: String, output: String,
        untaggedConfiguration: GhostNetConfiguration
    ) throws -> Double {
        var model = try loadModel(checkpoint: checkpoint, untaggedConfiguration: untaggedConfiguration)
        let images = try readImages(from: input)
        let labels = try readLabels(
            from: labelsPath, count: images.shape[0], classes: model.structure.configuration.classes)
        let step = try model.trainingStep(images: images, labels: labels)
        var file = SafeTensorsFile()
        file.append(Tensor(shape: [], scalars: [Float(step.loss)]), named: lossName)
        step.gradients.append(to: &file)
        try file.write(to: output)
        return step.loss
    }
}
