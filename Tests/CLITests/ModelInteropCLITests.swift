// `model export|import|average` through the built binary: the files they write, and bad input (a
// directory as output, a file that is not a MindSpore checkpoint, a missing file) refused with the
// file and the reason, leaving nothing behind.

import Checkpoints
import Foundation
import GhostNet
import TensorEngine
import Testing
import _TestSupport

struct ModelInteropCLITests {
    @Test func exportAndAverageWriteTheirFiles() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let checkpoint = directory.appendingPathComponent("model.safetensors").path
        try Checkpoint(parameters: .initialized(for: try tinyStructure(), seed: 4), seed: 4).write(to: checkpoint)
        for (format, name) in [("onnx", "model.onnx"), ("safetensors", "folded.safetensors")] {
            let output = directory.appendingPathComponent(name).path
            let result = try BuiltProducts.runGhostnet([
                "model", "export", "--format", format, "--checkpoint", checkpoint, "--output", output,
            ])
            #expect(result.status == 0, "\(result.combined)")
            #expect(FileManager.default.fileExists(atPath: output))
        }
        let mean = directory.appendingPathComponent("mean.safetensors").path
        let result = try BuiltProducts.runGhostnet(["model", "average", checkpoint, checkpoint, "--output", mean])
        #expect(result.status == 0, "\(result.combined)")
        // The mean of a checkpoint with itself is that checkpoint.
        let original = try Checkpoint(contentsOf: checkpoint).parameters
        let averaged = try Checkpoint(contentsOf: mean).parameters
        for spec in original.structure.tensors {
            expectClose(averaged[spec].scalars, original[spec].scalars, relative: 0, absolute: 0, "\(spec.name)")
        }
    }

    @Test func badInputFailsWithTheFileAndTheReason() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let checkpoint = directory.appendingPathComponent("model.safetensors").path
        try Checkpoint(parameters: .initialized(for: try tinyStructure(), seed: 4), seed: 4).write(to: checkpoint)
        let output = directory.appendingPathComponent("out").path
        let missing = directory.appendingPathComponent("missing.ckpt").path
        let tiny = ["--blocks", "3,4,3,3", "--width", "8", "--classes", "10"]
        let cases: [([String], String)] = [
            (
                ["model", "export", "--format", "onnx", "--checkpoint", checkpoint, "--output", directory.path],
                "is a directory"
            ),
            (
                ["model", "import", "--from", "mindspore", checkpoint, "--output", output] + tiny,
                "not a protobuf message"
            ),
            (["model", "import", "--from", "mindspore", missing, "--output", output] + tiny, "missing.ckpt"),
            (["model", "import", "--from", "tensorflow", checkpoint, "--output", output], "tensorflow"),
            (["model", "average", "--output", output], "Missing expected argument '<inputs> ...'"),
        ]
        for (arguments, message) in cases {
            let result = try BuiltProducts.runGhostnet(arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.standardError.contains(message), "\(arguments): \(result.combined)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["model.safetensors"])
    }
}
