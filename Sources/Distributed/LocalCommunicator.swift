// The in-process communicator: ranks as threads sharing memory, for single-process runs and for testing
// training logic without `mpirun`; collectives match by position as in MPI.

import Foundation

/// Ranks as threads of one process, sharing memory: training logic runs under test without
/// `mpirun`, and a single-process run uses a group of size 1.
///
/// Collectives match by position, as in MPI: the k-th collective each rank starts belongs to the
/// same operation, and starting different kinds or sizes at the same position throws
/// ``CommunicatorError/mismatchedCollective(_:)``. Sums are added in rank order, so every rank
/// receives bit-identical results.
package final class LocalCommunicator: Communicator, @unchecked Sendable {
    package let rank: Int
    package var size: Int { hub.size }
    package let collectiveTimeout: Duration
    private let hub: LocalCollectiveHub
    /// How many collectives this rank has started; guarded by `hub.condition`.
    private var sequence = 0

    private init(rank: Int, hub: LocalCollectiveHub, collectiveTimeout: Duration) {
        self.rank = rank
        self.hub = hub
        self.collectiveTimeout = collectiveTimeout
    }

    /// One communicator per rank of a new group of `size` ranks; hand element `r` to the thread
    /// that plays rank `r`.
    package static func group(size: Int, collectiveTimeout: Duration = DistributedDefaults.collectiveTimeout)
        -> [LocalCommunicator]
    {
        precondition(size >= 1, "a communicator group needs at least one rank, got \(size)")
        let hub = LocalCollectiveHub(size: size)
        return (0..<size).map { LocalCommunicator(rank: $0, hub: hub, collectiveTimeout: collectiveTimeout) }
    }

    package func startBarrier() throws(CommunicatorError) -> any CollectiveRequest {
        try start(operation: "barrier", contribution: [], destination: nil) { _ in [] }
    }

    package func startBroadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws(CommunicatorError)
        -> any CollectiveRequest
    {
        precondition((0..<size).contains(root), "broadcast root \(root) is outside 0..<\(size)")
        let bytes = UnsafeMutableRawBufferPointer(buffer)
        return try start(
            operation: "broadcast(\(buffer.count) floats from \(root))", contribution: Array(bytes), destination: bytes
        ) {
            $0[root]
        }
    }

    package func startAllreduceSum<Scalar: ReducibleScalar>(_ buffer: UnsafeMutableBufferPointer<Scalar>)
        throws(CommunicatorError) -> any CollectiveRequest
    {
        try startElementwise(buffer, operation: "allreduce", initial: .zero) { $0 + $1 }
    }

    package func startAllreduceMax(_ buffer: UnsafeMutableBufferPointer<Int64>) throws(CommunicatorError)
        -> any CollectiveRequest
    {
        try startElementwise(buffer, operation: "max-allreduce", initial: .min, max)
    }

    /// An element-wise reduction combining the contributions in rank order, starting from `initial`.
    private func startElementwise<Scalar: ReducibleScalar>(
        _ buffer: UnsafeMutableBufferPointer<Scalar>, operation: String, initial: Scalar,
        _ combine: @escaping @Sendable (Scalar, Scalar) -> Scalar
    ) throws(CommunicatorError) -> any CollectiveRequest {
        let bytes = UnsafeMutableRawBufferPointer(buffer)
        let count = buffer.count
        let name = "\(operation)(\(count) \(Scalar.self))"
        // Alone, the buffer already holds the result: no copies (a one-rank run's gradient exchange).
        if size == 1 {
            return try start(operation: name, contribution: [], destination: nil) { _ in [] }
        }
        return try start(operation: name, contribution: Array(bytes), destination: bytes) { contributions in
            var results = [Scalar](repeating: initial, count: count)
            for contribution in contributions {
                contribution.withUnsafeBytes { raw in
                    let values = raw.bindMemory(to: Scalar.self)
                    for index in 0..<count { results[index] = combine(results[index], values[index]) }
                }
            }
            return results.withUnsafeBytes { Array($0) }
        }
    }

    package func startAllGather(_ bytes: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer)
        throws(CommunicatorError) -> any CollectiveRequest
    {
        precondition(
            destination.count == bytes.count * size, "all-gather of \(bytes.count) bytes needs \(size)× that room")
        return try start(
            operation: "allgather(\(bytes.count) bytes)", contribution: Array(bytes), destination: destination
        ) {
            $0.flatMap { $0 }
        }
    }

    /// Marks the group aborted: every pending and later collective on any rank throws
    /// ``CommunicatorError/aborted(reason:)``.
    package func abort(reason: String) {
        hub.condition.locked {
            if hub.abortReason == nil { hub.abortReason = "rank \(rank): \(reason)" }
            hub.condition.broadcast()
        }
    }

    private func start(
        operation: String, contribution: [UInt8], destination: UnsafeMutableRawBufferPointer?,
        combine: @escaping ([[UInt8]]) -> [UInt8]
    ) throws(CommunicatorError) -> any CollectiveRequest {
        let result: Result<Int, CommunicatorError> = hub.condition.locked {
            if let reason = hub.abortReason { return .failure(.aborted(reason: reason)) }
            let position = sequence
            sequence += 1
            var slot =
                hub.slots[position] ?? LocalCollectiveHub.Slot(operation: operation, size: size, combine: combine)
            guard slot.operation == operation else {
                // Under MPI this would hang or corrupt data; here every rank learns of it at once.
                let message =
                    "collective #\(position): rank \(rank) started \(operation), another rank \(slot.operation)"
                hub.abortReason = hub.abortReason ?? "mismatched collectives: \(message)"
                hub.condition.broadcast()
                return .failure(.mismatchedCollective(message))
            }
            slot.contributions[rank] = contribution
            if slot.contributions.allSatisfy({ $0 != nil }) {
                slot.result = slot.combine(slot.contributions.map { $0! })
                hub.condition.broadcast()
            }
            hub.slots[position] = slot
            return .success(position)
        }
        return LocalRequest(hub: hub, position: try result.get(), destination: destination)
    }
}

