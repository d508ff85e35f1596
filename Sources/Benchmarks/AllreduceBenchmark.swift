// `bench allreduce`: the bucketed gradient exchange against one plain MPI_Allreduce of the same bytes.

import Distributed
import TensorEngine

/// Measures the bucketed ``GradientExchange`` against one plain blocking `MPI_Allreduce` of the
/// same byte count, alternating the two in the same run so both see the same machine load.
package struct AllreduceBenchmark: Sendable {
    /// ghostnet101's trainable parameter count, the default gradient size.
    package static let ghostnet101ParameterCount = 38_216_872

    package var elementCount: Int
    package var bucketCapacityBytes: Int
    /// Size of each synthetic parameter (the exchange splits buckets at parameter boundaries).
    package var parameterElements: Int
    package var iterations: Int
    /// The exchange's reduction: `.fixedPoint` measures `runtime.reproducible_reduction`.
    package var reduction: GradientExchange.Reduction

    package init(
        elementCount: Int, bucketCapacityBytes: Int, parameterElements: Int = 1 << 18, iterations: Int,
        reduction: GradientExchange.Reduction = .float
    ) {
        precondition(elementCount >= 1 && parameterElements >= 1 && iterations >= 1, "benchmark sizes must be positive")
        self.elementCount = elementCount
        self.bucketCapacityBytes = bucketCapacityBytes
        self.parameterElements = parameterElements
        self.iterations = iterations
        self.reduction = reduction
    }

    /// The measured times (the slowest rank's median per method) and derived bandwidths.
    package struct Result: Sendable {
        package var ranks: Int
        package var bytes: Int
        package var bucketCount: Int
        package var reduction: GradientExchange.Reduction
        package var exchangeSeconds: Double
        package var plainSeconds: Double

        /// Bus bandwidth in bytes/s as nccl-tests define it for all-reduce:
        /// `bytes / time · 2(n−1)/n`, the traffic each link carries in a ring algorithm.
        package func busBandwidth(seconds: Double) -> Double {
            Double(bytes) / seconds * 2 * Double(ranks - 1) / Double(ranks)
        }

        /// Exchange bus bandwidth as a percentage of the plain all-reduce's.
        package var ratioPercent: Double { 100 * plainSeconds / exchangeSeconds }

        /// The report rank 0 prints; the last line is the ratio.
        package var reportLines: [String] {
            func line(_ name: String, _ seconds: Double) -> String {
                let gigabytes = busBandwidth(seconds: seconds) / 1e9
                return "\(name): median \(String(format3: seconds)) s, bus bandwidth \(String(format3: gigabytes)) GB/s"
            }
            // Fixed point sends each float as an Int64 plus one 8-byte maximum per bucket.
            let wire = reduction == .float ? "" : ", fixed point: \(2 * bytes + 8 * bucketCount) bytes on the wire"
            return [
                "allreduce benchmark: \(ranks) rank(s), \(bytes / 4) floats (\(bytes) bytes), \(bucketCount) bucket(s)"
                    + wire,
                line("plain MPI_Allreduce", plainSeconds),
                line("gradient exchange  ", exchangeSeconds),
                "exchange / plain bus bandwidth: \(String(format3: ratioPercent))%",
            ]
        }
    }

    /// Runs one warm-up and `iterations` timed rounds of each method on `world`; every rank must
    /// call it.
    package func run(on world: MPICommunicator) throws -> Result {
        var shapes = Array(repeating: [parameterElements], count: elementCount / parameterElements)
        if elementCount % parameterElements != 0 { shapes.append([elementCount % parameterElements]) }
        let exchange = GradientExchange(
            parameterShapes: shapes, communicator: world,
            configuration: .init(bucketCapacityBytes: bucketCapacityBytes, checksumInterval: 0, reduction: reduction))
        // The fixed-point exchange takes gradients through accumulate (one shard of one pass).
        let ones = reduction == .float ? [] : shapes.map { Tensor(shape: $0, repeating: 1) }
        var plain = [Float](repeating: 1, count: elementCount)
        var exchangeTimes: [Double] = []
        var plainTimes: [Double] = []
        for round in 0...iterations {
            try world.barrier()
            let exchangeStart = ContinuousClock.now
            for parameter in shapes.indices.reversed() {
                if ones.isEmpty {
                    exchange.withGradient(ofParameter: parameter) { $0.update(repeating: 1) }
                    try exchange.markReady(parameter)
                } else {
                    try exchange.accumulate(
                        ones[parameter], forParameter: parameter, weight: 1, isFirst: true, isLast: true)
                }
            }
            try exchange.finish()
            let exchangeTime = exchangeStart.duration(to: .now).inSeconds

            try world.barrier()
            let plainStart = ContinuousClock.now
            try plain.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
                buffer.update(repeating: 1)
                try world.blockingAllreduceSum(buffer)
            }
            let plainTime = plainStart.duration(to: .now).inSeconds
            if round > 0 {
                exchangeTimes.append(exchangeTime)
                plainTimes.append(plainTime)
            }
        }
        // The slowest rank decides a step's time.
        var medians = [Self.median(exchangeTimes), Self.median(plainTimes)]
        // Gather every rank's medians (each rank fills its own slots, the sum collects them).
        var gathered = [Double](repeating: 0, count: 2 * world.size)
        gathered[2 * world.rank] = medians[0]
        gathered[2 * world.rank + 1] = medians[1]
        try gathered.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
            try world.allreduceSum(buffer)
        }
        medians = [
            stride(from: 0, to: gathered.count, by: 2).map { gathered[$0] }.max()!,
            stride(from: 1, to: gathered.count, by: 2).map { gathered[$0] }.max()!,
        ]
        return Result(
            ranks: world.size, bytes: elementCount * MemoryLayout<Float>.stride, bucketCount: exchange.buckets.count,
            reduction: reduction, exchangeSeconds: medians[0], plainSeconds: medians[1])
    }

    private static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

extension String {
    /// `value` with three decimals.
    init(format3 value: Double) {
        let scaled = (value * 1000).rounded()
        let sign = scaled < 0 ? "-" : ""
        let magnitude = Int(abs(scaled))
        let fraction = String(magnitude % 1000)
        self = "\(sign)\(magnitude / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
