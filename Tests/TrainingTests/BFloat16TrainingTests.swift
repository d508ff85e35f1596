// Training in bf16 on the tiny job: the identity line names the precision, a resumed bf16 run ends
// bit-identical to an uninterrupted one, its checkpoint is an ordinary fp32 checkpoint of the master weights,
// and two thread ranks exchanging bf16 gradients keep identical replicas.

import Checkpoints
import Distributed
import GhostNet
import TensorEngine
import Testing
import Training
import _TestSupport

@Suite struct BFloat16TrainingTests {
    @Test func resumedBF16RunIsBitIdenticalAndWritesFP32Checkpoints() throws {
        let bf16 = ["fully_train.trainer.precision=bf16"]
        let uninterrupted = try TinyJob().trainer(bf16 + ["fully_train.trainer.epochs=3"])
        try uninterrupted.run()

        let job = try TinyJob()
        try job.trainer(bf16 + ["fully_train.trainer.epochs=2"]).run()
        #expect(job.log().contains("precision: bf16 ("), "\(job.log())")
        let resumed = try job.trainer(bf16 + ["fully_train.trainer.epochs=3", "runtime.resume=True"])
        try resumed.run()
        #expect(resumed.state.globalStep == uninterrupted.state.globalStep)
        expectBitIdentical(modelBits(resumed.model), modelBits(uninterrupted.model))

        // The newest checkpoint holds the master weights as F32 and says which precision trained them.
        let slots = resumed.model.parameterSlots
        let newest = try CheckpointDirectory(url: job.checkpointFolder, keep: 2).list()[0]
        let checkpoint = try TrainingCheckpoint(contentsOf: newest, slots: slots)
        #expect(checkpoint.state.precision == "bf16")
        expectBitIdentical(
            bitPatterns(checkpoint.parameters.tensors.map(\.scalars)),
            bitPatterns(resumed.model.exportedParameters.tensors.map(\.scalars)))
    }

    /// bf16 changes what is computed: the same job in fp32 ends elsewhere.
    @Test func bf16TrainingDiffersFromFP32() throws {
        let fp32 = try TinyJob().trainer(["fully_train.trainer.epochs=1"])
        try fp32.run()
        let bf16 = try TinyJob().trainer(["fully_train.trainer.epochs=1", "fully_train.trainer.precision=bf16"])
        try bf16.run()
        #expect(modelBits(fp32.model) != modelBits(bf16.model))
        #expect(fp32.state.precision == "fp32" && bf16.state.precision == "bf16")
    }

    @Test func twoThreadRanksWithBF16GradientsKeepIdenticalReplicas() throws {
        let job = try TinyJob()
        let communicators = LocalCommunicator.group(size: 2, collectiveTimeout: .seconds(120))
        let results = runOnThreads(2) { rank in
            let trainer = try job.trainer(
                ["fully_train.trainer.epochs=1", "runtime.checksum_interval=1", "runtime.gradient_dtype=bf16"],
                communicator: communicators[rank])
            try trainer.run()
            return modelBits(trainer.model)
        }
        let outcomes = try results.map { try $0.get() }
        expectBitIdentical(outcomes[1], outcomes[0])
    }
}
