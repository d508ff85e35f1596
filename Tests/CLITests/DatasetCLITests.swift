// `dataset synth` and `dataset check` through the built binary, deterministic in the seed, a broken layout
// refused with what was expected, and `bench data`.

import Foundation
import Testing
import _TestSupport

@Suite struct DatasetCLITests {
    @Test(arguments: ["folders", "flat"])
    func synthThenCheck(layout: String) throws {
        let root = try TemporaryDirectory.make().appendingPathComponent("demo").path
        let cache = try TemporaryDirectory.make().path
        let synth = try BuiltProducts.runGhostnet(
            [
                "dataset", "synth", "--out", root, "--classes", "3", "--train-per-class", "5", "--val-per-class", "2",
                "--seed", "11", "--val-layout", layout,
            ])
        #expect(synth.status == 0, "\(synth.combined)")
        #expect(synth.standardOutput.contains("wrote 15 train and 6 val JPEGs in 3 classes"), "\(synth.standardOutput)")

        // A stray file is ignored and counted; a corrupt image is found by the decode check.
        try Data("readme".utf8).write(to: URL(fileURLWithPath: root + "/train/n00000001/README.txt"))
        let check = try BuiltProducts.runGhostnet(["dataset", "check", root, "--cache-dir", cache])
        #expect(check.status == 0, "\(check.combined)")
        #expect(check.standardOutput.contains("classes: 3 (n00000000 … n00000002)"), "\(check.standardOutput)")
        #expect(
            check.standardOutput.contains("train: 15 images, 5-5 per class, 1 ignored files"), "\(check.standardOutput)"
        )
        #expect(
            check.standardOutput.contains("val: 6 images, 2-2 per class, 0 ignored files"), "\(check.standardOutput)")
        #expect(check.standardOutput.contains("decode-checked 21 images: 0 unreadable"), "\(check.standardOutput)")
        #expect(check.standardError.contains("decoded 21/21"), "\(check.standardError)")

        try Data("not a jpeg".utf8).write(to: URL(fileURLWithPath: root + "/train/n00000002/broken.JPEG"))
        let broken = try BuiltProducts.runGhostnet(["dataset", "check", root, "--cache-dir", cache])
        #expect(broken.status != 0)
        #expect(broken.standardOutput.contains("1 unreadable"), "\(broken.standardOutput)")
        #expect(broken.standardOutput.contains("broken.JPEG: not JPEG data"), "\(broken.standardOutput)")
    }

    @Test func synthIsDeterministicInTheSeed() throws {
        func write(seed: Int) throws -> Data {
            let root = try TemporaryDirectory.make().path
            let result = try BuiltProducts.runGhostnet(
                [
                    "dataset", "synth", "--out", root, "--classes", "2", "--train-per-class", "2", "--val-per-class",
                    "0",
                    "--seed", "\(seed)",
                ])
            #expect(result.status == 0, "\(result.combined)")
            return try Data(contentsOf: URL(fileURLWithPath: root + "/train/n00000001/n00000001_2.JPEG"))
        }
        #expect(try write(seed: 5) == write(seed: 5))
        #expect(try write(seed: 5) != write(seed: 6))
    }

    @Test func brokenLayoutExitsNonZeroSayingWhatWasExpected() throws {
        let empty = try TemporaryDirectory.make().path
        let result = try BuiltProducts.runGhostnet(["dataset", "check", empty])
        #expect(result.status != 0)
        #expect(result.combined.contains("expected train/<wnid>/*.JPEG"), "\(result.combined)")
        #expect(!result.combined.contains("Fatal error"))
    }

    @Test func benchDataReportsThroughput() throws {
        let root = try TemporaryDirectory.make().path
        let synth = try BuiltProducts.runGhostnet(
            [
                "dataset", "synth", "--out", root, "--classes", "2", "--train-per-class", "8", "--val-per-class", "1",
                "--fixed-size", "200x150",
            ])
        #expect(synth.status == 0, "\(synth.combined)")
        let bench = try BuiltProducts.runGhostnet(
            ["bench", "data", "--data", root, "--batches", "2", "--batch-size", "4", "--image-size", "64"],
            environment: ["GHOSTNET_CACHE_DIR": try TemporaryDirectory.make().path])
        #expect(bench.status == 0, "\(bench.combined)")
        #expect(bench.standardOutput.contains("8 train images at 64x64 from ~200x150 JPEGs"), "\(bench.standardOutput)")
        #expect(bench.standardOutput.contains("images/s per thread"), "\(bench.standardOutput)")
    }
}
