//===----------------------------------------------------------------------===//
// ghostnet-d — GhostNet
//===----------------------------------------------------------------------===//

import Foundation
import TensorEngine

/// Measures a GhostNet-D training or inference step against the machine's GEMM peak, in one
/// process and one run (shared machines are noisy, so only ratios measured together mean much).
///
/// The run: the sgemm peak (`2048³`, best of ``gemmRepeats`` in each threading mode), then ``warmupSteps`` untimed and
/// ``steps`` timed steps on random images (a training step is forward, loss, backward, copying
/// each gradient into one flat buffer as the all-reduce would, and an SGD update of every
/// parameter), each timed step preceded by one more sgemm sample, then the sgemm peak once more;
/// the best of all samples is the reference of ``StepBenchmarkResult/peakFraction``.
public struct StepBenchmark: Sendable {
    /// What one step does.
    public enum Kind: String, Sendable, CaseIterable {
        /// Forward, loss, backward, gradient copy and SGD update.
        case training = "train"
        /// An inference-mode forward pass.
        case inference = "infer"
    }

    public var kind: Kind
    public var configuration: GhostNetConfiguration
    public var batchSize: Int
    /// OpenBLAS threads for every GEMM, the peak's included.
    public var threads: Int
    public var steps: Int
    public var warmupSteps: Int
    /// sgemm calls timed per peak measurement (the best counts).
    public var gemmRepeats = 3
    /// The side of the square matrices of the peak measurement.
    public var gemmSize = 2048
    public var seed: UInt64 = 1

    /// - Precondition: `batchSize ≥ 2` for training (batch norm needs two values per channel),
    ///   `threads ≥ 1`, `steps ≥ 1`, `warmupSteps ≥ 0`.
    public init(
        kind: Kind, configuration: GhostNetConfiguration, batchSize: Int, threads: Int, steps: Int, warmupSteps: Int
    ) {
        ensure(batchSize >= (kind == .training ? 2 : 1), "bench: batch size \(batchSize) is too small for \(kind.rawValue)")
        ensure(threads >= 1 && steps >= 1 && warmupSteps >= 0, "bench: threads and steps must be at least 1")
        self.kind = kind
        self.configuration = configuration
        self.batchSize = batchSize
        self.threads = threads
        self.steps = steps
        self.warmupSteps = warmupSteps
    }

    /// Floating-point operations of one image's step: a forward pass is `2·MACs`; training adds the
    /// input and weight gradients, two more GEMMs of the same size each, so `3·2·MACs`.
    public static func flopsPerImage(multiplyAccumulates: Int, kind: Kind) -> Double {
        Double(multiplyAccumulates) * 2 * (kind == .training ? 3 : 1)
    }

    /// Runs the benchmark in this process alone: a training step copies its gradients into one
    /// flat buffer (``LocalGradientCopy``).
    public func run() -> StepBenchmarkResult {
        // The local copy never throws.
        try! run(reducingGradientsWith: LocalGradientCopy.init(parameterSlots:))
    }