/// The state a group of ``LocalCommunicator``s shares.
final class LocalCollectiveHub: @unchecked Sendable {
    struct Slot {
        var operation: String
        var contributions: [[UInt8]?]
        var combine: ([[UInt8]]) -> [UInt8]
        var result: [UInt8]?
        var delivered = 0

        init(operation: String, size: Int, combine: @escaping ([[UInt8]]) -> [UInt8]) {
            self.operation = operation
            self.contributions = Array(repeating: nil, count: size)
            self.combine = combine
        }
    }

    let size: Int
    /// Guards every other property.
    let condition = NSCondition()
    var slots: [Int: Slot] = [:]
    var abortReason: String?

    init(size: Int) { self.size = size }
}

/// A pending ``LocalCommunicator`` collective; completion copies the result into the rank's buffer.
final class LocalRequest: CollectiveRequest {
    private let hub: LocalCollectiveHub
    private let position: Int
    private let destination: UnsafeMutableRawBufferPointer?
    private var isComplete = false

    init(hub: LocalCollectiveHub, position: Int, destination: UnsafeMutableRawBufferPointer?) {
        self.hub = hub
        self.position = position
        self.destination = destination
    }

    func test() throws(CommunicatorError) -> Bool {
        try hub.condition.locked { () throws(CommunicatorError) -> Bool in try deliverIfReady() }
    }

    func wait(timeout: Duration) throws(CommunicatorError) {
        let deadline = Date(timeIntervalSinceNow: timeout.inSeconds)
        try hub.condition.locked { () throws(CommunicatorError) in
            while try !deliverIfReady() {
                if !hub.condition.wait(until: deadline), try !deliverIfReady() {
                    throw .timedOut(operation: "collective #\(position)", rank: -1, seconds: timeout.inSeconds)
                }
            }
        }
    }

    /// Called with the hub's lock held.
    private func deliverIfReady() throws(CommunicatorError) -> Bool {
        if isComplete { return true }
        if let reason = hub.abortReason { throw .aborted(reason: reason) }
        guard var slot = hub.slots[position], let result = slot.result else { return false }
        if let destination, !result.isEmpty {
            result.withUnsafeBytes { destination.copyMemory(from: $0) }
        }
        isComplete = true
        slot.delivered += 1
        hub.slots[position] = slot.delivered == hub.size ? nil : slot
        return true
    }
}

extension NSCondition {
    /// Runs `body` holding the lock, keeping `body`'s typed error (`withLock` erases it).
    fileprivate func locked<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        lock()
        defer { unlock() }
        return try body()
    }
}
