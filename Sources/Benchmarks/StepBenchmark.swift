// The step benchmark behind `bench train` and `bench infer`: GhostNet-D steps on random images,
// timed against the machine's sgemm peak measured in the same run. A training step is the
// trainer's: forward, loss, backward into the real GradientExchange, then the real SGDOptimizer.

import Distributed
import GhostNet
import TensorEngine
import Training

/// Measures a GhostNet-D training or inference step against the machine's GEMM peak, in one
/// process and one run (shared machines are noisy, so only ratios measured together mean much).
///
/// The run: the sgemm peak (`2048³`, best of ``gemmRepeats`` in each threading mode), then ``warmupSteps`` untimed and
/// ``steps`` timed steps on random images, each timed step preceded by one more sgemm sample, then
/// the sgemm peak once more; the best of all samples is the reference of
/// ``StepBenchmarkResult/peakFraction``. A training step hands each gradient to a
/// ``GradientExchange`` as backward announces it (over a one-rank communicator when the process is
/// alone, all ranks of the job under `mpirun`) and updates every parameter with ``optimizer``.
package struct StepBenchmark: Sendable {
    /// What one step does.
    package enum Kind: String, Sendable, CaseIterable {
        /// Forward, loss, backward, gradient exchange and SGD update.
        case training = "train"
        /// An inference-mode forward pass.
        case inference = "infer"
    }

    package var kind: Kind
    package var configuration: GhostNetConfiguration
    package var batchSize: Int
    /// OpenBLAS threads for every GEMM, the peak's included.
    package var threads: Int
    package var steps: Int
    package var warmupSteps: Int
    /// The update of a training step (its values change no timing).
    package var optimizer: SGDOptimizer
    /// sgemm calls timed per peak measurement (the best counts).
    package var gemmRepeats = 3
    /// The side of the square matrices of the peak measurement.
    package var gemmSize = 2048
    package var seed: UInt64 = 1
    /// Images per forward/backward pass of a training step (gradients accumulate over the
    /// passes, as the trainer's `runtime.micro_batch_size`); nil runs the batch in one pass.
    package var microBatchSize: Int?
    /// Passes of a micro-batched step that run at the same time, each on its share of ``threads``
    /// (``MicroBatchPlan/lanes``, training's `runtime.concurrent_micro_batches`).
    package var lanes = 1
    /// Training only: a second micro-batch (the batch itself for one pass) whose steps alternate
    /// with this one's in back-to-back pairs, their order swapped each pair, so the two share the
    /// machine's load and their ratio (``StepBenchmarkResult/comparison``) survives a noisy host.
    package var comparedMicroBatchSize: Int?
    /// Parameter slots left untrained, as `trainer.freeze` leaves them (see ``GhostNetModel/freeze(_:)``).
    package var frozenSlots: Set<Int> = []
    /// Training only: keep a weight average with this decay, updated after every step, as
    /// `trainer.ema_decay` does (see ``WeightEMA``); nil keeps none.
    package var emaDecay: Double?

    /// - Precondition: `batchSize ≥ 2` for training (batch norm needs two values per channel),
    ///   `threads ≥ 1`, `steps ≥ 1`, `warmupSteps ≥ 0`.
    package init(
        kind: Kind, configuration: GhostNetConfiguration, batchSize: Int, threads: Int, steps: Int, warmupSteps: Int,
        optimizer: SGDOptimizer
    ) {
        ensure(
            batchSize >= (kind == .training ? 2 : 1), "bench: batch size \(batchSize) is too small for \(kind.rawValue)"
        )
        ensure(threads >= 1 && steps >= 1 && warmupSteps >= 0, "bench: threads and steps must be at least 1")
        self.kind = kind
        self.configuration = configuration
        self.batchSize = batchSize
        self.threads = threads
        self.steps = steps
        self.warmupSteps = warmupSteps
        self.optimizer = optimizer
    }

    /// Floating-point operations of one image's step: a forward pass is `2·MACs`; training adds the
    /// input and weight gradients, two more GEMMs of the same size each, so `3·2·MACs`.
    package static func flopsPerImage(multiplyAccumulates: Int, kind: Kind) -> Double {
        Double(multiplyAccumulates) * 2 * (kind == .training ? 3 : 1)
    }

    /// Runs the benchmark on this rank of `communicator`; every rank of a job must call it with the
    /// same benchmark (each builds the same model from ``seed``).
    ///
    /// For training, the time of ``GradientExchange/finish()`` — after backward, until the averaged
    /// gradients are ready — is recorded per step as the exposed exchange time, and the result's
    /// ``StepBenchmarkResult/reduction`` is the timing of the rank with the largest exchange
    /// overhead (the same on every rank).
    ///
    /// - Parameters:
    ///   - communicator: the job's ranks; a one-rank group when the process is alone.
    ///   - bucketCapacityBytes: the gradient exchange's bucket size.
    /// - Throws: ``CommunicatorError`` or ``GradientExchangeError`` from the exchange,
    ///   `GhostNetModelError` from the model.
    package func run(
        on communicator: any Communicator = LocalCommunicator.group(size: 1)[0],
        bucketCapacityBytes: Int = GradientExchange.Configuration().bucketCapacityBytes
    ) throws -> StepBenchmarkResult {
        OpenBLASRuntime.threadCount = threads
        var peak = GEMMPeak.measure(size: gemmSize, repeats: gemmRepeats, threads: threads)

        var model = GhostNetModel(configuration: configuration, seed: seed)
        model.freeze(frozenSlots)
        var average = kind == .training ? emaDecay.map { WeightEMA(decay: $0, startingAt: model) } : nil
        var random = SeededRandom(seed: seed, streams: 7)
        let size = configuration.imageSize
        let images = Tensor(shape: [batchSize, size, size, GhostNetStructure.imageChannels]) { values in
            for index in values.indices { values[index] = Float(random.nextGaussian()) }
        }
        let labels = (0..<batchSize).map { _ in Int(random.next() % UInt64(configuration.classes)) }
        var trainer = BenchmarkTrainingStep(
            exchange: GradientExchange(
                parameterShapes: model.parameterSlots.map(\.shape), communicator: communicator,
                configuration: .init(bucketCapacityBytes: bucketCapacityBytes, checksumInterval: 0)),
            optimizer: optimizer, momentum: model.parameterSlots.map { Tensor(shape: $0.shape) },
            plan: MicroBatchPlan(microBatchSize: microBatchSize, minimumSize: 2, lanes: lanes))

        var stepSeconds: [Double] = []
        var exposedSeconds: [Double] = []
        var stepCategories: [[Int]] = []
        var adjacentPeaks: [Double] = []
        var allocations: [TensorAllocations.Snapshot] = []
        var comparedSeconds: [Double] = []
        var comparedCategories: [[Int]] = []
        let comparedPlan = comparedMicroBatchSize.map {
            MicroBatchPlan(microBatchSize: $0, minimumSize: 2, lanes: lanes)
        }
        // One step of the compared plan; when `timed`, its time and its time per kind are kept.
        func comparedStep(timed: Bool) throws {
            guard kind == .training, let comparedPlan else { return }
            let own = trainer.plan
            defer { trainer.plan = own }
            trainer.plan = comparedPlan
            KernelProfiler.reset()
            KernelProfiler.isEnabled = timed
            let start = KernelProfiler.monotonicNanoseconds()
            _ = try trainer.step(&model, images: images, labels: labels)
            guard timed else { return }
            comparedSeconds.append(Double(KernelProfiler.monotonicNanoseconds() - start) * 1e-9)
            comparedCategories.append(KernelProfiler.nanoseconds)
        }
        for step in 0..<(warmupSteps + steps) {
            let timed = step >= warmupSteps
            // A peak sample under the same machine load as the step that follows.
            if timed { adjacentPeaks.append(GEMMPeak.measure(size: gemmSize, repeats: 1, threads: threads)) }
            // Every rank starts the step together, so the exposed time measures the communication,
            // not the skew of the untimed work before the step.
            if kind == .training { try communicator.barrier() }
            let comparedFirst = step % 2 == 0
            if comparedFirst { try comparedStep(timed: timed) }
            KernelProfiler.reset()
            KernelProfiler.isEnabled = timed
            let before = TensorAllocations.current
            let start = KernelProfiler.monotonicNanoseconds()
            var exposed = 0
            switch kind {
            case .training:
                exposed = try trainer.step(&model, images: images, labels: labels)
                average?.update(from: model)
            case .inference: _ = try model.evaluate(images: images)
            }
            let elapsed = KernelProfiler.monotonicNanoseconds() - start
            allocations.append(TensorAllocations.current.since(before))
            if timed {
                stepSeconds.append(Double(elapsed) * 1e-9)
                exposedSeconds.append(Double(exposed) * 1e-9)
                stepCategories.append(KernelProfiler.nanoseconds)
            }
            if !comparedFirst { try comparedStep(timed: timed) }
        }
        KernelProfiler.isEnabled = false
        // The breakdown of the median step, so that it adds up to the reported step time.
        let medianStep = Self.medianIndex(stepSeconds)
        peak = max(peak, GEMMPeak.measure(size: gemmSize, repeats: gemmRepeats, threads: threads), adjacentPeaks.max()!)
        let multiplyAccumulates = GhostNetStructure(configuration: configuration).multiplyAccumulates
        let flopsPerStep =
            StepBenchmark.flopsPerImage(multiplyAccumulates: multiplyAccumulates, kind: kind)
            * Double(batchSize)
        let adjacentFractions = zip(stepSeconds, adjacentPeaks).map { flopsPerStep / $0 / 1e9 / $1 }.sorted()

        let steady = allocations.suffix(steps).map(\.allocations).sorted()
        var result = StepBenchmarkResult(
            kind: kind, architecture: configuration.architectureName, batchSize: batchSize,
            imageSize: size, threads: threads, steps: steps, kernelName: OpenBLASRuntime.kernelName,
            multiplyAccumulatesPerImage: multiplyAccumulates,
            gemmPeakGFLOPS: peak, adjacentPeakFraction: adjacentFractions[(steps - 1) / 2],
            medianStepSeconds: stepSeconds[medianStep],
            peakResidentBytes: ProcessStatus.peakResidentBytes() ?? 0,
            allocationsPerStep: steady[steady.count / 2],
            largeAllocationsAfterFirstStep: allocations.dropFirst().reduce(0) { $0 + $1.largeAllocations },
            breakdown: Self.breakdown(stepCategories[medianStep]),
            reduction: kind == .training
                ? try Self.mostExposedRank(
                    on: communicator, stepSeconds: stepSeconds[medianStep], exposedSeconds: exposedSeconds[medianStep])
                : nil)
        if let comparedMicroBatchSize, let comparedPlan, !comparedSeconds.isEmpty {
            let speedups = zip(comparedSeconds, stepSeconds).map { $0 / $1 }.sorted()
            let comparedPasses = comparedPlan.sizes(of: batchSize)
            let comparedMedian = Self.medianIndex(comparedSeconds)
            result.comparison = MicroBatchComparison(
                microBatchSize: comparedMicroBatchSize, medianStepSeconds: comparedSeconds[comparedMedian],
                medianSpeedup: speedups[(steps - 1) / 2], passSizes: comparedPasses,
                lanes: comparedPlan.laneCount(of: batchSize),
                predictedPeakBytes: predictedPeakBytes(passSizes: comparedPasses),
                breakdown: Self.breakdown(comparedCategories[comparedMedian]))
        }
        if kind == .training {
            result.passSizes = trainer.plan.sizes(of: batchSize)
            result.lanes = trainer.plan.laneCount(of: batchSize)
            result.predictedPeakBytes = predictedPeakBytes(passSizes: result.passSizes)
        }
        return result
    }

    /// The trainer's memory model for this run: passes of the largest size; split passes are
    /// copies of the fixed batch, which then stays resident beside them (the trainer's pipeline);
    /// the weight average, frozen slots and precision as the run has them.
    func predictedPeakBytes(passSizes: [Int]) -> Int {
        let model = MemoryModel(
            structure: GhostNetStructure(configuration: configuration), imageSize: configuration.imageSize,
            pipelineImages: passSizes.count > 1 ? batchSize : 0,
            options: MemoryModel.Options(
                keepsWeightAverage: emaDecay != nil, frozenSlots: frozenSlots, precision: Precision.current))
        return model.peakBytes(
            microBatch: passSizes.max() ?? batchSize, lanes: min(lanes, passSizes.count))
    }

    /// The index of the median of `seconds` (for an even count, the faster of the middle two).
    private static func medianIndex(_ seconds: [Double]) -> Int {
        seconds.indices.sorted { seconds[$0] < seconds[$1] }[(seconds.count - 1) / 2]
    }

    /// A step's ``KernelProfiler`` nanoseconds as seconds by category label, in category order.
    private static func breakdown(_ nanoseconds: [Int]) -> [(label: String, seconds: Double)] {
        KernelCategory.allCases.map { ($0.label, Double(nanoseconds[$0.rawValue]) * 1e-9) }
    }

    /// Every rank's median step and exposed exchange time, gathered on all ranks (each rank fills
    /// its own pair of slots, the sum collects them); the rank with the largest overhead.
    private static func mostExposedRank(
        on communicator: any Communicator, stepSeconds: Double, exposedSeconds: Double
    ) throws(CommunicatorError) -> GradientReductionTiming {
        var gathered = [Double](repeating: 0, count: 2 * communicator.size)
        gathered[2 * communicator.rank] = stepSeconds
        gathered[2 * communicator.rank + 1] = exposedSeconds
        try gathered.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
            try communicator.allreduceSum(buffer)
        }
        let timings = (0..<communicator.size).map { rank in
            GradientReductionTiming(
                ranks: communicator.size, rank: rank, stepSeconds: gathered[2 * rank],
                exposedSeconds: gathered[2 * rank + 1])
        }
        return timings.max { $0.overheadFraction < $1.overheadFraction }!
    }
}

