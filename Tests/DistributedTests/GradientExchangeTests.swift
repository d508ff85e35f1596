// The gradient exchange over thread ranks: bucketing, averaging known buffers, the watchdog, mismatched
// collectives, and the broadcast and checksum that keep replicas identical.

import Distributed
import Foundation
import TensorEngine
import Testing
import _TestSupport

/// Runs `body(rank, communicator)` on one thread per rank of a new local group and returns the
/// results in rank order (errors as `Result`s).
func runRanks<Output: Sendable>(
    _ size: Int, collectiveTimeout: Duration = .seconds(60),
    _ body: @escaping @Sendable (LocalCommunicator) throws -> Output
) -> [Result<Output, any Error>] {
    let communicators = LocalCommunicator.group(size: size, collectiveTimeout: collectiveTimeout)
    let results = ResultBox<Output>(count: size)
    let group = DispatchGroup()
    for communicator in communicators {
        group.enter()
        Thread {
            results.set(communicator.rank, Result { try body(communicator) })
            group.leave()
        }.start()
    }
    group.wait()
    return results.values
}

final class ResultBox<Output: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Result<Output, any Error>?]
    init(count: Int) { storage = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: Result<Output, any Error>) { lock.withLock { storage[index] = value } }
    var values: [Result<Output, any Error>] { lock.withLock { storage.map { $0! } } }
}

@Suite struct GradientExchangeTests {
    @Test func bucketsNeverSplitAParameterAndStartFromTheEnd() {
        let communicator = LocalCommunicator.group(size: 1)[0]
        // 4-byte floats: capacity 10 elements.
        let exchange = GradientExchange(
            parameterShapes: [[3], [4], [2, 3], [20], [1]], communicator: communicator,
            configuration: .init(bucketCapacityBytes: 40))
        #expect(exchange.buckets.map(\.parameters) == [4..<5, 3..<4, 1..<3, 0..<1])
        #expect(exchange.buckets.map(\.elements) == [33..<34, 13..<33, 3..<13, 0..<3])
        #expect(exchange.elementCount == 34)
    }

    @Test(arguments: [(1, 4), (2, 40), (3, 1 << 20), (4, 4096)])
    func averagesKnownBuffersOverThreadRanks(size: Int, bucketBytes: Int) throws {
        // Irregular sizes (tiny, odd, prime, large), 70,001 elements in all.
        let sizes = [1, 7, 1000, 4099, 64_894]
        let results = runRanks(size) { communicator -> [Float] in
            let exchange = GradientExchange(
                parameterShapes: sizes.map { [$0] }, communicator: communicator,
                configuration: .init(bucketCapacityBytes: bucketBytes))
            var random = SeededRandom(seed: 7, streams: UInt64(communicator.rank))
            for step in 0..<2 {
                for parameter in sizes.indices.shuffled(using: &random) {
                    let gradient = Tensor(shape: [sizes[parameter]]) { values in
                        for index in values.indices {
                            values[index] = Float(index % 13) + Float(communicator.rank) + Float(step) * 0.5
                        }
                    }
                    try exchange.store(gradient, forParameter: parameter)
                }
                try exchange.finish()
            }
            #expect(exchange.step == 2)
            return (0..<sizes.count).flatMap { exchange.gradient(ofParameter: $0).scalars }
        }
        // Mean over ranks of index % 13 + rank + 0.5 (the second step's offset).
        let rankMean = Float(size - 1) / 2 + 0.5
        var expected: [Float] = []
        for count in sizes {
            for index in 0..<count { expected.append(Float(index % 13) + rankMean) }
        }
        for result in results {
            expectClose(try result.get(), expected)
        }
    }

    @Test func skippedParameterIsReported() throws {
        let results = runRanks(1) { communicator in
            let exchange = GradientExchange(parameterShapes: [[2], [3]], communicator: communicator)
            try exchange.markReady(1)
            try exchange.finish()
        }
        #expect(throws: GradientExchangeError.parametersNotReady([0])) { try results[0].get() }
    }

