// What a step benchmark measured (StepBenchmarkResult) and its two forms: the report lines
// `bench train|infer` print and the one-line JSON object of `--json`.

import Foundation
import TensorEngine

/// The part of a training step spent waiting for the gradient reduction after backward.
package struct GradientReductionTiming: Sendable {
    /// The processes that reduced together.
    package var ranks: Int
    /// The rank these times are from (a job reports its most exposed rank).
    package var rank: Int
    /// That rank's median step.
    package var stepSeconds: Double
    /// The time from the end of backward to the end of the reduction in that step: the
    /// communication backward did not hide.
    package var exposedSeconds: Double

    package init(ranks: Int, rank: Int, stepSeconds: Double, exposedSeconds: Double) {
        self.ranks = ranks
        self.rank = rank
        self.stepSeconds = stepSeconds
        self.exposedSeconds = exposedSeconds
    }

    /// What the exposed time adds to the step without it: `exposed / (step − exposed)`.
    package var overheadFraction: Double { exposedSeconds / max(stepSeconds - exposedSeconds, .leastNormalMagnitude) }
}

/// A training benchmark's steps against those of another micro-batch, in back-to-back pairs.
package struct MicroBatchComparison: Sendable {
    /// The other plan's micro-batch (the batch itself: one pass).
    package var microBatchSize: Int
    /// Its median step.
    package var medianStepSeconds: Double
    /// The median over pairs of its step time over this benchmark's: this one's images/s relative to it.
    package var medianSpeedup: Double
    /// The sizes of its passes.
    package var passSizes: [Int]
    /// How many of them ran at the same time.
    package var lanes: Int
    /// The peak resident bytes the memory model predicts for it.
    package var predictedPeakBytes: Int
    /// Seconds its median step spent in each ``KernelCategory`` (by label, in category order), measured under
    /// the same load as this benchmark's, so the report shows which kinds of work the two plans differ in.
    package var breakdown: [(label: String, seconds: Double)]

    package init(
        microBatchSize: Int, medianStepSeconds: Double, medianSpeedup: Double, passSizes: [Int], lanes: Int = 1,
        predictedPeakBytes: Int, breakdown: [(label: String, seconds: Double)]
    ) {
        self.lanes = lanes
        self.microBatchSize = microBatchSize
        self.medianStepSeconds = medianStepSeconds
        self.medianSpeedup = medianSpeedup
        self.passSizes = passSizes
        self.predictedPeakBytes = predictedPeakBytes
        self.breakdown = breakdown
    }
}

/// `breakdown` followed by `other`: the rest of a step of `stepSeconds` (Swift code between kernels,
/// tensor allocation), so the rows add up to the step.
private func withUnaccounted(
    _ breakdown: [(label: String, seconds: Double)], stepSeconds: Double
) -> [(label: String, seconds: Double)] {
    breakdown + [("other", stepSeconds - breakdown.reduce(0) { $0 + $1.seconds })]
}

