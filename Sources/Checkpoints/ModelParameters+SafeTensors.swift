// Model tensors to and from safetensors files: loading a model's state by PyTorch name (checking
// names, shapes, dtypes and values), and appending parameters or gradients to a file.

import GhostNet
import TensorEngine

extension ModelParameters {
    /// Loads the model's tensors from `file`, checking that every expected name is present with
    /// its PyTorch shape and dtype F32, and that every value can be used.
    ///
    /// - Parameters:
    ///   - structure: The network the file must describe.
    ///   - file: A safetensors file, e.g. a checkpoint or a PyTorch `state_dict` saved with
    ///     `safetensors.torch.save_file`.
    /// - Throws: ``ModelParametersError`` listing every missing, unexpected, mis-shaped or
    ///   mistyped name; ``ModelFileError`` of code `.values` naming the first tensor that holds NaN
    ///   or an infinity, or a batch-norm `running_var` below 0 (PyTorch would turn either into NaN
    ///   logits; this engine would silently compute finite, wrong ones).
    package init(structure: GhostNetStructure, loadingFrom file: SafeTensorsFile) throws {
        let expected = Set(structure.tensors.map(\.name))
        let normalizations = Set(
            structure.tensors.filter { $0.name.hasSuffix(Self.runningMeanSuffix) }
                .map { String($0.name.dropLast(Self.runningMeanSuffix.count)) })
        var problems = ModelParametersError(path: file.path)
        for entry in file.entries where !expected.contains(entry.name) {
            if let owner = Self.batchCounterOwner(entry.name), normalizations.contains(owner) {
                if entry.dtype == .float32 || entry.elementCount != 1 {
                    problems.misShaped.append(
                        "\(entry.name): \(entry.dtype.rawValue) \(entry.shape), expected an integer scalar")
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
                problems.misShaped.append(
                    "\(spec.name): \(entry.dtype.rawValue) \(entry.shape), expected F32 \(spec.shape)")
                continue
            }
            tensors.append(try file.tensor(named: spec.name))
        }
        guard problems.isEmpty else { throw problems }
        for (spec, tensor) in zip(structure.tensors, tensors) {
            try Self.checkValues(tensor, named: spec.name, in: file.path)
        }
        self.init(structure: structure, orderedTensors: tensors)
    }

    private static let runningMeanSuffix = ".running_mean"
    private static let runningVarianceSuffix = ".running_var"
    /// The size of PyTorch's `num_batches_tracked` counters (I64 scalars), one per batch norm.
    private static let batchCounterBytes = 8

    /// Refuses a file whose header describes more data than `structure`'s float32 tensors and one
    /// batch counter per batch norm need, before that data is read.
    ///
    /// - Throws: ``ModelFileError`` of code `.tensors`.
    static func checkDataLength(_ length: Int, for structure: GhostNetStructure, path: String) throws(ModelFileError) {
        // The structure's size is bounded by GhostNetConfiguration, so these sums cannot overflow.
        let tensorBytes = structure.tensors.reduce(0) { $0 + $1.elementCount * SafeTensorsDType.float32.byteWidth }
        let counters = structure.tensors.filter { $0.name.hasSuffix(runningMeanSuffix) }.count
        let limit = tensorBytes + counters * batchCounterBytes
        guard length <= limit else {
            throw ModelFileError(
                .tensors, path: path,
                "the header describes \(length) bytes of tensors but the network "
                    + "(blocks \(structure.configuration.blocksText), width \(structure.configuration.width), "
                    + "\(structure.configuration.classes) classes) needs at most \(limit)"
            )
        }
    }

    /// Refuses NaN and infinities anywhere, and negative values in a running variance.
    package static func checkValues(_ tensor: Tensor, named name: String, in path: String) throws(ModelFileError) {
        let isVariance = name.hasSuffix(runningVarianceSuffix)
        let bad = tensor.withUnsafeBufferPointer { values in
            values.firstIndex { !$0.isFinite || (isVariance && $0 < 0) }.map { ($0, values[$0]) }
        }
        guard let (index, value) = bad else { return }
        let what = value.isFinite ? "a negative running variance (\(value))" : "\(value)"
        throw ModelFileError(
            .values, path: path,
            "tensor '\(name)' holds \(what) at element \(index); "
                + "a usable model has finite values and running variances ≥ 0"
        )
    }

    /// The module path of a PyTorch BN `num_batches_tracked` name, or `nil`.
    private static func batchCounterOwner(_ name: String) -> String? {
        let suffix = ".num_batches_tracked"
        return name.hasSuffix(suffix) ? String(name.dropLast(suffix.count)) : nil
    }

    /// Appends every tensor, under its PyTorch name and in `state_dict()` order, to `file`.
    package func append(to file: inout SafeTensorsFile) {
        for (spec, tensor) in zip(structure.tensors, tensors) { file.append(tensor, named: spec.name) }
    }
}

extension ParameterGradients {
    /// Appends every gradient under its parameter's name, in PyTorch layout and slot order.
    package func append(to file: inout SafeTensorsFile) {
        for (slot, tensor) in zip(slots, tensors) { file.append(slot.pytorchLayout(tensor), named: slot.name) }
    }
}

/// Model tensors in a file that do not match the network, all listed at once.
package struct ModelParametersError: Error, CustomStringConvertible, Sendable {
    /// The file that was loaded.
    package let path: String
    /// Expected names absent from the file.
    package var missing: [String] = []
    /// Names in the file that the network does not have.
    package var unexpected: [String] = []
    /// `name: found, expected` for tensors with the wrong shape or dtype.
    package var misShaped: [String] = []

    init(path: String) { self.path = path }

    var isEmpty: Bool { missing.isEmpty && unexpected.isEmpty && misShaped.isEmpty }

    package var description: String {
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
