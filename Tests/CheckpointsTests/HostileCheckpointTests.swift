// Hostile checkpoints (issue 19, class 4): absurd metadata, files much larger than their header
// says, FIFOs and devices named *.safetensors, NaN weights and negative running variances. Each is
// refused with the exact error, before anything is allocated or read, and never traps or hangs.

import Checkpoints
import Foundation
import GhostNet
import TensorEngine
import Testing
import _TestSupport

@Suite struct HostileCheckpointTests {
    // MARK: - Metadata out of bounds

    @Test(arguments: [
        (
            "width", "4611686018427387904",
            "metadata describes no valid network: width (stem channels) must be in 2…1024, got 4611686018427387904"
        ),
        ("width", "1e300", "metadata 'width' is '1e300', which is not a valid Int"),
        (
            "blocks", "3,4,1000000,3",
            "metadata describes no valid network: blocks per stage must be four counts in 1…64, got [3, 4, 1000000, 3]"
        ),
        (
            "blocks", "3,4,99999999999999999999,3",
            "metadata 'blocks' is '3,4,99999999999999999999,3', expected comma-separated integers"
        ),
        (
            "image_size", "100000",
            "metadata describes no valid network: image size must be in 1…4096 pixels, got 100000"
        ),
        ("classes", "-5", "metadata describes no valid network: classes must be in 1…100000, got -5"),
        ("epoch", "9223372036854775807", "metadata 'epoch' is 9223372036854775807, outside 0…281474976710656"),
        ("step", "-1", "metadata 'step' is -1, outside 0…281474976710656"),
        ("seed", "18446744073709551616", "metadata 'seed' is '18446744073709551616', which is not a valid UInt64"),
    ])
    func absurdMetadataIsRefusedBeforeAnythingIsBuilt(key: String, value: String, message: String) throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try writeTinyCheckpoint(in: directory) { $0.metadata[key] = value }
        expectModelFileError(.metadata, "\(path): \(message)") { _ = try Checkpoint(contentsOf: path) }
    }

    /// The bounds sit below any arithmetic overflow: a network at every upper bound is still
    /// described (and refused for its size) without a trap.
    @Test func theLargestDescribableNetworkIsRefusedForItsSizeWithoutOverflow() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try writeTinyCheckpoint(in: directory) { $0.metadata["width"] = "1024" }
        #expect { _ = try Checkpoint(contentsOf: path) } throws: { error in
            (error as? ModelFileError)?.code == .metadata
                && "\(error)".hasPrefix(
                    "\(path): metadata describes no valid network: blocks 3,4,3,3, width 1024 and 10 classes make ")
                && "\(error)".hasSuffix(
                    " parameters, more than the 1073741824 (4 GiB of float32) one machine is sized for")
        }
        let bounds = GhostNetConfiguration.self
        #expect {
            _ = try GhostNetConfiguration(
                blocksPerStage: Array(repeating: bounds.blocksRange.upperBound, count: 4),
                width: bounds.widthRange.upperBound,
                classes: bounds.classesRange.upperBound, imageSize: bounds.imageSizeRange.upperBound)
        } throws: { error in
            "\(error)".hasPrefix("blocks 64,64,64,64, width 1024 and 100000 classes make ")
                && "\(error)".hasSuffix(
                    " parameters, more than the 1073741824 (4 GiB of float32) one machine is sized for")
        }
    }

    @Test func absurdTrainingStateIsRefused() throws {
        var metadata = TrainingState(seed: 1, learningRate: 0.1, worldSize: 2).metadata
        let cases: [(String, String, String)] = [
            ("training.global_step", "9223372036854775807", "an integer in 0…281474976710656"),
            ("training.world_size", "0", "an integer in 1…1048576"),
            ("training.learning_rate", "nan", "a finite number ≥ 0"),
            ("training.best_accuracy", "7", "a number in 0…1"),
            (
                "training.best_checkpoint", "../../etc/passwd",
                "a checkpoint file name such as ckpt-e0003-s000120.safetensors"
            ),
        ]
        for (key, value, expected) in cases {
            var edited = metadata
            edited[key] = value
            #expect(throws: TrainingStateError(key: key, value: value, expected: expected)) {
                try TrainingState(metadata: edited)
            }
        }
        metadata["training.epoch"] = "281474976710656"
        #expect(try TrainingState(metadata: metadata).epoch == 1 << 48)
    }

    // MARK: - Files that are not what their header says

    /// A 6 GB sparse file whose header describes a few hundred bytes is refused from its size,
    /// without reading or allocating the rest.
    @Test func aFileMuchLargerThanItsHeaderSaysIsNotRead() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("sparse.safetensors").path
        var file = SafeTensorsFile()
        file.append(Tensor(shape: [4], repeating: 1), named: "w")
        try file.write(to: path)
        let written = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        let size = 6 << 30
        #expect(truncate(path, off_t(size)) == 0)
        let dataBytes = size - written + 16
        expectSafeTensorsError(
            .invalidLayout,
            "\(dataBytes - 16) bytes of trailing data after the last tensor (the header describes 16 data bytes, "
                + "the file holds \(dataBytes)); the file is not read"
        ) { _ = try SafeTensorsFile(contentsOf: path) }
    }

    /// A header that describes more data than this machine has memory is refused before the read.
    @Test func tensorsLargerThanMemoryAreRefused() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("huge.safetensors").path
        let elements = Int(ProcessInfo.processInfo.physicalMemory / 4) + 1
        let header = Array(
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[\(elements)],\"data_offsets\":[0,\(elements * 4)]}}".utf8)
        try Data(withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header)
            .write(to: URL(fileURLWithPath: path))
        #expect(truncate(path, off_t(8 + header.count + elements * 4)) == 0)
        expectSafeTensorsError(
            .tooLarge,
            "the tensors need \(elements * 4) bytes, "
                + "more than this machine's \(ProcessInfo.processInfo.physicalMemory) bytes of memory"
        ) { _ = try SafeTensorsFile(contentsOf: path) }
    }

    /// A FIFO would block `open` until a writer appears; it is refused from its `stat` instead, as
    /// are directories and devices.
    @Test func onlyRegularFilesAreOpened() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let fifo = directory.appendingPathComponent("ckpt-e0001-s000010.safetensors").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let folder = directory.appendingPathComponent("folder.safetensors").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        for (path, kind) in [(fifo, "a FIFO"), (folder, "a directory"), ("/dev/zero", "a device")] {
            expectSafeTensorsError(.notRegularFile, "is \(kind), not a regular file; refusing to read it") {
                _ = try Checkpoint(contentsOf: path)
            }
        }
    }

    @Test func moreTensorDataThanTheNetworkNeedsIsRefusedUnread() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try writeTinyCheckpoint(in: directory) { $0.append(Tensor(shape: [1 << 16]), named: "padding") }
        let structure = try tinyStructure()
        let needed = structure.tensors.reduce(0) { $0 + 4 * $1.elementCount }
        let limit = needed + 8 * structure.tensors.filter { $0.name.hasSuffix(".running_mean") }.count
        expectModelFileError(
            .tensors,
            "\(path): the header describes \(needed + 4 << 16) bytes of tensors but the network "
                + "(blocks 3,4,3,3, width 8, 10 classes) needs at most \(limit)"
        ) { _ = try Checkpoint(contentsOf: path) }
    }

    // MARK: - Unusable values

    @Test(arguments: [
        ("fc.weight", 5, Float.nan, "holds nan at element 5"),
        ("layer2.base.conv2.weight", 0, -Float.infinity, "holds -inf at element 0"),
        ("bn1.running_var", 2, -0.5, "holds a negative running variance (-0.5) at element 2"),
        ("layer4.end.bn3.running_var", 1, Float.infinity, "holds inf at element 1"),
    ])
    func unusableValuesAreRefusedNamingTheTensor(name: String, index: Int, value: Float, message: String) throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        var parameters = ModelParameters.initialized(for: try tinyStructure(), seed: 4)
        var scalars = parameters[name].scalars
        scalars[index] = value
        parameters[name] = Tensor(shape: parameters[name].shape, scalars: scalars)
        let path = directory.appendingPathComponent("bad.safetensors").path
        try Checkpoint(parameters: parameters, seed: 4).write(to: path)
        expectModelFileError(
            .values, "\(path): tensor '\(name)' \(message); a usable model has finite values and running variances ≥ 0"
        ) { _ = try Checkpoint(contentsOf: path) }
    }

    // MARK: - Resume skips, the model commands explain

    /// `train --resume` takes the newest checkpoint that validates: hostile newer ones are skipped,
    /// each with a warning that names the file and the reason.
    @Test func resumeSkipsHostileCheckpoints() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let directory = CheckpointDirectory(url: folder, keep: 5)
        let model = try tinyModel(seed: 5)
        let slots = model.parameterSlots
        func save(epoch: Int, edit: (inout ModelParameters) -> Void = { _ in }) throws -> CheckpointDirectory.Entry {
            let entry = directory.entry(epoch: epoch, globalStep: epoch * 10)
            var parameters = model.exportedParameters
            edit(&parameters)
            let state = TrainingState(epoch: epoch, globalStep: epoch * 10, seed: 5, learningRate: 0.1, worldSize: 1)
            try TrainingCheckpoint(
                parameters: parameters, momentum: slots.map { Tensor(shape: $0.shape) }, state: state
            )
            .write(to: entry, slots: slots, seed: 5)
            return entry
        }
        let good = try save(epoch: 1)
        let negative = try save(epoch: 2) { parameters in
            parameters["bn1.running_var"] = Tensor(shape: [8], repeating: -1)
        }
        let absurd = try save(epoch: 3)
        var file = try SafeTensorsFile(contentsOf: absurd.modelURL.path)
        file.metadata["training.global_step"] = "9223372036854775807"
        try file.write(to: absurd.modelURL.path)
        let fifo = directory.entry(epoch: 4, globalStep: 40)
        #expect(mkfifo(fifo.modelURL.path, 0o600) == 0 && mkfifo(fifo.optimizerURL.path, 0o600) == 0)

        var warnings: [String] = []
        let chosen = try directory.newestValid(
            validate: { _ = try TrainingCheckpoint(contentsOf: $0, slots: slots) }, warn: { warnings.append($0) })
        #expect(chosen == good)
        #expect(
            warnings == [
                "skipping checkpoint \(fifo.modelURL.path): \(fifo.modelURL.path): "
                    + "is a FIFO, not a regular file; refusing to read it",
                "skipping checkpoint \(absurd.modelURL.path): "
                    + "checkpoint metadata training.global_step is \"9223372036854775807\"; "
                    + "expected an integer in 0…281474976710656",
                "skipping checkpoint \(negative.modelURL.path): \(negative.modelURL.path): "
                    + "tensor 'bn1.running_var' holds a negative running variance (-1.0) at element 0; "
                    + "a usable model has finite values and running variances ≥ 0",
            ])
    }

    // MARK: - Helpers

    /// Writes a tiny model checkpoint, edited by `edit` before writing, and returns its path.
    private func writeTinyCheckpoint(in directory: URL, edit: (inout SafeTensorsFile) -> Void) throws -> String {
        var file = Checkpoint(parameters: .initialized(for: try tinyStructure(), seed: 4), seed: 4).file
        edit(&file)
        let path = directory.appendingPathComponent("hostile.safetensors").path
        try file.write(to: path)
        return path
    }
}

/// Expects `body` to throw a ``ModelFileError`` of `code` whose description is exactly `description`.
func expectModelFileError(
    _ code: ModelFileError.Code, _ description: String,
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected a \(code) error, but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as ModelFileError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        #expect(error.description == description, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a ModelFileError, got \(error)", sourceLocation: sourceLocation)
    }
}
