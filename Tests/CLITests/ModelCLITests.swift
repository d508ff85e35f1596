// `model summary|init|forward|grad` through the built binary: reproducible checkpoints, logits and gradients
// written to tensor files, plain exports read, and bad or hostile files refused with the file and reason.

import Checkpoints
import Foundation
import GhostNet
import TensorEngine
import Testing
import _TestSupport

@Suite struct ModelCLITests {
    @Test func summaryOfGhostnet101PrintsTheReferenceNumbers() throws {
        let result = try BuiltProducts.runGhostnet([
            "model", "summary", "--arch", "ghostnet101", "--image-size", "224", "--classes", "1000",
        ])
        #expect(result.status == 0, "\(result.combined)")
        let output = result.standardOutput
        for fragment in [
            "layer1  256×56×56", "layer4  2048×7×7", "38,216,872", "4,538,613,760",
            "params (K): 38216.872", "flops (G): 4.539",
        ] {
            #expect(output.contains(fragment), "missing '\(fragment)' in:\n\(output)")
        }
    }

    @Test func summaryOfATinyCustomVariant() throws {
        let result = try BuiltProducts.runGhostnet([
            "model", "summary", "--blocks", "3,4,3,3", "--width", "8", "--classes", "10", "--image-size", "32",
        ])
        #expect(result.status == 0, "\(result.combined)")
        let structure = GhostNetStructure(
            configuration: try GhostNetConfiguration(
                blocksPerStage: [3, 4, 3, 3], width: 8, classes: 10, imageSize: 32))
        #expect(result.standardOutput == structure.report + "\n")
        #expect(result.standardOutput.contains("layer4  256×1×1"))
    }

    @Test(arguments: [
        (["model", "summary", "--arch", "ghostnet18"], "ghostnet18"),
        (["model", "summary", "--arch", "ghostnet50", "--blocks", "3,4,6,3"], "either --arch or --blocks"),
        (["model", "summary", "--blocks", "3,4,x,3"], "comma-separated integers"),
        (["model", "summary", "--width", "1"], "width (stem channels) must be in 2…1024, got 1"),
        (["model", "init", "--seed", "1"], "--output"),
    ])
    func badOptionsFailWithTheReason(arguments: [String], message: String) throws {
        let result = try BuiltProducts.runGhostnet(arguments)
        #expect(result.status != 0)
        #expect(result.standardError.contains(message), "\(result.combined)")
    }

