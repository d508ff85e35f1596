// Running `python3` from tests that compare against Python packages (safetensors, onnxruntime), and
// whether those tests run: where a package is missing they are skipped, except under CI (`CI=true`),
// where they run and fail.

import Foundation

package enum Python {
    /// Whether tests needing `modules` (e.g. `"onnxruntime, numpy"`) run: `python3` can import
    /// them, or CI requires them.
    package static func canImport(_ modules: String) -> Bool {
        let result = try? run("import \(modules)")
        return result?.status == 0 || ProcessInfo.processInfo.environment["CI"] == "true"
    }

    /// Whether the safetensors interoperability tests run: `safetensors` and `numpy`.
    package static let isAvailable = canImport("safetensors, numpy")

    /// Runs `python3 -c script arguments…`.
    package static func run(_ script: String, _ arguments: [String] = []) throws -> ProcessResult {
        try BuiltProducts.run(
            URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script] + arguments, timeout: 120)
    }
}
