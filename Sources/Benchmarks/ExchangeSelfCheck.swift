// `diagnose allreduce`: the gradient exchange checked end to end on buffers with known results.

import Distributed
import Glibc
import TensorEngine

/// An end-to-end check of the gradient exchange on buffers with known results, run by
/// `ghostnet-d diagnose allreduce` on every rank (the integration tests' probe of real MPI).
///
/// 1. Rank 0's parameters are broadcast; every rank must then hold them exactly.
/// 2. For two steps, rank r writes gradient element i as `(i mod 1021 + 1)·(r + 1)`, marking the
///    irregularly sized parameters ready in a rank-specific shuffled order; the averaged result must
///    be `(i mod 1021 + 1)·(N + 1)/2` (exact in float32 for these magnitudes).
/// 3. The parameter checksums of all ranks must agree.
///
/// Fault injection for tests: `perturbRank` changes one parameter on that rank before step 3 (the
/// check must fail naming it); `stallRank` sleeps before its first gradient so the others' watchdog
/// aborts the job.
package struct ExchangeSelfCheck: Sendable {
    package var elementCount: Int
    package var bucketCapacityBytes: Int
    package var perturbRank: Int?
    package var stallRank: Int?
    package var stallSeconds: Double

    package init(
        elementCount: Int, bucketCapacityBytes: Int, perturbRank: Int? = nil, stallRank: Int? = nil,
        stallSeconds: Double = 0
    ) {
        precondition(elementCount >= 1, "the self-check needs at least one element")
        self.elementCount = elementCount
        self.bucketCapacityBytes = bucketCapacityBytes
        self.perturbRank = perturbRank
        self.stallRank = stallRank
        self.stallSeconds = stallSeconds
    }

    /// Parameter sizes: a repeating irregular pattern (odd, prime, tiny and large), the last one
    /// cut to make the total `elementCount`.
    package static func parameterSizes(totalling elementCount: Int) -> [Int] {
        let pattern = [1, 7, 1000, 4099, 65_537, 3, 250_001]
        var sizes: [Int] = []
        var remaining = elementCount
        while remaining > 0 {
            let size = min(pattern[sizes.count % pattern.count], remaining)
            sizes.append(size)
            remaining -= size
        }
        return sizes
    }

    /// Runs the check; returns report lines, or throws a ``SelfCheckFailure`` describing the first
    /// wrong element (or the error of a collective).
    package func run(on communicator: any Communicator) throws -> [String] {
        let rank = communicator.rank
        let size = communicator.size
        let shapes = Self.parameterSizes(totalling: elementCount).map { [$0] }
        var report: [String] = []

        // 1. Broadcast from rank 0.
        var parameters = shapes.map { shape in
            Tensor(shape: shape) { values in
                for index in values.indices { values[index] = rank == 0 ? Float(index % 977) * 0.25 : -1 }
            }
        }
        try communicator.broadcastParameters(&parameters)
        for (parameterIndex, parameter) in parameters.enumerated() {
            try parameter.withUnsafeBufferPointer { values in
                for index in values.indices where values[index] != Float(index % 977) * 0.25 {
                    throw SelfCheckFailure(
                        "rank \(rank): broadcast parameter \(parameterIndex)[\(index)] = \(values[index]), expected \(Float(index % 977) * 0.25)"
                    )
                }
            }
        }
        report.append("broadcast of \(elementCount) floats in \(shapes.count) parameters: ok")

        // 2. Two steps of the bucketed exchange.
        let exchange = GradientExchange(
            parameterShapes: shapes, communicator: communicator,
            configuration: .init(bucketCapacityBytes: bucketCapacityBytes, checksumInterval: 1))
        var random = SeededRandom(seed: 0x5E1F, streams: UInt64(rank))
        for step in 1...2 {
            let order = shapes.indices.shuffled(using: &random)
            for (position, parameter) in order.enumerated() {
                if position == 0, stallRank == rank { usleep(UInt32(stallSeconds * 1e6)) }
                let offset = exchange.parameterOffsets[parameter]
                exchange.withGradient(ofParameter: parameter) { values in
                    for index in values.indices { values[index] = Float((offset + index) % 1021 + 1) * Float(rank + 1) }
                }
                try exchange.markReady(parameter)
            }
            try exchange.finish()
            let meanFactor = Float(size + 1) / 2
            try exchange.withGradients { values in
                for index in values.indices {
                    let expected = Float(index % 1021 + 1) * meanFactor
                    if abs(values[index] - expected) > 1e-6 * expected {
                        throw SelfCheckFailure(
                            "rank \(rank), step \(step): averaged gradient element \(index) = \(values[index]), expected \(expected)"
                        )
                    }
                }
            }
        }
        report.append(
            "exchange of \(elementCount) floats in \(exchange.buckets.count) bucket(s) over \(size) rank(s), 2 steps: ok"
        )

        // 3. Parameter checksums.
        if perturbRank == rank {
            parameters[0].withUnsafeMutableBufferPointer { $0[0] += 1 }
        }
        try exchange.verifyParametersIfDue(parameters)
        report.append("parameter checksums agree on \(size) rank(s)")
        return report
    }
}

/// A wrong value found by ``ExchangeSelfCheck``.
package struct SelfCheckFailure: Error, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}