    /// Runs the benchmark, handing each training step's gradients to a reduction (for example the
    /// all-rank gradient exchange of a distributed job; every rank then runs the same benchmark).
    ///
    /// For training, the time of ``StepGradientReduction/finish()`` — after backward, until the
    /// reduced gradients are ready — is recorded per step as the exposed reduction time.
    ///
    /// - Parameter makeReduction: builds the reduction for the model's parameter slots (in slot
    ///   order; each slot's `shape` and `offset` in the flat gradient buffer).
    /// - Throws: what the reduction throws.
    public func run<Reduction: StepGradientReduction>(
        reducingGradientsWith makeReduction: ([TensorSlot]) throws -> Reduction
    ) throws -> StepBenchmarkResult {
        OpenBLASRuntime.threadCount = threads
        var peak = GEMMPeak.measure(size: gemmSize, repeats: gemmRepeats, threads: threads)

        var model = GhostNetModel(configuration: configuration, seed: seed)
        var random = SeededRandom(seed: seed, streams: 7)
        let size = configuration.imageSize
        let images = Tensor(shape: [batchSize, size, size, GhostNetStructure.imageChannels]) { values in
            for index in values.indices { values[index] = Float(random.nextGaussian()) }
        }
        let labels = (0..<batchSize).map { _ in Int(random.next() % UInt64(configuration.classes)) }
        let reduction = try makeReduction(model.parameterSlots)
        var optimizer = BenchmarkOptimizer(reduction: reduction, parameterCount: model.numberOfParameters)

        var stepSeconds: [Double] = []
        var exposedSeconds: [Double] = []
        var stepCategories: [[Int]] = []
        var adjacentPeaks: [Double] = []
        var allocations: [TensorAllocations.Snapshot] = []
        for step in 0..<(warmupSteps + steps) {
            let timed = step >= warmupSteps
            // A peak sample under the same machine load as the step that follows.
            if timed { adjacentPeaks.append(GEMMPeak.measure(size: gemmSize, repeats: 1, threads: threads)) }
            if kind == .training { try reduction.beginStep() }
            KernelProfiler.reset()
            KernelProfiler.isEnabled = timed
            let before = TensorAllocations.current
            let start = KernelProfiler.monotonicNanoseconds()
            var exposed = 0
            switch kind {
            case .training: exposed = try optimizer.step(&model, images: images, labels: labels)
            case .inference: _ = try! model.evaluate(images: images)
            }
            let elapsed = KernelProfiler.monotonicNanoseconds() - start
            allocations.append(TensorAllocations.current.since(before))
            if timed {
                stepSeconds.append(Double(elapsed) * 1e-9)
                exposedSeconds.append(Double(exposed) * 1e-9)
                stepCategories.append(KernelProfiler.nanoseconds)
            }
        }
        KernelProfiler.isEnabled = false
        // The breakdown of the median step, so that it adds up to the reported step time.
        let medianStep = stepSeconds.indices.sorted { stepSeconds[$0] < stepSeconds[$1] }[(steps - 1) / 2]
        let categorySeconds = stepCategories[medianStep].map { Double($0) * 1e-9 }
        peak = max(peak, GEMMPeak.measure(size: gemmSize, repeats: gemmRepeats, threads: threads), adjacentPeaks.max()!)
        let flopsPerStep = StepBenchmark.flopsPerImage(
            multiplyAccumulates: GhostNetStructure(configuration: configuration).multiplyAccumulates, kind: kind)
            * Double(batchSize)
        let adjacentFractions = zip(stepSeconds, adjacentPeaks).map { flopsPerStep / $0 / 1e9 / $1 }.sorted()

        let steady = allocations.suffix(steps).map(\.allocations).sorted()
        return StepBenchmarkResult(
            kind: kind, architecture: configuration.architectureName, batchSize: batchSize,
            imageSize: size, threads: threads, steps: steps, kernelName: OpenBLASRuntime.kernelName,
            multiplyAccumulatesPerImage: GhostNetStructure(configuration: configuration).multiplyAccumulates,
            gemmPeakGFLOPS: peak, adjacentPeakFraction: adjacentFractions[(steps - 1) / 2],
            medianStepSeconds: stepSeconds[medianStep],
            peakResidentBytes: ProcessStatus.peakResidentBytes() ?? 0,
            allocationsPerStep: steady[steady.count / 2],
            largeAllocationsAfterFirstStep: allocations.dropFirst().reduce(0) { $0 + $1.largeAllocations },
            breakdown: KernelCategory.allCases.map { ($0.label, categorySeconds[$0.rawValue]) },
            reduction: kind == .training
                ? GradientReductionTiming(
                    ranks: reduction.ranks, rank: reduction.rank, stepSeconds: stepSeconds[medianStep],
                    exposedSeconds: exposedSeconds[medianStep])
                : nil)
    }
}

/// Where a benchmarked training step's gradients go: a flat buffer in this process, or an
/// all-rank average (the distributed gradient exchange, adapted by the layer that knows both).
///
/// Per step the benchmark calls ``beginStep()``, then ``store(_:slot:)`` for every parameter in
/// the order backward announces them (decreasing slot index), then ``finish()``, then reads the
/// reduced gradients with ``withGradients(_:)`` for the SGD update.
public protocol StepGradientReduction: AnyObject {
    /// The processes taking part (1 for a local copy).
    var ranks: Int { get }
    /// This process's rank among them (0 for a local copy).
    var rank: Int { get }
    /// Prepares a step (a distributed reduction lines the ranks up here, outside the timed step).
    func beginStep() throws
    /// Takes parameter `slot`'s gradient (the model's internal layout, `slot.shape`) during backward.
    func store(_ gradient: Tensor, slot: TensorSlot) throws
    /// Completes the step's reduction; afterwards ``withGradients(_:)`` holds the result.
    func finish() throws
    /// Calls `body` with the reduced gradients, all parameters concatenated at their slots' offsets.
    func withGradients<Result>(_ body: (UnsafeBufferPointer<Float>) throws -> Result) rethrows -> Result
}

