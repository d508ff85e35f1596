// A run's checkpoint: the model file (a ``Checkpoint`` whose metadata also holds the
// ``TrainingState``) and the optimizer file (one SGD momentum buffer per parameter, under PyTorch's
// `momentum_buffer.` names, and the weights' moving average under `ema.` names when the run keeps
// one, and each rank's running statistics in a preemption checkpoint), written atomically and read
// back only after both headers check out.

import Foundation
import GhostNet
import TensorEngine

/// The contents of one checkpoint of a run: the model (parameters and batch-norm running
/// statistics), the SGD momentum of every parameter, and the ``TrainingState``.
///
/// It is stored as the pair of files ``CheckpointDirectory`` names. The model file is a
/// ``Checkpoint`` (PyTorch names and layout, readable by `ghostnet-d eval` and by Python's
/// `safetensors`) whose metadata also carries the training state; the optimizer file holds each
/// momentum buffer as `momentum_buffer.<parameter name>` in PyTorch layout, with the same state, and
/// (with `trainer.ema_decay`) every tensor of the weights' moving average as `ema.<state_dict name>`,
/// kept out of the model file so that `eval` and `model forward` read the trained weights. Both files are written atomically (temporary file, fsync, rename) and verified by CRC-32C when
/// read.
package struct TrainingCheckpoint: Sendable {
    /// The name prefix of momentum buffers in the optimizer file (PyTorch's SGD state key).
    package static let momentumPrefix = "momentum_buffer."
    /// The name prefix of the moving average's tensors in the optimizer file (`ema.layer1.base.conv1.weight`).
    package static let averagePrefix = "ema."
    /// The name prefix of each rank's own running statistics in the optimizer file
    /// (`rank_statistics.1.layer1.0.bn1.running_mean`).
    package static let rankStatisticsPrefix = "rank_statistics."

    package var parameters: ModelParameters
    /// One momentum buffer per parameter slot, in slot order and the model's internal layout.
    package var momentum: [Tensor]
    package var state: TrainingState
    /// The weights' exponential moving average (`trainer.ema_decay`): every tensor of the model
    /// (parameters and running statistics), PyTorch layout; nil when the run keeps none.
    package var average: ModelParameters?
    /// Every rank's own batch-norm running statistics (rank order, then buffer order), kept by a
    /// preemption checkpoint taken mid-epoch, before the epoch's averaging: the model file holds
    /// their average, and a resume on as many ranks hands each rank its own back, so the run goes on
    /// bit-identically. Empty in every other checkpoint.
    package var rankStatistics: [[Tensor]] = []

    package init(parameters: ModelParameters, momentum: [Tensor], state: TrainingState, average: ModelParameters? = nil)
    {
        self.parameters = parameters
        self.momentum = momentum
        self.state = state
        self.average = average
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
        if let average {
            for (spec, tensor) in zip(average.structure.tensors, average.tensors) {
                optimizerFile.append(tensor, named: Self.averagePrefix + spec.name)
            }
        }
        let buffers = parameters.structure.tensors.filter { !$0.isTrainable }
        for (rank, statistics) in rankStatistics.enumerated() {
            for (spec, tensor) in zip(buffers, statistics) {
                optimizerFile.append(tensor, named: Self.rankStatisticsName(rank: rank, spec.name))
            }
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
        let structure = checkpoint.parameters.structure
        let optimizerFile = try SafeTensorsFile(contentsOf: optimizerPath) { header in
            try Self.checkOptimizerHeader(header, slots: slots, average: structure, path: optimizerPath)
        }
        let momentum = try slots.map { slot throws -> Tensor in
            let name = Self.momentumPrefix + slot.name
            let stored = try optimizerFile.tensor(named: name)
            try ModelParameters.checkValues(stored, named: name, in: optimizerPath)
            return slot.isConvolutionWeight ? Convolution2DGeometry.fromPyTorchLayout(stored) : stored
        }
        let average = try Self.average(in: optimizerFile, structure: structure)
        self.init(parameters: checkpoint.parameters, momentum: momentum, state: state, average: average)
        let buffers = structure.tensors.filter { !$0.isTrainable }
        rankStatistics = try (0..<Self.rankStatisticsCount(optimizerFile.names)).map { rank throws in
            try buffers.map { spec throws -> Tensor in
                let name = Self.rankStatisticsName(rank: rank, spec.name)
                let stored = try optimizerFile.tensor(named: name)
                try ModelParameters.checkValues(stored, named: name, in: optimizerPath)
                return stored
            }
        }
    }

    /// The weights' moving average a run with `trainer.ema_decay` saved beside the model file at
    /// `modelPath` (the `ema.` tensors of its optimizer file), to evaluate it (`eval --weights ema`).
    ///
    /// - Throws: ``ModelFileError`` naming the model file when no optimizer file lies beside it or that
    ///   file holds no `ema.` tensors, and naming the optimizer file when an average tensor is missing,
    ///   mis-shaped, NaN or infinite; ``SafeTensorsError`` when it cannot be read.
    package static func average(besideModelFile modelPath: String, structure: GhostNetStructure) throws
        -> ModelParameters
    {
        let optimizerPath = CheckpointDirectory.optimizerPath(ofModelFile: modelPath)
        let none = "no weight average (ema.*) to evaluate: the run that wrote it had no trainer.ema_decay"
        guard FileManager.default.fileExists(atPath: optimizerPath) else {
            throw ModelFileError(
                .tensors, path: modelPath, "\(none), or its optimizer file \(optimizerPath) is missing")
        }
        let file = try SafeTensorsFile(contentsOf: optimizerPath) { header throws(ModelFileError) in
            guard header.entries.contains(where: { $0.name.hasPrefix(averagePrefix) }) else {
                throw ModelFileError(.tensors, path: modelPath, "\(none) (\(optimizerPath) holds no ema.* tensor)")
            }
            try checkEntries(averageEntries(structure), in: header, path: optimizerPath)
        }
        return try average(in: file, structure: structure)!
    }

    /// The `ema.` tensors of an optimizer file, checked for finite values; nil when it holds none.
    private static func average(in file: SafeTensorsFile, structure: GhostNetStructure) throws -> ModelParameters? {
        guard file.names.contains(where: { $0.hasPrefix(averagePrefix) }) else { return nil }
        let tensors = try structure.tensors.map { spec throws -> Tensor in
            let name = averagePrefix + spec.name
            let stored = try file.tensor(named: name)
            try ModelParameters.checkValues(stored, named: name, in: file.path)
            return stored
        }
        return ModelParameters(structure: structure, orderedTensors: tensors)
    }

    /// The name, shape and role of every `ema.` tensor of `structure`'s average.
    private static func averageEntries(_ structure: GhostNetStructure) -> [(String, [Int], String)] {
        structure.tensors.map { (averagePrefix + $0.name, $0.shape, "moving average") }
    }

    /// Requires each `expected` tensor (name, shape, role) among `stored`, as F32 of that shape.
    private static func checkEntries(
        _ expected: [(String, [Int], String)], in header: SafeTensorsHeader, path: String
    ) throws(ModelFileError) {
        let stored = Dictionary(header.entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (name, shape, what) in expected {
            guard let entry = stored[name] else {
                throw ModelFileError(.tensors, path: path, "no \(what) '\(name)'")
            }
            guard entry.dtype == .float32, entry.shape == shape else {
                throw ModelFileError(
                    .tensors, path: path, "'\(name)' is \(entry.dtype.rawValue) \(entry.shape), expected F32 \(shape)")
            }
        }
    }

    private static func rankStatisticsName(rank: Int, _ buffer: String) -> String {
        "\(rankStatisticsPrefix)\(rank).\(buffer)"
    }

    /// The number of ranks whose statistics `names` hold: one more than the highest rank named
    /// (the header check requires every rank below it to be complete).
    private static func rankStatisticsCount(_ names: [String]) -> Int {
        names.compactMap { name -> Int? in
            guard name.hasPrefix(rankStatisticsPrefix) else { return nil }
            return Int(name.dropFirst(rankStatisticsPrefix.count).prefix { $0 != "." })
        }.max().map { $0 + 1 } ?? 0
    }

    /// Requires exactly one F32 momentum buffer of the PyTorch shape per slot and, when any `ema.`
    /// tensor is present, one F32 average of every tensor of `average`; nothing else.
    private static func checkOptimizerHeader(
        _ header: SafeTensorsHeader, slots: [TensorSlot], average: GhostNetStructure, path: String
    ) throws(ModelFileError) {
        var expected = slots.map { (momentumPrefix + $0.name, $0.pytorchShape, "momentum buffer") }
        if header.entries.contains(where: { $0.name.hasPrefix(averagePrefix) }) {
            expected += averageEntries(average)
        }
        let buffers = average.tensors.filter { !$0.isTrainable }
        for rank in 0..<rankStatisticsCount(header.entries.map(\.name)) {
            expected += buffers.map { (rankStatisticsName(rank: rank, $0.name), $0.shape, "rank's running statistic") }
        }
        try checkEntries(expected, in: header, path: path)
        guard header.entries.count == expected.count else {
            let known = Set(expected.map(\.0))
            let extra = header.entries.map(\.name).filter { !known.contains($0) }
            throw ModelFileError(
                .tensors, path: path,
                "\(extra.count) tensor(s) that are no momentum buffer, moving average or rank statistic of this "
                    + "network, e.g. '\(extra.first ?? "")'")
        }
    }
}
