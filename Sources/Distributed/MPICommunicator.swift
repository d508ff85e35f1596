// The communicator over OpenMPI: the world `mpirun` started, non-blocking collectives completed by polling
// `MPI_Test` so the watchdog can give up on a hung one.

internal import CMPI
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The world of processes `mpirun` started, over OpenMPI.
///
/// MPI is initialised with `MPI_THREAD_SERIALIZED`: any thread may call into the communicator,
/// but never two at once (training drives it from one thread). Non-blocking collectives
/// (`MPI_Iallreduce`, `MPI_Ibcast`, `MPI_Ibarrier`) progress only inside MPI calls, so requests are
/// completed by polling `MPI_Test`, which is also what lets the watchdog give up on a hung
/// collective instead of blocking in `MPI_Wait` forever.
package final class MPICommunicator: Communicator {
    package let rank: Int
    package let size: Int
    package let collectiveTimeout: Duration

    /// Whether this process called `MPI_Init_thread` (at most once per process, as MPI requires).
    private static let initialized = Mutex(false)

    /// Initialises MPI (once per process) and returns the world communicator.
    ///
    /// - Parameter collectiveTimeout: how long one collective may take before the job is aborted.
    /// - Throws: ``CommunicatorError/mpi(_:)`` when MPI cannot start.
    package static func world(collectiveTimeout: Duration = DistributedDefaults.collectiveTimeout)
        throws(CommunicatorError) -> MPICommunicator
    {
        let result: Result<Void, CommunicatorError> = initialized.withLock { isInitialized in
            guard !isInitialized else { return .success(()) }
            do throws(CommunicatorError) {
                try MPICalls.initializeSerialized()
            } catch {
                return .failure(error)
            }
            isInitialized = true
            return .success(())
        }
        try result.get()
        return try MPICommunicator(
            rank: MPICalls.worldRank(), size: MPICalls.worldSize(), collectiveTimeout: collectiveTimeout)
    }

    private init(rank: Int, size: Int, collectiveTimeout: Duration) {
        self.rank = rank
        self.size = size
        self.collectiveTimeout = collectiveTimeout
    }

    /// Shuts MPI down (`MPI_Finalize`); call once, after the last collective, before the process
    /// exits, or mpirun reports the rank as failed.
    package func finalize() throws(CommunicatorError) {
        guard !MPICalls.isFinalized() else { return }
        try MPICalls.finalize()
    }

    package func startBarrier() throws(CommunicatorError) -> any CollectiveRequest {
        let request = MPIRequest()
        try MPICalls.startBarrier(into: &request.handle)
        return request
    }

    package func startBroadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws(CommunicatorError)
        -> any CollectiveRequest
    {
        precondition((0..<size).contains(root), "broadcast root \(root) is outside 0..<\(size)")
        let request = MPIRequest()
        try MPICalls.startBroadcast(
            UnsafeMutableRawPointer(buffer.baseAddress), count: Self.count(buffer.count), root: Int32(root),
            into: &request.handle)
        return request
    }

    package func startAllreduceSum<Scalar: ReducibleScalar>(_ buffer: UnsafeMutableBufferPointer<Scalar>)
        throws(CommunicatorError) -> any CollectiveRequest
    {
        let request = MPIRequest()
        try MPICalls.startAllreduceSum(
            UnsafeMutableRawPointer(buffer.baseAddress), count: Self.count(buffer.count), kind: Scalar.reductionKind,
            into: &request.handle)
        return request
    }

    package func startAllreduceMax(_ buffer: UnsafeMutableBufferPointer<Int64>) throws(CommunicatorError)
        -> any CollectiveRequest
    {
        let request = MPIRequest()
        try MPICalls.startAllreduceMax(
            UnsafeMutableRawPointer(buffer.baseAddress), count: Self.count(buffer.count), into: &request.handle)
        return request
    }

    package func startAllGather(_ bytes: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer)
        throws(CommunicatorError) -> any CollectiveRequest
    {
        precondition(
            destination.count == bytes.count * size, "all-gather of \(bytes.count) bytes needs \(size)× that room")
        let request = MPIRequest()
        try MPICalls.startAllGather(
            bytes.baseAddress, count: Self.count(bytes.count), into: destination.baseAddress, request: &request.handle)
        return request
    }

    /// A blocking in-place `MPI_Allreduce` sum, without watchdog: the baseline the benchmark
    /// compares the bucketed exchange against.
    package func blockingAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws(CommunicatorError) {
        try MPICalls.blockingAllreduceSum(UnsafeMutableRawPointer(buffer.baseAddress), count: Self.count(buffer.count))
    }

    /// Prints `reason` to standard error and ends every rank with `MPI_Abort` (exit code 70).
    package func abort(reason: String) {
        let line = "ghostnet-d: \(reason); aborting the MPI job\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        MPICalls.abortWorld(exitCode: 70)
        exit(70)
    }

    /// MPI counts are `int`.
    private static func count(_ elements: Int) -> Int32 {
        precondition(elements <= Int(Int32.max), "MPI counts are 32-bit: \(elements) elements is too many for one call")
        return Int32(elements)
    }
}

/// One `MPI_Request`, tested until it completes (MPI then resets it to `MPI_REQUEST_NULL`, and
/// further tests report completion again).
final class MPIRequest: CollectiveRequest {
    var handle: MPI_Request? = MPICalls.nullRequest()

    func test() throws(CommunicatorError) -> Bool {
        try MPICalls.test(&handle)
    }
}
