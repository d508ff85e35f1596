// The one place that turns a process into a worker of its job: the rank table, the rank's
// identity, the conventional environment variables, OpenBLAS's thread count and the communicator.
// Every process-wide effect of joining a job happens here; what is worth telling the user comes
// back as typed start-up notes for the caller to print.

import Distributed
import Foundation
import TensorEngine

/// Something a worker tells the user once at start-up.
package struct StartupNote: Sendable, Equatable, CustomStringConvertible {
    package enum Severity: Sendable, Equatable {
        /// The identity line and other facts.
        case info
        /// A finding that does not stop the job (a table warning, a host that matches no server).
        case warning
    }

    package var severity: Severity
    package var message: String

    package static func info(_ message: String) -> StartupNote { StartupNote(severity: .info, message: message) }
    package static func warning(_ message: String) -> StartupNote { StartupNote(severity: .warning, message: message) }

    package var description: String { message }
}

/// A process joined to its job: rank table, identity, communicator.
///
/// ``start(_:environment:)`` is the start-up sequence every distributed command shares: find and
/// load the rank table, resolve and cross-check the identity (failing before MPI starts, so a bad
/// launch ends at once instead of hanging in the first collective), export `RANK_ID`, `RANK_SIZE`,
/// `DEVICE_ID`, `SERVER_ID`, size OpenBLAS's thread pool, then initialise MPI when `mpirun`
/// started the process (a one-rank ``LocalCommunicator`` otherwise).
package struct WorkerLaunch: Sendable {
    /// Start-up settings, usually from the command line.
    package struct Options: Sendable {
        /// `--rank-table`; when nil, `MINDSPORE_HCCL_CONFIG_PATH` or `RANK_TABLE_FILE`, else no table.
        package var rankTablePath: String?
        /// How long to wait for a table whose status is still `"initializing"`.
        package var rankTableWait: Duration
        /// The collective watchdog's limit.
        package var collectiveTimeout: Duration
        /// OpenBLAS threads; nil = `OPENBLAS_NUM_THREADS` when set, else cores ÷ ranks on this server.
        package var openBLASThreads: Int?

        package init(
            rankTablePath: String? = nil, rankTableWait: Duration = .zero,
            collectiveTimeout: Duration = DistributedDefaults.collectiveTimeout, openBLASThreads: Int? = nil
        ) {
            self.rankTablePath = rankTablePath
            self.rankTableWait = rankTableWait
            self.collectiveTimeout = collectiveTimeout
            self.openBLASThreads = openBLASThreads
        }
    }

    package let communicator: any Communicator
    package let identity: RankIdentity
    package let table: RankTable?
    /// The OpenBLAS threads this rank runs with.
    package let openBLASThreads: Int
    /// To print once: warnings, then the identity line.
    package let notes: [StartupNote]

    /// Starts this worker; see the type's discussion for the sequence.
    ///
    /// - Throws: ``RankTableError``, ``RankIdentityError`` or ``CommunicatorError``.
    package static func start(_ options: Options, environment: LaunchEnvironment = .current) throws -> WorkerLaunch {
        var notes: [StartupNote] = []
        var table: RankTable?
        let namesTable =
            options.rankTablePath != nil
            || RankTable.pathVariables.contains { environment.variables[$0]?.isEmpty == false }
        if namesTable {
            let (path, pathWarnings) = try RankTable.resolvePath(
                explicitPath: options.rankTablePath, environment: environment.variables)
            notes += pathWarnings.map(StartupNote.warning)
            table = try RankTable.load(path: path, readinessTimeout: options.rankTableWait)
        }
        let identity = try RankIdentity.resolve(table: table, environment: environment)
        notes += identity.warnings.map(StartupNote.warning)

        // The process-wide effects of joining the job, all here: children inherit the conventional
        // variables, and OpenBLAS gets this rank's share of the server's cores.
        for (name, value) in identity.exportedVariables { setenv(name, value, 1) }
        let threads = openBLASThreads(options, environment: environment, identity: identity)
        OpenBLASRuntime.threadCount = threads

        let communicator = try join(identity, options: options, environment: environment)
        notes.append(.info(identity.summary(openBLASKernel: OpenBLASRuntime.kernelName, openBLASThreads: threads)))
        return WorkerLaunch(
            communicator: communicator, identity: identity, table: table, openBLASThreads: threads, notes: notes)
    }

    /// `--openblas-threads` / `runtime.threads`, else `OPENBLAS_NUM_THREADS`, else this server's
    /// cores shared by its ranks.
    static func openBLASThreads(_ options: Options, environment: LaunchEnvironment, identity: RankIdentity) -> Int {
        openBLASThreads(
            configured: options.openBLASThreads, variables: environment.variables,
            processorCount: environment.processorCount, ranksOnServer: identity.ranksOnServer)
    }

    /// `configured` (`--openblas-threads` / `runtime.threads`), else `OPENBLAS_NUM_THREADS` of
    /// `variables`, else `processorCount` shared by `ranksOnServer` ranks.
    package static func openBLASThreads(
        configured: Int?, variables: [String: String], processorCount: Int, ranksOnServer: Int
    ) -> Int {
        configured
            ?? variables["OPENBLAS_NUM_THREADS"].flatMap(Int.init).flatMap { $0 >= 1 ? $0 : nil }
            ?? RankIdentity.defaultOpenBLASThreads(processorCount: processorCount, ranksOnServer: ranksOnServer)
    }

    /// The MPI world under `mpirun` (checked against the identity), else a group of one.
    private static func join(
        _ identity: RankIdentity, options: Options, environment: LaunchEnvironment
    ) throws -> any Communicator {
        guard environment.isUnderMPILauncher else {
            return LocalCommunicator.group(size: 1, collectiveTimeout: options.collectiveTimeout)[0]
        }
        let world = try MPICommunicator.world(collectiveTimeout: options.collectiveTimeout)
        let launcherRank = Int(environment.variables["OMPI_COMM_WORLD_RANK"] ?? "")
        guard world.size == identity.worldSize, world.rank == launcherRank else {
            world.abort(
                reason: "MPI reports rank \(world.rank) of \(world.size), the launcher's environment said otherwise")
            throw RankIdentityError("MPI world disagrees with the launcher environment")
        }
        return world
    }

    /// Ends the worker's part in the job: `MPI_Finalize` under mpirun (mpirun counts a rank that
    /// exits without it as failed); nothing for a local communicator.
    package func finish() throws(CommunicatorError) {
        if let world = communicator as? MPICommunicator { try world.finalize() }
    }
}
