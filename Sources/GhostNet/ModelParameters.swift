//===----------------------------------------------------------------------===//
// ghostnet-d — GhostNet
//===----------------------------------------------------------------------===//

import TensorEngine

/// The state of one GhostNet-D model: every parameter and batch-norm running statistic of a
/// ``GhostNetStructure``, by PyTorch name, in `state_dict()` order and PyTorch layout (conv weight
/// `[out, in, kh, kw]`, fc weight `[out, in]`, vectors `[C]`).
///
/// PyTorch's integer `num_batches_tracked` buffers are not kept: with the BN momentum of 0.1 they
/// never affect a result. Loading tolerates them (a PyTorch `state_dict` exported to safetensors
/// loads as is), and PyTorch's `load_state_dict` fills them in when they are absent from a plain
/// dict, so files written here load into PyTorch with `strict=True`.
public struct ModelParameters: Sendable {
    /// The network the tensors belong to.
    public let structure: GhostNetStructure
    /// One tensor per ``GhostNetStructure/tensors`` entry, in the same order and shape.
    public private(set) var tensors: [Tensor]
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
    public init(structure: GhostNetStructure, orderedTensors tensors: [Tensor]) {
        ensure(
            tensors.count == structure.tensors.count,
            "ModelParameters: \(tensors.count) tensors for \(structure.tensors.count) model tensors")
        for (spec, tensor) in zip(structure.tensors, tensors) {
            ensure(tensor.shape == spec.shape, "ModelParameters: '\(spec.name)' is \(tensor.shape), expected \(spec.shape)")
        }
        self.init(structure: structure, tensors: tensors)
    }

    /// A freshly initialised model, reproducible from `seed`.
    ///
    /// Each tensor is drawn from its own generator, `SeededRandom(seed:streams:)` keyed by the FNV-1a
    /// hash of its name, so a tensor's values depend only on the seed and its name. Conv weights are
    /// Kaiming normal (fan-out, ReLU gain: σ = √(2 / (out·kh·kw))); BN weight 1, bias 0, running
    /// mean 0, running variance 1; fc weight and bias uniform in ±1/√fan_in.
    public static func initialized(for structure: GhostNetStructure, seed: UInt64) -> ModelParameters {
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

    /// Loads the model's tensors from `file`, checking that every expected name is present with
    /// its PyTorch shape and dtype F32.
    ///
    /// - Parameters:
    ///   - structure: The network the file must describe.
    ///   - file: A safetensors file, e.g. a checkpoint or a PyTorch `state_dict` saved with
    ///     `safetensors.torch.save_file`.
    ///   - ignoredPrefixes: Names starting with one of these are other state (e.g. optimizer
    ///     buffers) and are skipped.
    /// - Throws: ``ModelParametersError`` listing every missing, unexpected, mis-shaped or
    ///   mistyped name.
    public init(structure: GhostNetStructure, loadingFrom file: SafeTensorsFile, ignoredPrefixes: [String] = []) throws {
        let expected = Set(structure.tensors.map(\.name))
        let normalizations = Set(structure.tensors.filter { $0.name.hasSuffix(".running_mean") }
            .map { String($0.name.dropLast(".running_mean".count)) })
        var problems = ModelParametersError(path: file.path)
        for entry in file.entries where !expected.contains(entry.name) {
            if ignoredPrefixes.contains(where: entry.name.hasPrefix) { continue }
            if let owner = Self.batchCounterOwner(entry.name), normalizations.contains(owner) {
                if entry.dtype == .float32 || entry.elementCount != 1 {
                    problems.misShaped.append("\(entry.name): \(entry.dtype.rawValue) \(entry.shape), expected an integer scalar")
                }
                continue
            }
            problems.unexpected.append(entry.name)
        }
        var tensors: [Tensor] = []
        for spec in structure.tensors {
            guard let entry = file.entry(named: spec.name) else {
                problems.missing.append(spec.name)
                continue
            }
            guard entry.dtype == .float32, entry.shape == spec.shape else {
                problems.misShaped.append("\(spec.name): \(entry.dtype.rawValue) \(entry.shape), expected F32 \(spec.shape)")
                continue
            }
            tensors.append(try file.tensor(named: spec.name))
        }
        guard problems.isEmpty else { throw problems }
        self.init(structure: structure, tensors: tensors)
    }

    /// The module path of a PyTorch BN `num_batches_tracked` name, or `nil`.
    private static func batchCounterOwner(_ name: String) -> String? {
        let suffix = ".num_batches_tracked"
        return name.hasSuffix(suffix) ? String(name.dropLast(suffix.count)) : nil
    }

    /// Appends every tensor, under its PyTorch name and in `state_dict()` order, to `file`.
    public func append(to file: inout SafeTensorsFile) {
        for (spec, tensor) in zip(structure.tensors, tensors) { file.append(tensor, named: spec.name) }
    }

    /// The tensor named `name` (a ``TensorSpec/name``).
    ///
    /// - Precondition: `name` is one of the structure's names; a new value keeps the shape.
    public subscript(name: String) -> Tensor {
        get {
            guard let index = indices[name] else { preconditionFailure("no model tensor named '\(name)'") }
            return tensors[index]
        }
        set {
            guard let index = indices[name] else { preconditionFailure("no model tensor named '\(name)'") }
            precondition(newValue.shape == tensors[index].shape, "'\(name)' has shape \(tensors[index].shape), not \(newValue.shape)")
            tensors[index] = newValue
        }
    }

    /// The tensor of `spec`.
    public subscript(spec: TensorSpec) -> Tensor {
        get { self[spec.name] }
        set { self[spec.name] = newValue }
    }

    /// FNV-1a (64-bit) of the UTF-8 bytes of `text`: a hash that is the same in every process,
    /// unlike `Hasher`.
    static func stableHash(_ text: String) -> UInt64 {
        text.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3 }
    }
}

/// Model tensors in a file that do not match the network, all listed at once.
public struct ModelParametersError: Error, CustomStringConvertible, Sendable {
    /// The file that was loaded.
    public let path: String
    /// Expected names absent from the file.
    public var missing: [String] = []
    /// Names in the file that the network does not have.
    public var unexpected: [String] = []
    /// `name: found, expected` for tensors with the wrong shape or dtype.
    public var misShaped: [String] = []

    init(path: String) { self.path = path }

    var isEmpty: Bool { missing.isEmpty && unexpected.isEmpty && misShaped.isEmpty }

    public var description: String {
        var lines = ["\(path): the tensors do not match the network"]
        func list(_ title: String, _ names: [String]) {
            guard !names.isEmpty else { return }
            let shown = names.prefix(10).joined(separator: ", ")
            lines.append("  \(names.count) \(title): \(shown)\(names.count > 10 ? ", …" : "")")
        }
        list("missing", missing)
        list("unexpected", unexpected)
        list("with wrong shape or dtype", misShaped)
        return lines.joined(separator: "\n")
    }
}
