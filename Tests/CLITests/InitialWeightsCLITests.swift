// `train --init-from` through the built binary: 2 ranks under mpirun start from a PyTorch state_dict of
// another class count and stay bit-identical; a missing file and `--init-from` with `--resume` stop the
// run with exit status 64 and a message that names the file or explains the difference.

import Checkpoints
import Foundation
import GhostNet
import Testing
import _TestSupport

extension MPIJobs {
    @Suite(.serialized) struct InitialWeightsCLITests {
        typealias Job = TrainerCLITests

        /// A 10-class state_dict of the CLI tests' network (ghostnet50 blocks 2,2,2,2, width 4, 16×16).
        func writePretrained(in folder: URL) throws -> String {
            let network = try GhostNetConfiguration(
                blocksPerStage: [2, 2, 2, 2], width: 4, classes: 10, imageSize: 16)
            var file = SafeTensorsFile()
            ModelParameters.initialized(for: GhostNetStructure(configuration: network), seed: 23).append(to: &file)
            let path = folder.appendingPathComponent("pretrained.safetensors").path
            try file.write(to: path)
            return path
        }

        @Test(.enabled(if: BuiltProducts.mpirun != nil, "needs mpirun"))
        func twoRanksStartFromAStateDictOfAnotherClassCount() throws {
            let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-init-from")
            let config = try Job.writeConfiguration(in: folder, extra: "    checksum_interval: 1")
            let pretrained = try writePretrained(in: folder)
            let result = try BuiltProducts.run(
                BuiltProducts.mpirun!,
                BuiltProducts.mpirunArguments(ranks: 2, ["train", "--config", config, "--init-from", pretrained]),
                environment: Job.noCoordinator, timeout: 150)
            #expect(result.status == 0, "\(result.combined)")
            let output = result.standardOutput
            #expect(output.contains("init-from \(pretrained) (PyTorch state_dict in safetensors): "), "\(output)")
            #expect(output.contains("2 re-initialised, 0 missing, 0 unexpected, 0 with wrong shape"), "\(output)")
            #expect(output.contains("(10 → 4 classes): fc."), "\(output)")
            // checksum_interval 1 compared the ranks' parameters after every step: a rank that started
            // from other weights would have stopped the job.
            let logs = try (0..<2).map { rank in
                try String(contentsOf: folder.appendingPathComponent("logs/train-rank\(rank).log"), encoding: .utf8)
            }
            #expect(logs[0].contains("training finished: epoch 1"), "\(logs[0])")
            #expect(!logs[1].contains("init-from "), "only rank 0 reads the file and logs the summary")
        }

        @Test func missingFileAndResumeAreConfigurationErrors() throws {
            let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-init-from-bad")
            let config = try Job.writeConfiguration(in: folder)
            let missing = folder.appendingPathComponent("absent.safetensors").path
            let absent = try BuiltProducts.runGhostnet(
                ["train", "--config", config, "--init-from", missing], environment: Job.noCoordinator, timeout: 60)
            #expect(absent.status == 64, "\(absent.combined)")
            #expect(absent.combined.contains("runtime.init_from (--init-from): \(missing)"), "\(absent.combined)")

            let both = try BuiltProducts.runGhostnet(
                ["train", "--config", config, "--init-from", try writePretrained(in: folder), "--resume"],
                environment: Job.noCoordinator, timeout: 60)
            #expect(both.status != 0)
            #expect(both.combined.contains("runtime.init_from"), "\(both.combined)")
            #expect(both.combined.contains("resume continues the run"), "\(both.combined)")
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("checkpoints").path))
        }
    }
}