/// The trainer's step on a fixed batch: gradients go to the exchange as backward announces them,
/// then the optimizer updates every parameter from the averaged gradients.
struct BenchmarkTrainingStep {
    let exchange: GradientExchange
    let optimizer: SGDOptimizer
    var momentum: [Tensor]
    /// How the batch runs as forward/backward passes.
    var plan: MicroBatchPlan

    /// One training step.
    ///
    /// - Returns: the nanoseconds ``GradientExchange/finish()`` took (the exchange time backward
    ///   did not hide).
    mutating func step(_ model: inout GhostNetModel, images: Tensor, labels: [Int]) throws -> Int {
        // Each pass's gradients accumulate into the exchange; the last pass's start the all-reduce.
        let outcome = try plan.accumulate(images: images, labels: labels, model: &model, into: exchange) {
            (model, pass, _, ready) throws(GhostNetModelError) -> Double in
            try model.trainingStep(images: pass.images, labels: pass.labels) { slot, gradient in
                KernelProfiler.measure(.allReduce) { ready(slot, gradient) }
            }.loss
        }
        if let error = outcome.exchangeError { throw error }
        let finishStart = KernelProfiler.monotonicNanoseconds()
        try KernelProfiler.measure(.allReduce) { () throws -> Void in try exchange.finish() }
        let exposed = KernelProfiler.monotonicNanoseconds() - finishStart
        exchange.withGradients { gradients in
            optimizer.update(
                &model, gradients: gradients, momentum: &momentum, buffersAreInitialized: exchange.step > 1)
        }
        return exposed
    }
}
