// `train` and `eval` end to end through the built binary: the Best values line, bit-identical replicas and
// mid-epoch resume under MPI, frozen batch norm across ranks, configuration errors (status 64) before any collective.

import Checkpoints
import Foundation
import GhostNet
import ImageData
import TensorEngine
import Testing
import _TestSupport

extension MPIJobs {
    /// `ghostnet-d train` and `ghostnet-d eval` as processes: alone and under `mpirun -np 2`.
    @Suite(.serialized) struct TrainerCLITests {
        /// 4 classes × 8 small training JPEGs (2 val each), shared by the tests.
        static let dataset = TinyDatasets.make(trainPerClass: 8, prefix: "ghostnet-cli-train-data")

        /// Writes a tiny training configuration into `folder` and returns its path.
        static func writeConfiguration(in folder: URL, pipeline: String = "fully_train", extra: String = "") throws
            -> String
        {
            let yaml = """
                general:
                    seed: 11
                pipeline: [\(pipeline)]
                \(pipeline):
                    model:
                        model_desc:
                            type: ghostnet_d.ghostnet50
                            width: 4
                            image_size: 16
                            blocks: [2, 2, 2, 2]
                    trainer:
                        epochs: 1
                        optimizer:
                            type: SGD
                            params:
                                lr: 0.05
                    dataset:
                        common:
                            data_path: \(dataset)
                            batch_size: 4
                            n_class: 4
                            workers: 1
                runtime:
                    checkpoint_dir: \(folder.appendingPathComponent("checkpoints").path)
                    log_dir: \(folder.appendingPathComponent("logs").path)
                    report_interval: 2
                \(extra)
                """
            let path = folder.appendingPathComponent("\(pipeline).yml").path
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        /// No coordinator: the run logs the Best values line itself.
        static let noCoordinator = ["GHOSTNET_COORDINATOR": ""]

        func mpirun(_ arguments: [String], timeout: TimeInterval = 150) throws -> ProcessResult {
            try BuiltProducts.run(
                BuiltProducts.mpirun!, BuiltProducts.mpirunArguments(ranks: 2, arguments),
                environment: Self.noCoordinator,
                timeout: timeout)
        }

        /// The newest checkpoint's model parameters in `folder`/checkpoints.
        func finalParameters(in folder: URL) throws -> [[Float]] {
            let checkpoints = folder.appendingPathComponent("checkpoints")
            let newest = try FileManager.default.contentsOfDirectory(atPath: checkpoints.path)
                .filter { $0.hasSuffix(".safetensors") && !$0.hasSuffix(".optimizer.safetensors") }.sorted().last!
            let checkpoint = try Checkpoint(contentsOf: checkpoints.appendingPathComponent(newest).path)
            let structure = checkpoint.parameters.structure
            return structure.tensors.filter(\.isTrainable).map { checkpoint.parameters[$0].scalars }
        }

        @Test func trainThenEvalPrintTheBestValuesLine() throws {
            let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-train")
            let config = try Self.writeConfiguration(in: folder)
            let train = try BuiltProducts.runGhostnet(
                ["train", "--config", config, "--epochs", "2", "--set", "runtime.keep_checkpoints=1"],
                environment: Self.noCoordinator, timeout: 120)
            #expect(train.status == 0, "\(train.combined)")
            let output = train.standardOutput
            #expect(output.contains("rank 0/1"), "the identity line comes first: \(output)")
            #expect(output.contains("effective global batch 4"))
            #expect(output.contains("memory plan: micro-batch 4 × 1 pass(es) per step, predicted peak "), "\(output)")
            #expect(output.contains("validation after epoch 2: top-1 "))
            #expect(
                output.contains(" INFO Best values: [{'worker_id': '0', 'performance': {'accuracy_top1': "), "\(output)"
            )
            #expect(output.contains("'accuracy_top5': "))

            let checkpoints = try FileManager.default.contentsOfDirectory(
                atPath: folder.appendingPathComponent("checkpoints").path)
            #expect(checkpoints.contains("ckpt-e0002-s000016.safetensors"), "\(checkpoints)")
            let evalConfig = try Self.writeConfiguration(in: folder, pipeline: "eval")
            let checkpoint = folder.appendingPathComponent("checkpoints/ckpt-e0002-s000016.safetensors").path
            let eval = try BuiltProducts.runGhostnet(
                ["eval", "--config", evalConfig, "--checkpoint", checkpoint], environment: Self.noCoordinator,
                timeout: 60)
            #expect(eval.status == 0, "\(eval.combined)")
            #expect(eval.standardOutput.contains("\(checkpoint): epoch 2 step 16: top-1 "), "\(eval.standardOutput)")
            #expect(
                eval.standardOutput.contains(" INFO Best values: [{'worker_id': '0', 'performance': {'accuracy_top1': ")
            )
            #expect(eval.standardOutput.contains("'flops': 0.0, 'params': "), "\(eval.standardOutput)")
        }

