// `train --init-from FILE`: the named tensors of a weights file a run starts from, whichever of the
// three formats it is (a ghostnet-d checkpoint, a PyTorch state_dict in safetensors, a MindSpore
// `.ckpt`), read by those formats' own loaders; InitialWeights+Matching.swift matches them to the run.

import Checkpoints
import GhostNet
import TensorEngine

/// The tensors of a file a run starts from, under PyTorch names, before they are matched to the
/// run's network.
package struct InitialWeights {
    /// What the file is, told by its first bytes and, for safetensors, its metadata.
    package enum Format: Sendable, Equatable, CustomStringConvertible {
        /// A ghostnet-d checkpoint (`format_version` metadata), described as its metadata says.
        case checkpoint(GhostNetConfiguration, epoch: Int)
        /// A safetensors file without ghostnet-d metadata: PyTorch's `save_file(model.state_dict())`.
        case stateDict
        /// MindSpore's protobuf `Checkpoint` of named tensors.
        case mindSpore

        package var description: String {
            switch self {
            case .checkpoint(let network, let epoch):
                "ghostnet-d checkpoint: \(network.architectureName) blocks \(network.blocksText) width "
                    + "\(network.width), \(network.classes) classes, after epoch \(epoch)"
            case .stateDict: "PyTorch state_dict in safetensors"
            case .mindSpore: "MindSpore .ckpt"
            }
        }
    }

    /// One tensor of the file.
    struct Entry {
        /// The PyTorch name it maps to.
        let name: String
        /// How the file names it, when that differs (MindSpore), for messages.
        let fileName: String
        let shape: [Int]
        /// Why it cannot be read as float32 (its dtype), or nil.
        let unreadable: String?
        let read: () throws -> Tensor
    }

    /// The file read.
    package let path: String
    package let format: Format
    let entries: [Entry]
    /// Values that are not model tensors and are skipped: PyTorch's `num_batches_tracked` counters,
    /// MindSpore's optimizer state and step counters.
    package let skipped: Int

    /// The first bytes of a safetensors file: an 8-byte little-endian header length, then `{`.
    private static let safeTensorsOpening = 8
    /// MindSpore's `Checkpoint.value` is field 1, length-delimited: tag byte `0x0A`.
    private static let mindSporeOpening: UInt8 = 0x0A

    /// Reads `path`, telling its format from its first bytes.
    ///
    /// - Throws: ``InteropError`` `.unknownFormat` naming the file when it is none of the three
    ///   formats (with advice for a PyTorch pickle); the formats' own errors (``SafeTensorsError``
    ///   for a missing, unreadable or truncated file, ``ModelFileError``, ``InteropError``).
    package init(contentsOf path: String) throws {
        let head: [UInt8] = try POSIXFile.withOpenFile(path) { descriptor, size in
            var bytes = [UInt8](repeating: 0, count: min(size, Self.safeTensorsOpening + 1))
            try bytes.withUnsafeMutableBytes { try POSIXFile.readExactly($0, from: descriptor, path: path) }
            return bytes
        }
        self.path = path
        if head.count > Self.safeTensorsOpening, head[Self.safeTensorsOpening] == UInt8(ascii: "{") {
            let read = try Self.safeTensors(path)
            format = read.format
            entries = read.entries
            skipped = read.skipped
        } else if head.first == Self.mindSporeOpening {
            let read = try Self.mindSpore(MindSporeCheckpoint(contentsOf: path))
            format = .mindSpore
            entries = read.entries
            skipped = read.skipped
        } else {
            throw InteropError(.unknownFormat, file: path, Self.unknownFormatMessage(head))
        }
    }

    private static func unknownFormatMessage(_ head: [UInt8]) -> String {
        let expected =
            "expected a ghostnet-d checkpoint, a PyTorch state_dict in safetensors or a MindSpore .ckpt"
        if head.isEmpty { return "is empty; \(expected)" }
        // torch.save writes a zip archive (PK\3\4) or, before PyTorch 1.6, a pickle (protocol byte 0x80).
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.first == 0x80 {
            return "is a PyTorch pickle (torch.save), which is not read; "
                + "save it with safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')"
        }
        return "is not a weights file this program reads; \(expected)"
    }

    /// A ghostnet-d checkpoint, read and verified by ``Checkpoint``, or a plain state_dict.
    private static func safeTensors(_ path: String) throws -> (format: Format, entries: [Entry], skipped: Int) {
        let file = try SafeTensorsFile(contentsOf: path)
        if file.metadata[Checkpoint.MetadataKey.formatVersion] != nil {
            let checkpoint = try Checkpoint(file: file)
            let parameters = checkpoint.parameters
            let entries = zip(parameters.structure.tensors, parameters.tensors).map { spec, tensor in
                Entry(name: spec.name, fileName: spec.name, shape: spec.shape, unreadable: nil, read: { tensor })
            }
            return (.checkpoint(checkpoint.configuration, epoch: checkpoint.epoch), entries, 0)
        }
        var entries: [Entry] = []
        var skipped = 0
        for entry in file.entries {
            // PyTorch's batch counters never affect a result (see ModelParameters).
            if entry.name.hasSuffix(".num_batches_tracked") && entry.dtype != .float32 {
                skipped += 1
                continue
            }
            entries.append(
                Entry(
                    name: entry.name, fileName: entry.name, shape: entry.shape,
                    unreadable: entry.dtype == .float32 ? nil : entry.dtype.rawValue,
                    read: {
                        let tensor = try file.tensor(named: entry.name)
                        try ModelParameters.checkValues(tensor, named: entry.name, in: path)
                        return tensor
                    }))
        }
        return (.stateDict, entries, skipped)
    }

    /// A MindSpore checkpoint under the PyTorch names of ``MindSporeImport``'s mapping.
    private static func mindSpore(_ checkpoint: MindSporeCheckpoint) throws -> (entries: [Entry], skipped: Int) {
        var entries: [Entry] = []
        var skipped = 0
        for value in checkpoint.values {
            guard let name = MindSporeImport.pytorchName(value.tag) else {
                skipped += 1
                continue
            }
            let unreadable = value.tensorType == MindSporeCheckpoint.float32 ? nil : value.tensorType
            entries.append(
                Entry(
                    name: name, fileName: value.tag, shape: value.dims, unreadable: unreadable,
                    read: {
                        let tensor = try checkpoint.tensor(value)
                        try ModelParameters.checkValues(tensor, named: value.tag, in: checkpoint.path)
                        return tensor
                    }))
        }
        return (entries, skipped)
    }
}
