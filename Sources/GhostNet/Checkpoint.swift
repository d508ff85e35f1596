//===----------------------------------------------------------------------===//
// ghostnet-d — GhostNet
//===----------------------------------------------------------------------===//

import TensorEngine

/// A training checkpoint: model state, optimizer state and where training stood, stored as one
/// safetensors file that the Python `safetensors` package can open.
///
/// Layout: the model tensors under their PyTorch names (see ``ModelParameters``), optimizer
/// buffers under ``optimizerPrefix`` (e.g. `optimizer.momentum.fc.weight`), and `__metadata__`:
///
/// | key | value |
/// |---|---|
/// | `format_version` | ``formatVersion`` (`1`) |
/// | `data_crc32c` | CRC-32C of the data section, 8 hex digits |
/// | `arch` | `ghostnet101`, `ghostnet50` or `custom` |
/// | `blocks` | blocks per stage, e.g. `3,4,23,3` |
/// | `width`, `classes`, `image_size` | the ``GhostNetConfiguration`` |
/// | `seed`, `epoch`, `step` | the initialisation seed and the completed epochs and steps |
public struct Checkpoint: Sendable {
    /// The checkpoint layout version written by this program.
    public static let formatVersion = 1
    /// The name prefix of optimizer state tensors.
    public static let optimizerPrefix = "optimizer."

    /// The model state; its structure's configuration is recorded in the metadata.
    public var parameters: ModelParameters
    /// Optimizer buffers by name (without ``optimizerPrefix``), written in name order.
    public var optimizerState: [String: Tensor]
    /// The seed the model was initialised with.
    public var seed: UInt64
    /// Completed epochs.
    public var epoch: Int
    /// Completed optimizer steps.
    public var step: Int

    public init(
        parameters: ModelParameters, optimizerState: [String: Tensor] = [:], seed: UInt64, epoch: Int = 0, step: Int = 0
    ) {
        self.parameters = parameters
        self.optimizerState = optimizerState
        self.seed = seed
        self.epoch = epoch
        self.step = step
    }

    /// The network the checkpoint holds.
    public var configuration: GhostNetConfiguration { parameters.structure.configuration }

    /// The checkpoint as a safetensors file (not yet written).
    public var file: SafeTensorsFile {
        let configuration = configuration
        var file = SafeTensorsFile(metadata: [
            MetadataKey.formatVersion: "\(Self.formatVersion)",
            MetadataKey.architecture: configuration.architectureName,
            MetadataKey.blocks: configuration.blocksText,
            MetadataKey.width: "\(configuration.width)",
            MetadataKey.classes: "\(configuration.classes)",
            MetadataKey.imageSize: "\(configuration.imageSize)",
            MetadataKey.seed: "\(seed)",
            MetadataKey.epoch: "\(epoch)",
            MetadataKey.step: "\(step)",
        ])
        parameters.append(to: &file)
        for name in optimizerState.keys.sorted() {
            file.append(optimizerState[name]!, named: Self.optimizerPrefix + name)
        }
        return file
    }

    /// Writes the checkpoint atomically to `path`.
    ///
    /// - Throws: ``SafeTensorsError`` when the file cannot be written; `path` is then unchanged.
    public func write(to path: String) throws {
        try file.write(to: path)
    }

    /// Reads and verifies the checkpoint at `path`.
    ///
    /// - Throws: ``SafeTensorsError`` for an unreadable, truncated or corrupted file,
    ///   ``ModelFileError`` when it is not a checkpoint of this format (missing or invalid
    ///   metadata, no checksum), ``ModelParametersError`` when its tensors do not match the network
    ///   its metadata describes.
    public init(contentsOf path: String) throws {
        let file = try SafeTensorsFile(contentsOf: path)
        try self.init(file: file)
    }

    /// Interprets an already read safetensors file as a checkpoint.
    public init(file: SafeTensorsFile) throws {
        let fields = CheckpointFields(metadata: file.metadata, path: file.path)
        let version: Int = try fields.value(MetadataKey.formatVersion)
        guard version == Self.formatVersion else {
            throw ModelFileError(path: file.path, "checkpoint format_version \(version) is not supported (this program reads version \(Self.formatVersion))")
        }
        guard file.metadata[SafeTensorsFile.checksumKey] != nil else {
            throw ModelFileError(path: file.path, "metadata has no '\(SafeTensorsFile.checksumKey)', so the data cannot be verified")
        }
        let blocksText: String = try fields.value(MetadataKey.blocks)
        guard let blocks = GhostNetConfiguration.blocksPerStage(parsing: blocksText) else {
            throw ModelFileError(path: file.path, "metadata 'blocks' is '\(blocksText)', expected comma-separated integers")
        }
        let configuration: GhostNetConfiguration
        do {
            configuration = try GhostNetConfiguration(
                blocksPerStage: blocks, width: try fields.value(MetadataKey.width),
                classes: try fields.value(MetadataKey.classes), imageSize: try fields.value(MetadataKey.imageSize))
        } catch let error as GhostNetConfigurationError {
            throw ModelFileError(path: file.path, "metadata describes no valid network: \(error)")
        }
        let architecture: String = try fields.value(MetadataKey.architecture)
        guard architecture == configuration.architectureName else {
            throw ModelFileError(path: file.path, "metadata 'arch' is '\(architecture)' but 'blocks' \(blocksText) make it '\(configuration.architectureName)'")
        }
        parameters = try ModelParameters(
            structure: GhostNetStructure(configuration: configuration), loadingFrom: file,
            ignoredPrefixes: [Self.optimizerPrefix])
        var optimizerState: [String: Tensor] = [:]
        for name in file.names where name.hasPrefix(Self.optimizerPrefix) {
            optimizerState[String(name.dropFirst(Self.optimizerPrefix.count))] = try file.tensor(named: name)
        }
        self.optimizerState = optimizerState
        seed = try fields.value(MetadataKey.seed)
        epoch = try fields.value(MetadataKey.epoch)
        step = try fields.value(MetadataKey.step)
    }

    /// The `__metadata__` keys.
    public enum MetadataKey {
        public static let formatVersion = "format_version"
        public static let architecture = "arch"
        public static let blocks = "blocks"
        public static let width = "width"
        public static let classes = "classes"
        public static let imageSize = "image_size"
        public static let seed = "seed"
        public static let epoch = "epoch"
        public static let step = "step"
    }
}

/// Typed access to a checkpoint's string metadata, with errors that name the key.
private struct CheckpointFields {
    let metadata: [String: String]
    let path: String

    func value<Value: LosslessStringConvertible>(_ key: String) throws -> Value {
        guard let text = metadata[key] else {
            throw ModelFileError(path: path, "metadata has no '\(key)'; not a ghostnet-d checkpoint?")
        }
        guard let value = Value(text) else {
            throw ModelFileError(path: path, "metadata '\(key)' is '\(text)', which is not a valid \(Value.self)")
        }
        return value
    }
}

/// A safetensors file that does not hold what ghostnet-d reads from it: a checkpoint with missing or
/// invalid metadata, or an input of `model forward`/`model grad` whose tensors do not fit.
public struct ModelFileError: Error, CustomStringConvertible, Sendable {
    /// The file concerned.
    public let path: String
    /// What is wrong, in words.
    public let message: String

    public init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}