        @Test(.enabled(if: BuiltProducts.mpirun != nil, "needs mpirun"))
        func twentyStepsUnderMPILeaveBitIdenticalReplicas() throws {
            let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-mpi-train")
            // 32 images over 2 ranks in batches of 4: 4 steps per epoch, 20 steps in 5 epochs.
            let config = try Self.writeConfiguration(in: folder, extra: "    checksum_interval: 5")
            let result = try mpirun([
                "train", "--config", config, "--epochs", "5",
                "--set", "fully_train.trainer.mixup=True", "--set", "runtime.save_steps=10",
            ])
            #expect(result.status == 0, "\(result.combined)")
            let logs = try (0..<2).map { rank in
                try String(contentsOf: folder.appendingPathComponent("logs/train-rank\(rank).log"), encoding: .utf8)
            }
            // "training finished: epoch 5, global step 20, parameter checksum <hex>" on each rank.
            let checksums = logs.map { log in
                log.split(separator: "\n").last {
                    $0.contains("training finished: epoch 5, global step 20, parameter checksum ")
                }?
                .split(separator: " ").first { $0.count == 16 && $0.allSatisfy(\.isHexDigit) }
            }
            #expect(checksums[0] != nil && checksums[0] == checksums[1], "\(logs[0])\n---\n\(logs[1])")
            // save_steps: step 10 falls in epoch 3, after 2 completed epochs (later pruned: keep 3 + best).
            #expect(logs[0].contains("checkpoints/ckpt-e0002-s000010.safetensors"), "\(logs[0])")
        }

        /// Batches of 4 run as micro-batches of 2 (mixup within each): the ranks stay bit-identical,
        /// and a job resumed from a mid-epoch checkpoint ends bit-identical to the uninterrupted one.
        @Test(.enabled(if: BuiltProducts.mpirun != nil, "needs mpirun"))
        func accumulatedStepsUnderMPIResumeMidEpochBitIdentically() throws {
            let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-mpi-micro")
            // 32 images over 2 ranks in batches of 4: 4 steps per epoch, 8 in 2 epochs.
            let runtime = ["checksum_interval: 1", "micro_batch_size: 2", "save_steps: 3", "keep_checkpoints: 20"]
            let config = try Self.writeConfiguration(
                in: folder, extra: runtime.map { "    " + $0 }.joined(separator: "\n"))
            let arguments = ["train", "--config", config, "--epochs", "2", "--set", "fully_train.trainer.mixup=True"]
            let uninterrupted = try mpirun(arguments)
            #expect(uninterrupted.status == 0, "\(uninterrupted.combined)")
            let log = try String(contentsOf: folder.appendingPathComponent("logs/train-rank0.log"), encoding: .utf8)
            #expect(log.contains("batch 4 per rank (2 micro-batches of 2, gradients accumulated)"), "\(log)")
            let expected = bitPatterns(try finalParameters(in: folder))

            // Forget everything after global step 3 (epoch 1, step 3 of 4), as if the job died there.
            let checkpoints = folder.appendingPathComponent("checkpoints")
            for name in try FileManager.default.contentsOfDirectory(atPath: checkpoints.path)
            where !name.contains("-s000003.") {
                try FileManager.default.removeItem(at: checkpoints.appendingPathComponent(name))
            }
            let resumed = try mpirun(arguments + ["--set", "runtime.resume=True"])
            #expect(resumed.status == 0, "\(resumed.combined)")
            let resumedLog = try String(
                contentsOf: folder.appendingPathComponent("logs/train-rank0.log"), encoding: .utf8)
            #expect(resumedLog.contains("resume: continuing at epoch 1, step 4 (global step 4)"), "\(resumedLog)")
            // checksum_interval 1 compared the ranks' parameters after every step; the result is the uninterrupted one.
            #expect(bitPatterns(try finalParameters(in: folder)) == expected)
        }