/// What ``StepBenchmark/run(on:bucketCapacityBytes:)`` measured.
package struct StepBenchmarkResult: Sendable {
    package var kind: StepBenchmark.Kind
    package var architecture: String
    package var batchSize: Int
    package var imageSize: Int
    package var threads: Int
    package var steps: Int
    /// The OpenBLAS kernel family, e.g. `Haswell`.
    package var kernelName: String
    /// The packed sgemm kernels thin products ran on (see `GEMM`), e.g. `AVX2 6×16`, or `none`.
    package var packedKernel: String
    /// One image's forward multiply-accumulates (``GhostNetStructure/multiplyAccumulates``).
    package var multiplyAccumulatesPerImage: Int
    /// The best sgemm rate of the run, in GFLOP/s.
    package var gemmPeakGFLOPS: Double
    /// The median over timed steps of the step's rate over an sgemm sample taken just before it
    /// (under the same machine load, which on a shared machine can halve both).
    package var adjacentPeakFraction: Double
    /// The median step time (for an even count, the faster of the middle two).
    package var medianStepSeconds: Double
    /// The process's peak resident memory (VmHWM), in bytes.
    package var peakResidentBytes: Int
    /// Tensor buffers created by the median timed step.
    package var allocationsPerStep: Int
    /// Large tensor buffers (≥ ``TensorAllocations/largeThreshold``) newly obtained from the
    /// system in all steps after the first.
    package var largeAllocationsAfterFirstStep: Int
    /// Seconds the median timed step spent in each ``KernelCategory`` (by label, in category order).
    package var breakdown: [(label: String, seconds: Double)]
    /// For training: how long the gradient reduction kept the median step waiting after backward.
    package var reduction: GradientReductionTiming?
    /// For training: the sizes of the forward/backward passes a step ran as (one pass unless
    /// `--micro-batch` split the batch).
    package var passSizes: [Int] = []
    /// For training: how many passes ran at the same time (``MicroBatchPlan/lanes``).
    package var lanes = 1
    /// For training: the peak resident bytes the trainer's memory model predicts for this run.
    package var predictedPeakBytes: Int?
    /// For training with a compared micro-batch: the paired timing.
    package var comparison: MicroBatchComparison?

    package init(
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

    package var imagesPerSecond: Double { Double(batchSize) / medianStepSeconds }

    /// Effective GFLOP/s: ``StepBenchmark/flopsPerImage(multiplyAccumulates:kind:)`` × images/s.
    package var gflopsPerSecond: Double {
        StepBenchmark.flopsPerImage(multiplyAccumulates: multiplyAccumulatesPerImage, kind: kind) * imagesPerSecond
            / 1e9
    }

    /// ``gflopsPerSecond`` as a fraction of ``gemmPeakGFLOPS`` (the conservative ratio).
    package var peakFraction: Double { gflopsPerSecond / gemmPeakGFLOPS }

    /// Step time not charged to any category: Swift code between kernels, tensor allocation.
    package var unaccountedSeconds: Double { withUnaccounted(breakdown, stepSeconds: medianStepSeconds).last!.seconds }

    /// The memory model's prediction that the measured peak tests: this plan's, or the paired plan's when that
    /// one predicts more, since both ran in this process and the plan that needs more sets its peak (the
    /// blocks the other plan left in the tensor cache add a little: 18.2 GB against 17.5 GB for one pass of
    /// 128 alone, paired with micro-batch 16).
    var peakPrediction: (passSizes: [Int], lanes: Int, bytes: Int, isPaired: Bool)? {
        guard let predictedPeakBytes else { return nil }
        if let comparison, comparison.predictedPeakBytes > predictedPeakBytes {
            return (comparison.passSizes, comparison.lanes, comparison.predictedPeakBytes, true)
        }
        return (passSizes, lanes, predictedPeakBytes, false)
    }

    /// The human-readable report.
    package var reportLines: [String] {
        var lines = [
            "bench \(kind.rawValue): \(architecture), batch \(batchSize), \(imageSize)×\(imageSize), \(threads) thread(s), OpenBLAS \(kernelName), packed kernels \(packedKernel)",
            "sgemm peak: \(format(gemmPeakGFLOPS, 1)) GFLOP/s",
            "step: \(format(medianStepSeconds * 1000, 1)) ms median of \(steps); \(format(imagesPerSecond, 2)) images/s; \(format(gflopsPerSecond, 1)) GFLOP/s effective = \(format(peakFraction * 100, 1)) % of the sgemm peak (\(format(adjacentPeakFraction * 100, 1)) % of the sample before each step)",
            "peak resident memory: \(format(Double(peakResidentBytes) / 1e9, 3)) GB; tensor allocations per step: \(allocationsPerStep); large allocations after the first step: \(largeAllocationsAfterFirstStep)",
        ]
        if let (passes, lanes, predicted, isPaired) = peakPrediction, let largest = passes.max() {
            let error = Double(predicted - peakResidentBytes) / Double(max(peakResidentBytes, 1)) * 100
            let plan = "\(passes.count) pass(es) of at most \(largest) images\(lanes > 1 ? ", \(lanes) at a time" : "")"
            lines.append(
                "memory model (\(isPaired ? "the paired plan's \(plan), which peaks higher" : plan)): predicted peak "
                    + "\(format(Double(predicted) / 1e9, 3)) GB, measured "
                    + "\(format(Double(peakResidentBytes) / 1e9, 3)) GB (\(format(error, 1)) %)")
        }
        if let comparison {
            lines.append(
                "paired with micro-batch \(comparison.microBatchSize) (steps alternating): its step "
                    + "\(format(comparison.medianStepSeconds * 1000, 1)) ms median; this step's images/s = "
                    + "\(format(comparison.medianSpeedup, 3)) × its (median of \(steps) pairs)")
        }
        let rows = withUnaccounted(breakdown, stepSeconds: medianStepSeconds)
        let pairedRows = comparison.map { withUnaccounted($0.breakdown, stepSeconds: $0.medianStepSeconds) }
        let pairedColumns = comparison.map {
            ", with the paired micro-batch \($0.microBatchSize)'s and its time ÷ this"
        }
        lines.append("time per step by kind\(pairedColumns ?? ""):")
        for (index, (label, seconds)) in rows.enumerated() {
            let share = medianStepSeconds > 0 ? seconds / medianStepSeconds * 100 : 0
            var line =
                "  \(label.padding(toLength: 11, withPad: " ", startingAt: 0)) \(format(seconds * 1000, 1).leftPadded(9)) ms  \(format(share, 1).leftPadded(5)) %"
            if let paired = pairedRows?[index].seconds {
                let ratio = seconds > 0 ? format(paired / seconds, 3) : "-"
                line += "  \(format(paired * 1000, 1).leftPadded(9)) ms  \(ratio.leftPadded(6))"
            }
            lines.append(line)
        }
        if let reduction, reduction.ranks > 1 {
            lines.append(
                "exchange over \(reduction.ranks) ranks: \(format(reduction.exposedSeconds * 1000, 1)) ms after backward "
                    + "in a \(format(reduction.stepSeconds * 1000, 1)) ms step (rank \(reduction.rank), the most exposed)"
            )
            lines.append("exchange adds \(format(reduction.overheadFraction * 100, 2)) % to the step")
        }
        return lines
    }

    /// One JSON object with every number of the report (seconds for times, bytes for memory).
    package var json: String {
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
        fields.append(("breakdown_seconds", object(withUnaccounted(breakdown, stepSeconds: medianStepSeconds))))
        if let predictedPeakBytes, let largest = passSizes.max() {
            fields += [
                ("micro_batch_size", "\(largest)"), ("passes", "\(passSizes.count)"), ("lanes", "\(lanes)"),
                ("predicted_peak_rss_bytes", "\(predictedPeakBytes)"),
            ]
        }
        if let comparison {
            fields += [
                ("compared_micro_batch_size", "\(comparison.microBatchSize)"),
                ("compared_step_seconds", number(comparison.medianStepSeconds)),
                ("compared_predicted_peak_rss_bytes", "\(comparison.predictedPeakBytes)"),
                ("paired_speedup", number(comparison.medianSpeedup)),
                (
                    "compared_breakdown_seconds",
                    object(withUnaccounted(comparison.breakdown, stepSeconds: comparison.medianStepSeconds))
                ),
            ]
        }
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

/// Seconds by label as a JSON object.
private func object(_ seconds: [(label: String, seconds: Double)]) -> String {
    "{" + seconds.map { "\(quoted($0.label)): \(number($0.seconds))" }.joined(separator: ", ") + "}"
}

private func quoted(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
