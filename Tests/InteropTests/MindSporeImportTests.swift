// `model import --from mindspore`: a `.ckpt` written to MindSpore's checkpoint.proto by a small
// generator imports with every name matched and gives the logits of the same weights read from
// safetensors; unmatched names, unsupported dtypes, truncated and missing files are clear errors.

import Checkpoints
import Foundation
import GhostNet
import Interop
import Layers
import TensorEngine
import Testing
import _TestSupport

/// Writes MindSpore `.ckpt` bytes: `Checkpoint { repeated Value value = 1; }`, `Value { string tag
/// = 1; TensorProto tensor = 2; }`, `TensorProto { repeated int64 dims = 1; string tensor_type = 2;
/// bytes tensor_content = 3; }`, with dims unpacked as proto2 writes them. Kept apart from the
/// importer's own protobuf code, so that the test does not check that code against itself.
struct MindSporeCheckpointWriter {
    private(set) var bytes: [UInt8] = []

    private static func varint(_ value: UInt64) -> [UInt8] {
        var rest = value
        var out: [UInt8] = []
        while rest >= 0x80 {
            out.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        return out + [UInt8(rest)]
    }

    private static func field(_ number: UInt64, _ payload: [UInt8]) -> [UInt8] {
        varint(number << 3 | 2) + varint(UInt64(payload.count)) + payload
    }

    mutating func append(_ tag: String, dims: [Int], type: String = "Float32", content: [UInt8]) {
        var tensor: [UInt8] = []
        for dim in dims { tensor += Self.varint(1 << 3) + Self.varint(UInt64(dim)) }
        tensor += Self.field(2, Array(type.utf8)) + Self.field(3, content)
        bytes += Self.field(1, Self.field(1, Array(tag.utf8)) + Self.field(2, tensor))
    }

    mutating func append(_ tag: String, _ tensor: Tensor) {
        let content = tensor.scalars.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        append(tag, dims: tensor.shape, content: content)
    }
}

/// MindSpore's name of one of our tensors, as a MindSpore port of the network registers it.
func mindSporeName(_ name: String, batchNorms: Set<String>) -> String {
    var parts = name.split(separator: ".").map(String.init)
    let module = parts.dropLast().joined(separator: ".")
    if batchNorms.contains(module) {
        let renames = [
            "weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance",
        ]
        parts[parts.count - 1] = renames[parts[parts.count - 1]]!
    }
    parts = parts.map { ["fc": "end_point", "downsample": "down_sample_layer"][$0] ?? $0 }
    return "network." + parts.joined(separator: ".")
}

struct MindSporeImportTests {
    let structure: GhostNetStructure
    let parameters: ModelParameters
    let directory: URL

    init() throws {
        structure = try tinyStructure()
        parameters = trainedLookingParameters(structure, seed: 12)
        directory = try TemporaryDirectory.make()
    }

    /// The checkpoint as MindSpore saves it, with an optimizer's state beside the weights; the
    /// tensor `halfPrecision` (if any) is stored as Float16.
    func checkpointWriter(halfPrecision: String? = nil) -> MindSporeCheckpointWriter {
        let batchNorms = Set(
            structure.tensors.filter { $0.name.hasSuffix(".running_mean") }.map { String($0.name.dropLast(13)) })
        var writer = MindSporeCheckpointWriter()
        for spec in structure.tensors {
            let name = mindSporeName(spec.name, batchNorms: batchNorms)
            if spec.name == halfPrecision {
                writer.append(
                    name, dims: spec.shape, type: "Float16", content: .init(repeating: 0, count: 2 * spec.elementCount))
            } else {
                writer.append(name, parameters[spec])
            }
            if spec.isTrainable { writer.append("moments." + spec.name, parameters[spec]) }
        }
        writer.append("global_step", dims: [1], type: "Int32", content: [7, 0, 0, 0])
        return writer
    }

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func everyNameMatchesAndLogitsEqualTheSafetensorsModel() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try write(checkpointWriter().bytes, "ghostnet.ckpt")
        let output = directory.appendingPathComponent("imported.safetensors").path
        let (imported, skipped) = try MindSporeImport.importCheckpoint(
            input: input, output: output, configuration: structure.configuration)
        #expect(imported == structure.tensors.count)
        #expect(skipped == structure.trainableTensors.count + 1)

        let reference = directory.appendingPathComponent("reference.safetensors").path
        try Checkpoint(parameters: parameters, seed: 0).write(to: reference)
        let images = tinyImages(batch: 2)
        var importedModel = try ModelInteroperability.loadModel(
            checkpoint: output, untaggedConfiguration: structure.configuration)
        var referenceModel = try ModelInteroperability.loadModel(
            checkpoint: reference, untaggedConfiguration: structure.configuration)
        // The same weights through the same code: the logits agree bit for bit.
        expectClose(
            try importedModel.forward(images, mode: .inference).scalars,
            try referenceModel.forward(images, mode: .inference).scalars, relative: 0, absolute: 0)
    }

    @Test func anUnmatchedNameIsReportedByName() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = checkpointWriter()
        writer.append("network.layer9.head.gamma", Tensor(shape: [2], repeating: 1))
        let output = directory.appendingPathComponent("out.safetensors").path
        let error = #expect(throws: InteropError.self) {
            try MindSporeImport.importCheckpoint(
                input: try write(writer.bytes, "extra.ckpt"), output: output, configuration: structure.configuration)
        }
        #expect(error?.code == .mismatch)
        #expect(error?.description.contains("1 unmatched: network.layer9.head.gamma (as layer9.head.weight)") == true)
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test func badInputIsAClearErrorAndWritesNothing() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out.safetensors").path
        let complete = checkpointWriter().bytes
        let halfType = checkpointWriter(halfPrecision: "layer2.cheap.1.running_var")
        let cases: [(name: String, bytes: [UInt8]?, code: InteropError.Code?, text: String)] = [
            ("truncated.ckpt", Array(complete.prefix(complete.count / 2)), .truncated, "needs"),
            ("empty.ckpt", [], .malformed, "holds no Checkpoint.value records"),
            (
                "float16.ckpt", halfType.bytes, .unsupportedDType,
                "tensor 'network.layer2.cheap.1.moving_variance': tensor_type 'Float16' is not supported"
            ),
            ("missing.ckpt", nil, nil, "missing.ckpt"),
        ]
        for item in cases {
            let input =
                try item.bytes.map { try write($0, item.name) }
                ?? directory.appendingPathComponent(item.name).path
            do {
                try MindSporeImport.importCheckpoint(
                    input: input, output: output, configuration: structure.configuration)
                Issue.record("\(item.name) was imported")
            } catch {
                #expect("\(error)".contains(item.text), "\(item.name): \(error)")
                if let code = item.code { #expect((error as? InteropError)?.code == code, "\(item.name): \(error)") }
            }
            #expect(!FileManager.default.fileExists(atPath: output), "\(item.name) left an output")
        }
        let error = #expect(throws: InteropError.self) {
            try MindSporeImport.importCheckpoint(
                input: try write(complete, "good.ckpt"), output: directory.path, configuration: structure.configuration)
        }
        #expect(error?.code == .badOutputPath)
    }
}
