// The model checkpoint: a GhostNet-D model's tensors and the metadata that describes its network, as
// one safetensors file that PyTorch users can open. Reading validates every metadata value against
// the network bounds before anything is built or any tensor data is read.

import GhostNet
import TensorEngine

/// A model checkpoint: every parameter and running statistic of the network under its PyTorch name
/// (see ``ModelParameters``), with `__metadata__`:
///
/// | key | value |
/// |---|---|
/// | `format_version` | ``formatVersion`` (`1`) |
/// | `data_crc32c` | CRC-32C of the data section, 8 hex digits |
/// | `arch` | `ghostnet101`, `ghostnet50` or `custom` |
/// | `blocks` | blocks per stage, e.g. `3,4,23,3` |
/// | `width`, `classes`, `image_size` | the ``GhostNetConfiguration`` |
/// | `seed`, `epoch`, `step` | the initialisation seed and the completed epochs and steps |
///
/// A run's checkpoint adds its ``TrainingState`` to this metadata and keeps the optimizer state in
/// a second file (``TrainingCheckpoint``).
package struct Checkpoint: Sendable {
    /// The checkpoint layout version written by this program.
    package static let formatVersion = 1
    /// The epochs and steps a checkpoint may record: 2^48 steps would take a run at a thousand steps
    /// a second nearly 9,000 years, and leave room for any arithmetic on them.
    package static let countRange = 0...(1 << 48)

    /// The model state; its structure's configuration is recorded in the metadata.
    package var parameters: ModelParameters
    /// The seed the model was initialised with.
    package var seed: UInt64
    /// Completed epochs.
    package var epoch: Int
    /// Completed optimizer steps.
    package var step: Int

    package init(parameters: ModelParameters, seed: UInt64, epoch: Int = 0, step: Int = 0) {
        self.parameters = parameters
        self.seed = seed
        self.epoch = epoch
        self.step = step
    }

    /// The network the checkpoint holds.
    package var configuration: GhostNetConfiguration { parameters.structure.configuration }

    /// The checkpoint as a safetensors file (not yet written).
    package var file: SafeTensorsFile {
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
        return file
    }

    /// Writes the checkpoint atomically to `path`.
    ///
    /// - Throws: ``SafeTensorsError`` when the file cannot be written; `path` is then unchanged.
    package func write(to path: String) throws {
        try file.write(to: path)
    }

    /// Reads and verifies the checkpoint at `path`. The metadata is validated, and the data size
    /// checked against the network it describes, before any tensor data is read.
    ///
    /// - Throws: ``SafeTensorsError`` for an unreadable, truncated or corrupted file,
    ///   ``ModelFileError`` when it is not a checkpoint of this format (missing, invalid or
    ///   out-of-bounds metadata, no checksum, more data than the network needs, unusable values),
    ///   ``ModelParametersError`` when its tensors do not match the network its metadata describes.
    package init(contentsOf path: String) throws {
        try self.init(file: try SafeTensorsFile(contentsOf: path) { try Self.checkHeader($0, path: path) })
    }

    /// Validates the metadata of the checkpoint header read from `path`, and that its data fits the
    /// network the metadata describes; a reader passes it to ``SafeTensorsFile/init(contentsOf:checkingHeader:)``.
    static func checkHeader(_ header: SafeTensorsHeader, path: String) throws {
        let description = try Description(metadata: header.metadata, path: path)
        try ModelParameters.checkDataLength(header.dataLength, for: description.structure, path: path)
    }

    /// Interprets an already read safetensors file as a checkpoint.
    package init(file: SafeTensorsFile) throws {
        let description = try Description(metadata: file.metadata, path: file.path)
        parameters = try ModelParameters(structure: description.structure, loadingFrom: file)
        seed = description.seed
        epoch = description.epoch
        step = description.step
    }

    /// The `__metadata__` keys.
    package enum MetadataKey {
        package static let formatVersion = "format_version"
        package static let architecture = "arch"
        package static let blocks = "blocks"
        package static let width = "width"
        package static let classes = "classes"
        package static let imageSize = "image_size"
        package static let seed = "seed"
        package static let epoch = "epoch"
        package static let step = "step"
    }

    /// What a checkpoint's metadata says, every value checked.
    private struct Description {
        let structure: GhostNetStructure
        let seed: UInt64
        let epoch: Int
        let step: Int

        init(metadata: [String: String], path: String) throws(ModelFileError) {
            let fields = MetadataFields(metadata: metadata, path: path)
            let version: Int = try fields.value(MetadataKey.formatVersion)
            guard version == Checkpoint.formatVersion else {
                throw fields.error(
                    "checkpoint format_version \(version) is not supported "
                        + "(this program reads version \(Checkpoint.formatVersion))"
                )
            }
            guard metadata[SafeTensorsFile.checksumKey] != nil else {
                throw fields.error("metadata has no '\(SafeTensorsFile.checksumKey)', so the data cannot be verified")
            }
            let blocksText: String = try fields.value(MetadataKey.blocks)
            guard let blocks = GhostNetConfiguration.blocksPerStage(parsing: blocksText) else {
                throw fields.error("metadata 'blocks' is '\(blocksText)', expected comma-separated integers")
            }
            let width: Int = try fields.value(MetadataKey.width)
            let classes: Int = try fields.value(MetadataKey.classes)
            let imageSize: Int = try fields.value(MetadataKey.imageSize)
            let configuration: GhostNetConfiguration
            do {
                configuration = try GhostNetConfiguration(
                    blocksPerStage: blocks, width: width, classes: classes, imageSize: imageSize)
            } catch {
                throw fields.error("metadata describes no valid network: \(error)")
            }
            let architecture: String = try fields.value(MetadataKey.architecture)
            guard architecture == configuration.architectureName else {
                throw fields.error(
                    "metadata 'arch' is '\(architecture)' but 'blocks' \(blocksText) "
                        + "make it '\(configuration.architectureName)'"
                )
            }
            structure = GhostNetStructure(configuration: configuration)
            seed = try fields.value(MetadataKey.seed)
            epoch = try fields.count(MetadataKey.epoch, in: Checkpoint.countRange)
            step = try fields.count(MetadataKey.step, in: Checkpoint.countRange)
        }
    }
}

