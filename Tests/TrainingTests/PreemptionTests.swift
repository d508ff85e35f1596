// Preemption: SIGTERM/SIGUSR1 set the process's flag (and a second signal changes nothing), and a
// request on one of two thread ranks stops both at the same step boundary with a step-exact
// checkpoint from which --resume ends bit-identical to an uninterrupted run.

import Checkpoints
import Distributed
import Foundation
import Testing
import Training
import _TestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct PreemptionTests {
    /// The one test that touches the process's handlers; it restores the previous ones.
    @Test func signalSetsTheFlagAndTheFirstSignalIsKept() throws {
        var previous = PreemptionSignal.signals.map { _ in sigaction() }
        for (index, signal) in PreemptionSignal.signals.enumerated() { sigaction(signal, nil, &previous[index]) }
        defer {
            for (index, signal) in PreemptionSignal.signals.enumerated() { sigaction(signal, &previous[index], nil) }
        }
        // The test runner's threads may block signals; a blocked signal would only stay pending.
        var signalSet = sigset_t()
        sigemptyset(&signalSet)
        for signal in PreemptionSignal.signals { sigaddset(&signalSet, signal) }
        var previousMask = sigset_t()
        pthread_sigmask(SIG_UNBLOCK, &signalSet, &previousMask)
        defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
        try PreemptionSignal.install()
        #expect(PreemptionSignal.received == nil)
        // raise() runs the handler on this thread before it returns.
        raise(SIGUSR1)
        #expect(PreemptionSignal.received == "SIGUSR1")
        // Without the handler this would end the test process.
        raise(SIGTERM)
        #expect(PreemptionSignal.received == "SIGUSR1")
        #expect(PreemptionSignal.name(of: SIGTERM) == "SIGTERM")
    }

    /// 2 thread ranks, 3 steps per epoch, 2 epochs. Rank 1 asks to stop during global step
    /// `requestStep`: mid-epoch (step 4 = epoch 2, step 1) the run writes that step's checkpoint;
    /// at an epoch's end (step 3) the epoch's own checkpoint and evaluation come first. Either way
    /// both ranks throw the same collective `.preempted` error and --resume ends bit-identical
    /// (parameters and running statistics) to the uninterrupted run.
    @Test(arguments: [(4, "ckpt-e0001-s000004", "epoch 2, step 2"), (3, "ckpt-e0001-s000003", "epoch 2, step 1")])
    func requestOnOneRankStopsEveryRankAtTheSameStep(requestStep: Int, checkpoint: String, resumesAt: String) throws {
        let settings = ["fully_train.trainer.epochs=2", "runtime.keep_checkpoints=5"]
        let reference = try twoRanks(TinyJob(), settings)
        let finalBits = try reference.map { try $0.get() }

        let job = try TinyJob()
        let preempted = try twoRanks(job, settings) { rank, state in
            rank == 1 && state.globalStep == requestStep - 1 ? "SIGTERM" : nil
        }
        for outcome in preempted {
            let error = #expect(throws: TrainingError.self) { try outcome.get() }
            #expect(error?.kind == .preempted && error?.isCollective == true, "\(String(describing: error))")
            #expect(error?.message.contains("preempted: rank 1 received SIGTERM or SIGUSR1; checkpoint ") == true)
            #expect(error?.message.contains("\(checkpoint).safetensors holds global step \(requestStep)") == true)
        }
        let newest = try #require(try CheckpointDirectory(url: job.checkpointFolder, keep: 5).list().first)
        #expect(newest.name == "\(checkpoint).safetensors")
        #expect(job.log(rank: 1).contains("rank 1: SIGTERM received; stopping after this step with a checkpoint"))

        let resumed = try twoRanks(job, settings + ["runtime.resume=True"])
        #expect(job.log().contains("resume: continuing at \(resumesAt)"), "\(job.log())")
        for (rank, outcome) in resumed.enumerated() { expectBitIdentical(try outcome.get(), finalBits[rank]) }
    }

    /// Trains `job` on 2 thread ranks; `request` (rank, state before the step) is each rank's
    /// preemption request.
    ///
    /// - Returns: Each rank's final parameters and running statistics, or its error.
    private func twoRanks(
        _ job: TinyJob, _ settings: [String],
        request: @escaping @Sendable (Int, TrainingState) -> String? = { _, _ in nil }
    ) throws -> [Result<[[UInt32]], any Error>] {
        let communicators = LocalCommunicator.group(size: 2, collectiveTimeout: .seconds(120))
        return runOnThreads(2) { rank in
            let trainer = try job.trainer(settings, communicator: communicators[rank])
            trainer.preemptionRequest = { [unowned trainer] in request(rank, trainer.state) }
            try trainer.run()
            return modelBits(trainer.model)
        }
    }
}
