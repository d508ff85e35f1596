//===----------------------------------------------------------------------===//
// ghostnet-d — Distributed
//===----------------------------------------------------------------------===//

import TensorEngine

/// A worker process joined to its job: rank table, identity, communicator.
///
/// ``start(_:environment:)`` performs the start-up sequence every distributed command shares:
/// find and load the rank table, resolve and cross-check the identity (failing before MPI starts,
/// so a bad launch ends at once instead of hanging in the first collective), export `RANK_ID`,
/// `RANK_SIZE`, `DEVICE_ID`, `SERVER_ID`, size OpenBLAS's thread pool, then initialise MPI when
/// `mpirun` started the process (a one-rank ``LocalCommunicator`` otherwise).
public struct DistributedWorker: Sendable {
    /// Start-up settings, usually from the command line.
    public struct Options: Sendable {
        /// `--rank-table`; when nil, `MINDSPORE_HCCL_CONFIG_PATH` or `RANK_TABLE_FILE`, else no table.
        public var rankTablePath: String?
        /// How long to wait for a table whose status is still `"initializing"`.
        public var rankTableWait: Duration
        /// The collective watchdog's limit.
        public var collectiveTimeout: Duration
        /// OpenBLAS threads; nil = `OPENBLAS_NUM_THREADS` when set, else cores ÷ ranks on this server.
        public var openBLASThreads: Int?

        public init(
            rankTablePath: String? = nil, rankTableWait: Duration = .zero, collectiveTimeout: Duration = .seconds(600),
            openBLASThreads: Int? = nil
        ) {
            self.rankTablePath = rankTablePath
            self.rankTableWait = rankTableWait
            self.collectiveTimeout = collectiveTimeout
            self.openBLASThreads = openBLASThreads
        }
    }

    public let communicator: any Communicator
    public let identity: RankIdentity
    public let table: RankTable?
    /// Lines to log once: warnings (prefixed `warning:`) then the identity summary.
    public let startupLog: [String]

    /// Starts this worker; see the type's discussion for the sequence.
    ///
    /// - Throws: ``RankTableError``, ``RankIdentityError`` or ``CommunicatorError``.
    public static func start(_ options: Options, environment: LaunchEnvironment = .current) throws -> DistributedWorker {
        var warnings: [String] = []
        var table: RankTable?
        let namesTable = options.rankTablePath != nil
            || RankTable.pathVariables.contains { environment.variables[$0]?.isEmpty == false }
        if namesTable {
            let (path, pathWarnings) = try RankTable.resolvePath(
                explicitPath: options.rankTablePath, environment: environment.variables)
            warnings += pathWarnings
            table = try RankTable.load(path: path, readinessTimeout: options.rankTableWait)
        }
        let identity = try RankIdentity.resolve(table: table, environment: environment)
        warnings += identity.warnings
        identity.exportEnvironment()

        let threads = options.openBLASThreads
            ?? environment.variables["OPENBLAS_NUM_THREADS"].flatMap(Int.init).flatMap { $0 >= 1 ? $0 : nil }
            ?? identity.defaultOpenBLASThreads(processorCount: environment.processorCount)
        OpenBLASRuntime.threadCount = threads

        let communicator: any Communicator
        if environment.isUnderMPILauncher {
            let world = try MPICommunicator.world(collectiveTimeout: options.collectiveTimeout)
            guard world.size == identity.worldSize, world.rank == Int(environment.variables["OMPI_COMM_WORLD_RANK"] ?? "") else {
                world.abort(reason: "MPI reports rank \(world.rank) of \(world.size), the launcher's environment said otherwise")
                throw RankIdentityError("MPI world disagrees with the launcher environment")
            }
            communicator = world
        } else {
            communicator = LocalCommunicator.group(size: 1, collectiveTimeout: options.collectiveTimeout)[0]
        }
        let log = warnings.map { "warning: \($0)" }
            + [identity.summary(openBLASKernel: OpenBLASRuntime.kernelName, openBLASThreads: OpenBLASRuntime.threadCount)]
        return DistributedWorker(communicator: communicator, identity: identity, table: table, startupLog: log)
    }

    /// Ends the worker's part in the job: `MPI_Finalize` under mpirun (mpirun counts a rank that
    /// exits without it as failed); nothing for a local communicator.
    public func finish() throws(CommunicatorError) {
        if let world = communicator as? MPICommunicator { try world.finalize() }
    }
}
