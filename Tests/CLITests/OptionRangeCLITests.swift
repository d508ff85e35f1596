// Hostile command-line options (issue 19, class 8): negative, absurd and near-limit numbers get a
// range error from `validate()` (never "Missing value", never a trap), and Foundation's file errors
// reach the user as the path and the cause.

import Foundation
import Testing
import _TestSupport

@Suite struct OptionRangeCLITests {
    private static let demo = BuiltProducts.packageRoot.appendingPathComponent("conf/demo.yml").path

    @Test(arguments: [
        (["bench", "data", "--data", "/nonexistent", "--threads", "-1"], "--threads must be in 1...256, got -1"),
        (
            ["bench", "data", "--data", "/nonexistent", "--threads", "1000000"],
            "--threads must be in 1...256, got 1000000"
        ),
        (
            ["bench", "data", "--data", "/x", "--batch-size", "65536", "--image-size", "4096"],
            "a batch of 65536 × 3 × 4096² floats exceeds the limit of 2147483648 (8 GiB); "
                + "lower the batch size or image size"
        ),
        (["bench", "train", "--threads", "1000000"], "--threads must be in 1...1024, got 1000000"),
        (
            ["bench", "allreduce", "--bytes", "9223372036854775804"],
            "--bytes must be in 4...17179869184, got 9223372036854775804"
        ),
        (
            ["train", "--config", demo, "--collective-timeout", "1e300"],
            "--collective-timeout: expected a number in (0, 86400], got 1e+300"
        ),
        (
            ["train", "--config", demo, "--collective-timeout", "-5"],
            "--collective-timeout: expected a number in (0, 86400], got -5.0"
        ),
        (["train", "--config", demo, "--bucket-mib", "nan"], "--bucket-mib: expected a number in (0, 4096], got nan"),
        (["train", "--config", demo, "--epochs", "-1"], "--epochs: expected an integer in [1, 100000], got -1"),
        (
            ["train", "--config", demo, "--batch-size", "9223372036854775807"],
            "--batch-size: expected an integer in [1, 65536], got 9223372036854775807"
        ),
        (["train", "--config", demo, "--openblas-threads", "-4"], "--openblas-threads must be in 1...1024, got -4"),
        (
            ["train", "--config", demo, "--rank-table-wait", "1e300"],
            "--rank-table-wait must be in 0...86400, got 1e+300"
        ),
        (
            ["ranktable", "generate", "--servers", "h", "--ranks-per-server", "100000000"],
            "--ranks-per-server must be in 1...1024, got 100000000"
        ),
        (["dataset", "synth", "--out", "/tmp/unused", "--classes", "-5"], "--classes must be in 1...10000, got -5"),
        (["dataset", "check", "/tmp/unused", "--sample-every", "0"], "--sample-every must be in 1...1000000, got 0"),
        (
            ["diagnose", "allreduce", "--elements", "9223372036854775807"],
            "--elements must be in 1...1073741824, got 9223372036854775807"
        ),
        (["diagnose", "allreduce", "--stall-seconds", "1e300"], "--stall-seconds must be in 0...86400, got 1e+300"),
        (
            ["diagnose", "record-stream", "--job", "j", "--spool", "/tmp/unused", "--interval", "-0.5"],
            "--interval must be in 0...3600, got -0.5"
        ),
        (
            ["coordinator", "--data-dir", "/tmp/unused", "--log-max-bytes", "-1"],
            "--log-max-bytes must be in 1024...1125899906842624, got -1"
        ),
    ])
    func aNumberOutOfRangeIsARangeError(arguments: [String], message: String) throws {
        let result = try BuiltProducts.runGhostnet(arguments, timeout: 60)
        #expect(result.status == 64, "\(result.combined)")
        #expect(result.standardError.contains("Error: \(message)\n"), "\(result.combined)")
        #expect(!result.standardError.contains("Missing value"))
    }

    @Test func aNegativeModelWidthIsTheNetworksRangeError() throws {
        let result = try BuiltProducts.runGhostnet(["model", "summary", "--width", "-3"], timeout: 60)
        #expect(result.status == 64)
        let message = "width (stem channels) must be in 2…1024, got -3"
        #expect(result.standardError.contains(message), "\(result.combined)")
    }

    @Test(arguments: [
        (["config", "check", "/"], "/: cannot read the configuration file: is a directory"),
        (
            ["dataset", "synth", "--out", "/proc/ghostnet-test", "--classes", "1", "--train-per-class", "1"],
            "/proc/ghostnet-test/train: cannot create the folder: no such file or directory"
        ),
    ])
    func foundationErrorsNameTheFileAndTheCause(arguments: [String], message: String) throws {
        let result = try BuiltProducts.runGhostnet(arguments, timeout: 60)
        #expect(result.status == 1, "\(result.combined)")
        #expect(result.standardError.contains(message), "\(result.combined)")
        #expect(!result.standardError.contains("NSCocoaErrorDomain"))
    }
}
