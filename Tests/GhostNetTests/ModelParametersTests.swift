//===----------------------------------------------------------------------===//
// ghostnet-d — GhostNet tests
//===----------------------------------------------------------------------===//

import Foundation
import GhostNet
import TensorEngine
import Testing
import _TestSupport

/// The tiny variant of the issue: width 8, blocks 3, 4, 3, 3, 10 classes, 32×32 input.
func tinyStructure(classes: Int = 10) throws -> GhostNetStructure {
    GhostNetStructure(configuration: try GhostNetConfiguration(blocksPerStage: [3, 4, 3, 3], width: 8, classes: classes, imageSize: 32))
}

@Suite struct ModelParametersTests {
    @Test func initialisationFollowsTheStatedDistributions() throws {
        let structure = try tinyStructure()
        let parameters = ModelParameters.initialized(for: structure, seed: 11)
        #expect(parameters.tensors.map(\.shape) == structure.tensors.map(\.shape))

        // layer3.merge.1: 128 + 1·64 → 64 channels; fan-out 64, σ = √(2/64).
        let merge = parameters["layer3.merge.1.weight"].scalars.map(Double.init)
        let mean = merge.reduce(0, +) / Double(merge.count)
        let deviation = (merge.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(merge.count)).squareRoot()
        expectClose(deviation, (2.0 / 64).squareRoot(), relative: 0.03, absolute: 0, "Kaiming fan-out σ over \(merge.count) samples")
        expectClose(mean, 0, relative: 0, absolute: 0.01)

        let bound = 1 / Double(256).squareRoot()
        for name in ["fc.weight", "fc.bias"] {
            let values = parameters[name].scalars
            #expect(values.allSatisfy { abs(Double($0)) <= bound }, "\(name) within ±1/√fan_in")
            #expect(values.contains { Double($0) > bound / 2 } && values.contains { Double($0) < -bound / 2 }, "\(name) spreads over the range")
        }
        #expect(parameters["layer2.cheap.1.weight"].scalars.allSatisfy { $0 == 1 })
        #expect(parameters["layer2.cheap.1.bias"].scalars.allSatisfy { $0 == 0 })
        #expect(parameters["layer2.cheap.1.running_mean"].scalars.allSatisfy { $0 == 0 })
        #expect(parameters["layer2.cheap.1.running_var"].scalars.allSatisfy { $0 == 1 })
    }

    /// Each tensor's generator is keyed by the seed and its own name, so the same seed reproduces
    /// the model and a tensor does not change when other parts of the network do.
    @Test func initialisationIsReproducibleAndKeyedPerTensor() throws {
        let structure = try tinyStructure()
        let first = ModelParameters.initialized(for: structure, seed: 5)
        let again = ModelParameters.initialized(for: structure, seed: 5)
        let other = ModelParameters.initialized(for: structure, seed: 6)
        let moreClasses = ModelParameters.initialized(for: try tinyStructure(classes: 20), seed: 5)
        let bits = { (tensor: Tensor) in tensor.scalars.map(\.bitPattern) }
        #expect(zip(first.tensors, again.tensors).allSatisfy { bits($0) == bits($1) })
        #expect(bits(first["conv1.weight"]) != bits(other["conv1.weight"]))
        #expect(bits(first["layer1.base.conv2.weight"]) != bits(first["layer1.end.conv2.weight"]))
        #expect(bits(first["layer4.end.conv3.weight"]) == bits(moreClasses["layer4.end.conv3.weight"]))
    }

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
            #expect(error.misShaped == ["fc.weight: F32 [256, 10], expected F32 [10, 256]", "fc.bias: I64 [10], expected F32 [10]"])
            #expect(error.description.contains("1 missing: layer2.merge.2.bias"))
        }
    }

    /// A PyTorch `state_dict` has integer `num_batches_tracked` buffers and may be saved next to
    /// other state: both load, and the tensors are the file's.
    @Test func loadingAcceptsPyTorchBatchCountersAndIgnoredPrefixes() throws {
        let structure = try tinyStructure()
        let parameters = ModelParameters.initialized(for: structure, seed: 2)
        var file = SafeTensorsFile()
        parameters.append(to: &file)
        file.append(int64: [7], shape: [], named: "bn1.num_batches_tracked")
        file.append(int64: [7], shape: [], named: "layer3.merge.2.num_batches_tracked")
        file.append(Tensor(shape: [3]), named: "optimizer.momentum.fc.bias")
        let loaded = try ModelParameters(structure: structure, loadingFrom: file, ignoredPrefixes: ["optimizer."])
        #expect(zip(loaded.tensors, parameters.tensors).allSatisfy { $0.scalars.map(\.bitPattern) == $1.scalars.map(\.bitPattern) })

        file.append(Tensor(shape: [1]), named: "layer3.merge.1.num_batches_tracked")
        #expect(throws: ModelParametersError.self) {
            _ = try ModelParameters(structure: structure, loadingFrom: file, ignoredPrefixes: ["optimizer."])
        }
    }

    @Test func checkpointRoundTripKeepsTensorsOptimizerStateAndProgress() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("checkpoint.safetensors").path
        let structure = try tinyStructure()
        var parameters = ModelParameters.initialized(for: structure, seed: 9)
        parameters["bn1.running_mean"] = Tensor(shape: [8], scalars: (0..<8).map { Float($0) / 3 })
        let momentum = Tensor(shape: [10], scalars: (0..<10).map { Float($0) * 0.25 })
        let checkpoint = Checkpoint(parameters: parameters, optimizerState: ["momentum.fc.bias": momentum], seed: 9, epoch: 4, step: 1234)
        try checkpoint.write(to: path)

        let read = try Checkpoint(contentsOf: path)
        #expect(read.configuration == structure.configuration)
        #expect(read.seed == 9 && read.epoch == 4 && read.step == 1234)
        #expect(read.parameters.tensors.map(\.shape) == structure.tensors.map(\.shape))
        for (loaded, original) in zip(read.parameters.tensors, parameters.tensors) {
            #expect(loaded.scalars.map(\.bitPattern) == original.scalars.map(\.bitPattern))
        }
        #expect(read.optimizerState.keys.sorted() == ["momentum.fc.bias"])
        #expect(read.optimizerState["momentum.fc.bias"]?.scalars == momentum.scalars)

        let file = try SafeTensorsFile(contentsOf: path)
        #expect(file.metadata["arch"] == "custom" && file.metadata["blocks"] == "3,4,3,3")
        #expect(file.metadata["format_version"] == "1" && file.metadata["image_size"] == "32")
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
}
