// The collective interface every rank's training talks to: the `Communicator` protocol (non-blocking
// collectives, blocking forms with a timeout watchdog), its scalar types and `CommunicatorError`.

#if canImport(Glibc)
import Glibc
#endif

/// The element types collectives reduce: `Float` (gradients), `Double` (statistics) and `Int64`
/// (counts, checksums).
package protocol ReducibleScalar: Numeric, Sendable {
    /// The scalar's wire type.
    static var reductionKind: ReductionScalarKind { get }
}

/// The wire types of ``ReducibleScalar``.
package enum ReductionScalarKind: Sendable {
    case float32, float64, int64
}

extension Float: ReducibleScalar { package static var reductionKind: ReductionScalarKind { .float32 } }
extension Double: ReducibleScalar { package static var reductionKind: ReductionScalarKind { .float64 } }
extension Int64: ReducibleScalar { package static var reductionKind: ReductionScalarKind { .int64 } }

/// A collective operation in flight.
///
/// The buffer handed to the operation that returned the request must stay valid and untouched
/// until the request completes.
package protocol CollectiveRequest: AnyObject {
    /// Whether the operation has completed; each call also drives communication forward (MPI
    /// progresses non-blocking collectives only inside MPI calls).
    ///
    /// - Throws: ``CommunicatorError`` when the operation failed or the group was aborted.
    func test() throws(CommunicatorError) -> Bool

    /// Waits until the operation completes or `timeout` has passed.
    ///
    /// - Throws: ``CommunicatorError/timedOut(operation:rank:seconds:)`` after `timeout`.
    func wait(timeout: Duration) throws(CommunicatorError)
}

extension CollectiveRequest {
    /// Polls ``test()`` until completion or the deadline, yielding the CPU between polls so ranks
    /// sharing cores with this one keep running.
    package func wait(timeout: Duration) throws(CommunicatorError) {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while try !test() {
            guard ContinuousClock.now < deadline else {
                throw .timedOut(operation: "collective", rank: -1, seconds: timeout.inSeconds)
            }
            sched_yield()
        }
    }
}

/// A group of ranks that run collectives together, in the same order on every rank.
///
/// Two implementations: ``MPICommunicator`` (one process per rank, OpenMPI) and
/// ``LocalCommunicator`` (ranks as threads of one process, for tests of training logic without
/// `mpirun`). The `start…` operations are non-blocking; the blocking forms in the extension wait
/// at most ``collectiveTimeout`` and then ``abort(reason:)`` the group, so a job never hangs.
package protocol Communicator: AnyObject, Sendable {
    /// This process's rank, `0..<size`.
    var rank: Int { get }
    /// The number of ranks.
    var size: Int { get }
    /// How long any one collective may take before the watchdog aborts the job.
    var collectiveTimeout: Duration { get }

    /// Starts a barrier.
    func startBarrier() throws(CommunicatorError) -> any CollectiveRequest

    /// Starts copying `buffer` from rank `root` into `buffer` on every other rank.
    ///
    /// - Precondition: every rank passes the same `root` and element count.
    func startBroadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws(CommunicatorError)
        -> any CollectiveRequest

    /// Starts an in-place element-wise sum of `buffer` over all ranks; on completion every rank
    /// holds the same sums.
    func startAllreduceSum<Scalar: ReducibleScalar>(_ buffer: UnsafeMutableBufferPointer<Scalar>)
        throws(CommunicatorError) -> any CollectiveRequest

    /// Starts an in-place element-wise maximum of `buffer` over all ranks (the fixed-point
    /// reduction's agreed scales; non-negative floats compare like their bit patterns).
    func startAllreduceMax(_ buffer: UnsafeMutableBufferPointer<Int64>) throws(CommunicatorError)
        -> any CollectiveRequest

    /// Starts gathering every rank's `bytes` into `destination` on every rank, rank r's at offset
    /// r · `bytes.count` (the world fingerprints before the first step).
    ///
    /// - Precondition: every rank passes the same byte count; `destination` holds `size` times it.
    func startAllGather(_ bytes: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer)
        throws(CommunicatorError) -> any CollectiveRequest

    /// Ends the whole job (every rank) after logging `reason`. For MPI this does not return.
    func abort(reason: String)
}

extension Communicator {
    /// Waits until every rank has reached the barrier.
    package func barrier() throws(CommunicatorError) {
        try complete(startBarrier(), operation: "barrier")
    }

    /// Copies `buffer` from `root` to every rank.
    package func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int = 0) throws(CommunicatorError) {
        try complete(startBroadcast(buffer, root: root), operation: "broadcast")
    }

    /// Sums `buffer` element-wise over all ranks, in place.
    package func allreduceSum<Scalar: ReducibleScalar>(_ buffer: UnsafeMutableBufferPointer<Scalar>)
        throws(CommunicatorError)
    {
        try complete(startAllreduceSum(buffer), operation: "allreduce of \(buffer.count) elements")
    }

    /// Replaces each element of `buffer` by its maximum over all ranks, in place.
    package func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Int64>) throws(CommunicatorError) {
        try complete(startAllreduceMax(buffer), operation: "max-allreduce of \(buffer.count) integers")
    }

    /// Every rank's `bytes`, in rank order.
    ///
    /// - Precondition: every rank passes the same number of bytes.
    package func allGather(_ bytes: [UInt8]) throws(CommunicatorError) -> [[UInt8]] {
        var gathered = [UInt8](repeating: 0, count: bytes.count * size)
        try bytes.withUnsafeBufferPointer { source throws(CommunicatorError) in
            try gathered.withUnsafeMutableBufferPointer { destination throws(CommunicatorError) in
                let request = try startAllGather(
                    UnsafeRawBufferPointer(source), into: UnsafeMutableRawBufferPointer(destination))
                try complete(request, operation: "all-gather of \(bytes.count) bytes")
            }
        }
        return (0..<size).map { Array(gathered[$0 * bytes.count..<($0 + 1) * bytes.count]) }
    }

    /// Waits for `request` at most ``collectiveTimeout``; past that, logs and aborts the group
    /// (the collective watchdog).
    ///
    /// - Parameter operation: what the request does, for the log line.
    package func complete(_ request: any CollectiveRequest, operation: String) throws(CommunicatorError) {
        do {
            try request.wait(timeout: collectiveTimeout)
        } catch .timedOut {
            let seconds = collectiveTimeout.inSeconds
            abort(reason: "collective watchdog: rank \(rank): \(operation) did not complete within \(seconds) s")
            throw .timedOut(operation: operation, rank: rank, seconds: seconds)
        }
    }
}

/// Why a collective failed.
package enum CommunicatorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The operation did not complete within the collective timeout.
    case timedOut(operation: String, rank: Int, seconds: Double)
    /// Another rank aborted the group.
    case aborted(reason: String)
    /// Ranks issued different collectives at the same position (a programming error that would
    /// deadlock or corrupt data under MPI).
    case mismatchedCollective(String)
    /// An MPI call returned an error.
    case mpi(MPIError)

    package var description: String {
        switch self {
        case .timedOut(let operation, let rank, let seconds):
            "rank \(rank): \(operation) did not complete within \(seconds) s"
        case .aborted(let reason): "the group was aborted: \(reason)"
        case .mismatchedCollective(let message): "mismatched collectives: \(message)"
        case .mpi(let error): error.description
        }
    }
}
