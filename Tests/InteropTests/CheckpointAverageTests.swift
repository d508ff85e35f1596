// `model average`: the mean of checkpoints is their element-wise mean, and checkpoints of different
// networks are refused.

import Checkpoints
import Foundation
import GhostNet
import Interop
import TensorEngine
import Testing
import _TestSupport

struct CheckpointAverageTests {
    @Test func theAverageIsTheElementwiseMean() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let structure = try tinyStructure()
        let inputs = (1...3).map { trainedLookingParameters(structure, seed: UInt64($0)) }
        let paths = try inputs.enumerated().map { index, parameters in
            let path = directory.appendingPathComponent("c\(index).safetensors").path
            try Checkpoint(parameters: parameters, seed: UInt64(index)).write(to: path)
            return path
        }
        let output = directory.appendingPathComponent("mean.safetensors").path
        _ = try CheckpointAverage.average(paths, output: output, untaggedConfiguration: structure.configuration)
        let mean = try Checkpoint(contentsOf: output).parameters
        for (index, spec) in structure.tensors.enumerated() {
            let values = inputs.map { $0.tensors[index].scalars }
            let expected = values[0].indices.map { element in
                Float(values.reduce(0) { $0 + Double($1[element]) } / Double(values.count))
            }
            // The mean of float32 values is exact in double; only its rounding to float32 remains.
            expectClose(mean[spec].scalars, expected, relative: 1.2e-7, absolute: 0, "\(spec.name)")
        }
    }

    @Test func differentNetworksAreRefused() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let small = directory.appendingPathComponent("a.safetensors").path
        let other = directory.appendingPathComponent("b.safetensors").path
        try Checkpoint(parameters: .initialized(for: try tinyStructure(), seed: 1), seed: 1).write(to: small)
        try Checkpoint(parameters: .initialized(for: try tinyStructure(classes: 5), seed: 1), seed: 1).write(to: other)
        let output = directory.appendingPathComponent("mean.safetensors").path
        let error = #expect(throws: InteropError.self) {
            _ = try CheckpointAverage.average(
                [small, other], output: output, untaggedConfiguration: try tinyStructure().configuration)
        }
        #expect(error?.code == .mismatch)
        #expect(error?.description.contains("5 classes") == true)
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}
