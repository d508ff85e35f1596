// The MindSpore → PyTorch name mapping of `model import --from mindspore` and the import itself: a
// `.ckpt` becomes a ghostnet-d checkpoint when every model tensor is matched (docs/INTEROP.md).

import Checkpoints
import GhostNet
import TensorEngine

/// Imports MindSpore checkpoints of GhostNet-D.
package enum MindSporeImport {
    /// Cells that wrap the network in MindSpore training scripts; their prefix is dropped.
    static let wrapperPrefixes = ["network.", "_backbone.", "backbone.", "model."]
    /// Training state a ModelZoo `.ckpt` carries besides the weights; skipped and counted.
    static let trainingStatePrefixes = ["moments.", "accum.", "adam_m.", "adam_v."]
    static let trainingStateNames: Set = [
        "global_step", "learning_rate", "momentum", "scale_sense", "current_iterator_step",
        "last_overflow_iterator_step", "epoch_num", "step_num",
    ]
    /// MindSpore's names of the batch-norm tensors and cells that differ from PyTorch's.
    static let suffixes = [
        ("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"), ("moving_variance", "running_var"),
    ]
    static let cells = ["end_point": "fc", "down_sample_layer": "downsample"]

    /// The PyTorch name of MindSpore's `name`, or `nil` for training state.
    static func pytorchName(_ name: String) -> String? {
        if trainingStateNames.contains(name) || trainingStatePrefixes.contains(where: name.hasPrefix) { return nil }
        var rest = Substring(name)
        while let prefix = wrapperPrefixes.first(where: rest.hasPrefix) { rest = rest.dropFirst(prefix.count) }
        var parts = rest.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        parts = parts.map { cells[$0] ?? $0 }
        if let last = parts.last, let renamed = suffixes.first(where: { $0.0 == last }) {
            parts[parts.count - 1] = renamed.1
        }
        return parts.joined(separator: ".")
    }

    /// The model tensors of `checkpoint` for `structure`.
    ///
    /// - Returns: The parameters and the number of training-state values skipped.
    /// - Throws: ``InteropError`` `.mismatch` listing every unmatched MindSpore name, missing
    ///   model tensor and wrong shape; `.unsupportedDType` / `.truncated` for an unreadable tensor.
    package static func parameters(from checkpoint: MindSporeCheckpoint, structure: GhostNetStructure) throws
        -> (parameters: ModelParameters, skipped: Int)
    {
        let specs = Dictionary(uniqueKeysWithValues: structure.tensors.map { ($0.name, $0) })
        var found: [String: MindSporeCheckpoint.Value] = [:]
        var unmatched: [String] = []
        var misShaped: [String] = []
        var skipped = 0
        for value in checkpoint.values {
            guard let name = pytorchName(value.tag) else {
                skipped += 1
                continue
            }
            guard let spec = specs[name], found[name] == nil else {
                unmatched.append(name == value.tag ? name : "\(value.tag) (as \(name))")
                continue
            }
            if value.dims != spec.shape { misShaped.append("\(value.tag): \(value.dims), expected \(spec.shape)") }
            found[name] = value
        }
        let missing = structure.tensors.map(\.name).filter { found[$0] == nil }
        guard unmatched.isEmpty, missing.isEmpty, misShaped.isEmpty else {
            var lines = [
                "the tensors do not match the network (blocks \(structure.configuration.blocksText), "
                    + "width \(structure.configuration.width), \(structure.configuration.classes) classes)"
            ]
            for (title, names) in [("unmatched", unmatched), ("missing", missing), ("with wrong shape", misShaped)]
            where !names.isEmpty {
                lines.append("  \(names.count) \(title): \(names.joined(separator: ", "))")
            }
            throw InteropError(.mismatch, file: checkpoint.path, lines.joined(separator: "\n"))
        }
        let tensors = try structure.tensors.map { try checkpoint.tensor(found[$0.name]!) }
        return (ModelParameters(structure: structure, orderedTensors: tensors), skipped)
    }

    /// Reads the MindSpore checkpoint `input` as the network `configuration` describes and writes
    /// it to `output` as a ghostnet-d checkpoint (seed 0).
    ///
    /// - Returns: The number of tensors imported and of training-state values skipped.
    @discardableResult
    package static func importCheckpoint(input: String, output: String, configuration: GhostNetConfiguration) throws
        -> (imported: Int, skipped: Int)
    {
        try OutputPath.check(output)
        let structure = GhostNetStructure(configuration: configuration)
        let (parameters, skipped) = try parameters(from: MindSporeCheckpoint(contentsOf: input), structure: structure)
        try Checkpoint(parameters: parameters, seed: 0).write(to: output)
        return (structure.tensors.count, skipped)
    }
}
