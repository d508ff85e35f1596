// The command lines the supervisor runs: mpirun for a rank table (as deploy/run_distributed.sh
// built it: a hostfile from the table, loopback-only transports for one server, --allow-run-as-root
// as root, the environment variables every rank needs), the probe of one server, and the worker's
// own arguments with `--resume` on a restart.

/// How to start the job and probe its servers.
package struct MPIRunCommand: Sendable, Equatable {
    /// The mpirun command, possibly with a prefix (`ip netns exec a mpirun`): `$MPIRUN`.
    package var mpirun: [String]
    /// Extra mpirun options (`$MPIRUN_ARGS`), after the supervisor's own.
    package var extraArguments: [String]
    /// Variables passed to every rank with `-x` (those set in the supervisor's environment).
    package var forwardedVariables: [String]
    /// Whether mpirun needs `--allow-run-as-root`.
    package var runsAsRoot: Bool

    /// The variables deploy/run_distributed.sh forwarded: mpirun passes other servers only what
    /// `-x` names.
    package static let forwardable = [
        "OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OPENBLAS_L2_SIZE", "GHOSTNET_COORDINATOR",
        "GHOSTNET_COORDINATOR_TOKEN_FILE", "GHOSTNET_COORDINATOR_CA", "GHOSTNET_CACHE_DIR",
    ]

    package init(mpirun: [String], extraArguments: [String], forwardedVariables: [String], runsAsRoot: Bool) {
        self.mpirun = mpirun
        self.extraArguments = extraArguments
        self.forwardedVariables = forwardedVariables
        self.runsAsRoot = runsAsRoot
    }

    /// From the environment: `$MPIRUN` (default `mpirun`) and `$MPIRUN_ARGS` split at white space,
    /// and the set ones among ``forwardable``.
    package init(environment: [String: String], runsAsRoot: Bool) {
        func words(_ text: String?) -> [String] { (text ?? "").split(whereSeparator: \.isWhitespace).map(String.init) }
        let mpirun = words(environment["MPIRUN"])
        self.init(
            mpirun: mpirun.isEmpty ? ["mpirun"] : mpirun, extraArguments: words(environment["MPIRUN_ARGS"]),
            forwardedVariables: Self.forwardable.filter { !(environment[$0] ?? "").isEmpty }, runsAsRoot: runsAsRoot)
    }

    /// The full mpirun command line for `ranks` ranks.
    ///
    /// - Parameters:
    ///   - ranks: the table's rank count.
    ///   - hostfile: the hostfile's path, or nil for one local server, which gets shared memory and
    ///     loopback TCP only (`--oversubscribe --mca btl self,vader,tcp`, `lo` for both btl and oob).
    ///   - worker: the worker's command line (binary first).
    package func arguments(ranks: Int, hostfile: String?, worker: [String]) -> [String] {
        var arguments = mpirun + ["-np", String(ranks), "--bind-to", "none"]
        if let hostfile {
            arguments += ["--hostfile", hostfile, "--map-by", "slot"]
        } else {
            arguments += [
                "--oversubscribe", "--mca", "btl", "self,vader,tcp", "--mca", "btl_tcp_if_include", "lo",
                "--mca", "oob_tcp_if_include", "lo",
            ]
        }
        if runsAsRoot { arguments.append("--allow-run-as-root") }
        for variable in forwardedVariables { arguments += ["-x", variable] }
        return arguments + extraArguments + worker
    }

    /// `mpirun -np 1 --host SERVER … hostname`: answers when mpirun can start a daemon and a
    /// process on the server (over ssh or the configured agent).
    package func probeArguments(server: String) -> [String] {
        mpirun + ["-np", "1", "--host", server] + (runsAsRoot ? ["--allow-run-as-root"] : []) + extraArguments
            + ["hostname"]
    }

    /// The worker's command line for a start: `base`, and on a restart of `train` the same run
    /// continued: `--resume` (unless it is there already), without `--init-from`/`--init-partial`
    /// and with `runtime.init_from` cleared, because the first start's weights now live in the
    /// run's own checkpoints and `train` refuses to combine the two.
    package static func worker(_ base: [String], resuming: Bool) -> [String] {
        guard resuming, base.dropFirst().first == "train" else { return base }
        var continued: [String] = []
        var arguments = base.makeIterator()
        while let argument = arguments.next() {
            if argument == "--init-from" {
                _ = arguments.next()
            } else if argument != "--init-partial", !argument.hasPrefix("--init-from=") {
                continued.append(argument)
            }
        }
        if !continued.contains("--resume") { continued.append("--resume") }
        return continued + ["--set", "runtime.init_from=null"]
    }
}
