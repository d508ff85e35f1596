// The agreements ranks reach before acting together: each one's contribution encodes, sums over
// thread ranks, and decodes to the same value on every rank.

import Distributed
import Testing
import Training
import _TestSupport

@Suite struct AgreementTests {
    /// Every rank's outcome of `contribution(rank)` agreed over `size` thread ranks.
    func agree<Contribution: Agreement & SendableMetatype>(
        _ size: Int, _ contribution: @escaping @Sendable (Int) -> Contribution
    ) throws -> [Contribution.Outcome] where Contribution.Outcome: Sendable {
        let communicators = LocalCommunicator.group(size: size, collectiveTimeout: .seconds(60))
        return try runOnThreads(size) { rank in try communicators[rank].agree(contribution(rank)) }.map { try $0.get() }
    }

    @Test func resumeStateReachesEveryRankBitForBit() throws {
        var point = ResumePoint()
        point.epoch = 3
        point.globalStep = 41
        point.stepInEpoch = 5
        point.samplerPosition = 40
        point.worldSize = 3
        point.learningRate = 0.1 * 0.987_654_321  // not a short decimal: the sum must keep every bit
        point.bestAccuracy = 0.375
        let saved = point
        let outcomes = try agree(3) { rank in rank == 0 ? ResumeAgreement.resume(saved) : .startAfresh }
        for outcome in outcomes {
            guard case .resume(let agreed) = outcome else {
                Issue.record("expected a resume, got \(outcome)")
                continue
            }
            #expect(agreed == saved)
            #expect(agreed.learningRate.bitPattern == saved.learningRate.bitPattern)
        }
        point.bestAccuracy = nil
        let withoutBest = point
        let noBest = try agree(2) { rank in rank == 0 ? ResumeAgreement.resume(withoutBest) : .startAfresh }
        #expect(noBest.allSatisfy { $0 == .resume(withoutBest) })
    }

    @Test func resumeOutcomesOtherThanAStateAreShared() throws {
        #expect(try agree(2) { _ in ResumeAgreement.startAfresh }.allSatisfy { $0 == .startAfresh })
        #expect(try agree(2) { rank in rank == 0 ? ResumeAgreement.failed : .startAfresh }.allSatisfy { $0 == .failed })
    }

    @Test func stepFlagsNameEveryRankAndWhatFailed() throws {
        let outcomes = try agree(3) { rank -> StepFlags in
            switch rank {
            case 1: [.nonFiniteGradient]
            case 2: [.nonFiniteLoss, .nonFiniteGradient]
            default: []
            }
        }
        for flags in outcomes {
            #expect(flags == [[], [.nonFiniteGradient], [.nonFiniteLoss, .nonFiniteGradient]])
            #expect(flags.map(\.nonFiniteParts) == ["", "gradient", "loss and gradient"])
        }
    }

    /// The preemption request rides in the same integer as the finiteness flags: a rank that asks to
    /// stop is named, and its request neither hides nor fakes a non-finite value.
    @Test func preemptionRequestRidesWithTheFinitenessFlags() throws {
        #expect(StepFlags.preempt.isDisjoint(with: .nonFinite))
        let outcomes = try agree(3) { rank -> StepFlags in
            switch rank {
            case 1: [.preempt]
            case 2: [.preempt, .nonFiniteLoss]
            default: []
            }
        }
        for flags in outcomes {
            #expect(flags == [[], [.preempt], [.preempt, .nonFiniteLoss]])
            #expect(flags.map { $0.isDisjoint(with: .nonFinite) } == [true, true, false])
            #expect(flags.map(\.nonFiniteParts) == ["", "", "loss"])
        }
    }

    /// On a step that ends a report window the check also carries every rank's step time, exactly
    /// (x + 0 is exact), beside the flags; on other steps it carries none.
    @Test func stepCheckCarriesStepTimesOnlyWhenAWindowEnds() throws {
        let reporting = try agree(3) { rank in
            StepCheck(flags: rank == 2 ? [.preempt] : [], stepSeconds: 0.25 * Double(rank + 1))
        }
        for check in reporting {
            #expect(check.flags == [[], [], [.preempt]])
            #expect(check.stepSeconds?.map(\.bitPattern) == [0.25, 0.5, 0.75].map(\.bitPattern))
        }
        let plain = try agree(3) { rank in StepCheck(flags: rank == 0 ? [.nonFiniteLoss] : [], stepSeconds: nil) }
        #expect(plain.allSatisfy { $0.flags == [[.nonFiniteLoss], [], []] && $0.stepSeconds == nil })
    }

    @Test func countsAreSummed() throws {
        let statuses = try agree(3) { rank in CheckpointStatus(failed: rank != 1) }
        #expect(statuses.allSatisfy { $0.failedRanks == 2 && !$0.succeeded })
        let counts = try agree(2) { rank in BadImageCounts(replacedSamples: rank + 1, badFiles: 2 * rank) }
        #expect(counts.allSatisfy { $0 == BadImageCounts(replacedSamples: 3, badFiles: 2) })
    }

    @Test func contributionsEncodeInTheirDeclaredLayout() {
        var encoder = AgreementEncoder(rank: 1, worldSize: 3)
        StepFlags.nonFiniteLoss.encode(into: &encoder)
        #expect(encoder.integers == [0, 1, 0])
        #expect(encoder.reals.isEmpty)
        var fresh = AgreementEncoder(rank: 0, worldSize: 2)
        ResumeAgreement.startAfresh.encode(into: &fresh)
        // A rank that does not resume adds nothing to rank 0's values.
        #expect(fresh.integers.allSatisfy { $0 == 0 } && fresh.reals.allSatisfy { $0 == 0 })
    }
}
