// `ghostnet-d launch`'s loop: start the job, watch it, classify how it ended, and restart a
// curable failure with --resume after a backoff (probing the servers, dropping a lost one and
// taking a returned one back), until it finishes, fails deterministically, is preempted or the
// restart budget is spent. Every step goes to the restart log and, as a job state, to the coordinator.

import Checkpoints
import Distributed
import Foundation
import Logging
import PerformanceRecords
import Training

#if canImport(Glibc)
import Glibc
#endif

/// What a launch runs and how it reacts.
package struct SupervisorPlan: Sendable {
    /// The rank table as given, or nil for one process without mpirun.
    package var table: RankTable?
    /// Its path, for messages.
    package var tablePath: String?
    /// The worker's command line (binary first), without `--resume` and `--rank-table`, which the
    /// supervisor adds per start.
    package var worker: [String]
    /// Whether the first start passes `--resume` too (a requeued Slurm job).
    package var resumeFirstStart: Bool
    /// The run's checkpoint folder, to name the step a start resumes from; nil when the worker is
    /// not `train`.
    package var checkpointFolder: String?
    /// Where rewritten rank tables and hostfiles go.
    package var stateFolder: String
    package var mpirun: MPIRunCommand
    package var policy: RestartPolicy
    /// Seconds one server probe may take.
    package var probeTimeout: Double
    /// The virtual shards a `train` start on fewer ranks than the table's gets with `--set
    /// runtime.virtual_ranks=N` (the table's rank count), when the configuration leaves it absent.
    package var virtualRanksWhenShrunk: Int?

    package init(
        table: RankTable?, tablePath: String?, worker: [String], resumeFirstStart: Bool, checkpointFolder: String?,
        stateFolder: String, mpirun: MPIRunCommand, policy: RestartPolicy, probeTimeout: Double,
        virtualRanksWhenShrunk: Int?
    ) {
        self.table = table
        self.tablePath = tablePath
        self.worker = worker
        self.resumeFirstStart = resumeFirstStart
        self.checkpointFolder = checkpointFolder
        self.stateFolder = stateFolder
        self.mpirun = mpirun
        self.policy = policy
        self.probeTimeout = probeTimeout
        self.virtualRanksWhenShrunk = virtualRanksWhenShrunk
    }
}