    /// `model init` writes a checkpoint that reads back as exactly the model the library
    /// initialises from the same seed, and the same seed gives the same bytes.
    @Test func initWritesAReproducibleCheckpoint() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = directory.appendingPathComponent("first.safetensors").path
        let second = directory.appendingPathComponent("second.safetensors").path
        let arguments = [
            "model", "init", "--blocks", "3,4,3,3", "--width", "8", "--classes", "10", "--image-size", "32", "--seed",
            "17",
        ]
        for path in [first, second] {
            let result = try BuiltProducts.runGhostnet(arguments + ["--output", path])
            #expect(result.status == 0, "\(result.combined)")
            #expect(result.standardOutput.contains("wrote \(path)"))
        }
        #expect(FileManager.default.contentsEqual(atPath: first, andPath: second))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == [
                "first.safetensors", "second.safetensors",
            ])

        let checkpoint = try Checkpoint(contentsOf: first)
        #expect(checkpoint.seed == 17 && checkpoint.epoch == 0 && checkpoint.step == 0)
        #expect(checkpoint.configuration.blocksPerStage == [3, 4, 3, 3] && checkpoint.configuration.classes == 10)
        let expected = ModelParameters.initialized(
            for: GhostNetStructure(configuration: checkpoint.configuration), seed: 17)
        for (loaded, fresh) in zip(checkpoint.parameters.tensors, expected.tensors) {
            #expect(loaded.scalars.map(\.bitPattern) == fresh.scalars.map(\.bitPattern))
        }
    }

    @Test func initIntoAMissingDirectoryFailsWithThePath() throws {
        let result = try BuiltProducts.runGhostnet([
            "model", "init", "--arch", "ghostnet50", "--width", "4", "--output", "/nonexistent-dir/w.safetensors",
        ])
        #expect(result.status != 0)
        #expect(result.standardError.contains("/nonexistent-dir/w.safetensors"), "\(result.combined)")
        #expect(!result.standardError.contains("Fatal error"))
    }

    // MARK: - forward and grad

    static let tinyNetwork = ["--blocks", "3,4,3,3", "--width", "8", "--classes", "10", "--image-size", "32"]

    /// Writes `tensors` (and integer `labels`, when given) to a safetensors file at `path`.
    static func writeTensors(_ tensors: [String: Tensor], labels: [Int64]? = nil, to path: String) throws {
        var file = SafeTensorsFile()
        for name in tensors.keys.sorted() { file.append(tensors[name]!, named: name) }
        if let labels { file.append(int64: labels, shape: [labels.count], named: "labels") }
        try file.write(to: path)
    }

    /// A checkpoint made by `model init` and an NCHW image batch, in a fresh directory.
    static func prepare(batch: Int) throws -> (directory: URL, checkpoint: String, input: String, imagesNCHW: Tensor) {
        let directory = try TemporaryDirectory.make()
        let checkpoint = directory.appendingPathComponent("w.safetensors").path
        let result = try BuiltProducts.runGhostnet(
            ["model", "init"] + tinyNetwork + ["--seed", "4", "--output", checkpoint])
        #expect(result.status == 0, "\(result.combined)")
        let images = FiniteDifferences.randomTensor([batch, 3, 32, 32], seed: 12)
        let input = directory.appendingPathComponent("x.safetensors").path
        try writeTensors(["input": images], to: input)
        return (directory, checkpoint, input, images)
    }

    /// `model forward` reads NCHW images and writes the logits the library computes, in both modes.
    @Test func forwardWritesTheLogitsOfTheCheckpoint() throws {
        let (directory, checkpoint, input, imagesNCHW) = try Self.prepare(batch: 3)
        defer { try? FileManager.default.removeItem(at: directory) }
        let images = imagesNCHW.permuted([0, 2, 3, 1])
        for trainMode in [false, true] {
            let output = directory.appendingPathComponent("y\(trainMode).safetensors").path
            let result = try BuiltProducts.runGhostnet(
                ["model", "forward", "--checkpoint", checkpoint, "--input", input, "--output", output]
                    + (trainMode ? ["--train-mode"] : []))
            #expect(result.status == 0, "\(result.combined)")
            #expect(result.standardOutput.contains("logits [3, 10]"))
            let logits = try SafeTensorsFile(contentsOf: output).tensor(named: "logits")
            #expect(logits.shape == [3, 10])
            var model = GhostNetModel(try Checkpoint(contentsOf: checkpoint).parameters)
            let expected =
                trainMode
                ? try model.trainingStep(images: images, labels: [0, 0, 0]).logits : try model.evaluate(images: images)
            expectClose(logits.scalars, expected.scalars, relative: 1e-6, absolute: 1e-6)
        }
    }

    /// `model grad` writes the loss and, under every parameter's name in PyTorch layout, the
    /// gradient the library computes.
    @Test func gradWritesTheLossAndEveryParameterGradient() throws {
        let (directory, checkpoint, input, imagesNCHW) = try Self.prepare(batch: 2)
        defer { try? FileManager.default.removeItem(at: directory) }
        let labelsPath = directory.appendingPathComponent("l.safetensors").path
        try Self.writeTensors([:], labels: [7, 2], to: labelsPath)
        let output = directory.appendingPathComponent("g.safetensors").path
        let result = try BuiltProducts.runGhostnet(
            ["model", "grad", "--checkpoint", checkpoint, "--input", input, "--labels", labelsPath, "--output", output])
        #expect(result.status == 0, "\(result.combined)")

        let file = try SafeTensorsFile(contentsOf: output)
        var model = GhostNetModel(try Checkpoint(contentsOf: checkpoint).parameters)
        let step = try model.trainingStep(images: imagesNCHW.permuted([0, 2, 3, 1]), labels: [7, 2])
        #expect(file.names.sorted() == (["loss"] + model.structure.trainableTensors.map(\.name)).sorted())
        let loss = try file.tensor(named: "loss")
        #expect(loss.shape == [])
        expectClose(Double(loss.scalars[0]), step.loss, relative: 1e-6, absolute: 0)
        for slot in model.parameterSlots {
            let written = try file.tensor(named: slot.name)
            #expect(written.shape == slot.pytorchShape, "\(slot.name)")
            expectClose(
                written.scalars, slot.pytorchLayout(step.gradients.tensors[slot.index]).scalars, relative: 1e-6,
                absolute: 1e-9, "\(slot.name)")
        }
    }

    /// A plain state_dict export (no ghostnet-d metadata) is read as the network the flags describe.
    @Test func forwardReadsAPlainExportWithTheNetworkFlags() throws {
        let (directory, checkpoint, input, _) = try Self.prepare(batch: 2)
        defer { try? FileManager.default.removeItem(at: directory) }
        let parameters = try Checkpoint(contentsOf: checkpoint).parameters
        let export = directory.appendingPathComponent("export.safetensors").path
        try Self.writeTensors(
            Dictionary(uniqueKeysWithValues: zip(parameters.structure.tensors.map(\.name), parameters.tensors)),
            to: export)
        var outputs: [String] = []
        for source in [checkpoint, export] {
            let output = directory.appendingPathComponent("y\(outputs.count).safetensors").path
            let result = try BuiltProducts.runGhostnet(
                ["model", "forward", "--checkpoint", source, "--input", input, "--output", output] + Self.tinyNetwork)
            #expect(result.status == 0, "\(result.combined)")
            outputs.append(output)
        }
        let logits = try outputs.map { try SafeTensorsFile(contentsOf: $0).tensor(named: "logits").scalars }
        expectClose(logits[1], logits[0], relative: 0, absolute: 0)

        // Without the flags the export is read as ghostnet101, which it is not.
        let result = try BuiltProducts.runGhostnet(
            ["model", "forward", "--checkpoint", export, "--input", input, "--output", outputs[0]])
        #expect(result.status != 0)
        #expect(result.standardError.contains("\(export): the tensors do not match the network"), "\(result.combined)")
    }

    @Test func badTensorFilesFailWithTheFileAndTheReason() throws {
        let (directory, checkpoint, input, _) = try Self.prepare(batch: 2)
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out.safetensors").path
        let nhwc = directory.appendingPathComponent("nhwc.safetensors").path
        try Self.writeTensors(["input": Tensor(shape: [2, 32, 32, 3])], to: nhwc)
        let misnamed = directory.appendingPathComponent("misnamed.safetensors").path
        try Self.writeTensors(["images": Tensor(shape: [2, 3, 32, 32])], to: misnamed)
        let single = directory.appendingPathComponent("single.safetensors").path
        try Self.writeTensors(["input": FiniteDifferences.randomTensor([1, 3, 32, 32], seed: 3)], to: single)
        let threeLabels = directory.appendingPathComponent("labels3.safetensors").path
        try Self.writeTensors([:], labels: [1, 2, 3], to: threeLabels)
        let badLabel = directory.appendingPathComponent("labels-bad.safetensors").path
        try Self.writeTensors([:], labels: [1, 10], to: badLabel)
        let floatLabels = directory.appendingPathComponent("labels-float.safetensors").path
        try Self.writeTensors(["labels": Tensor(shape: [2])], to: floatLabels)

        let forward = ["model", "forward", "--checkpoint", checkpoint, "--output", output]
        let grad = ["model", "grad", "--checkpoint", checkpoint, "--input", input, "--output", output]
        let cases: [([String], String)] = [
            (
                forward + ["--input", nhwc],
                "\(nhwc): tensor 'input' has shape [2, 32, 32, 3], expected NCHW [N, 3, H, W]"
            ),
            (forward + ["--input", misnamed], "\(misnamed): no tensor named 'input'"),
            (
                forward + ["--input", single, "--train-mode"],
                "expected more than 1 value per channel when training: with batch size 1"
            ),
            (grad + ["--labels", threeLabels], "\(threeLabels): tensor 'labels' has shape [3], expected [2]"),
            (grad + ["--labels", badLabel], "\(badLabel): label 10 at position 1 is outside 0..<10"),
            (grad + ["--labels", floatLabels], "\(floatLabels): tensor 'labels' has dtype F32, expected I64 or I32"),
        ]
        for (arguments, message) in cases {
            let result = try BuiltProducts.runGhostnet(arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.standardError.contains(message), "\(arguments): \(result.combined)")
            #expect(!result.standardError.contains("Fatal error"))
        }
        #expect(!FileManager.default.fileExists(atPath: output))
        // One image infers fine.
        let result = try BuiltProducts.runGhostnet(forward + ["--input", single])
        #expect(result.status == 0, "\(result.combined)")
    }

    /// Hostile checkpoints (issue 19, class 4) end `model forward` with the file and the reason,
    /// never with a trap, a hang or a huge allocation.
    @Test func hostileCheckpointsFailWithTheFileAndTheReason() throws {
        let (directory, checkpoint, input, _) = try Self.prepare(batch: 2)
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out.safetensors").path
        func edited(_ name: String, _ edit: (inout SafeTensorsFile) throws -> Void) throws -> String {
            var file = try SafeTensorsFile(contentsOf: checkpoint)
            try edit(&file)
            let path = directory.appendingPathComponent(name).path
            try file.write(to: path)
            return path
        }
        let wide = try edited("wide.safetensors") { $0.metadata["width"] = "4611686018427387904" }
        let nan = try edited("nan.safetensors") { file in
            var weights = try file.tensor(named: "fc.weight").scalars
            weights[0] = .nan
            var copy = SafeTensorsFile(metadata: file.metadata)
            for name in file.names {
                copy.append(
                    name == "fc.weight" ? Tensor(shape: [10, 256], scalars: weights) : try file.tensor(named: name),
                    named: name)
            }
            file = copy
        }
        let fifo = directory.appendingPathComponent("fifo.safetensors").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let cases = [
            (
                wide,
                "\(wide): metadata describes no valid network: width (stem channels) must be in 2…1024, got "
                    + "4611686018427387904"
            ),
            (
                nan,
                "\(nan): tensor 'fc.weight' holds nan at element 0; a usable model has finite values and running "
                    + "variances ≥ 0"
            ),
            (fifo, "\(fifo): is a FIFO, not a regular file; refusing to read it"),
        ]
        for (path, message) in cases {
            let result = try BuiltProducts.runGhostnet([
                "model", "forward", "--checkpoint", path, "--input", input, "--output", output,
            ])
            #expect(result.status != 0, "\(path)")
            #expect(result.standardError.contains(message), "\(result.combined)")
            #expect(!result.standardError.contains("Fatal error"))
        }
    }
}
