// `ghostnet-d train`: its options and configuration, then the library's Trainer on a launched worker.

import ArgumentParser
import Distributed
import Foundation
import Training

/// `ghostnet-d train`: the training daemon, one process per rank (started by `mpirun`, or alone).
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train GhostNet-D as the configuration's fully_train step describes (run one per rank under mpirun).",
        discussion: """
            Every rank reads its shard of train/, gradients are averaged over all ranks each step; every \
            runtime.eval_interval epochs (and after the last) the model is evaluated on val/ (top-1, top-5, loss; \
            rank 0 reports the record to the coordinator, or logs the Best values line at the end when none is \
            configured), and after every epoch rank 0 checkpoints it into runtime.checkpoint_dir (the last \
            keep_checkpoints plus the best). Logs go to standard output (rank 0) and to \
            <log_dir>/train-rank<r>.log. Flags override the file's values: a flag that is given wins over \
            the file, whatever its value (--collective-timeout, --bucket-mib and --openblas-threads set \
            runtime.collective_timeout, bucket_mib and threads); a flag that is not given leaves the file's value. \
            If a checkpoint cannot be written, the run stops on every rank and the previous checkpoints stay \
            intact; --resume continues from the newest valid one (a corrupt or partial one is skipped with a \
            warning) and, at the same world size, ends bit-identical to an uninterrupted run. \
            A NaN or infinite loss or gradient stops the run naming the step and rank. \
            SIGTERM or SIGUSR1 to any rank (mpirun forwards both; Slurm's --signal=USR1@120) stops the job at \
            the next step boundary: rank 0 writes a checkpoint of that step and every rank exits with status 75 \
            (preempted); --resume then continues bit-identically. \
            With runtime.micro_batch_size M, each rank's batch (still the images per rank per step) runs as \
            micro-batches of at most M images, forward and backward each; gradients accumulate in place, weighted \
            by each micro-batch's share of the batch, and are all-reduced once per step, overlapped with the last \
            micro-batch's backward. Mixup mixes within each micro-batch. Batch norm normalises each micro-batch \
            with its own statistics and updates the running statistics once per micro-batch (PyTorch's momentum \
            rule, as PyTorch does under accumulation), so results differ slightly from one big batch unless \
            runtime.freeze_batch_norm is set. runtime.concurrent_micro_batches N runs up to N micro-batches at \
            the same time, each on its share of the threads, and applies their running-statistics updates in \
            micro-batch order afterwards. Checkpoints fall on step boundaries. \
            --init-from FILE starts a new run from FILE's weights (a ghostnet-d checkpoint, a PyTorch state_dict in \
            safetensors, or a MindSpore .ckpt): tensors are matched by name and shape as PyTorch's \
            load_state_dict(strict=False) reports them and rank 0 logs the summary (matched, missing, unexpected, \
            wrong shape); when the class count differs the classifier fc.* is re-initialised from the seed, any \
            other mismatch stops the run unless --init-partial is given. The optimizer starts fresh at epoch 0. \
            --init-from cannot be combined with --resume (which continues a run: its weights, optimizer and epoch), \
            nor used on a checkpoint folder that already holds a run.
            """)

    @Option(help: "The YAML configuration file (the seed's structure; see conf/ghostnet_d.yml).")
    var config: String

    @OptionGroup var settings: ConfigurationSetOptions

    @Flag(help: "Continue from the newest valid checkpoint in the checkpoint folder (runtime.resume).")
    var resume = false

    @Option(
        help: ArgumentHelp(
            "Start a new run from the weights of FILE (runtime.init_from): a ghostnet-d checkpoint, a PyTorch "
                + "state_dict in safetensors or a MindSpore .ckpt; see docs/INTEROP.md.",
            valueName: "file"))
    var initFrom: String?

    @Flag(
        help: ArgumentHelp(
            "With --init-from, load the tensors that match and keep the seed's initialisation for the rest "
                + "(runtime.init_partial)."))
    var initPartial = false

    @Option(parsing: .unconditional, help: "Epochs to train (fully_train.trainer.epochs; 1-100000).")
    var epochs: Int?

    @Option(help: "The ImageNet-layout dataset folder (fully_train.dataset.common.data_path).")
    var dataPath: String?

    @Option(parsing: .unconditional, help: "Images per rank per step (fully_train.dataset.common.batch_size; 1-65536).")
    var batchSize: Int?

    @Option(help: "The checkpoint folder (runtime.checkpoint_dir).")
    var checkpointDir: String?

    @Option(help: "The coordinator's http(s)://host:port URL (runtime.coordinator_url; else $GHOSTNET_COORDINATOR).")
    var coordinator: String?

    @OptionGroup var distributed: DistributedOptions

    func validate() throws {
        try OptionRange.check("--epochs", epochs, ConfigurationKeys.epochs)
        try OptionRange.check("--batch-size", batchSize, ConfigurationKeys.batchSize)
    }

    func run() throws {
        let configuration = try loadConfiguration()
        let launch = try RunLaunch(configuration: configuration, step: .fullyTrain, options: distributed.workerOptions)
        launch.printNotes()
        launch.handlePreemptionSignals()
        do {
            let trainer = try Trainer(
                configuration: configuration, dataset: launch.dataset, communicator: launch.communicator,
                logger: launch.logger, progressSink: launch.sink, coordinator: launch.coordinator,
                ranksOnServer: launch.worker.identity.ranksOnServer)
            trainer.preemptionRequest = { PreemptionSignal.received }
            try trainer.run()
        } catch {
            try launch.exit(after: error)
        }
        try launch.worker.finish()
    }

    /// The configuration file with `--set` values and the named flags applied, in that order.
    private func loadConfiguration() throws -> TrainingConfiguration {
        typealias Key = ConfigurationKeys
        var assignments = try settings.overrides(of: config)
        assignments += [
            ConfigurationOverride(flag: "--epochs", key: Key.epochs, step: .fullyTrain, value: epochs),
            ConfigurationOverride(flag: "--data-path", key: Key.dataPath, step: .fullyTrain, value: dataPath),
            ConfigurationOverride(flag: "--batch-size", key: Key.batchSize, step: .fullyTrain, value: batchSize),
            ConfigurationOverride(flag: "--checkpoint-dir", key: Key.checkpointDirectory, value: checkpointDir),
            ConfigurationOverride(flag: "--coordinator", key: Key.coordinatorURL, value: coordinator),
            ConfigurationOverride(flag: "--resume", key: Key.resume, value: resume ? true : nil),
            ConfigurationOverride(flag: "--init-from", key: Key.initFrom, value: initFrom),
            ConfigurationOverride(flag: "--init-partial", key: Key.initPartial, value: initPartial ? true : nil),
        ].compactMap { $0 }
        assignments += distributed.configurationOverrides
        let configuration = try TrainingConfiguration.load(contentsOf: config, overrides: assignments)
        _ = try configuration.step(.fullyTrain)
        return configuration
    }
}