        @Test(.enabled(if: BuiltProducts.mpirun != nil, "needs mpirun"))
        func frozenBatchNormTwoRanksMatchOneRankWithTwiceTheBatch() throws {
            let twoRanks = try TemporaryDirectory.make(prefix: "ghostnet-cli-frozen-2")
            let oneRank = try TemporaryDirectory.make(prefix: "ghostnet-cli-frozen-1")
            let frozen = ["--set", "runtime.freeze_batch_norm=True", "--epochs", "1"]
            let distributed = try mpirun(
                ["train", "--config", try Self.writeConfiguration(in: twoRanks), "--batch-size", "4"] + frozen)
            #expect(distributed.status == 0, "\(distributed.combined)")
            let single = try BuiltProducts.runGhostnet(
                ["train", "--config", try Self.writeConfiguration(in: oneRank), "--batch-size", "8"] + frozen,
                environment: Self.noCoordinator, timeout: 120)
            #expect(single.status == 0, "\(single.combined)")
            let expected = try finalParameters(in: oneRank)
            let actual = try finalParameters(in: twoRanks)
            #expect(actual.count == expected.count)
            for (index, (tensor, reference)) in zip(actual, expected).enumerated() {
                expectClose(tensor, reference, relative: 1e-5, absolute: 1e-7, "parameter \(index)")
            }
        }

        @Test(.enabled(if: BuiltProducts.mpirun != nil, "needs mpirun"))
        func configurationErrorEndsEveryRankBeforeAnyCollective() throws {
            let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-bad-config")
            let config = try Self.writeConfiguration(in: folder)
            let result = try mpirun(["train", "--config", config, "--set", "fully_train.trainer.epocs=3"], timeout: 60)
            #expect(result.status == 64, "\(result.combined)")
            #expect(
                result.combined.contains(
                    "fully_train.trainer.epocs: no such key; did you mean `fully_train.trainer.epochs`?"),
                "\(result.combined)")
            let missingData = try mpirun(
                ["train", "--config", config, "--data-path", "/nonexistent/imagenet"], timeout: 60)
            #expect(missingData.status == 64, "\(missingData.combined)")
            #expect(
                missingData.combined.contains(
                    "fully_train.dataset.common.data_path: /nonexistent/imagenet does not exist"),
                "\(missingData.combined)")
        }

        /// Wherever `train` or `eval` meets a configuration error (reading the file, parsing a --set, the
        /// schema, the paths it names), the worker exits 64, the configuration status a supervisor does
        /// not restart, naming the file and key.
        @Test(arguments: [
            (["train", "--set", "fully_train.trainer.epocs=3"], "fully_train.trainer.epocs: no such key"),
            (["train", "--set", "=3"], "--set =3: expected key.path=value"),
            (
                ["train", "--data-path", "/nonexistent/imagenet"],
                "fully_train.dataset.common.data_path: /nonexistent/imagenet does not exist"
            ),
            (["train", "--config", "/nonexistent/train.yml"], "/nonexistent/train.yml: cannot read the configuration"),
            (["eval", "--config", "/nonexistent/eval.yml"], "/nonexistent/eval.yml: cannot read the configuration"),
        ])
        func configurationErrorsExitWithTheConfigurationStatus(arguments: [String], message: String) throws {
            let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-config-status")
            defer { try? FileManager.default.removeItem(at: folder) }
            let config = try Self.writeConfiguration(in: folder)
            let command =
                arguments.contains("--config") ? arguments : [arguments[0], "--config", config] + arguments.dropFirst()
            let result = try BuiltProducts.runGhostnet(command, environment: Self.noCoordinator, timeout: 60)
            #expect(result.status == 64, "\(result.combined)")
            #expect(result.standardError.contains("Error: invalid configuration "), "\(result.combined)")
            #expect(result.standardError.contains(message), "\(result.combined)")
        }
    }
}
