// `train --init-from`'s reading and matching: a PyTorch state_dict of another class count loads with
// the classifier re-initialised, another architecture fails with the mismatch list (or loads in part
// with --init-partial), ghostnet-d checkpoints and MindSpore .ckpt files load completely, and missing,
// empty or foreign files are errors naming the file.

import Checkpoints
import Foundation
import GhostNet
import Interop
import TensorEngine
import Testing
import _TestSupport

struct InitialWeightsTests {
    let directory: URL

    init() throws {
        directory = try TemporaryDirectory.make()
    }

    /// Writes `parameters` as PyTorch's `save_file(model.state_dict())` does: no ghostnet-d metadata,
    /// an integer `num_batches_tracked` per batch norm.
    func writeStateDict(_ parameters: ModelParameters, _ name: String) throws -> String {
        var file = SafeTensorsFile()
        for spec in parameters.structure.tensors {
            file.append(parameters[spec], named: spec.name)
            if spec.name.hasSuffix(".running_var") {
                file.append(int64: [12], shape: [], named: String(spec.name.dropLast(11)) + "num_batches_tracked")
            }
        }
        let path = directory.appendingPathComponent(name).path
        try file.write(to: path)
        return path
    }

    /// The number of batch norms of `structure` (one running mean each).
    func batchNormCount(_ structure: GhostNetStructure) -> Int {
        structure.tensors.filter { $0.name.hasSuffix(".running_mean") }.count
    }

    /// A structure of the tiny variant's width and input with other blocks per stage.
    func structure(blocks: [Int]) throws -> GhostNetStructure {
        GhostNetStructure(
            configuration: try GhostNetConfiguration(blocksPerStage: blocks, width: 8, classes: 10, imageSize: 32))
    }

    @Test func stateDictOfAnotherClassCountReinitialisesTheClassifier() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pretrained = trainedLookingParameters(try tinyStructure(classes: 1000), seed: 12)
        let path = try writeStateDict(pretrained, "imagenet.safetensors")
        let base = ModelParameters.initialized(for: try tinyStructure(classes: 10), seed: 3)

