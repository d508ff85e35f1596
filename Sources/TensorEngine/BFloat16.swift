// bfloat16 values one at a time and in bulk: round-to-nearest-even conversion (NaN preserved), for the
// engine's tests and for gradients sent as bf16 (`runtime.gradient_dtype: bf16`).

internal import CGEMMKernels

/// bfloat16: the upper 16 bits of an IEEE single (8 exponent bits, 8 significant bits), so unit roundoff
/// 2⁻⁸ where fp32's is 2⁻²⁴.
package enum BFloat16 {
    /// The unit roundoff of round-to-nearest bf16: 2⁻⁸.
    package static let unitRoundoff = 0x1p-8

    /// `value` rounded to the nearest bf16 (ties to even), as its 16 bits; a NaN stays a NaN.
    package static func bits(_ value: Float) -> UInt16 { CGEMMKernels_bf16(value) }

    /// The float a bf16 stands for (exact).
    package static func float(_ bits: UInt16) -> Float { CGEMMKernels_bf16ToFloat(bits) }

    /// `value` rounded to the nearest bf16, as a float.
    package static func rounded(_ value: Float) -> Float { float(bits(value)) }

    /// Writes `values` rounded to bf16 to `target` (`values.count` elements).
    package static func encode(_ values: UnsafeBufferPointer<Float>, into target: UnsafeMutablePointer<UInt16>) {
        for index in values.indices { target[index] = CGEMMKernels_bf16(values[index]) }
    }

    /// Writes the floats of `values` (bf16 bits) to `target`.
    package static func decode(_ values: UnsafeBufferPointer<UInt16>, into target: UnsafeMutablePointer<Float>) {
        for index in values.indices { target[index] = CGEMMKernels_bf16ToFloat(values[index]) }
    }
}
