// The restart budget (--max-restarts within a sliding --restart-window), the doubling backoff, the
// duration syntax, the per-server failure bookkeeping, and the summary of causes a give-up prints.

import Supervisor
import Testing
import Training

@Suite struct RestartPolicyTests {
    let policy = RestartPolicy(maxRestarts: 3, window: 3600, initialBackoff: 10, maximumBackoff: 25)

    @Test func backoffDoublesUpToItsBoundAndTheBudgetEnds() {
        #expect(policy.decision(restartTimes: [], now: 100) == .restart(afterSeconds: 10))
        #expect(policy.decision(restartTimes: [100], now: 200) == .restart(afterSeconds: 20))
        #expect(policy.decision(restartTimes: [100, 200], now: 300) == .restart(afterSeconds: 25))
        #expect(policy.decision(restartTimes: [100, 200, 300], now: 400) == .giveUp)
    }

    @Test func restartsOlderThanTheWindowNoLongerCount() {
        // 3 restarts, the first 3600 s ago: only 2 count, so a third is allowed (10 × 2² = 40 s, capped at 25).
        #expect(policy.decision(restartTimes: [0, 2000, 3000], now: 3600) == .restart(afterSeconds: 25))
        #expect(policy.decision(restartTimes: [0, 3000], now: 3600) == .restart(afterSeconds: 20))
        #expect(policy.decision(restartTimes: [0, 2000, 3000], now: 3599) == .giveUp)
    }

    @Test func zeroRestartsGivesUpAtOnce() {
        #expect(RestartPolicy(maxRestarts: 0).decision(restartTimes: [], now: 0) == .giveUp)
    }

    @Test func durationsReadWithTheirUnits() {
        #expect(RestartPolicy.seconds("90") == 90)
        #expect(RestartPolicy.seconds("90s") == 90)
        #expect(RestartPolicy.seconds("30m") == 1800)
        #expect(RestartPolicy.seconds("1.5h") == 5400)
        for bad in ["", "h", "-1s", "1d", "1e3", "nan", "1h30m", "31000000"] {
            #expect(RestartPolicy.seconds(bad) == nil, "\(bad)")
        }
    }

    @Test func summaryCountsEachCauseOnceInOrder() {
        let killed = ExitCause(.signal(9), rank: 1, server: "a")
        let timeout = ExitCause(.worker(.communication), rank: 0, server: "a")
        #expect(
            RestartLog.causeSummary([killed, timeout, killed, killed])
                == "3 × rank 1 on 'a' killed by signal 9 (SIGKILL); 1 × rank 0 on 'a' exited 69 (communication)")
    }
}

@Suite struct ServerHealthTests {
    func failure(on server: String) -> ExitCause { ExitCause(.signal(9), rank: 0, server: server) }

    @Test func aServerBlamedTwiceInARowIsDroppedForTheLaunch() {
        var health = ServerHealth(servers: ["a", "b", "c"])
        #expect(health.record(failure(on: "b")).isEmpty)
        #expect(health.record(failure(on: "b")) == [.dropped("b", .failedTwice)])
        #expect(health.active == ["a", "c"])
        // A probe answer does not bring back a server that kept failing.
        #expect(health.record(probeOf: "b", answered: true).isEmpty)
        #expect(!health.serversToProbe.contains("b"))
    }

    @Test func alternatingBlameDropsNoOne() {
        var health = ServerHealth(servers: ["a", "b"])
        for server in ["a", "b", "a", "b"] { #expect(health.record(failure(on: server)).isEmpty) }
        #expect(health.active == ["a", "b"])
    }

    @Test func deterministicFailuresAndUnknownServersBlameNoOne() {
        var health = ServerHealth(servers: ["a", "b"])
        for _ in 0..<3 {
            #expect(health.record(ExitCause(.worker(.nonFinite), server: "a")).isEmpty)
            #expect(health.record(ExitCause(.serverLost, server: "z")).isEmpty)
            #expect(health.record(ExitCause(.signal(9))).isEmpty)
        }
        #expect(health.active == ["a", "b"])
    }

    @Test func aSilentServerIsDroppedAndTakenBackWhenItAnswers() {
        var health = ServerHealth(servers: ["a", "b"])
        #expect(health.serversToProbe == ["a", "b"])
        #expect(health.record(probeOf: "b", answered: false) == [.dropped("b", .noAnswer)])
        #expect(health.active == ["a"])
        #expect(health.serversToProbe == ["a", "b"])
        #expect(health.record(probeOf: "b", answered: false).isEmpty)
        #expect(health.record(probeOf: "b", answered: true) == [.returned("b")])
        #expect(health.active == ["a", "b"])
    }

    @Test func theLastServerIsNeverDropped() {
        var health = ServerHealth(servers: ["a", "b"])
        _ = health.record(probeOf: "a", answered: false)
        #expect(health.record(probeOf: "b", answered: false).isEmpty)
        #expect(health.record(failure(on: "b")).isEmpty)
        #expect(health.record(failure(on: "b")).isEmpty)
        #expect(health.active == ["b"])
    }

    @Test func aOneServerTableIsNotProbed() {
        #expect(ServerHealth(servers: ["a"]).serversToProbe.isEmpty)
    }
}
