//===----------------------------------------------------------------------===//
// ghostnet-d — GhostNet
//===----------------------------------------------------------------------===//

import Layers
import TensorEngine

/// The `model forward` and `model grad` computations on safetensors files, for users who check
/// this implementation against PyTorch: images arrive NCHW as PyTorch holds them, and gradients
/// leave in PyTorch layout under the parameters' `state_dict` names.
public enum ModelInteroperability {
    /// The images tensor of an input file: F32 `[N, 3, H, W]`.
    public static let inputName = "input"
    /// The labels tensor of a labels file: I64 or I32 `[N]`.
    public static let labelsName = "labels"
    /// The logits tensor `model forward` writes: F32 `[N, classes]`.
    public static let logitsName = "logits"
    /// The loss tensor `model grad` writes: F32, 0-d.
    public static let lossName = "loss"

    /// Loads a model from a ghostnet-d checkpoint, whose metadata fixes the network, or from a
    /// plain `state_dict` export without that metadata (e.g. PyTorch's `save_file`), which is read
    /// as `untaggedConfiguration`.
    ///
    /// - Throws: ``SafeTensorsError``, ``ModelFileError`` or ``ModelParametersError`` naming the
    ///   file and what does not fit.
    public static func loadModel(checkpoint path: String, untaggedConfiguration: GhostNetConfiguration) throws -> GhostNetModel {
        let file = try SafeTensorsFile(contentsOf: path)
        if file.metadata[Checkpoint.MetadataKey.formatVersion] != nil {
            return GhostNetModel(try Checkpoint(file: file).parameters)
        }
        return GhostNetModel(try ModelParameters(structure: GhostNetStructure(configuration: untaggedConfiguration), loadingFrom: file))
    }

    /// Reads the F32 tensor ``inputName`` `[N, 3, H, W]` from `path` and returns it NHWC
    /// `[N, H, W, 3]`.
    public static func readImages(from path: String) throws -> Tensor {
        let file = try SafeTensorsFile(contentsOf: path)
        let images = try file.tensor(named: inputName)
        let shape = images.shape
        guard shape.count == 4, shape[1] == GhostNetStructure.imageChannels, shape.allSatisfy({ $0 >= 1 }) else {
            throw ModelFileError(
                path: path, "tensor '\(inputName)' has shape \(shape), expected NCHW [N, \(GhostNetStructure.imageChannels), H, W] with N, H, W ≥ 1")
        }
        return images.permuted([0, 2, 3, 1])
    }

    /// Reads the integer tensor ``labelsName`` `[count]` from `path`.
    public static func readLabels(from path: String, count: Int, classes: Int) throws -> [Int] {
        let file = try SafeTensorsFile(contentsOf: path)
        let labels = try file.integers(named: labelsName)
        let shape = file.entry(named: labelsName)!.shape
        guard shape == [count] else {
            throw ModelFileError(path: path, "tensor '\(labelsName)' has shape \(shape), expected [\(count)] (one label per image)")
        }
        if let bad = labels.firstIndex(where: { !(0..<Int64(classes)).contains($0) }) {
            throw ModelFileError(path: path, "label \(labels[bad]) at position \(bad) is outside 0..<\(classes)")
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
    public static func forward(
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
    public static func gradient(
        checkpoint: String, input: String, labels labelsPath: String, output: String,
        untaggedConfiguration: GhostNetConfiguration
    ) throws -> Double {
        var model = try loadModel(checkpoint: checkpoint, untaggedConfiguration: untaggedConfiguration)
        let images = try readImages(from: input)
        let labels = try readLabels(from: labelsPath, count: images.shape[0], classes: model.structure.configuration.classes)
        let step = try model.trainingStep(images: images, labels: labels)
        var file = SafeTensorsFile()
        file.append(Tensor(shape: [], scalars: [Float(step.loss)]), named: lossName)
        step.gradients.append(to: &file)
        try file.write(to: output)
        return step.loss
    }
}
