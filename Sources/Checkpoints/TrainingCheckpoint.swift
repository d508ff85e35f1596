// A run's checkpoint: the model file (a ``Checkpoint`` whose metadata also holds the
// ``TrainingState``) and the optimizer file (one SGD momentum buffer per parameter, under PyTorch's
// `momentum_buffer.` names), written atomically and read back only after both headers check out.

import Foundation
import GhostNet
import TensorEngine

/// The contents of one checkpoint of a run: the model (parameters and batch-norm running
/// statistics), the SGD momentum of every parameter, and the ``TrainingState``.
///
/// It is stored as the pair of files ``CheckpointDirectory`` names. The model file is a
/// ``Checkpoint`` (PyTorch names and layout, readable by `ghostnet-d eval` and by Python's
/// `safetensors`) whose metadata also carries the training state; the optimizer file holds each
/// momentum buffer as `momentum_buffer.<parameter name>` in PyTorch layout, with the same state.
/// Both files are written atomically (temporary file, fsync, rename) and verified by CRC-32C when
/// read.
package struct TrainingCheckpoint: Sendable {
    /// The name prefix of momentum buffers in the optimizer file (PyTorch's SGD state key).
    package static let momentumPrefix = "momentum_buffer."

    package var parameters: ModelParameters
    /// One momentum buffer per parameter slot, in slot order and the model's internal layout.
    package var momentum: [Tensor]
    package var state: TrainingState

    package init(parameters: ModelParameters, momentum: [Tensor], state: TrainingState) {
        self.parameters = parameters
        self.momentum = momentum
        self.state = state
    }

    /// Writes the optimizer file, then the model file, each atomically; the model file marks the
    /// checkpoint as present, so a failure part-way leaves no checkpoint (and a stray optimizer file
    /// is removed).
    ///
    /// - Parameters:
    ///   - entry: Where to write.
    ///   - slots: The model's parameter slots, for the momentum buffers' names and layouts.
    ///   - seed: The run's seed, recorded in the model file.
    /// - Throws: The file system's error (``SafeTensorsError``), naming the file.
    package func write(to entry: CheckpointDirectory.Entry, slots: [TensorSlot], seed: UInt64) throws {
        let metadata = state.metadata
        var optimizerFile = SafeTensorsFile(metadata: metadata)
        for slot in slots {
            optimizerFile.append(slot.pytorchLayout(momentum[slot.index]), named: Self.momentumPrefix + slot.name)
        }
        try optimizerFile.write(to: entry.optimizerURL.path)

        var modelFile = Checkpoint(parameters: parameters, seed: seed, epoch: state.epoch, step: state.globalStep).file
        modelFile.metadata.merge(metadata) { model, _ in model }
        do {
            try modelFile.write(to: entry.modelURL.path)
        } catch {
            try? FileManager.default.removeItem(at: entry.optimizerURL)
            throw error
        }
    }

    /// Reads and verifies both files of `entry`. Each file's header (metadata, names, shapes) is
    /// checked before its data is read.
    ///
    /// - Parameter slots: The parameter slots of the network the run trains; every slot must have
    ///   a momentum buffer of its shape, and there must be no other tensor.
    /// - Throws: ``SafeTensorsError`` (unreadable, truncated, corrupt), ``ModelFileError`` (not a
    ///   checkpoint, missing, extra or mis-shaped momentum, NaN or infinite values),
    ///   ``TrainingStateError`` (no valid training state), ``ModelParametersError``.
    package init(contentsOf entry: CheckpointDirectory.Entry, slots: [TensorSlot]) throws {
        let modelPath = entry.modelURL.path
        let optimizerPath = entry.optimizerURL.path
        let modelFile = try SafeTensorsFile(contentsOf: modelPath) { header in
            try Checkpoint.checkHeader(header, path: modelPath)
            _ = try TrainingState(metadata: header.metadata)
        }
        let checkpoint = try Checkpoint(file: modelFile)
        let state = try TrainingState(metadata: modelFile.metadata)
        let optimizerFile = try SafeTensorsFile(contentsOf: optimizerPath) { header in
            try Self.checkOptimizerHeader(header, slots: slots, path: optimizerPath)
        }
        let momentum = try slots.map { slot throws -> Tensor in
            let name = Self.momentumPrefix + slot.name
            let stored = try optimizerFile.tensor(named: name)
            try ModelParameters.checkValues(stored, named: name, in: optimizerPath)
            return slot.isConvolutionWeight ? Convolution2DGeometry.fromPyTorchLayout(stored) : stored
        }
        self.init(parameters: checkpoint.parameters, momentum: momentum, state: state)
    }

    /// Requires exactly one F32 momentum buffer of the PyTorch shape per slot, and nothing else.
    private static func checkOptimizerHeader(
        _ header: SafeTensorsHeader, slots: [TensorSlot], path: String
    ) throws(ModelFileError) {
        let stored = Dictionary(header.entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for slot in slots {
            let name = momentumPrefix + slot.name
            guard let entry = stored[name] else {
                throw ModelFileError(.tensors, path: path, "no momentum buffer '\(name)'")
            }
            guard entry.dtype == .float32, entry.shape == slot.pytorchShape else {
                throw ModelFileError(
                    .tensors, path: path,
                    "'\(name)' is \(entry.dtype.rawValue) \(entry.shape), expected F32 \(slot.pytorchShape)")
            }
        }
        guard header.entries.count == slots.count else {
            let expected = Set(slots.map { momentumPrefix + $0.name })
            let extra = header.entries.map(\.name).filter { !expected.contains($0) }
            throw ModelFileError(
                .tensors, path: path,
                "\(extra.count) tensor(s) that are no momentum buffer of this network, e.g. '\(extra.first ?? "")'")
        }
    }
}
