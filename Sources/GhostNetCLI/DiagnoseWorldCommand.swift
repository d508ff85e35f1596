// `ghostnet-d diagnose world`: the start-up world agreement alone, under mpirun, without training:
// every server's fingerprint and the verdict, for operators preparing a cluster.

import ArgumentParser
import Distributed
import Foundation
import ImageData
import Training

extension DiagnoseCommand {
    struct World: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that every rank sees the same dataset, config, build and kernels (run under mpirun).",
            discussion: """
                Runs the check every train and eval rank makes before its first step. Each rank fingerprints the \
                dataset of the configuration's fully_train step (else its eval step) from the index cache (class \
                list, per-class file counts and path checksums), the resolved configuration, the executable, the \
                OpenBLAS and packed kernels, the thread count and the precision; the fingerprints are gathered \
                and compared. Rank 0 prints one line per server (per group of ranks when a server's ranks differ), \
                the time the check took, and the verdict: every difference names the field, the servers and ranks \
                on each side and the values. The exit status is non-zero when a job would refuse to start. Kernel \
                and thread differences are accepted with a warning when runtime.allow_mixed_kernels is true.
                """)

        @Option(help: "The YAML configuration file.")
        var config: String

        @OptionGroup var settings: ConfigurationSetOptions

        @Option(help: "The ImageNet-layout dataset folder (the step's dataset.common.data_path).")
        var dataPath: String?

        @OptionGroup var distributed: DistributedOptions

        func run() throws {
            let (configuration, stepName) = try loadConfiguration()
            let step = try configuration.step(stepName)
            let index: DatasetIndex
            do {
                index = try DatasetIndex.load(dataPath: step.dataset.dataPath).index
            } catch {
                throw ValidationError("\(configuration.file): \(stepName.rawValue).dataset.common.data_path: \(error)")
            }
            // The thread count and watchdog of the configuration, as train and eval start their workers.
            var options = distributed.workerOptions
            options.collectiveTimeout = .milliseconds(Int64(configuration.runtime.collectiveTimeout * 1000))
            if configuration.runtime.threads > 0 { options.openBLASThreads = configuration.runtime.threads }
            let worker = try WorkerLaunch.start(options)
            worker.printNotes()
            let identity = worker.identity
            let placement = WorldPlacement(identity)

            let clock = ContinuousClock()
            let start = clock.now
            _ = WorldFingerprint.Build.current  // the executable's checksum, timed on its own
            let executableRead = clock.now
            let fingerprint = WorldFingerprint.current(index: index, configuration: configuration)
            let fingerprinted = clock.now
            let agreement = try WorldAgreement.reach(
                fingerprint, placement: placement, communicator: worker.communicator,
                allowMixedKernels: configuration.runtime.allowMixedKernels)
            let agreed = clock.now
            let servers = try WorldAgreement.describeServers(
                fingerprint, placement: placement, communicator: worker.communicator)
            if identity.rank == 0 {
                for line in servers { print(line) }
                print(
                    "fingerprint \(Self.milliseconds(fingerprinted - start)) ms (executable checksum "
                        + "\(Self.milliseconds(executableRead - start)) ms, once per process), agreement "
                        + "\(Self.milliseconds(agreed - fingerprinted)) ms (rank 0, \(identity.worldSize) rank(s))")
                for warning in agreement.verdict.warnings { print("warning: \(warning)") }
                for error in agreement.verdict.errors { print("error: \(error)") }
                print(
                    agreement.verdict.isAgreed
                        ? "verdict: every rank agrees; a job may start"
                        : "verdict: the ranks disagree; a job would stop before step 1")
            }
            try worker.finish()
            if !agreement.verdict.isAgreed { throw ExitCode.failure }
        }

        /// The file with `--set` values, `--data-path` and the distributed flags applied, and the
        /// step whose dataset is checked.
        private func loadConfiguration() throws -> (TrainingConfiguration, TrainingConfiguration.PipelineStep) {
            var assignments = try settings.overrides(of: config)
            assignments += distributed.configurationOverrides
            let plain = try TrainingConfiguration.load(contentsOf: config, overrides: assignments)
            let stepName: TrainingConfiguration.PipelineStep = plain.fullyTrain != nil ? .fullyTrain : .eval
            guard let dataPath else { return (plain, stepName) }
            assignments += [
                ConfigurationOverride(
                    flag: "--data-path", key: ConfigurationKeys.dataPath, step: stepName, value: dataPath)
            ].compactMap { $0 }
            return (try TrainingConfiguration.load(contentsOf: config, overrides: assignments), stepName)
        }

        private static func milliseconds(_ duration: Duration) -> String {
            String(format: "%.1f", duration.inSeconds * 1000)
        }
    }
}
