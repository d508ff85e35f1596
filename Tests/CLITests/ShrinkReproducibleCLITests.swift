// A job that shrinks from 2 ranks to 1 mid-run (resume from a mid-epoch checkpoint on 1 rank, same
// threads per rank) ends bit-identical to the uninterrupted 2-rank run with `reproducible_reduction`.

import Foundation
import Testing
import _TestSupport

extension MPIJobs {
    @Suite(.serialized, .enabled(if: BuiltProducts.mpirun != nil, "needs mpirun"))
    struct ShrinkReproducibleCLITests {
        func train(ranks: Int, _ arguments: [String]) throws -> ProcessResult {
            try BuiltProducts.run(
                BuiltProducts.mpirun!, BuiltProducts.mpirunArguments(ranks: ranks, arguments),
                environment: TrainerCLITests.noCoordinator, timeout: 150)
        }

        @Test func shrinkingFromTwoRanksToOneEndsBitIdentical() throws {
            let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-shrink")
            // 32 images over 2 virtual shards in batches of 4: 4 steps per epoch, 8 in 2 epochs; micro-batches
            // of 2 with mixup keyed by virtual shard; one BLAS thread per rank in both launches.
            let runtime = [
                "checksum_interval: 1", "micro_batch_size: 2", "save_steps: 3", "keep_checkpoints: 20", "threads: 1",
                "reproducible_reduction: True",
            ]
            let config = try TrainerCLITests.writeConfiguration(
                in: folder, extra: runtime.map { "    " + $0 }.joined(separator: "\n"))
            let arguments = ["train", "--config", config, "--epochs", "2", "--set", "fully_train.trainer.mixup=True"]
            let uninterrupted = try train(ranks: 2, arguments)
            #expect(uninterrupted.status == 0, "\(uninterrupted.combined)")
            let expected = bitPatterns(try TrainerCLITests().finalParameters(in: folder))

            // Forget everything after global step 3 (epoch 1, step 3 of 4), as if a server was lost there.
            let checkpoints = folder.appendingPathComponent("checkpoints")
            for name in try FileManager.default.contentsOfDirectory(atPath: checkpoints.path)
            where !name.contains("-s000003.") {
                try FileManager.default.removeItem(at: checkpoints.appendingPathComponent(name))
            }
            let resumed = try train(ranks: 1, arguments + ["--set", "runtime.resume=True"])
            #expect(resumed.status == 0, "\(resumed.combined)")
            let log = try String(contentsOf: folder.appendingPathComponent("logs/train-rank0.log"), encoding: .utf8)
            #expect(log.contains("resume: the checkpoint's 2 virtual shards; this rank runs shards 0..<2"), "\(log)")
            #expect(log.contains("resume: continuing at epoch 1, step 4 (global step 4)"), "\(log)")
            #expect(bitPatterns(try TrainerCLITests().finalParameters(in: folder)) == expected)

            // A configured value that contradicts the checkpoint stops the resume, naming the key.
            let contradicting = try train(
                ranks: 1, arguments + ["--set", "runtime.resume=True", "--set", "runtime.virtual_ranks=4"])
            #expect(contradicting.status != 0)
            #expect(
                contradicting.combined.contains("runtime.virtual_ranks is 4 but the checkpoint being resumed"),
                "\(contradicting.combined)")
        }
    }
}
