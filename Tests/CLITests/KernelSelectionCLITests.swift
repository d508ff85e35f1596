// OpenBLAS kernel selection in the built binary: re-executing with the kernels CPUID calls for, and keeping a
// core type the user set.

import Foundation
import TensorEngine
import Testing
import _TestSupport

@Suite struct KernelSelectionCLITests {
    /// With OPENBLAS_CORETYPE unset, the binary must re-execute itself and OpenBLAS must report
    /// the kernels chosen from CPUID, never the generic Prescott fallback.
    @Test(.enabled(if: CPUFeatures.current.hasUsableAVX512, "needs a CPU with AVX-512"))
    func binaryPicksAVX512KernelsItself() throws {
        let result = try BuiltProducts.run(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "-u", "OPENBLAS_CORETYPE", "-u", "GHOSTNET_OPENBLAS_REEXEC",
                BuiltProducts.ghostnetExecutable.path, "system",
            ])
        #expect(result.status == 0, "\(result.combined)")
        let expected = OpenBLASRuntime.preferredCoreType(for: .current)!
        #expect(result.standardOutput.contains("OpenBLAS kernel: \(expected)"), "\(result.standardOutput)")
        #expect(!result.standardOutput.contains("OpenBLAS kernel: Prescott"))
    }

    @Test func aCoreTypeTheUserSetIsKept() throws {
        let result = try BuiltProducts.runGhostnet(["system"], environment: ["OPENBLAS_CORETYPE": "Haswell"])
        #expect(result.status == 0, "\(result.combined)")
        #expect(result.standardOutput.contains("OpenBLAS kernel: Haswell"), "\(result.standardOutput)")
    }
}
