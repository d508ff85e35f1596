// The stop request a scheduler sends a rank: SIGTERM or SIGUSR1 (mpirun's forwarding, Slurm's
// `--signal=USR1@120`, Kubernetes' termination) only sets a flag here; the training loop reads it at
// the next step boundary, where the ranks agree to checkpoint and end with the "preempted" status.

import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The first preemption signal this process received, 0 while none. A global so the C signal
/// handler can reach it without capturing anything.
private let receivedSignal = Atomic<Int32>(0)

/// The handler: one lock-free compare-and-exchange, which is async-signal-safe. The first signal is
/// kept; a second one (a scheduler repeating itself during the checkpoint) changes nothing.
private func recordPreemption(_ signal: Int32) {
    _ = receivedSignal.compareExchange(expected: 0, desired: signal, ordering: .relaxed)
}

/// SIGTERM and SIGUSR1 turned into a request to stop at the next step boundary.
package enum PreemptionSignal {
    /// The signals that ask for a preemption checkpoint.
    package static let signals: [Int32] = [SIGTERM, SIGUSR1]

    /// Installs the handler for ``signals`` in place of their default action (ending the process).
    /// `SA_RESTART` keeps interrupted reads and writes going (checkpoint writes retry `EINTR` too).
    ///
    /// - Throws: ``PreemptionSignalError`` naming the signal `sigaction` refused.
    package static func install() throws(PreemptionSignalError) {
        // Touch the flag first, so the handler never runs the global's lazy initialization.
        _ = receivedSignal.load(ordering: .relaxed)
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { recordPreemption($0) }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            guard sigaction(signal, &action, nil) == 0 else {
                throw PreemptionSignalError(signal: signal, errorNumber: errno)
            }
        }
    }

    /// The name of the first preemption signal received ("SIGTERM", "SIGUSR1"), or nil while none.
    package static var received: String? {
        let signal = receivedSignal.load(ordering: .relaxed)
        return signal == 0 ? nil : name(of: signal)
    }

    /// "SIGTERM", "SIGUSR1", or "signal N" for any other number.
    package static func name(of signal: Int32) -> String {
        switch signal {
        case SIGTERM: "SIGTERM"
        case SIGUSR1: "SIGUSR1"
        default: "signal \(signal)"
        }
    }
}

extension RunLaunch {
    /// Installs ``PreemptionSignal`` for this rank, after `MPI_Init` so the handler is ours whatever
    /// the MPI library installs. A refusal is a warning: the run goes on, unprotected.
    package func handlePreemptionSignals() {
        do {
            try PreemptionSignal.install()
        } catch {
            logger.warning("\(error)")
        }
    }
}

/// `sigaction` refused to install the preemption handler.
package struct PreemptionSignalError: Error, CustomStringConvertible {
    package var signal: Int32
    package var errorNumber: Int32

    package var description: String {
        "cannot handle \(PreemptionSignal.name(of: signal)) (sigaction: \(String(cString: strerror(errorNumber)))); "
            + "a preemption would end the run without a checkpoint"
    }
}