        let weights = try InitialWeights(contentsOf: path)
        #expect(weights.format == .stateDict)
        let (loaded, report) = try weights.apply(to: base, partial: false)
        #expect(report.isComplete)
        #expect(Set(report.reinitialized) == ["fc.weight", "fc.bias"])
        #expect(report.matched.count == base.structure.tensors.count - 2)
        #expect(report.skipped == batchNormCount(base.structure))
        let summary = report.summary.joined(separator: "\n")
        #expect(summary.contains("classifier re-initialised from the seed (1000 → 10 classes): fc."), "\(summary)")
        #expect(summary.contains("fc.weight") && summary.contains("fc.bias"), "\(summary)")
        #expect(summary.contains("0 missing, 0 unexpected, 0 with wrong shape"), "\(summary)")
        // Copies, not arithmetic: every tensor is bit-identical to its source.
        for spec in base.structure.tensors {
            let source = spec.name.hasPrefix("fc.") ? base[spec] : pretrained[spec]
            #expect(bitPatterns([loaded[spec].scalars]) == bitPatterns([source.scalars]), "\(spec.name)")
        }
    }

    @Test func anotherArchitectureFailsWithTheMismatchList() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        // A ghostnet101-shaped file (23 blocks in stage 3) for a ghostnet50-shaped network (6).
        let deeper = trainedLookingParameters(try structure(blocks: [3, 4, 23, 3]), seed: 5)
        let path = try writeStateDict(deeper, "ghostnet101.safetensors")
        let base = ModelParameters.initialized(for: try structure(blocks: [3, 4, 6, 3]), seed: 3)
        let weights = try InitialWeights(contentsOf: path)

        let error = #expect(throws: InteropError.self) { try weights.apply(to: base, partial: false) }
        #expect(error?.code == .mismatch)
        #expect(error?.file == path)
        let extra = Set(deeper.structure.tensors.map(\.name)).subtracting(base.structure.tensors.map(\.name)).count
        let text = error?.description ?? ""
        #expect(text.contains("does not match the network ("), "\(text)")
        #expect(text.contains("blocks 3,4,6,3, width 8, 10 classes)"), "\(text)")
        #expect(text.contains("\(extra) unexpected: layer3.layers.5."), "\(text)")
        #expect(text.contains("(\(extra - InitialWeightsTests.shownNames) more)"), "\(text)")
        // The merge convolution reads every block's output, so its input width grows with the blocks.
        #expect(text.contains("1 with wrong shape: layer3.merge.1.weight: ["), "\(text)")
        #expect(text.contains("--init-partial"), "\(text)")

        // With --init-partial the shared blocks load and the rest keeps the seed's initialisation.
        let (loaded, report) = try weights.apply(to: base, partial: true)
        #expect(report.unexpected.count == extra && report.missing.isEmpty && report.misShaped.count == 1)
        #expect(report.matched.count == base.structure.tensors.count - 1)
        for spec in base.structure.tensors where spec.name.hasPrefix("layer3.layers.4.") || spec.name == "fc.bias" {
            #expect(bitPatterns([loaded[spec].scalars]) == bitPatterns([deeper[spec].scalars]), "\(spec.name)")
        }
        let merge = base.structure.tensors.first { $0.name == "layer3.merge.1.weight" }!
        #expect(bitPatterns([loaded[merge].scalars]) == bitPatterns([base[merge].scalars]))
    }

    /// The names ``InitialWeightsReport`` lists before it counts the rest.
    static let shownNames = 20

    @Test func anotherWidthIsListedAsWrongShapes() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let wider = ModelParameters.initialized(
            for: GhostNetStructure(
                configuration: try GhostNetConfiguration(
                    blocksPerStage: [3, 4, 3, 3], width: 16, classes: 7, imageSize: 32)),
            seed: 5)
        let base = ModelParameters.initialized(for: try tinyStructure(), seed: 3)
        let weights = try InitialWeights(contentsOf: try writeStateDict(wider, "wide.safetensors"))
        let error = #expect(throws: InteropError.self) { try weights.apply(to: base, partial: true) }
        // Every tensor's shape differs (the class count too), so nothing matches, even in part.
        #expect(error?.description.contains("not one tensor matched") == true, "\(String(describing: error))")
        #expect(
            error?.description.contains("with wrong shape: conv1.weight: [16, 3, 7, 7], expected [8, 3, 7, 7]") == true,
            "\(String(describing: error))")
    }

    @Test func ghostnetCheckpointLoadsCompletely() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let trained = trainedLookingParameters(try tinyStructure(), seed: 21)
        let path = directory.appendingPathComponent("run.safetensors").path
        try Checkpoint(parameters: trained, seed: 4, epoch: 7, step: 70).write(to: path)
        let weights = try InitialWeights(contentsOf: path)
        #expect(weights.format == .checkpoint(trained.structure.configuration, epoch: 7))
        let (loaded, report) = try weights.apply(
            to: ModelParameters.initialized(for: trained.structure, seed: 3), partial: false)
        #expect(report.matched.count == trained.structure.tensors.count && report.reinitialized.isEmpty)
        #expect(report.summary[0].contains("(ghostnet-d checkpoint: "), "\(report.summary)")
        #expect(report.summary[0].contains("blocks 3,4,3,3 width 8, 10 classes, after epoch 7)"), "\(report.summary)")
        #expect(bitPatterns(loaded.tensors.map(\.scalars)) == bitPatterns(trained.tensors.map(\.scalars)))
    }

    @Test func mindSporeCheckpointLoadsThroughInitFrom() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let structure = try tinyStructure()
        let trained = trainedLookingParameters(structure, seed: 12)
        let batchNorms = Set(
            structure.tensors.filter { $0.name.hasSuffix(".running_mean") }.map { String($0.name.dropLast(13)) })
        var writer = MindSporeCheckpointWriter()
        for spec in structure.tensors {
            writer.append(mindSporeName(spec.name, batchNorms: batchNorms), trained[spec])
            if spec.isTrainable { writer.append("moments." + spec.name, trained[spec]) }
        }
        writer.append("global_step", dims: [1], type: "Int32", content: [7, 0, 0, 0])
        let path = directory.appendingPathComponent("ghostnet.ckpt").path
        try Data(writer.bytes).write(to: URL(fileURLWithPath: path))

        let weights = try InitialWeights(contentsOf: path)
        #expect(weights.format == .mindSpore)
        let (loaded, report) = try weights.apply(
            to: ModelParameters.initialized(for: structure, seed: 3), partial: false)
        #expect(report.isComplete && report.matched.count == structure.tensors.count)
        #expect(report.skipped == structure.trainableTensors.count + 1)
        #expect(bitPatterns(loaded.tensors.map(\.scalars)) == bitPatterns(trained.tensors.map(\.scalars)))

        // A tensor of another dtype is a mismatch named by its MindSpore name.
        var half = MindSporeCheckpointWriter()
        for spec in structure.tensors where spec.name != "conv1.weight" {
            half.append(mindSporeName(spec.name, batchNorms: batchNorms), trained[spec])
        }
        half.append(
            "network.conv1.weight", dims: [8, 3, 7, 7], type: "Float16", content: .init(repeating: 0, count: 2352))
        let halfPath = directory.appendingPathComponent("half.ckpt").path
        try Data(half.bytes).write(to: URL(fileURLWithPath: halfPath))
        let error = #expect(throws: InteropError.self) {
            try InitialWeights(contentsOf: halfPath).apply(
                to: ModelParameters.initialized(for: structure, seed: 3), partial: false)
        }
        #expect(
            error?.description.contains("1 with wrong shape: network.conv1.weight: Float16 [8, 3, 7, 7]") == true,
            "\(String(describing: error))")
    }

    @Test func missingEmptyAndForeignFilesAreErrorsNamingTheFile() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(name: String, bytes: [UInt8]?, text: String)] = [
            ("missing.safetensors", nil, "No such file"),
            ("empty.bin", [], "is empty; expected a ghostnet-d checkpoint, a PyTorch state_dict"),
            ("model.pt", [0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0, 0, 0], "is a PyTorch pickle"),
            ("legacy.pth", [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9], "is a PyTorch pickle"),
            ("notes.txt", Array("hello, weights".utf8), "is not a weights file this program reads"),
        ]
        for item in cases {
            let path = directory.appendingPathComponent(item.name).path
            if let bytes = item.bytes { try Data(bytes).write(to: URL(fileURLWithPath: path)) }
            do {
                _ = try InitialWeights(contentsOf: path)
                Issue.record("\(item.name) was read")
            } catch {
                #expect("\(error)".contains(path), "\(item.name): \(error)")
                #expect("\(error)".contains(item.text), "\(item.name): \(error)")
            }
        }
        let error = #expect(throws: SafeTensorsError.self) { try InitialWeights(contentsOf: directory.path) }
        #expect(error?.kind == .notRegularFile)
    }
}
