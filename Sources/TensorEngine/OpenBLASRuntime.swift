// CPU feature detection and OpenBLAS's kernel choice: which core type is safe and fast on this CPU, which
// one the loaded library picked, and its thread count.

internal import COpenBLAS

#if canImport(Glibc)
import Glibc
#endif

/// The x86 instruction-set features that decide which OpenBLAS kernels are safe and fast.
package struct CPUFeatures: Sendable, Equatable {
    package var avx2 = false
    package var fma = false
    package var avx512Foundation = false
    package var avx512ByteWord = false
    package var avx512VectorLength = false
    package var avx512DoubleQuad = false
    package var avx512ConflictDetection = false
    package var avx512BFloat16 = false
    /// The OS saves YMM state (XCR0 bits 1-2), so AVX code may run.
    package var osSavesAVXState = false
    /// The OS saves opmask and ZMM state (XCR0 bits 5-7), so AVX-512 code may run.
    package var osSavesAVX512State = false

    package init() {}

    /// Whether the SkylakeX family of AVX-512 kernels can run here.
    package var hasUsableAVX512: Bool {
        avx512Foundation && avx512ByteWord && avx512VectorLength && avx512DoubleQuad
            && avx512ConflictDetection && osSavesAVX512State
    }

    /// Whether the AVX512-BF16 kernel (`vdpbf16ps`, CPUID.(EAX=7,ECX=1):EAX bit 5) can run here.
    package var hasUsableAVX512BFloat16: Bool {
        avx512BFloat16 && avx512Foundation && avx512ByteWord && avx512VectorLength && osSavesAVX512State
    }

    /// Whether the Haswell family of AVX2 + FMA kernels can run here.
    package var hasUsableAVX2: Bool { avx2 && fma && osSavesAVXState }

    /// The features of the CPU this process runs on, read with CPUID and XGETBV.
    package static let current: CPUFeatures = {
        var features = CPUFeatures()
        var registers: [UInt32] = [0, 0, 0, 0]
        guard COpenBLAS_cpuid(0, 0, &registers) != 0 else { return features }
        let maxLeaf = registers[0]
        guard maxLeaf >= 7 else { return features }

        _ = COpenBLAS_cpuid(1, 0, &registers)
        let leaf1ECX = registers[2]
        features.fma = leaf1ECX & (1 << 12) != 0
        let osxsave = leaf1ECX & (1 << 27) != 0
        if osxsave {
            let xcr0 = COpenBLAS_xgetbv0()
            features.osSavesAVXState = xcr0 & 0b110 == 0b110
            features.osSavesAVX512State = xcr0 & 0b1110_0110 == 0b1110_0110
        }

        _ = COpenBLAS_cpuid(7, 0, &registers)
        let leaf7EBX = registers[1]
        features.avx2 = leaf7EBX & (1 << 5) != 0
        features.avx512Foundation = leaf7EBX & (1 << 16) != 0
        features.avx512DoubleQuad = leaf7EBX & (1 << 17) != 0
        features.avx512ConflictDetection = leaf7EBX & (1 << 28) != 0
        features.avx512ByteWord = leaf7EBX & (1 << 30) != 0
        features.avx512VectorLength = leaf7EBX & (1 << 31) != 0

        _ = COpenBLAS_cpuid(7, 1, &registers)
        features.avx512BFloat16 = registers[0] & (1 << 5) != 0
        return features
    }()
}

/// Choosing, inspecting and sizing OpenBLAS's compute kernels.
///
/// Debian's OpenBLAS 0.3.21 is built with `DYNAMIC_ARCH` and picks its kernels from the CPU model
/// number when the library loads. On CPUs newer than the library (Xeon model 207, AMD family 26) it
/// falls back to the generic Prescott kernels, 4-5× slower. The variable `OPENBLAS_CORETYPE`
/// overrides the choice, but it is read only at load time, so the program must set it *before*
/// OpenBLAS initialises: the CLI re-executes itself once with it set (see `KernelSelection` there).
package enum OpenBLASRuntime {
    /// The environment variable OpenBLAS reads its kernel family from.
    package static let coreTypeVariable = "OPENBLAS_CORETYPE"

    /// The OpenBLAS core type whose kernels fit `features` best, or `nil` when OpenBLAS's own
    /// detection is as good as ours (no AVX2).
    package static func preferredCoreType(for features: CPUFeatures) -> String? {
        if features.hasUsableAVX512 {
            return features.avx512BFloat16 ? "Cooperlake" : "SkylakeX"
        }
        if features.hasUsableAVX2 { return "Haswell" }
        return nil
    }

    /// The kernel family OpenBLAS chose when it loaded, e.g. `"SkylakeX"` or `"Prescott"`.
    package static var kernelName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// The build configuration string OpenBLAS reports (version, DYNAMIC_ARCH, max threads).
    package static var configuration: String {
        guard let config = openblas_get_config() else { return "unknown" }
        return String(cString: config)
    }

    /// The number of threads one matrix product uses (OpenBLAS runs single-threaded inside
    /// ``GEMM``, which splits large products into this many bands).
    package static var threadCount: Int {
        get { GEMM.threadCount }
        set {
            ensure(newValue >= 1, "OpenBLAS thread count must be at least 1, got \(newValue)")
            GEMM.threadCount = newValue
        }
    }

    /// Runs `body` with OpenBLAS's own threading set to `threads` (instead of ``GEMM``'s bands),
    /// for comparing the two; OpenBLAS is single-threaded again afterwards.
    package static func withNativeThreading<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
        _ = GEMM.threadCount
        openblas_set_num_threads(Int32(threads))
        defer { openblas_set_num_threads(1) }
        return try body()
    }
}
