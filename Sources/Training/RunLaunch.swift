// What `train` and `eval` set up before any rank talks to another: the configuration's inputs
// checked identically on every rank, then the worker (WorkerLaunch) and this rank's log. Also how a
// run that failed ends its rank.

import CoordinatorClient
import Distributed
import Foundation
import ImageData
import Logging

/// A worker ready to run a pipeline step (`fully_train` or `eval`).
///
/// Everything that can fail because of the user's input (configuration paths, dataset layout,
/// coordinator URL, rank table) is checked before `MPI_Init`, identically on every rank, so a bad
/// launch exits at once on all ranks instead of leaving one waiting in a collective.
package struct RunLaunch {
    package let dataset: DatasetIndex
    package let coordinator: CoordinatorClientConfiguration?
    package let worker: WorkerLaunch
    /// This rank's log: `<log_dir>/train-rank<r>.log`, echoed to standard output on rank 0.
    package let sink: TrainingLogSink
    package let logger: Logger

    package var communicator: any Communicator { worker.communicator }
    package var rank: Int { worker.identity.rank }

    /// - Parameters:
    ///   - step: The pipeline step whose dataset the run reads.
    ///   - options: The rank table and watchdog settings; the collective timeout and thread count
    ///     come from the configuration's `runtime` section.
    /// - Throws: ``TrainingError`` of kind `.configuration` for the configuration's inputs; the
    ///   errors of ``WorkerLaunch/start(_:environment:)``; a log folder that cannot be written.
    package init(
        configuration: TrainingConfiguration, step name: TrainingConfiguration.PipelineStep,
        options: WorkerLaunch.Options
    ) throws {
        let step = try configuration.step(name)
        try configuration.validateEnvironment()
        let runtime = configuration.runtime
        do {
            dataset = try DatasetIndex.load(dataPath: step.dataset.dataPath).index
        } catch {
            let key = "\(name.rawValue).dataset.common.data_path"
            throw TrainingError(.configuration, "\(configuration.file): \(key): \(error)")
        }
        do {
            let spool = URL(fileURLWithPath: runtime.logDirectory).appendingPathComponent("coordinator-spool.jsonl")
            coordinator = try CoordinatorClientConfiguration.resolve(
                configuredURL: runtime.coordinatorURL, job: runtime.jobName, spoolPath: spool.path,
                configuredCertificateAuthority: runtime.coordinatorCA)
        } catch {
            throw TrainingError(
                .configuration, "\(configuration.file): runtime.coordinator_url / coordinator_ca / job_name: \(error)")
        }

        var options = options
        options.collectiveTimeout = .milliseconds(Int64(runtime.collectiveTimeout * 1000))
        options.openBLASThreads = runtime.threads > 0 ? runtime.threads : nil
        worker = try WorkerLaunch.start(options)

        let rank = worker.identity.rank
        // OpenMPI hands every rank a pseudo-terminal whatever mpirun's own output is, so under mpirun
        // a terminal check says nothing about the user's screen: plain lines suit logs and `tail -f`.
        let sink = try TrainingLogSink(
            logDirectory: URL(fileURLWithPath: runtime.logDirectory), rank: rank, echoToStandardOutput: rank == 0,
            standardOutputIsTerminal: !(worker.communicator is MPICommunicator) && isatty(STDOUT_FILENO) == 1)
        self.sink = sink
        var logger = Logger(label: "ghostnet-d.\(name.rawValue)") { _ in TrainingLogHandler(sink: sink) }
        logger[metadataKey: "rank"] = rank == 0 ? nil : "\(rank)"
        self.logger = logger
        for note in worker.notes {
            switch note.severity {
            case .info: logger.info("\(note.message)")
            case .warning: logger.warning("\(note.message)")
            }
        }
        // Checks that need every rank before the first step (one collective each) run here: the
        // communicator is up, the dataset loaded, and the log open.
        try WorldAgreement.check(self, configuration: configuration)
    }

    /// Ends this rank after `error`: logs it, closes the progress display, and finalizes MPI when
    /// every rank stopped at the same point (a collective error); otherwise the caller's non-zero
    /// exit makes mpirun end the job.
    package func stop(after error: TrainingError) {
        // A preemption is an ordered stop with a checkpoint, not a failure.
        if error.kind == .preempted { logger.warning("\(error.message)") } else { logger.error("\(error.message)") }
        sink.finishProgress()
        guard error.isCollective else { return }
        // Rank 0 gets here only after delivering its records and the run's end state. mpirun ends
        // the whole job at the first non-zero exit, so no rank may exit before rank 0 is done.
        try? worker.communicator.barrier()
        try? worker.finish()
    }
}
