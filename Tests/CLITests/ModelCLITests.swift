//===----------------------------------------------------------------------===//
// ghostnet-d — end-to-end tests of the built binary
//===----------------------------------------------------------------------===//

import Foundation
import GhostNet
import TensorEngine
import Testing
import _TestSupport

@Suite struct ModelCLITests {
    @Test func summaryOfGhostnet101PrintsTheReferenceNumbers() throws {
        let result = try BuiltProducts.runGhostnet(["model", "summary", "--arch", "ghostnet101", "--image-size", "224", "--classes", "1000"])
        #expect(result.status == 0, "\(result.combined)")
        let output = result.standardOutput
        for fragment in ["layer1  256×56×56", "layer4  2048×7×7", "38,216,872", "4,538,613,760",
                         "params (K): 38216.872", "flops (G): 4.539"] {
            #expect(output.contains(fragment), "missing '\(fragment)' in:\n\(output)")
        }
    }

    @Test func summaryOfATinyCustomVariant() throws {
        let result = try BuiltProducts.runGhostnet(["model", "summary", "--blocks", "3,4,3,3", "--width", "8", "--classes", "10", "--image-size", "32"])
        #expect(result.status == 0, "\(result.combined)")
        let structure = GhostNetStructure(configuration: try GhostNetConfiguration(blocksPerStage: [3, 4, 3, 3], width: 8, classes: 10, imageSize: 32))
        #expect(result.standardOutput == structure.report + "\n")
        #expect(result.standardOutput.contains("layer4  256×1×1"))
    }

    @Test(arguments: [
        (["model", "summary", "--arch", "ghostnet18"], "ghostnet18"),
        (["model", "summary", "--arch", "ghostnet50", "--blocks", "3,4,6,3"], "either --arch or --blocks"),
        (["model", "summary", "--blocks", "3,4,x,3"], "comma-separated integers"),
        (["model", "summary", "--width", "1"], "width (stem channels) must be at least 2"),
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
        let arguments = ["model", "init", "--blocks", "3,4,3,3", "--width", "8", "--classes", "10", "--image-size", "32", "--seed", "17"]
        for path in [first, second] {
            let result = try BuiltProducts.runGhostnet(arguments + ["--output", path])
            #expect(result.status == 0, "\(result.combined)")
            #expect(result.standardOutput.contains("wrote \(path)"))
        }
        #expect(FileManager.default.contentsEqual(atPath: first, andPath: second))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["first.safetensors", "second.safetensors"])

        let checkpoint = try Checkpoint(contentsOf: first)
        #expect(checkpoint.seed == 17 && checkpoint.epoch == 0 && checkpoint.step == 0)
        #expect(checkpoint.configuration.blocksPerStage == [3, 4, 3, 3] && checkpoint.configuration.classes == 10)
        let expected = ModelParameters.initialized(for: GhostNetStructure(configuration: checkpoint.configuration), seed: 17)
        for (loaded, fresh) in zip(checkpoint.parameters.tensors, expected.tensors) {
            #expect(loaded.scalars.map(\.bitPattern) == fresh.scalars.map(\.bitPattern))
        }
    }

    @Test func initIntoAMissingDirectoryFailsWithThePath() throws {
        let result = try BuiltProducts.runGhostnet(["model", "init", "--arch", "ghostnet50", "--width", "4", "--output", "/nonexistent-dir/w.safetensors"])
        #expect(result.status != 0)
        #expect(result.standardError.contains("/nonexistent-dir/w.safetensors"), "\(result.combined)")
        #expect(!result.standardError.contains("Fatal error"))
    }
}