/// The one-process ``StepGradientReduction``: each gradient is copied into one flat buffer, what
/// an all-reduce costs when there is nobody to reduce with.
public final class LocalGradientCopy: StepGradientReduction {
    private var flatGradients: [Float]

    /// - Parameter parameterSlots: the model's parameter slots, in slot order.
    public init(parameterSlots: [TensorSlot]) {
        flatGradients = Array(repeating: 0, count: parameterSlots.last.map { $0.offset + $0.scalarCount } ?? 0)
    }

    public var ranks: Int { 1 }

    public var rank: Int { 0 }

    public func beginStep() {}

    public func store(_ gradient: Tensor, slot: TensorSlot) {
        flatGradients.withUnsafeMutableBufferPointer { flat in
            gradient.withUnsafeBufferPointer { gradient in
                (flat.baseAddress! + slot.offset).update(from: gradient.baseAddress!, count: slot.scalarCount)
            }
        }
    }

    public func finish() {}

    public func withGradients<Result>(_ body: (UnsafeBufferPointer<Float>) throws -> Result) rethrows -> Result {
        try flatGradients.withUnsafeBufferPointer(body)
    }
}

/// The part of a training step spent waiting for the gradient reduction after backward.
public struct GradientReductionTiming: Sendable {
    /// The processes that reduced together.
    public var ranks: Int
    /// The rank these times are from (a job reports its most exposed rank).
    public var rank: Int
    /// That rank's median step.
    public var stepSeconds: Double
    /// The time from the end of backward to the end of the reduction in that step: the
    /// communication backward did not hide.
    public var exposedSeconds: Double

    public init(ranks: Int, rank: Int, stepSeconds: Double, exposedSeconds: Double) {
        self.ranks = ranks
        self.rank = rank
        self.stepSeconds = stepSeconds
        self.exposedSeconds = exposedSeconds
    }

    /// What the exposed time adds to the step without it: `exposed / (step − exposed)`.
    public var overheadFraction: Double { exposedSeconds / max(stepSeconds - exposedSeconds, .leastNormalMagnitude) }
}

/// What ``StepBenchmark/run()`` measured.
public struct StepBenchmarkResult: Sendable {
    public var kind: StepBenchmark.Kind
    public var architecture: String
    public var batchSize: Int
    public var imageSize: Int
    public var threads: Int
    public var steps: Int
    /// The OpenBLAS kernel family, e.g. `Haswell`.
    public var kernelName: String
    /// The packed sgemm kernels thin products ran on (see `GEMM`), e.g. `AVX2 6×16`, or `none`.
    public var packedKernel: String
    /// One image's forward multiply-accumulates (``GhostNetStructure/multiplyAccumulates``).
    public var multiplyAccumulatesPerImage: Int
    /// The best sgemm rate of the run, in GFLOP/s.
    public var gemmPeakGFLOPS: Double
    /// The median over timed steps of the step's rate over an sgemm sample taken just before it
    /// (under the same machine load, which on a shared machine can halve both).
    public var adjacentPeakFraction: Double
    /// The median step time (for an even count, the faster of the middle two).
    public var medianStepSeconds: Double
    /// The process's peak resident memory (VmHWM), in bytes.
    public var peakResidentBytes: Int
    /// Tensor buffers created by the median timed step.
    public var allocationsPerStep: Int
    /// Large tensor buffers (≥ ``TensorAllocations/largeThreshold``) newly obtained from the
    /// system in all steps after the first.
    public var largeAllocationsAfterFirstStep: Int
    /// Seconds the median timed step spent in each ``KernelCategory`` (by label, in category order).
    public var breakdown: [(label: String, seconds: Double)]
    /// For training: how long the gradient reduction kept the median step waiting after backward.
    public var reduction: GradientReductionTiming?

    public init(
        kind: StepBenchmark.Kind, architecture: String, batchSize: Int, imageSize: Int, threads: Int, steps: Int,
        kernelName: String, multiplyAccumulatesPerImage: Int, gemmPeakGFLOPS: Double, adjacentPeakFraction: Double,
        medianStepSeconds: Double,
        peakResidentBytes: Int, allocationsPerStep: Int, largeAllocationsAfterFirstStep: Int,
        breakdown: [(label: String, seconds: Double)], reduction: GradientReductionTiming? = nil
    ) {
        self.kind = kind
        self.architecture = architecture
        self.batchSize = batchSize
        self.imageSize = imageSize
        self.threads = threads
        self.steps = steps
        self.kernelName = kernelName
        packedKernel = GEMM.packedKernel.packedLabel
        self.multiplyAccumulatesPerImage = multiplyAccumulatesPerImage
        self.gemmPeakGFLOPS = gemmPeakGFLOPS
        self.adjacentPeakFraction = adjacentPeakFraction
        self.medianStepSeconds = medianStepSeconds
        self.peakResidentBytes = peakResidentBytes
        self.allocationsPerStep = allocationsPerStep
        self.largeAllocationsAfterFirstStep = largeAllocationsAfterFirstStep
        self.breakdown = breakdown
        self.reduction = reduction
    }

