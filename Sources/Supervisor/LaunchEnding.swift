// How `ghostnet-d launch` ends and the exit status it ends with (the table in docs/RELIABILITY.md
// and deploy/README.md).

import Training

/// How a launch ended.
package enum LaunchEnding: Sendable, Equatable {
    /// The job finished.
    case finished
    /// The ranks checkpointed and stopped after SIGTERM/SIGUSR1 (to them or to the launch).
    case preempted
    /// A failure a restart would only repeat: a bad configuration or rank table, bad data, a
    /// NaN/Inf, a full disk, a program trap.
    case deterministic(ExitCause)
    /// `restarts` restarts within the window did not get the job through; `causes` is every
    /// start's exit cause, oldest first.
    case gaveUp(restarts: Int, causes: [ExitCause])
    /// The launch was stopped by a signal while no job was running, or its job ended otherwise
    /// after the stop request.
    case interrupted(signal: Int32)

    /// Statuses of a gave-up and an otherwise-deterministic (trap, unknown) ending; the others reuse
    /// the worker's statuses (``WorkerExitStatus``).
    package static let gaveUpStatus: Int32 = 76
    package static let trapStatus: Int32 = 70

    /// 0 finished; 75 preempted; 76 gave up; for a deterministic failure the worker's status
    /// (64 configuration or rank table, 65 data, 66 NaN/Inf, 73 checkpoint or full disk), 70 for a
    /// trap; 128 + signal when interrupted.
    package var exitStatus: Int32 {
        switch self {
        case .finished: WorkerExitStatus.finished.rawValue
        case .preempted: WorkerExitStatus.preempted.rawValue
        case .gaveUp: Self.gaveUpStatus
        case .interrupted(let signal): 128 + signal
        case .deterministic(let cause):
            if case .worker(let status) = cause.kind { status.rawValue } else { Self.trapStatus }
        }
    }
}
