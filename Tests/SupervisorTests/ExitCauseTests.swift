// Exit-cause classification on mpirun outputs recorded from OpenMPI 4.1 (a rank exiting 66, a rank
// SIGKILLed, MPI_Abort, a daemon that cannot start or is lost), the single worker's own statuses,
// and the error message the launch ends with.

import Distributed
import Supervisor
import Testing
import Training

@Suite struct ExitCauseTests {
    /// Two servers × two ranks: ranks 0-1 on 10.0.0.1, 2-3 on 10.0.0.2.
    static let table: RankTable = {
        let text = try! RankTable.generateJSON(servers: ["10.0.0.1", "10.0.0.2"], ranksPerServer: 2)
        return try! RankTable.parse(Array(text.utf8), file: "t.json")
    }()

    static let nonZeroBanner = [
        "--------------------------------------------------------------------------",
        "Primary job  terminated normally, but 1 process returned",
        "a non-zero exit code. Per user-direction, the job has been aborted.",
        "--------------------------------------------------------------------------",
    ]

    @Test func aRankExitingWithTheNonFiniteStatusIsNotRestarted() {
        let output =
            ["2026-12-07 00:47:03.536 ERROR step 5: loss is NaN on rank 3; lower the learning rate and resume"]
            + Self.nonZeroBanner + [
                "mpirun detected that one or more processes exited with non-zero status, thus causing",
                "the job to be terminated. The first process to do so was:", "",
                "  Process name: [[13774,1],3]", "  Exit code:    66",
            ]
        let cause = ExitCause.classify(termination: .exited(66), output: output, table: Self.table)
        #expect(cause.kind == .worker(.nonFinite))
        #expect(cause.rank == 3)
        #expect(cause.server == "10.0.0.2")
        #expect(!cause.isRestartable)
        #expect(cause.message == "step 5: loss is NaN on rank 3; lower the learning rate and resume")
        #expect(cause.summary.hasPrefix("rank 3 on '10.0.0.2' exited 66 (nonFinite): step 5: loss is NaN"))
    }

    @Test func aKilledRankIsRestartedAndBlamesItsServer() {
        let output =
            Self.nonZeroBanner + [
                "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed).",
                "--------------------------------------------------------------------------",
            ]
        let cause = ExitCause.classify(termination: .exited(137), output: output, table: Self.table)
        #expect(cause.kind == .signal(9))
        #expect(cause.rank == 1)
        #expect(cause.server == "10.0.0.1")
        #expect(cause.isRestartable)
        #expect(cause.summary == "rank 1 on '10.0.0.1' killed by signal 9 (SIGKILL)")
    }

    @Test func aTrapIsNotRestarted() {
        let output = [
            "mpirun noticed that process rank 0 with PID 0 on node vm exited on signal 4 (Illegal instruction)."
        ]
        let cause = ExitCause.classify(termination: .exited(132), output: output, table: Self.table)
        #expect(cause.kind == .signal(4))
        #expect(!cause.isRestartable)
        #expect(LaunchEnding.deterministic(cause).exitStatus == LaunchEnding.trapStatus)
    }

    @Test func anAbortAfterAPeerStoppedAnsweringIsRestarted() {
        let output = [
            "ghostnet-d: the all-reduce of bucket 3 took longer than 20 s; aborting the MPI job",
            "MPI_ABORT was invoked on rank 2 in communicator MPI_COMM_WORLD",
            "with errorcode 70.",
        ]
        let cause = ExitCause.classify(termination: .exited(70), output: output, table: Self.table)
        #expect(cause.kind == .worker(.aborted))
        #expect(cause.rank == 2)
        #expect(cause.server == "10.0.0.2")
        #expect(cause.isRestartable)
    }

    @Test func aLostDaemonNamesItsServer() {
        let output = [
            "ORTE has lost communication with a remote daemon.", "",
            "  HNP daemon   : [[61812,0],0] on node 10.0.0.1",
            "  Remote daemon: [[61812,0],1] on node 10.0.0.2", "",
            "This is usually due to either a failure of the TCP network",
        ]
        let cause = ExitCause.classify(termination: .exited(1), output: output, table: Self.table)
        #expect(cause.kind == .serverLost)
        #expect(cause.server == "10.0.0.2")
        #expect(cause.isRestartable)
    }

    @Test func aDaemonThatCannotStartNamesTheUnresolvedHost() {
        let output = [
            "ssh: Could not resolve hostname 10.0.0.2: Name or service not known",
            "ORTE was unable to reliably start one or more daemons.",
        ]
        let cause = ExitCause.classify(termination: .exited(255), output: output, table: Self.table)
        #expect(cause.kind == .serverLost)
        #expect(cause.server == "10.0.0.2")
    }

    @Test func theSingleWorkersOwnStatusesAreRead() {
        #expect(ExitCause.classify(termination: .exited(0), output: [], table: nil).kind == .finished)
        #expect(ExitCause.classify(termination: .exited(75), output: [], table: nil).kind == .preempted)
        let full = ExitCause.classify(termination: .exited(73), output: ["Error: no space"], table: nil)
        #expect(full.kind == .worker(.checkpoint))
        #expect(full.message == "no space")
        #expect(!full.isRestartable)
        let killed = ExitCause.classify(termination: .signalled(9), output: [], table: nil)
        #expect(killed.kind == .signal(9))
        #expect(killed.isRestartable)
        let unknown = ExitCause.classify(termination: .exited(1), output: [], table: nil)
        #expect(unknown.kind == .unknown(1))
        #expect(unknown.isRestartable)
    }

    @Test func everyWorkerStatusKeepsItsRestartability() {
        for status in WorkerExitStatus.allCases where status != .finished && status != .preempted {
            let cause = ExitCause.classify(termination: .exited(status.rawValue), output: [], table: nil)
            #expect(cause.kind == .worker(status))
            #expect(cause.isRestartable == status.isRestartable, "\(status)")
            if !status.isRestartable {
                #expect(LaunchEnding.deterministic(cause).exitStatus == status.rawValue)
            }
        }
    }

    @Test func anotherRanksErrorLineIsTheMessageWithoutRankZerosLog() {
        let output = ["error: rank 1: cannot write checkpoint: No space left on device"]
        #expect(ExitCause.firstErrorMessage(in: output) == "rank 1: cannot write checkpoint: No space left on device")
    }
}