    public var imagesPerSecond: Double { Double(batchSize) / medianStepSeconds }

    /// Effective GFLOP/s: ``StepBenchmark/flopsPerImage(multiplyAccumulates:kind:)`` × images/s.
    public var gflopsPerSecond: Double {
        StepBenchmark.flopsPerImage(multiplyAccumulates: multiplyAccumulatesPerImage, kind: kind) * imagesPerSecond / 1e9
    }

    /// ``gflopsPerSecond`` as a fraction of ``gemmPeakGFLOPS`` (the conservative ratio).
    public var peakFraction: Double { gflopsPerSecond / gemmPeakGFLOPS }

    /// Step time not charged to any category: Swift code between kernels, tensor allocation.
    public var unaccountedSeconds: Double { medianStepSeconds - breakdown.reduce(0) { $0 + $1.seconds } }

    /// The human-readable report.
    public var reportLines: [String] {
        var lines = [
            "bench \(kind.rawValue): \(architecture), batch \(batchSize), \(imageSize)×\(imageSize), \(threads) thread(s), OpenBLAS \(kernelName), packed kernels \(packedKernel)",
            "sgemm peak: \(format(gemmPeakGFLOPS, 1)) GFLOP/s",
            "step: \(format(medianStepSeconds * 1000, 1)) ms median of \(steps); \(format(imagesPerSecond, 2)) images/s; \(format(gflopsPerSecond, 1)) GFLOP/s effective = \(format(peakFraction * 100, 1)) % of the sgemm peak (\(format(adjacentPeakFraction * 100, 1)) % of the sample before each step)",
            "peak resident memory: \(format(Double(peakResidentBytes) / 1e9, 3)) GB; tensor allocations per step: \(allocationsPerStep); large allocations after the first step: \(largeAllocationsAfterFirstStep)",
            "time per step by kind:",
        ]
        for (label, seconds) in breakdown + [("other", unaccountedSeconds)] {
            let share = medianStepSeconds > 0 ? seconds / medianStepSeconds * 100 : 0
            lines.append("  \(label.padding(toLength: 11, withPad: " ", startingAt: 0)) \(format(seconds * 1000, 1).leftPadded(9)) ms  \(format(share, 1).leftPadded(5)) %")
        }
        if let reduction, reduction.ranks > 1 {
            lines.append(
                "exchange over \(reduction.ranks) ranks: \(format(reduction.exposedSeconds * 1000, 1)) ms after backward "
                    + "in a \(format(reduction.stepSeconds * 1000, 1)) ms step (rank \(reduction.rank), the most exposed)")
            lines.append("exchange adds \(format(reduction.overheadFraction * 100, 2)) % to the step")
        }
        return lines
    }

