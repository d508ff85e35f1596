// `model export`: the ONNX graph runs in onnxruntime and gives the logits of `model forward` in
// inference mode (tiny network and ghostnet101, batches of 1 and 3); the folded safetensors weights;
// an output path that is a directory.

import Checkpoints
import Foundation
import GhostNet
import Interop
import Layers
import TensorEngine
import Testing
import _TestSupport

/// A model whose batch norms are not at their initial values (γ, β, running mean and variance all
/// random), so that folding them into the convolutions is exercised.
func trainedLookingParameters(_ structure: GhostNetStructure, seed: UInt64) -> ModelParameters {
    var parameters = ModelParameters.initialized(for: structure, seed: seed)
    for (index, spec) in structure.tensors.enumerated() where spec.shape.count == 1 && spec.name != "fc.bias" {
        let noise = FiniteDifferences.randomTensor(spec.shape, seed: seed &+ UInt64(index), scale: 0.1).scalars
        let centre: Float = spec.name.hasSuffix(".weight") || spec.name.hasSuffix(".running_var") ? 1 : 0
        parameters[spec] = Tensor(shape: spec.shape, scalars: noise.map { centre + ($0 < -0.9 ? -0.9 : $0) })
    }
    return parameters
}

@Suite(.enabled(if: Python.canImport("onnxruntime, safetensors, numpy"), "needs python3 with onnxruntime"))
struct ONNXExportTests {
    /// Runs the ONNX model on `input.safetensors` in onnxruntime and writes `logits.safetensors`.
    static let runner = """
        import sys, onnxruntime as ort
        from safetensors.numpy import load_file, save_file
        session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["input"], session.get_inputs()
        assert [o.name for o in session.get_outputs()] == ["logits"], session.get_outputs()
        logits = session.run(["logits"], {"input": load_file(sys.argv[2])["input"]})[0]
        save_file({"logits": logits}, sys.argv[3])
        """

    /// Exports `parameters` to ONNX and checks onnxruntime's logits against `model forward` in
    /// inference mode for each batch size.
    func expectONNXMatchesForward(_ parameters: ModelParameters, batches: [Int]) throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let checkpoint = directory.appendingPathComponent("model.safetensors").path
        let onnx = directory.appendingPathComponent("model.onnx").path
        try Checkpoint(parameters: parameters, seed: 0).write(to: checkpoint)
        try ModelExport.export(
            checkpoint: checkpoint, format: .onnx, output: onnx,
            untaggedConfiguration: parameters.structure.configuration)
        let side = parameters.structure.configuration.imageSize
        for batch in batches {
            let images = tinyImages(batch: batch, size: side, seed: UInt64(batch))
            var inputFile = SafeTensorsFile()
            inputFile.append(images.permuted([0, 3, 1, 2]), named: "input")
            let input = directory.appendingPathComponent("input\(batch).safetensors").path
            let output = directory.appendingPathComponent("logits\(batch).safetensors").path
            try inputFile.write(to: input)
            let result = try Python.run(Self.runner, [onnx, input, output])
            try #require(result.status == 0, "\(result.combined)")
            let actual = try SafeTensorsFile(contentsOf: output).tensor(named: "logits")
            var model = GhostNetModel(parameters)
            let expected = try model.forward(images, mode: .inference)
            #expect(actual.shape == expected.shape)
            // Folding and a different summation order round differently in every layer; the
            // difference is relative to the logits' scale, not to each (possibly tiny) logit.
            let scale = Double(expected.scalars.map(abs).max() ?? 0)
            expectClose(actual.scalars, expected.scalars, relative: 0, absolute: 1e-4 * scale, "batch \(batch)")
        }
    }

    @Test func tinyNetworkMatchesForward() throws {
        try expectONNXMatchesForward(trainedLookingParameters(try tinyStructure(), seed: 5), batches: [1, 3])
    }

    @Test func ghostnet101MatchesForward() throws {
        let structure = GhostNetStructure(
            configuration: try GhostNetConfiguration(architecture: .ghostnet101, classes: 10, imageSize: 64))
        try expectONNXMatchesForward(trainedLookingParameters(structure, seed: 8), batches: [1, 3])
    }
}

struct FoldedExportTests {
    @Test func safetensorsHoldsFoldedConvolutions() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let checkpoint = directory.appendingPathComponent("model.safetensors").path
        let output = directory.appendingPathComponent("folded.safetensors").path
        let parameters = trainedLookingParameters(try tinyStructure(), seed: 6)
        try Checkpoint(parameters: parameters, seed: 0).write(to: checkpoint)
        try ModelExport.export(
            checkpoint: checkpoint, format: .safetensors, output: output,
            untaggedConfiguration: parameters.structure.configuration)
        let file = try SafeTensorsFile(contentsOf: output)
        let structure = parameters.structure
        let convolutions = structure.tensors.filter { $0.shape.count == 4 }
        // One bias per convolution with batch norm: all but the ghost branches' projections.
        let projections = structure.stages.compactMap(\.ghost).count
        #expect(file.entries.count == 2 * convolutions.count - projections + 2)
        #expect(file.metadata["format"] == "ghostnet-d-inference")

        // conv1 folded with bn1 by the formula, element by element (in double, as the export).
        let gamma = parameters["bn1.weight"].scalars
        let beta = parameters["bn1.bias"].scalars
        let mean = parameters["bn1.running_mean"].scalars
        let variance = parameters["bn1.running_var"].scalars
        let scales = gamma.indices.map { Double(gamma[$0]) / (Double(variance[$0]) + 1e-5).squareRoot() }
        let weight = parameters["conv1.weight"].scalars
        let perOutput = weight.count / gamma.count
        let expectedWeight = weight.indices.map { Float(Double(weight[$0]) * scales[$0 / perOutput]) }
        let expectedBias = beta.indices.map { Float(Double(beta[$0]) - Double(mean[$0]) * scales[$0]) }
        expectClose(try file.tensor(named: "conv1.weight").scalars, expectedWeight, relative: 0, absolute: 0)
        expectClose(try file.tensor(named: "conv1.bias").scalars, expectedBias, relative: 0, absolute: 0)
        expectClose(
            try file.tensor(named: "fc.weight").scalars, parameters["fc.weight"].scalars, relative: 0, absolute: 0)
    }

    @Test func anOutputThatIsADirectoryIsRefused() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let checkpoint = directory.appendingPathComponent("model.safetensors").path
        try Checkpoint(parameters: .initialized(for: try tinyStructure(), seed: 1), seed: 1).write(to: checkpoint)
        for format in ExportFormat.allCases {
            let error = #expect(throws: InteropError.self) {
                try ModelExport.export(
                    checkpoint: checkpoint, format: format, output: directory.path,
                    untaggedConfiguration: try tinyStructure().configuration)
            }
            #expect(error?.code == .badOutputPath)
            #expect(error?.description.contains("is a directory") == true)
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(left == ["model.safetensors"], "nothing half-written beside the checkpoint")
    }
}
