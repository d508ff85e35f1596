// `config check` through the built binary: the resolved configuration with overrides, a missing data folder,
// and bad values named with file, key and suggestion.

import Foundation
import Testing
import _TestSupport

@Suite struct ConfigCLITests {
    private var demo: String { BuiltProducts.packageRoot.appendingPathComponent("conf/demo.yml").path }

    @Test func checkPrintsTheResolvedConfigurationWithOverrides() throws {
        let result = try BuiltProducts.runGhostnet(
            ["config", "check", demo, "--set", "fully_train.trainer.epochs=3", "--skip-environment"], timeout: 60)
        #expect(result.status == 0, "\(result.combined)")
        let output = result.standardOutput
        #expect(output.contains("\n    epochs: 3\n"), "\(output)")
        #expect(output.contains("\n        T_max: 30\n"))
        #expect(output.contains("\n      type: ghostnet_d.ghostnet50\n"))
        #expect(output.contains("\n  keep_checkpoints: 3\n"))
        #expect(output.hasSuffix("# configuration OK\n"))
    }

    @Test func checkReportsAMissingDataFolder() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try BuiltProducts.run(
            BuiltProducts.ghostnetExecutable, ["config", "check", demo], currentDirectory: folder, timeout: 60)
        #expect(result.status != 0)
        #expect(result.standardError.contains("fully_train.dataset.common.data_path"), "\(result.combined)")
        #expect(result.standardError.contains("demo-run/data does not exist"))
    }

    @Test func badValuesFailNamingFileKeyAndSuggestion() throws {
        let folder = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("bad.yml")
        try String(contentsOfFile: demo, encoding: .utf8)
            .replacingOccurrences(of: "        epochs: 30", with: "        epoch: 30")
            .write(to: file, atomically: true, encoding: .utf8)
        let result = try BuiltProducts.runGhostnet(
            ["config", "check", file.path, "--set", "fully_train.dataset.common.batch_size=0"], timeout: 60)
        #expect(result.status != 0)
        let error = result.standardError
        #expect(error.contains("invalid configuration \(file.path) (2 problems)"), "\(result.combined)")
        #expect(error.contains("fully_train.trainer.epoch: unknown key; did you mean `fully_train.trainer.epochs`?"))
        #expect(
            error.contains(
                "--set fully_train.dataset.common.batch_size=0: fully_train.dataset.common.batch_size: expected an "
                    + "integer in [1, 65536], got `0`"
            ))
        #expect(!result.standardOutput.contains("configuration OK"))
    }
}
