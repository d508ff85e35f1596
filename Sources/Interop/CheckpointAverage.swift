// `model average`: the element-wise mean of several checkpoints of one network, as timm's
// avg_checkpoints.py computes it (parameters and batch-norm running statistics alike).

import Checkpoints
import GhostNet
import TensorEngine

/// Averages checkpoints element-wise.
package enum CheckpointAverage {
    /// The mean of `inputs`, accumulated in double precision, tensor by tensor.
    ///
    /// - Throws: ``InteropError`` `.mismatch` when the inputs describe different networks.
    package static func average(_ inputs: [ModelParameters], paths: [String]) throws -> ModelParameters {
        precondition(!inputs.isEmpty && inputs.count == paths.count, "average needs one path per input")
        let structure = inputs[0].structure
        for (parameters, path) in zip(inputs, paths) where parameters.structure != structure {
            throw InteropError(
                .mismatch, file: path,
                "holds blocks \(parameters.structure.configuration.blocksText), width "
                    + "\(parameters.structure.configuration.width), \(parameters.structure.configuration.classes) "
                    + "classes; expected the network of '\(paths[0])' (blocks \(structure.configuration.blocksText), "
                    + "width \(structure.configuration.width), \(structure.configuration.classes) classes)")
        }
        let count = Double(inputs.count)
        let tensors = structure.tensors.indices.map { index in
            var sums = [Double](repeating: 0, count: structure.tensors[index].elementCount)
            for parameters in inputs {
                parameters.tensors[index].withUnsafeBufferPointer { values in
                    for element in values.indices { sums[element] += Double(values[element]) }
                }
            }
            return Tensor(shape: structure.tensors[index].shape, scalars: sums.map { Float($0 / count) })
        }
        return ModelParameters(structure: structure, orderedTensors: tensors)
    }

    /// Reads every checkpoint in `inputs` and writes their mean to `output` as a ghostnet-d
    /// checkpoint (seed, epoch and step 0: the mean belongs to no single run).
    ///
    /// - Throws: ``InteropError`` for a directory as `output` or differing networks, before
    ///   anything is written; the loaders' errors for an unreadable input.
    package static func average(
        _ inputs: [String], output: String, untaggedConfiguration: GhostNetConfiguration
    ) throws -> ModelParameters {
        try OutputPath.check(output)
        let loaded = try inputs.map {
            try ModelInteroperability.loadParameters(checkpoint: $0, untaggedConfiguration: untaggedConfiguration)
        }
        let mean = try average(loaded, paths: inputs)
        try Checkpoint(parameters: mean, seed: 0).write(to: output)
        return mean
    }
}
