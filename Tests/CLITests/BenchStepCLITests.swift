// End-to-end runs of `bench train|infer` from the built binary: JSON, allocations, option errors.

import Foundation
import Testing
import _TestSupport

@Suite struct BenchStepCLITests {
    /// A small but real run: ghostnet50's large weight gradients (≥ 1 MiB) are allocated every
    /// step, so after the first step they must all come from the block cache. Counts, not times.
    @Test(arguments: ["train", "infer"])
    func quickRunReportsJSONAndMakesNoLargeAllocationsAfterTheFirstStep(kind: String) throws {
        let result = try BuiltProducts.runGhostnet([
            "bench", kind, "--arch", "ghostnet50", "--batch", "2", "--image-size", "32", "--threads", "1",
            "--steps", "2", "--warmup", "1", "--json",
        ])
        #expect(result.status == 0, "\(result.combined)")
        let lines = result.standardOutput.split(separator: "\n")
        #expect(lines.contains { $0.contains("% of the sgemm peak") }, "\(result.standardOutput)")
        let json = try #require(lines.last.map(String.init))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["benchmark"] as? String == kind)
        #expect(try #require(object["gemm_peak_gflops"] as? Double) > 0)
        #expect(try #require(object["images_per_second"] as? Double) > 0)
        #expect(try #require(object["peak_rss_bytes"] as? Int) > 0)
        #expect(object["large_allocations_after_first_step"] as? Int == 0, "\(json)")
        let breakdown = try #require(object["breakdown_seconds"] as? [String: Double])
        #expect(try #require(breakdown["conv1x1"]) > 0)
        if kind == "train" { #expect(try #require(breakdown["optimizer"]) > 0) }
    }

    @Test func badArchitectureIsRejected() throws {
        let result = try BuiltProducts.runGhostnet(["bench", "train", "--arch", "ghostnet18"])
        #expect(result.status != 0)
        #expect(
            result.standardError.contains("The value 'ghostnet18' is invalid for '--arch <arch>'"), "\(result.combined)"
        )
    }

    /// Two passes of 2 images with accumulated gradients; the report compares the memory model's
    /// peak for a pass of 2 with the measured one.
    @Test func microBatchesRunAndReportThePredictedPeak() throws {
        let result = try BuiltProducts.runGhostnet([
            "bench", "train", "--arch", "ghostnet50", "--batch", "4", "--micro-batch", "2", "--image-size", "32",
            "--threads", "1", "--steps", "1", "--warmup", "0",
        ])
        #expect(result.status == 0, "\(result.combined)")
        #expect(
            result.standardOutput.contains("memory model (2 pass(es) of at most 2 images): predicted peak "),
            "\(result.combined)")
    }

    /// Steps of two plans alternate in one process: the report gives their paired ratio, and the memory model
    /// line names the plan whose prediction the process's peak tests.
    @Test func twoMicroBatchesRunInAlternatingPairs() throws {
        let result = try BuiltProducts.runGhostnet([
            "bench", "train", "--arch", "ghostnet50", "--batch", "4", "--micro-batch", "2",
            "--compare-micro-batch", "4", "--image-size", "32", "--threads", "1", "--steps", "2", "--warmup", "0",
            "--json",
        ])
        #expect(result.status == 0, "\(result.combined)")
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(
            lines.contains { $0.hasPrefix("paired with micro-batch 4 (steps alternating): its step ") },
            "\(result.combined)")
        #expect(lines.contains { $0.hasPrefix("memory model (") }, "\(result.combined)")
        let json = try #require(lines.last)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["compared_micro_batch_size"] as? Int == 4)
        #expect(try #require(object["paired_speedup"] as? Double) > 0)
        // The paired steps were profiled too: their kinds add up to their median step.
        let compared = try #require(object["compared_breakdown_seconds"] as? [String: Double])
        #expect(try #require(compared["conv1x1"]) > 0)
        let step = try #require(object["compared_step_seconds"] as? Double)
        // "other" is the step less the rest, so the sum is the step up to one rounding per kind.
        expectClose(compared.values.reduce(0, +), step, relative: 16 * Double.ulpOfOne)
    }

    @Test func aMicroBatchLargerThanTheBatchIsRefused() throws {
        let result = try BuiltProducts.runGhostnet(["bench", "train", "--batch", "4", "--micro-batch", "8"])
        #expect(result.status != 0)
        #expect(result.standardError.contains("--micro-batch must be in 2...4, got 8"), "\(result.combined)")
    }
}