/// Typed access to a file's string metadata, with errors that name the file and the key.
struct MetadataFields {
    let metadata: [String: String]
    let path: String

    func error(_ message: String) -> ModelFileError { ModelFileError(.metadata, path: path, message) }

    /// The text of `key`.
    func text(_ key: String) throws(ModelFileError) -> String {
        guard let text = metadata[key] else { throw error("metadata has no '\(key)'; not a ghostnet-d checkpoint?") }
        return text
    }

    /// The value of `key`, parsed without any conversion that could trap.
    func value<Value: LosslessStringConvertible>(_ key: String) throws(ModelFileError) -> Value {
        let text = try text(key)
        guard let value = Value(text) else {
            throw error("metadata '\(key)' is '\(text)', which is not a valid \(Value.self)")
        }
        return value
    }

    /// The integer value of `key`, which must lie in `range`.
    func count(_ key: String, in range: ClosedRange<Int>) throws(ModelFileError) -> Int {
        let number: Int = try value(key)
        guard range.contains(number) else {
            throw error("metadata '\(key)' is \(number), outside \(range.lowerBound)…\(range.upperBound)")
        }
        return number
    }

    /// The finite real value of `key`, which must lie in `range`.
    func real(_ key: String, in range: ClosedRange<Double>) throws(ModelFileError) -> Double {
        let number: Double = try value(key)
        guard number.isFinite, range.contains(number) else {
            throw error(
                "metadata '\(key)' is \(number), expected a finite number in \(range.lowerBound)…\(range.upperBound)")
        }
        return number
    }
}

/// A safetensors file that does not hold what ghostnet-d reads from it: a checkpoint with missing or
/// invalid metadata or unusable values, or an input of `model forward`/`model grad` whose tensors
/// do not fit.
package struct ModelFileError: Error, CustomStringConvertible, Sendable {
    /// What is wrong, for callers that react to the kind of failure.
    package enum Code: Sendable, Hashable {
        /// Metadata is missing, malformed or outside its bounds.
        case metadata
        /// A tensor is missing, has the wrong shape, or there is more data than the model needs.
        case tensors
        /// A tensor holds NaN or an infinity, or a running variance is negative.
        case values
    }

    package let code: Code
    /// The file concerned.
    package let path: String
    /// What is wrong, in words.
    package let message: String

    package init(_ code: Code, path: String, _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    package var description: String { "\(path): \(message)" }
}
