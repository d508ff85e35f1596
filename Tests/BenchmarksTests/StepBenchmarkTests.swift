// Unit tests of the step benchmark's arithmetic, report and JSON, and of the /proc status reader.

import Benchmarks
import Foundation
import TensorEngine
import Testing
import _TestSupport

@Suite struct StepBenchmarkTests {
    /// A result with round numbers: 8 images in 0.5 s, 1 G multiply-accumulates per image.
    func result(kind: StepBenchmark.Kind) -> StepBenchmarkResult {
        StepBenchmarkResult(
            kind: kind, architecture: "ghostnet50", batchSize: 8, imageSize: 224, threads: 2, steps: 5,
            kernelName: "Haswell", multiplyAccumulatesPerImage: 1_000_000_000, gemmPeakGFLOPS: 200,
            adjacentPeakFraction: 0.6,
            medianStepSeconds: 0.5, peakResidentBytes: 3 << 30, allocationsPerStep: 700,
            largeAllocationsAfterFirstStep: 0,
            breakdown: [("conv1x1", 0.25), ("batchnorm", 0.125)])
    }

    @Test func trainingCountsThreeGEMMsPerConvolutionAndInferenceOne() {
        #expect(StepBenchmark.flopsPerImage(multiplyAccumulates: 4_538_613_760, kind: .training) == 27_231_682_560)
        #expect(StepBenchmark.flopsPerImage(multiplyAccumulates: 4_538_613_760, kind: .inference) == 9_077_227_520)
    }

    @Test func ratesFollowFromTheStepTimeAndThePeak() {
        let training = result(kind: .training)
        expectClose(training.imagesPerSecond, 16, relative: 1e-12)
        // 16 images/s × 6 GFLOP per image.
        expectClose(training.gflopsPerSecond, 96, relative: 1e-9)
        expectClose(training.peakFraction, 0.48, relative: 1e-12)
        expectClose(training.unaccountedSeconds, 0.125, relative: 1e-12)
        let inference = result(kind: .inference)
        expectClose(inference.gflopsPerSecond, 32, relative: 1e-9)
        expectClose(inference.peakFraction, 0.16, relative: 1e-12)
    }

    @Test func jsonIsOneObjectWithTheDocumentedKeys() throws {
        let line = result(kind: .training).json
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        for key in [
            "images_per_second", "gflops_per_second", "gemm_peak_gflops", "peak_fraction", "peak_rss_bytes",
            "allocations_per_step", "large_allocations_after_first_step", "adjacent_peak_fraction", "openblas_kernel",
            "breakdown_seconds",
        ] {
            #expect(object[key] != nil, "missing \(key) in \(line)")
        }
        expectClose(try #require(object["peak_fraction"] as? Double), 0.48, relative: 1e-12)
        #expect(object["peak_rss_bytes"] as? Int == 3 << 30)
        #expect(object["benchmark"] as? String == "train")
        let breakdown = try #require(object["breakdown_seconds"] as? [String: Double])
        #expect(Set(breakdown.keys) == ["conv1x1", "batchnorm", "other"])
    }

    @Test func reportNamesEveryCategoryAndThePeakShare() {
        let lines = result(kind: .inference).reportLines
        #expect(
            lines.contains { $0.contains("16.0 % of the sgemm peak (60.0 % of the sample before each step)") },
            "\(lines)")
        #expect(lines.contains { $0.contains("conv1x1") && $0.contains("250.0 ms") }, "\(lines)")
        #expect(lines.contains { $0.contains("other") })
    }

    /// With a paired plan the plan that needs more memory sets the process's peak, so the memory model line tests
    /// that plan's prediction: one pass of 8 (3.5 GiB predicted) against the measured 3 GiB, not this plan's 2
    /// passes of 4.
    @Test func thePairedPlanThatPeaksHigherIsTheOneTheMeasuredPeakTests() throws {
        var paired = result(kind: .training)
        paired.passSizes = [4, 4]
        paired.predictedPeakBytes = 2 << 30
        #expect(paired.reportLines.contains { $0.hasPrefix("memory model (2 pass(es) of at most 4 images): ") })
        paired.comparison = MicroBatchComparison(
            microBatchSize: 8, medianStepSeconds: 0.4, medianSpeedup: 0.8, passSizes: [8],
            predictedPeakBytes: 7 << 29, breakdown: [("conv1x1", 0.3), ("batchnorm", 0.1)])
        #expect(
            paired.reportLines.contains {
                $0 == "memory model (the paired plan's 1 pass(es) of at most 8 images, which peaks higher): "
                    + "predicted peak 3.758 GB, measured 3.221 GB (16.7 %)"
            }, "\(paired.reportLines)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(paired.json.utf8)) as? [String: Any])
        #expect(object["predicted_peak_rss_bytes"] as? Int == 2 << 30)
        #expect(object["compared_predicted_peak_rss_bytes"] as? Int == 7 << 29)
    }

    /// The paired plan's time per kind stands beside this plan's, with its time over this one's: 0.3 s
    /// of 1×1 convolutions against 0.25 s, and 0.4 − 0.3 − 0.1 = 0 s of other work against 0.125 s.
    @Test func thePairedPlansTimePerKindStandsBesideThisOnes() throws {
        var paired = result(kind: .training)
        paired.comparison = MicroBatchComparison(
            microBatchSize: 8, medianStepSeconds: 0.4, medianSpeedup: 0.8, passSizes: [8], predictedPeakBytes: 1 << 30,
            breakdown: [("conv1x1", 0.3), ("batchnorm", 0.1)])
        let lines = paired.reportLines
        #expect(
            lines.contains("time per step by kind, with the paired micro-batch 8's and its time ÷ this:"), "\(lines)")
        #expect(lines.contains("  conv1x1         250.0 ms   50.0 %      300.0 ms   1.200"), "\(lines)")
        #expect(lines.contains("  batchnorm       125.0 ms   25.0 %      100.0 ms   0.800"), "\(lines)")
        let other = try #require(lines.first { $0.hasPrefix("  other ") })
        #expect(other.hasSuffix("   0.000"), "\(other)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(paired.json.utf8)) as? [String: Any])
        let compared = try #require(object["compared_breakdown_seconds"] as? [String: Double])
        #expect(Set(compared.keys) == ["conv1x1", "batchnorm", "other"])
        expectClose(try #require(compared["conv1x1"]), 0.3, relative: 1e-12)
    }

    @Test func peakResidentMemoryIsReadFromTheStatusFormat() throws {
        let status = "Name:\tghostnet-d\nVmPeak:\t  900000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t   1000 kB\n"
        #expect(ProcessStatus.peakResidentBytes(statusText: status) == 123_456 * 1024)
        #expect(ProcessStatus.peakResidentBytes(statusText: "VmRSS:\t1 kB\n") == nil)
        #expect(try #require(ProcessStatus.peakResidentBytes()) > 0)
    }
}