    /// One JSON object with every number of the report (seconds for times, bytes for memory).
    public var json: String {
        var fields: [(String, String)] = [
            ("benchmark", quoted(kind.rawValue)), ("architecture", quoted(architecture)),
            ("batch_size", "\(batchSize)"), ("image_size", "\(imageSize)"), ("threads", "\(threads)"),
            ("steps", "\(steps)"), ("openblas_kernel", quoted(kernelName)), ("packed_kernel", quoted(packedKernel)),
            ("multiply_accumulates_per_image", "\(multiplyAccumulatesPerImage)"),
            ("step_seconds", number(medianStepSeconds)), ("images_per_second", number(imagesPerSecond)),
            ("gflops_per_second", number(gflopsPerSecond)), ("gemm_peak_gflops", number(gemmPeakGFLOPS)),
            ("peak_fraction", number(peakFraction)), ("adjacent_peak_fraction", number(adjacentPeakFraction)),
            ("peak_rss_bytes", "\(peakResidentBytes)"),
            ("allocations_per_step", "\(allocationsPerStep)"),
            ("large_allocations_after_first_step", "\(largeAllocationsAfterFirstStep)"),
        ]
        let seconds = (breakdown + [("other", unaccountedSeconds)]).map { "\(quoted($0.0)): \(number($0.1))" }
        fields.append(("breakdown_seconds", "{" + seconds.joined(separator: ", ") + "}"))
        if let reduction {
            fields += [
                ("ranks", "\(reduction.ranks)"), ("exchange_exposed_seconds", number(reduction.exposedSeconds)),
                ("exchange_overhead_fraction", number(reduction.overheadFraction)),
            ]
        }
        return "{" + fields.map { "\(quoted($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }
}

private func format(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }

private func number(_ value: Double) -> String { value.isFinite ? "\(value)" : "null" }

private func quoted(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

/// The machine's single-precision GEMM rate with `threads` threads: the better of the engine's
/// own bands (``GEMM``, the entry point the convolutions use) and OpenBLAS's native threading.
enum GEMMPeak {
    /// The best GFLOP/s of `repeats` multiplications of two `size × size` matrices in each
    /// threading mode (after one untimed call that wakes the threads).
    static func measure(size: Int, repeats: Int, threads: Int) -> Double {
        var random = SeededRandom(seed: 11)
        let a = Tensor(shape: [size, size]) { for i in $0.indices { $0[i] = Float(random.nextUnitDouble()) } }
        let b = Tensor(shape: [size, size]) { for i in $0.indices { $0[i] = Float(random.nextUnitDouble()) } }
        var c = Tensor(shape: [size, size])
        var best = Double.infinity
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    func time(bands: Int) {
                        for attempt in 0...repeats {
                            let start = KernelProfiler.monotonicNanoseconds()
                            GEMM.multiply(
                                m: size, n: size, k: size, a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!,
                                threads: bands, kernel: .openBLAS)
                            let seconds = Double(KernelProfiler.monotonicNanoseconds() - start) * 1e-9
                            if attempt > 0 { best = min(best, seconds) }
                        }
                    }
                    time(bands: threads)
                    OpenBLASRuntime.withNativeThreading(threads) { time(bands: 1) }
                }
            }
        }
        return 2 * Double(size) * Double(size) * Double(size) / best / 1e9
    }
}

/// The optimizer side of a benchmarked training step: gradients go to the reduction as backward
/// announces them, then SGD with momentum updates every parameter from the reduced gradients.
struct BenchmarkOptimizer<Reduction: StepGradientReduction> {
    let reduction: Reduction
    var velocity: [Float]
    var initialized = false

    init(reduction: Reduction, parameterCount: Int) {
        self.reduction = reduction
        velocity = Array(repeating: 0, count: parameterCount)
    }

    /// One training step.
    ///
    /// - Returns: the nanoseconds ``StepGradientReduction/finish()`` took (the reduction time
    ///   backward did not hide).
    mutating func step(_ model: inout GhostNetModel, images: Tensor, labels: [Int]) throws -> Int {
        var storeError: (any Error)?
        _ = try! model.trainingStep(images: images, labels: labels) { [reduction] slot, gradient in
            guard storeError == nil else { return }
            KernelProfiler.measure(.allReduce) {
                do { try reduction.store(gradient, slot: slot) } catch { storeError = error }
            }
        }
        if let storeError { throw storeError }
        let finishStart = KernelProfiler.monotonicNanoseconds()
        try KernelProfiler.measure(.allReduce) { try reduction.finish() }
        let exposed = KernelProfiler.monotonicNanoseconds() - finishStart
        let first = !initialized
        reduction.withGradients { gradients in
            velocity.withUnsafeMutableBufferPointer { velocity in
                model.updateParameters { slot, weights in
                    weights.withUnsafeMutableBufferPointer { weights in
                        sgdMomentumUpdate(
                            weights: weights,
                            gradients: UnsafeBufferPointer(rebasing: gradients[slot.offset..<(slot.offset + slot.scalarCount)]),
                            velocity: UnsafeMutableBufferPointer(rebasing: velocity[slot.offset..<(slot.offset + slot.scalarCount)]),
                            learningRate: 0.01, momentum: 0.9, weightDecay: 1e-4, initializeVelocity: first)
                    }
                }
            }
        }
        initialized = true
        return exposed
    }
}

/// Reads of `/proc/self/status`.
package enum ProcessStatus {
    /// The peak resident set size (`VmHWM`) in bytes, or nil when it cannot be read.
    package static func peakResidentBytes() -> Int? {
        let descriptor = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        return peakResidentBytes(statusText: String(decoding: bytes, as: UTF8.self))
    }

    /// The `VmHWM` line of a status text (`VmHWM:    123456 kB`) in bytes.
    package static func peakResidentBytes(statusText: String) -> Int? {
        for line in statusText.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.dropFirst("VmHWM:".count).split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let value = fields.first.flatMap({ Int($0) }) else { return nil }
            return fields.count > 1 && fields[1] == "kB" ? value * 1024 : value
        }
        return nil
    }
}
