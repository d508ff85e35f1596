// A run's checkpoint folder: file names by epoch and step, newest-first listing, pruning, and the
// choice of the newest checkpoint that reads and validates (the others are skipped with a warning).

import Foundation
import TensorEngine

/// The checkpoint policy of a run's checkpoint folder: names, order, retention and choosing the one
/// to resume from. It does not read or write checkpoint contents; the caller writes the files
/// (atomically: temporary name, fsync, rename) and supplies a validation closure.
///
/// A checkpoint is a pair of files named by its epoch and global step:
/// `ckpt-e0003-s000120.safetensors` (model weights and ``TrainingState`` metadata) and
/// `ckpt-e0003-s000120.optimizer.safetensors` (momentum buffers). Any other file in the folder,
/// including temporary files of an interrupted write, is ignored.
package struct CheckpointDirectory: Sendable {
    /// One checkpoint in the folder.
    package struct Entry: Sendable, Equatable {
        package let epoch: Int
        package let globalStep: Int
        /// The model file, e.g. `/run/checkpoints/ckpt-e0003-s000120.safetensors`.
        package let modelURL: URL
        /// The optimizer-state file beside it.
        package let optimizerURL: URL

        /// The model file's name, as recorded in ``TrainingState/bestCheckpoint``.
        package var name: String { modelURL.lastPathComponent }
    }

    package let url: URL
    /// How many of the newest checkpoints ``prune(keepingAlso:)`` keeps (besides the best).
    package let keep: Int

    static let prefix = "ckpt-e", stepMarker = "-s", modelSuffix = ".safetensors",
        optimizerSuffix = ".optimizer.safetensors"

    /// - Precondition: `keep >= 1`.
    package init(url: URL, keep: Int) {
        precondition(keep >= 1, "at least one checkpoint must be kept")
        self.url = url
        self.keep = keep
    }

    /// The entry for a checkpoint taken at `epoch`, `globalStep` (whether or not it exists yet).
    package func entry(epoch: Int, globalStep: Int) -> Entry {
        let stem = Self.prefix + Self.padded(epoch, 4) + Self.stepMarker + Self.padded(globalStep, 6)
        return Entry(
            epoch: epoch, globalStep: globalStep,
            modelURL: url.appendingPathComponent(stem + Self.modelSuffix),
            optimizerURL: url.appendingPathComponent(stem + Self.optimizerSuffix))
    }

    /// The optimizer file beside a model file: `X.safetensors` → `X.optimizer.safetensors`.
    package static func optimizerPath(ofModelFile modelPath: String) -> String {
        (modelPath.hasSuffix(modelSuffix) ? String(modelPath.dropLast(modelSuffix.count)) : modelPath)
            + optimizerSuffix
    }

    private static func padded(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    private static func isDigit(_ character: Character) -> Bool { character.isASCII && character.isNumber }

    /// The (epoch, step) a model file name encodes, or nil for any other name.
    static func parse(modelFileName name: String) -> (epoch: Int, globalStep: Int)? {
        guard name.hasPrefix(prefix), name.hasSuffix(modelSuffix), !name.hasSuffix(optimizerSuffix) else { return nil }
        let stem = name.dropFirst(prefix.count).dropLast(modelSuffix.count)
        let parts = stem.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].first == "s",
            parts[0].count >= 4, parts[0].allSatisfy(isDigit), let epoch = Int(parts[0]), epoch >= 0,
            parts[1].count >= 7, parts[1].dropFirst().allSatisfy(isDigit), let step = Int(parts[1].dropFirst()),
            step >= 0
        else { return nil }
        return (epoch, step)
    }

    /// The checkpoints whose model file exists, newest (highest global step) first.
    ///
    /// - Throws: ``CheckpointDirectoryError`` when the folder exists but cannot be read. A missing
    ///   folder has no checkpoints.
    package func list() throws(CheckpointDirectoryError) -> [Entry] {
        let names: [String]
        do {
            guard FileManager.default.fileExists(atPath: url.path) else { return [] }
            names = try FileManager.default.contentsOfDirectory(atPath: url.path)
        } catch {
            throw CheckpointDirectoryError(
                path: url.path, message: "cannot list the checkpoint folder: \(FileErrorText.reason(error))")
        }
        return names.compactMap(Self.parse(modelFileName:))
            .map { entry(epoch: $0.epoch, globalStep: $0.globalStep) }
            .sorted { ($0.globalStep, $0.epoch) > ($1.globalStep, $1.epoch) }
    }

    /// Deletes every checkpoint but the ``keep`` newest and the one named `bestName`.
    ///
    /// - Parameter bestName: The best checkpoint's model file name (``TrainingState/bestCheckpoint``).
    /// - Returns: The deleted checkpoints, newest first.
    /// - Throws: ``CheckpointDirectoryError`` naming the file that could not be deleted.
    @discardableResult
    package func prune(keepingAlso bestName: String?) throws(CheckpointDirectoryError) -> [Entry] {
        let doomed = try list().dropFirst(keep).filter { $0.name != bestName }
        for entry in doomed {
            for file in [entry.modelURL, entry.optimizerURL] where FileManager.default.fileExists(atPath: file.path) {
                do {
                    try FileManager.default.removeItem(at: file)
                } catch {
                    throw CheckpointDirectoryError(
                        path: file.path, message: "cannot delete an old checkpoint: \(FileErrorText.reason(error))")
                }
            }
        }
        return Array(doomed)
    }

    /// The newest checkpoint that is complete and passes `validate`, skipping the others.
    ///
    /// A checkpoint without its optimizer file, or whose `validate` throws (truncated, corrupt,
    /// unreadable), is reported through `warn` and the next older one is tried.
    ///
    /// - Parameters:
    ///   - validate: Opens the checkpoint's files and throws if they cannot be used.
    ///   - warn: Receives one line per skipped checkpoint, naming the file and the reason.
    /// - Returns: The checkpoint to resume from, or nil when none is usable.
    package func newestValid(
        validate: (Entry) throws -> Void, warn: (String) -> Void
    ) throws(CheckpointDirectoryError) -> Entry? {
        for entry in try list() {
            guard FileManager.default.fileExists(atPath: entry.optimizerURL.path) else {
                warn(
                    "skipping checkpoint \(entry.modelURL.path): "
                        + "its optimizer state \(entry.optimizerURL.lastPathComponent) is missing"
                )
                continue
            }
            do {
                try validate(entry)
                return entry
            } catch {
                warn("skipping checkpoint \(entry.modelURL.path): \(error)")
            }
        }
        return nil
    }
}

/// A checkpoint folder that cannot be listed or cleaned.
package struct CheckpointDirectoryError: Error, Sendable, CustomStringConvertible {
    package var path: String
    package var message: String

    package var description: String { "\(path): \(message)" }
}
