// Rank 0's progress posting: every rank's step time gathered by one sum all-reduce, host names
// gathered once (cleaned and bounded), and the update built from the tracker's report always
// passing the coordinator's own validation.

import Distributed
import PerformanceRecords
import Testing
import Training
import _TestSupport

@Suite struct ProgressPostingTests {
    @Test func everyRankLearnsEveryRanksStepTimeExactly() throws {
        let communicators = LocalCommunicator.group(size: 4, collectiveTimeout: .seconds(60))
        let outcomes = try runOnThreads(4) { rank in
            try communicators[rank].agree(StepTimeAgreement(seconds: Double(rank) + 0.1))
        }.map { try $0.get() }
        // x + 0 is exact, so the gathered list is bit-identical to the contributions.
        #expect(outcomes.allSatisfy { $0 == [0.1, 1.1, 2.1, 3.1] })
    }

    @Test func hostNamesAreGatheredCleanedAndBounded() throws {
        let names = ["node-a", "node\nb", "", String(repeating: "é", count: 100)]
        let communicators = LocalCommunicator.group(size: 4, collectiveTimeout: .seconds(60))
        let outcomes = try runOnThreads(4) { rank in
            try RankHosts.gather(names[rank], communicator: communicators[rank])
        }.map { try $0.get() }
        let expected = ["node-a", "nodeb", "rank 2", String(repeating: "é", count: 64)]
        #expect(outcomes.allSatisfy { $0 == expected })
    }

    @Test func updateFromTheTrackerIsValidAndUsesMeansPerStep() throws {
        var tracker = ProgressTracker(epochs: 3, stepsPerEpoch: 20, globalBatchSize: 64)
        tracker.startEpoch()
        for _ in 0..<10 { tracker.record(loss: 2.0, dataWait: 0.1, compute: 0.3, communication: 0.1) }
        let middle = ProgressUpdate(
            tracker.report(epoch: 1, stepInEpoch: 10, learningRate: 0.05), state: .running,
            rankStepSeconds: [0.5, 0.6], rankHosts: ["a", "b"], timestamp: 1_700_000_000)
        // Ten steps of 0.5 s: sums of ten terms, so a few ulps of 5.0.
        #expect(abs(middle.dataSeconds - 0.1) < 1e-12 && abs(middle.computeSeconds - 0.3) < 1e-12)
        #expect(abs(middle.intervalSeconds - 5.0) < 1e-12 && abs(middle.imagesPerSecond - 128.0) < 1e-9)
        #expect(try ProgressUpdate(json: middle.json) == middle)

        // No step recorded: the mean loss is NaN in the tracker, 0 in the update; the epoch's end
        // allows the evaluation at least 10 minutes.
        tracker.startEpoch()
        let end = ProgressUpdate(
            tracker.report(epoch: 1, stepInEpoch: 20, learningRate: 0.05), state: .running, rankStepSeconds: [0.5],
            rankHosts: ["a"], timestamp: 1_700_000_000)
        #expect(end.trainLoss == 0 && end.intervalSeconds == 600 && end.etaSeconds == 0)
        #expect(try ProgressUpdate(json: end.json) == end)
    }
}
