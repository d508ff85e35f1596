//===----------------------------------------------------------------------===//
// ghostnet-d — Training
//===----------------------------------------------------------------------===//

import Distributed
import GhostNet
import TensorEngine

/// The ``GradientExchange`` as the step benchmark's gradient reduction: each gradient is stored
/// into the exchange's flat buffer as backward announces it (starting bucket all-reduces while
/// backward continues), and ``finish()`` waits for the averaged result.
final class ExchangeGradientReduction: StepGradientReduction {
    let exchange: GradientExchange

    init(exchange: GradientExchange) {
        self.exchange = exchange
    }

    var ranks: Int { exchange.communicator.size }

    var rank: Int { exchange.communicator.rank }

    /// A barrier, so that every rank's step starts together and the exposed time measures the
    /// communication, not the skew of the untimed work before the step.
    func beginStep() throws {
        try exchange.communicator.barrier()
    }

    func store(_ gradient: Tensor, slot: TensorSlot) throws {
        try exchange.store(gradient, forParameter: slot.index)
    }

    func finish() throws {
        try exchange.finish()
    }

    func withGradients<Result>(_ body: (UnsafeBufferPointer<Float>) throws -> Result) rethrows -> Result {
        try exchange.withGradients(body)
    }
}

/// A training-step benchmark of every rank of a job, with the real gradient exchange between them.
public enum DistributedStepBenchmark {
    /// Runs `benchmark` (of kind ``StepBenchmark/Kind/training``) on this rank with a
    /// ``GradientExchange`` over `communicator`; every rank must call it with the same benchmark.
    ///
    /// - Parameters:
    ///   - benchmark: the step benchmark; each rank builds the same model from its seed.
    ///   - communicator: the job's ranks.
    ///   - bucketCapacityBytes: the exchange's bucket size.
    /// - Returns: this rank's result, whose ``StepBenchmarkResult/reduction`` is the timing of the
    ///   rank with the largest exchange overhead (the same on every rank).
    /// - Throws: ``CommunicatorError`` or ``GradientExchangeError`` from the exchange.
    public static func run(
        _ benchmark: StepBenchmark, communicator: any Communicator, bucketCapacityBytes: Int
    ) throws -> StepBenchmarkResult {
        precondition(benchmark.kind == .training, "the gradient exchange takes part in training steps only")
        var result = try benchmark.run { slots in
            ExchangeGradientReduction(
                exchange: GradientExchange(
                    parameterShapes: slots.map(\.shape), communicator: communicator,
                    configuration: .init(bucketCapacityBytes: bucketCapacityBytes, checksumInterval: 0)))
        }
        let local = result.reduction!
        // Every rank fills its own pair of slots; the sum gathers them on all ranks.
        var gathered = [Double](repeating: 0, count: 2 * communicator.size)
        gathered[2 * communicator.rank] = local.stepSeconds
        gathered[2 * communicator.rank + 1] = local.exposedSeconds
        try gathered.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
            try communicator.allreduceSum(buffer)
        }
        let timings = (0..<communicator.size).map { rank in
            GradientReductionTiming(
                ranks: communicator.size, rank: rank, stepSeconds: gathered[2 * rank], exposedSeconds: gathered[2 * rank + 1])
        }
        result.reduction = timings.max { $0.overheadFraction < $1.overheadFraction }
        return result
    }
}
