//===----------------------------------------------------------------------===//
// ghostnet-d — Training
//===----------------------------------------------------------------------===//

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
public struct TrainingCheckpoint: Sendable {
    /// The name prefix of momentum buffers in the optimizer file (PyTorch's SGD state key).
    public static let momentumPrefix = "momentum_buffer."

    public var parameters: ModelParameters
    /// One momentum buffer per parameter slot, in slot order and the model's internal layout.
    public var momentum: [Tensor]
    public var state: TrainingState

    public init(parameters: ModelParameters, momentum: [Tensor], state: TrainingState) {
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
    /// - Throws: The file system's error (`SafeTensorsError`), naming the file.
    public func write(to entry: CheckpointDirectory.Entry, slots: [TensorSlot], seed: UInt64) throws {
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

    /// Reads and verifies both files of `entry`.
    ///
    /// - Parameter slots: The parameter slots of the network the run trains; every slot must have
    ///   a momentum buffer of its shape.
    /// - Throws: `SafeTensorsError` (unreadable, truncated, corrupt), `CheckpointError` (not a
    ///   checkpoint), ``TrainingStateError`` (no training state), ``TrainingError`` (missing or
    ///   mis-shaped momentum).
    public init(contentsOf entry: CheckpointDirectory.Entry, slots: [TensorSlot]) throws {
        let modelFile = try SafeTensorsFile(contentsOf: entry.modelURL.path)
        let checkpoint = try Checkpoint(file: modelFile)
        let state = try TrainingState(metadata: modelFile.metadata)
        let optimizerFile = try SafeTensorsFile(contentsOf: entry.optimizerURL.path)
        let momentum = try slots.map { slot throws -> Tensor in
            let name = Self.momentumPrefix + slot.name
            guard optimizerFile.entry(named: name) != nil else {
                throw TrainingError(.checkpoint, "\(entry.optimizerURL.path): no momentum buffer '\(name)'")
            }
            let stored = try optimizerFile.tensor(named: name)
            guard stored.shape == slot.pytorchShape else {
                throw TrainingError(.checkpoint, "\(entry.optimizerURL.path): '\(name)' has shape \(stored.shape), expected \(slot.pytorchShape)")
            }
            return slot.isConvolutionWeight ? Convolution2DGeometry.fromPyTorchLayout(stored) : stored
        }
        self.init(parameters: checkpoint.parameters, momentum: momentum, state: state)
    }
}
