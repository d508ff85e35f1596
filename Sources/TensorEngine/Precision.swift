// The precision the engine's matrix products run in (fp32, bf16 operands with fp32 accumulation, or the
// float64-accumulated reference), how a configuration's `fp32 | bf16 | auto` resolves on this CPU, and which
// bf16 kernel computes the products.

/// The arithmetic of the engine's matrix products: every convolution, linear layer and their gradients.
///
/// In ``bf16`` both operands of each product are rounded to bfloat16 (round to nearest even) and the
/// products accumulate in fp32, as PyTorch's CPU autocast and timm's `--amp-dtype bfloat16` define mixed
/// precision; every other operation (batch norm, softmax and loss, the optimizer, the all-reduce) and every
/// stored tensor stays fp32. The precision is a task-local value: a training step or a test sets it for
/// the work it runs (``withPrecision(_:_:)``), and the engine's worker threads inherit it.
package enum Precision: String, Sendable, CaseIterable, CustomStringConvertible {
    case fp32
    case bf16
    /// Every product's fp32 operands taken exactly, summed in float64 and each output rounded once to fp32;
    /// no Winograd, no packed fp32 kernels (GEMM+Float64Reference.swift). The yardstick `model grad-error`
    /// measures fp32 and bf16 against: slow, not for training.
    case reference

    /// The precision of the products started from this task (and the engine threads it hands work to).
    @TaskLocal package static var current: Precision = .fp32

    package var description: String { rawValue }

    /// `fp32`, or `bf16` followed by the kernel that computes it on this CPU, for reports.
    package var label: String {
        switch self {
        case .fp32: "fp32"
        case .bf16: "bf16 (\(BFloat16Kernel.preferred.label))"
        case .reference: "reference (fp32 operands, float64 sums, each output rounded once)"
        }
    }
}

/// Runs `body` with every matrix product it starts computed in `precision`.
package func withPrecision<Value, Failure: Error>(
    _ precision: Precision, _ body: () throws(Failure) -> Value
) throws(Failure) -> Value {
    let result = Precision.$current.withValue(precision) { Result { () throws(Failure) in try body() } }
    return try result.get()
}

/// A configuration's precision: `fp32`, `bf16`, or `auto` (bf16 only where the CPU multiplies bf16 natively).
package enum PrecisionChoice: String, Sendable, CaseIterable {
    case fp32
    case bf16
    case auto

    /// The precision this choice trains in on this CPU.
    package var resolved: Precision {
        switch self {
        case .fp32: .fp32
        case .bf16: .bf16
        case .auto: BFloat16Kernel.preferred == .native ? .bf16 : .fp32
        }
    }
}

/// The code that computes a bf16 product.
package enum BFloat16Kernel: Sendable, CaseIterable {
    /// Operands rounded to bf16 but kept as floats, multiplied by the fp32 kernels: the same numerics on
    /// every CPU, not for speed.
    case emulated
    /// The AVX512-BF16 micro-kernel (`vdpbf16ps`) on operands packed as bf16 pairs.
    case native
    /// The native kernel's packed layout read by plain C: checks the packing on any CPU, not for speed.
    case portable

    /// Whether this CPU (and its operating system) can run the kernel.
    package var isSupported: Bool {
        self != .native || CPUFeatures.current.hasUsableAVX512BFloat16
    }

    /// The kernel bf16 products use here: native where the CPU has AVX512-BF16, otherwise emulated.
    package static let preferred: BFloat16Kernel = native.isSupported ? .native : .emulated

    /// A short name for reports.
    package var label: String {
        switch self {
        case .emulated: "emulated: bf16-rounded operands on the fp32 kernels"
        case .native: "AVX512-BF16 vdpbf16ps 6×32"
        case .portable: "portable C on the packed bf16 layout"
        }
    }
}
