// `ModelParameters`, a model's complete state by PyTorch name, order and layout (what checkpoints hold),
// and the seeded initialisation of a fresh model.

import TensorEngine

/// The state of one GhostNet-D model: every parameter and batch-norm running statistic of a
/// ``GhostNetStructure``, by PyTorch name, in `state_dict()` order and PyTorch layout (conv weight
/// `[out, in, kh, kw]`, fc weight `[out, in]`, vectors `[C]`).
///
/// PyTorch's integer `num_batches_tracked` buffers are not kept: with the BN momentum of 0.1 they
/// never affect a result. Loading tolerates them (a PyTorch `state_dict` exported to safetensors
/// loads as is), and PyTorch's `load_state_dict` fills them in when they are absent from a plain
/// dict, so files written here load into PyTorch with `strict=True`.
package struct ModelParameters: Sendable {
    /// The network the tensors belong to.
    package let structure: GhostNetStructure
    /// One tensor per ``GhostNetStructure/tensors`` entry, in the same order and shape.
    package private(set) var tensors: [Tensor]
    private let indices: [String: Int]

    private init(structure: GhostNetStructure, tensors: [Tensor]) {
        self.structure = structure
        self.tensors = tensors
        self.indices = Dictionary(uniqueKeysWithValues: structure.tensors.enumerated().map { ($1.name, $0) })
    }

    /// The model state from tensors already in PyTorch layout, one per ``GhostNetStructure/tensors``
    /// entry in the same order (e.g. a running model's export).
    ///
    /// - Precondition: every tensor has its spec's shape.
    package init(structure: GhostNetStructure, orderedTensors tensors: [Tensor]) {
        ensure(
            tensors.count == structure.tensors.count,
            "ModelParameters: \(tensors.count) tensors for \(structure.tensors.count) model tensors")
        for (spec, tensor) in zip(structure.tensors, tensors) {
            ensure(
                tensor.shape == spec.shape, "ModelParameters: '\(spec.name)' is \(tensor.shape), expected \(spec.shape)"
            )
        }
        self.init(structure: structure, tensors: tensors)
    }

    /// A freshly initialised model, reproducible from `seed`.
    ///
    /// Each tensor is drawn from its own generator, `SeededRandom(seed:streams:)` keyed by the FNV-1a
    /// hash of its name, so a tensor's values depend only on the seed and its name. Conv weights are
    /// Kaiming normal (fan-out, ReLU gain: σ = √(2 / (out·kh·kw))); BN weight 1, bias 0, running
    /// mean 0, running variance 1; fc weight and bias uniform in ±1/√fan_in.
    package static func initialized(for structure: GhostNetStructure, seed: UInt64) -> ModelParameters {
        let tensors = structure.tensors.map { spec in
            Tensor(shape: spec.shape) { values in
                var random = SeededRandom(seed: seed, streams: stableHash(spec.name))
                switch spec.initialization {
                case .constant(let value):
                    values.initialize(repeating: value)
                case .normal(let standardDeviation):
                    for index in values.indices { values[index] = Float(random.nextGaussian() * standardDeviation) }
                case .uniform(let bound):
                    for index in values.indices { values[index] = Float((2 * random.nextUnitDouble() - 1) * bound) }
                }
            }
        }
        return ModelParameters(structure: structure, tensors: tensors)
    }

    /// The tensor named `name` (a ``TensorSpec/name``).
    ///
    /// - Precondition: `name` is one of the structure's names; a new value keeps the shape.
    package subscript(name: String) -> Tensor {
        get {
            guard let index = indices[name] else { preconditionFailure("no model tensor named '\(name)'") }
            return tensors[index]
        }
        set {
            guard let index = indices[name] else { preconditionFailure("no model tensor named '\(name)'") }
            precondition(
                newValue.shape == tensors[index].shape,
                "'\(name)' has shape \(tensors[index].shape), not \(newValue.shape)")
            tensors[index] = newValue
        }
    }

    /// The tensor of `spec`.
    package subscript(spec: TensorSpec) -> Tensor {
        get { self[spec.name] }
        set { self[spec.name] = newValue }
    }

    /// FNV-1a (64-bit) of the UTF-8 bytes of `text`: a hash that is the same in every process,
    /// unlike `Hasher`.
    static func stableHash(_ text: String) -> UInt64 {
        text.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3 }
    }
}
