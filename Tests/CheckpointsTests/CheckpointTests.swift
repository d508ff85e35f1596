// Model checkpoints and run checkpoints: loading model tensors by PyTorch name, the round trips of
// both checkpoint kinds, and refusing files that are not checkpoints with the reason.

import Checkpoints
import Foundation
import GhostNet
import Layers
import TensorEngine
import Testing
import _TestSupport

@Suite struct CheckpointTests {
    @Test func loadingReportsMissingUnexpectedAndMisShapedNames() throws {
        let structure = try tinyStructure()
        let parameters = ModelParameters.initialized(for: structure, seed: 1)
        var file = SafeTensorsFile()
        for (spec, tensor) in zip(structure.tensors, parameters.tensors) {
            switch spec.name {
            case "layer2.merge.2.bias": continue
            case "fc.weight": file.append(tensor.reshaped(to: [256, 10]), named: spec.name)
            case "fc.bias": file.append(int64: [Int64](repeating: 0, count: 10), shape: [10], named: spec.name)
            default: file.append(tensor, named: spec.name)
            }
        }
        file.append(Tensor(shape: [1]), named: "layer5.conv.weight")
        do {
            _ = try ModelParameters(structure: structure, loadingFrom: file)
            Issue.record("a mismatching file was accepted")
        } catch let error as ModelParametersError {
            #expect(error.missing == ["layer2.merge.2.bias"])
            #expect(error.unexpected == ["layer5.conv.weight"])
            #expect(
                error.misShaped == [
                    "fc.weight: F32 [256, 10], expected F32 [10, 256]", "fc.bias: I64 [10], expected F32 [10]",
                ])
            #expect(error.description.contains("1 missing: layer2.merge.2.bias"))
        }
    }

    /// A PyTorch `state_dict` has integer `num_batches_tracked` buffers: they load, and the tensors
    /// are the file's; a float counter is refused.
    @Test func loadingAcceptsPyTorchBatchCounters() throws {
        let structure = try tinyStructure()
        let parameters = ModelParameters.initialized(for: structure, seed: 2)
        var file = SafeTensorsFile()
        parameters.append(to: &file)
        file.append(int64: [7], shape: [], named: "bn1.num_batches_tracked")
        file.append(int64: [7], shape: [], named: "layer3.merge.2.num_batches_tracked")
        let loaded = try ModelParameters(structure: structure, loadingFrom: file)
        #expect(
            zip(loaded.tensors, parameters.tensors).allSatisfy {
                $0.scalars.map(\.bitPattern) == $1.scalars.map(\.bitPattern)
            })

        file.append(Tensor(shape: [1]), named: "layer3.merge.1.num_batches_tracked")
        #expect(throws: ModelParametersError.self) {
            _ = try ModelParameters(structure: structure, loadingFrom: file)
        }
    }

    @Test func checkpointRoundTripKeepsTensorsAndProgress() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("checkpoint.safetensors").path
        let structure = try tinyStructure()
        var parameters = ModelParameters.initialized(for: structure, seed: 9)
        parameters["bn1.running_mean"] = Tensor(shape: [8], scalars: (0..<8).map { Float($0) / 3 })
        try Checkpoint(parameters: parameters, seed: 9, epoch: 4, step: 1234).write(to: path)

        let read = try Checkpoint(contentsOf: path)
        #expect(read.configuration == structure.configuration)
        #expect(read.seed == 9 && read.epoch == 4 && read.step == 1234)
        #expect(read.parameters.tensors.map(\.shape) == structure.tensors.map(\.shape))
        for (loaded, original) in zip(read.parameters.tensors, parameters.tensors) {
            #expect(loaded.scalars.map(\.bitPattern) == original.scalars.map(\.bitPattern))
        }
        let file = try SafeTensorsFile(contentsOf: path)
        #expect(file.metadata["arch"] == "custom" && file.metadata["blocks"] == "3,4,3,3")
        #expect(file.metadata["format_version"] == "1" && file.metadata["image_size"] == "32")
    }

    /// The optimizer state has one convention, PyTorch's SGD state key: the optimizer file holds
    /// `momentum_buffer.<parameter>` in PyTorch layout, and reads back into the model's layout.
    @Test func trainingCheckpointRoundTripKeepsMomentumAndState() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let entry = CheckpointDirectory(url: folder, keep: 1).entry(epoch: 4, globalStep: 1234)
        let model = try tinyModel(seed: 9)
        let slots = model.parameterSlots
        let momentum = slots.map { FiniteDifferences.randomTensor($0.shape, seed: UInt64($0.index)) }
        let state = TrainingState(
            epoch: 4, globalStep: 1234, stepInEpoch: 3, seed: 9, samplerPosition: 96, learningRate: 0.05, worldSize: 2)
        try TrainingCheckpoint(parameters: model.exportedParameters, momentum: momentum, state: state)
            .write(to: entry, slots: slots, seed: 9)

        let optimizerFile = try SafeTensorsFile(contentsOf: entry.optimizerURL.path)
        #expect(optimizerFile.names == slots.map { "momentum_buffer." + $0.name })
        #expect(optimizerFile.entry(named: "momentum_buffer.conv1.weight")?.shape == [8, 3, 7, 7])
        let read = try TrainingCheckpoint(contentsOf: entry, slots: slots)
        #expect(read.state == state)
        #expect(read.momentum.map(\.shape) == slots.map(\.shape))
        for (loaded, original) in zip(read.momentum, momentum) {
            #expect(loaded.scalars.map(\.bitPattern) == original.scalars.map(\.bitPattern))
        }
        for (loaded, original) in zip(read.parameters.tensors, model.exportedParameters.tensors) {
            #expect(loaded.scalars.map(\.bitPattern) == original.scalars.map(\.bitPattern))
        }
    }

    @Test func filesThatAreNotCheckpointsAreRefusedWithTheReason() throws {
        let parameters = ModelParameters.initialized(for: try tinyStructure(), seed: 3)
        let good = Checkpoint(parameters: parameters, seed: 3).file
        let edits: [(String, String?, String)] = [
            ("format_version", nil, "no 'format_version'"),
            ("format_version", "2", "format_version 2 is not supported"),
            ("width", "eight", "'width' is 'eight'"),
            ("blocks", "3,4", "describes no valid network"),
            ("arch", "ghostnet50", "'arch' is 'ghostnet50'"),
            ("classes", "11", "expected F32 [11, 256]"),
        ]
        for (key, value, message) in edits {
            var file = good
            file.metadata[key] = value
            let directory = try TemporaryDirectory.make()
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = directory.appendingPathComponent("edited.safetensors").path
            try file.write(to: path)
            #expect { _ = try Checkpoint(contentsOf: path) } throws: { error in
                "\(error)".contains(message) && "\(error)".contains(path)
            }
        }
    }

    /// init → save → load → forward gives the same logits; a corrupted byte is refused.
    @Test func checkpointRoundTripGivesIdenticalLogits() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("model.safetensors").path
        var model = try tinyModel(seed: 21)
        let images = tinyImages(batch: 3)
        _ = try model.forward(images, mode: .training)  // move the running statistics off their initial values
        try Checkpoint(parameters: model.exportedParameters, seed: 21).write(to: path)

        var loaded = GhostNetModel(try Checkpoint(contentsOf: path).parameters)
        for (original, reloaded) in zip(model.runningStatistics, loaded.runningStatistics) {
            expectClose(reloaded.scalars, original.scalars, relative: 0, absolute: 0)
        }
        expectClose(
            try loaded.evaluate(images: images).scalars, try model.evaluate(images: images).scalars, relative: 0,
            absolute: 0)
        expectClose(
            try loaded.forward(images, mode: .training).scalars, try model.forward(images, mode: .training).scalars,
            relative: 0, absolute: 0)

        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 100] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try Checkpoint(contentsOf: path)
        } throws: { error in
            (error as? SafeTensorsError)?.kind == .checksumMismatch && "\(error)".contains(path)
        }
    }
}