/// Runs one launch (see the file comment). Signals: the first SIGTERM, SIGINT or SIGUSR1 asks the
/// running job to checkpoint and stop (mpirun gets SIGUSR1, which it forwards to every rank; a
/// worker without mpirun gets the signal itself); a second one is passed on as SIGTERM. No
/// restart follows a stop request.
package final class Supervisor: @unchecked Sendable {
    private let plan: SupervisorPlan
    private let log: RestartLog
    private let report: (JobStateReport) -> Void
    private let lock = NSLock()
    private var child: pid_t?
    private var stopRequests: [Int32] = []
    private let wake = DispatchSemaphore(value: 0)
    private var signalSources: [DispatchSourceSignal] = []

    /// - Parameter report: receives every job state change (the coordinator client's submit).
    package init(plan: SupervisorPlan, log: RestartLog, report: @escaping (JobStateReport) -> Void) {
        self.plan = plan
        self.log = log
        self.report = report
    }

    /// Runs the launch to its end.
    package func run() -> LaunchEnding {
        installSignalHandlers()
        var health = ServerHealth(servers: plan.table?.layout.map(\.server) ?? [])
        var restartTimes: [Double] = []
        var causes: [ExitCause] = []
        var resuming = plan.resumeFirstStart
        var start = 1
        while true {
            let table: RankTable?
            let tablePath: String?
            let hostfile: String?
            do {
                (table, tablePath, hostfile) = try prepare(servers: health.active, start: start)
            } catch {
                log.write("cannot write the rank table for start \(start): \(error)", level: .error)
                return .deterministic(ExitCause(.worker(.configuration), message: "\(error)"))
            }
            let resumePoint = resuming ? resumeStep() : nil
            let servers = table?.layout.map(\.server) ?? ["this host"]
            log.write(
                RestartLog.startLine(
                    number: start, ranks: table?.rankCount ?? 1, servers: servers,
                    resume: resuming ? .some(resumePoint) : nil))
            var message = "start \(start) on \(table?.rankCount ?? 1) rank(s)"
            if let resumePoint { message += " from global step \(resumePoint.state.globalStep)" }
            if let previous = causes.last { message += " after: \(previous.summary)" }
            submit(start == 1 ? .starting : .restarting, message, step: resumePoint?.state.globalStep)
            var worker = MPIRunCommand.worker(plan.worker, resuming: resuming)
            if let virtual = plan.virtualRanksWhenShrunk, let table, table.rankCount < plan.table?.rankCount ?? 0 {
                worker += ["--set", "runtime.virtual_ranks=\(virtual)"]
            }
            if let tablePath { worker += ["--rank-table", tablePath] }
            let arguments =
                table.map { plan.mpirun.arguments(ranks: $0.rankCount, hostfile: hostfile, worker: worker) } ?? worker
            let began = Date()
            let termination: Termination
            let output: [String]
            do {
                (termination, output) = try ChildProcess.run(arguments) { pid in
                    lock.withLock { child = pid }
                    if let first = lock.withLock({ stopRequests.first }) { forward(first, to: pid, count: 1) }
                }
            } catch {
                log.write("\(error)", level: .error)
                return .deterministic(ExitCause(.unknown(127), message: "\(error)"))
            }
            lock.withLock { child = nil }
            let cause = ExitCause.classify(termination: termination, output: output, table: table)
            causes.append(cause)
            log.write(RestartLog.exitLine(number: start, seconds: Date().timeIntervalSince(began), cause: cause))
            if let ending = ending(after: cause, causes: causes, restarts: restartTimes.count) { return ending }

            for change in health.record(cause) {
                log.write(RestartLog.changeLine(change, remaining: health.active), level: .warning)
            }
            let now = ProcessInfo.processInfo.systemUptime
            guard case .restart(let wait) = plan.policy.decision(restartTimes: restartTimes, now: now) else {
                let summary = RestartLog.causeSummary(causes)
                log.write(
                    "gave up: \(restartTimes.count) restart(s) within \(Int(plan.policy.window)) s did not get the job "
                        + "through (--max-restarts \(plan.policy.maxRestarts)); causes: \(summary)", level: .error)
                submit(.failed, "gave up after \(restartTimes.count) restart(s); causes: \(summary)")
                return .gaveUp(restarts: restartTimes.count, causes: causes)
            }
            restartTimes.append(now)
            log.write(
                "restart \(restartTimes.count)/\(plan.policy.maxRestarts) in \(String(format: "%.1f", wait)) s after: "
                    + cause.summary)
            if wake.wait(timeout: .now() + wait) == .success || stopped != nil {
                log.write("stop requested during the backoff: not restarting", level: .warning)
                submit(.preempted, "stopped before restart \(restartTimes.count)")
                return .interrupted(signal: stopped ?? SIGTERM)
            }
            for server in health.serversToProbe {
                let answered = ChildProcess.probe(
                    plan.mpirun.probeArguments(server: server), timeout: plan.probeTimeout)
                if answered != .exited(0) {
                    log.write("probe of server '\(server)' failed (\(answered.map { "\($0)" } ?? "timed out"))")
                }
                for change in health.record(probeOf: server, answered: answered == .exited(0)) {
                    log.write(RestartLog.changeLine(change, remaining: health.active), level: .warning)
                }
            }
            resuming = plan.checkpointFolder != nil
            start += 1
        }
    }

    /// The ending after `cause`, or nil when the launch may restart.
    private func ending(after cause: ExitCause, causes: [ExitCause], restarts: Int) -> LaunchEnding? {
        switch cause.kind {
        case .finished:
            log.write("the job finished after \(causes.count) start(s), \(restarts) restart(s)")
            submit(.finished, "finished after \(restarts) restart(s)")
            return .finished
        case .preempted:
            log.write("the job was preempted: its ranks wrote a checkpoint and stopped; relaunch with --resume")
            submit(.preempted, "the ranks checkpointed and stopped")
            return .preempted
        default:
            break
        }
        if let signal = stopped {
            log.write("stop requested: not restarting", level: .warning)
            submit(.failed, "stopped by signal \(signal): \(cause.summary)")
            return .interrupted(signal: signal)
        }
        guard cause.isRestartable else {
            log.write("not restarting: a restart would end the same way: \(cause.summary)", level: .error)
            submit(.failed, "not restarted: \(cause.summary)")
            return .deterministic(cause)
        }
        return nil
    }

    /// Reports a job state change, its message escaped and cut to the report's bound.
    private func submit(_ state: JobState, _ message: String, step: Int? = nil) {
        var text = LogText.escaped(message)
        while text.utf8.count > JobStateReport.maximumMessageBytes { text.removeLast() }
        report(JobStateReport(state: state, message: text, step: step))
    }

    /// The table and hostfile of a start on `servers` (the original table while none is dropped).
    private func prepare(servers: [String], start: Int) throws -> (RankTable?, String?, String?) {
        guard let original = plan.table, let path = plan.tablePath else { return (nil, nil, nil) }
        var table = original
        var tablePath = path
        let dropped = Set(original.layout.map(\.server)).subtracting(servers)
        if !dropped.isEmpty || original.servers.count > 1 {
            try FileManager.default.createDirectory(atPath: plan.stateFolder, withIntermediateDirectories: true)
        }
        if !dropped.isEmpty {
            tablePath = plan.stateFolder + "/rank_table.start\(start).json"
            try RankTable.writeAtomically(original.jsonWithout(servers: dropped, file: path), to: tablePath)
            table = try RankTable.load(path: tablePath)
            log.write("start \(start) uses \(tablePath) without \(dropped.sorted().joined(separator: ", "))")
        }
        // One server given: every rank on this host over loopback, as deploy/run_distributed.sh did.
        guard original.servers.count > 1 else { return (table, tablePath, nil) }
        let hostfile = plan.stateFolder + "/hostfile.start\(start)"
        try RankTable.writeAtomically(table.hostfile(file: tablePath), to: hostfile)
        return (table, tablePath, hostfile)
    }

    /// The step the next start resumes from, as logged; warnings name skipped checkpoints.
    private func resumeStep() -> CheckpointedStep? {
        guard let folder = plan.checkpointFolder else { return nil }
        do {
            return try CheckpointedStep.newest(in: folder) { log.write($0, level: .warning) }
        } catch {
            log.write("cannot list \(folder): \(error)", level: .warning)
            return nil
        }
    }

    // MARK: - Signals

    private var stopped: Int32? { lock.withLock { stopRequests.first } }

    private func installSignalHandlers() {
        let queue = DispatchQueue(label: "ghostnet-d.launch.signals")
        for number in [SIGTERM, SIGINT, SIGUSR1] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [unowned self] in self.stopRequested(by: number) }
            source.resume()
            signalSources.append(source)
        }
    }

    private func stopRequested(by number: Int32) {
        let (pid, count) = lock.withLock { () -> (pid_t?, Int) in
            stopRequests.append(number)
            return (child, stopRequests.count)
        }
        log.write("received \(ExitCause.signalName(number)) (\(count)): asking the job to checkpoint and stop")
        wake.signal()
        if let pid { forward(number, to: pid, count: count) }
    }

    /// The first request reaches the ranks as SIGUSR1 through mpirun (a lone worker gets the
    /// signal itself); a later one is SIGTERM, which makes mpirun end the job.
    private func forward(_ number: Int32, to pid: pid_t, count: Int) {
        let signal = count > 1 ? SIGTERM : (plan.table == nil ? number : SIGUSR1)
        kill(pid, signal)
    }
}