    /// The finiteness test runs once, on the last micro-batch's sum: a NaN or infinity of any earlier
    /// pass must still be caught there, and the largest finite floats must not be.
    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func aNonFiniteMicroBatchIsCaughtOnTheLastPass(bad: Float) throws {
        let passes: [[Float]] = [[1, bad, 3], [4, 5, 6], [7, 8, 9]]
        let results = runRanks(1) { communicator in
            let exchange = GradientExchange(parameterShapes: [[3]], communicator: communicator)
            return try passes.indices.map { pass in
                try exchange.accumulate(
                    Tensor(shape: [3], scalars: passes[pass]), forParameter: 0, weight: 1.0 / 3,
                    isFirst: pass == 0, isLast: pass == passes.count - 1)
            }
        }
        #expect(try results[0].get() == [true, true, false])
    }

    @Test func finiteExtremesAreFinite() {
        let extremes: [Float] = [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -0, 0]
        #expect(extremes.withUnsafeBufferPointer(GradientExchange.isFinite))
        for bad in [Float.nan, .infinity, -.infinity, .signalingNaN] {
            #expect(!(extremes + [bad]).withUnsafeBufferPointer(GradientExchange.isFinite), "\(bad)")
        }
    }

    @Test func watchdogAbortsWhenARankNeverJoins() {
        let results = runRanks(2, collectiveTimeout: .milliseconds(200)) { communicator in
            let exchange = GradientExchange(parameterShapes: [[5]], communicator: communicator)
            if communicator.rank == 1 {
                // Rank 1 stalls in "backward" and then finds the group aborted.
                Thread.sleep(forTimeInterval: 1)
            }
            try exchange.markReady(0)
            try exchange.finish()
        }
        let failures = results.map { result -> String in
            if case .failure(let error) = result { return "\(error)" }
            return "succeeded"
        }
        #expect(
            failures[0].contains(
                "collective watchdog: rank 0, step 1: gradient bucket 0 of 1 (parameters 0-0, 20 "
                    + "bytes) not complete after 0.2 s"), "\(failures)")
        #expect(failures[1].contains("the group was aborted: rank 0: collective watchdog"), "\(failures)")
    }

    @Test func mismatchedCollectivesAreDetected() {
        let results = runRanks(2) { communicator in
            var buffer = [Float](repeating: 1, count: communicator.rank + 1)
            try buffer.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
        }
        let messages = results.compactMap { result -> String? in
            if case .failure(let error) = result { return "\(error)" }
            return nil
        }
        #expect(messages.contains { $0.contains("mismatched collectives: collective #0") }, "\(messages)")
    }

    @Test func broadcastChecksumAndAveragingKeepReplicasIdentical() throws {
        let results = runRanks(3) { communicator -> [Float] in
            let rank = Float(communicator.rank)
            var parameters = [Tensor(shape: [2, 2], repeating: rank), Tensor(shape: [3], repeating: rank + 10)]
            try communicator.broadcastParameters(&parameters)
            try communicator.verifyIdenticalParameters(parameters, step: 0)
            var statistics = [Tensor(shape: [2], repeating: rank), Tensor(shape: [1], repeating: 2 * rank)]
            try communicator.averageAcrossRanks(&statistics)
            var counts: [Int64] = [Int64(communicator.rank), 1]
            try counts.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
            var sums: [Double] = [Double(communicator.rank) * 0.5]
            try sums.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
            try communicator.barrier()
            return parameters.flatMap(\.scalars) + statistics.flatMap(\.scalars) + [
                Float(counts[0]), Float(counts[1]), Float(sums[0]),
            ]
        }
        for result in results {
            expectClose(try result.get(), [0, 0, 0, 0, 10, 10, 10, 1, 1, 2, 3, 3, 1.5])
        }
    }

    @Test func divergedParametersNameTheRanks() {
        let results = runRanks(3) { communicator in
            let value: Float = communicator.rank == 2 ? 1.5 : 1
            try communicator.verifyIdenticalParameters([Tensor(shape: [4], repeating: value)], step: 100)
        }
        for result in results {
            do {
                try result.get()
                Issue.record("diverged parameters were accepted")
            } catch {
                let message = "\(error)"
                #expect(
                    message.contains("parameters differ across ranks at step 100: ranks 0,1 have checksum"),
                    "\(message)")
                #expect(message.contains("; rank 2 has checksum"), "\(message)")
            }
        }
    }
}
