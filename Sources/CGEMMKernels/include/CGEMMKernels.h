// CGEMMKernels: register-blocked sgemm kernels for thin products, the C interface TensorEngine's GEMM calls.
//
// Why this C target exists: OpenBLAS packs both operands of every product. For the network's thin
// products, `[N·H·W, C_in] · [C_in, C_out]` with tens of thousands of rows and 32–512 columns, copying
// the large activation into OpenBLAS's panels costs as much as a third of the multiply (measured
// with the Cooperlake kernels on two threads: 44–72 % of the 2048³ rate on layer1's shapes). These
// kernels pack only the small operand and stream the activation's rows straight from memory. Swift
// cannot emit AVX2 or AVX-512 code for one function of a baseline x86-64 binary, so the kernels are C
// functions compiled with per-function target attributes; the caller checks that the CPU has the
// instructions (TensorEngine's GEMM).
// All symbols carry the `CGEMMKernels_` prefix.
#ifndef CGEMMKERNELS_H
#define CGEMMKERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// The instruction sets the kernels come in.
typedef enum {
    /// AVX2 + FMA: 6 rows × 16 columns per micro-tile, panels of 16 columns.
    CGEMMKernels_avx2 = 1,
    /// AVX-512F: 6 rows × 32 columns per micro-tile, panels of 32 columns.
    CGEMMKernels_avx512 = 2,
} CGEMMKernels_Level;

/// The columns of one packed panel of `level`: 16 or 32. `n` must be a multiple of it.
int CGEMMKernels_panelWidth(CGEMMKernels_Level level);

/// Packs the `k × n` matrix `op(B)` into `n / width` panels of `k × width` floats (`k·n` floats in
/// all): `B` is `[n, k]` (row stride `ldb`) when `transposed`, `[k, n]` otherwise.
void CGEMMKernels_pack(
    CGEMMKernels_Level level, const float *b, long ldb, int transposed, long k, long n, float *packed);

/// `C = A · op(B)`, or `C += A · op(B)` when `accumulate`: `A` is `[m, k]` (row stride `lda`), `C`
/// is `[m, n]` (row stride `ldc`), `packed` comes from `CGEMMKernels_pack`. The CPU must support
/// `level`'s instructions.
void CGEMMKernels_multiply(
    CGEMMKernels_Level level, long m, long n, long k, const float *a, long lda, const float *packed, float *c,
    long ldc, int accumulate);

// MARK: - bfloat16 (see BFloat16Kernels.c)

/// `value` rounded to bfloat16, round-to-nearest-even; NaNs stay NaN (quiet), infinities stay.
unsigned short CGEMMKernels_bf16(float value);

/// The float whose bits are `bits` followed by 16 zero bits: a bfloat16 widened exactly.
float CGEMMKernels_bf16ToFloat(unsigned short bits);

/// `target` (row stride `ldt`) = `source` (`rows × columns`, row stride `lds`) with every element rounded
/// to the nearest bfloat16 and stored back as a float: the emulated bf16 path's operands. `target` may be
/// `source`.
void CGEMMKernels_roundToBF16(long rows, long columns, const float *source, long lds, float *target, long ldt);

/// The k-pairs of the bf16 kernels: `(k + 1) / 2` (an odd `k` is padded with a zero).
long CGEMMKernels_bf16Pairs(long k);

/// Packs the `k × n` `op(B)` (as `CGEMMKernels_pack`) into `n / 32` panels of bf16 pairs: per panel, per
/// pair `p`, 32 words `bf16(B[2p][j]) | bf16(B[2p+1][j]) << 16`. `packed` holds `32 · pairs · (n / 32)` words.
void CGEMMKernels_packBF16(const float *b, long ldb, int transposed, long k, long n, unsigned int *packed);

/// Converts the `m × k` `op(A)` (`A` is `[m, k]`, or `[k, m]` when `transposed`, row stride `lda`) to rows of
/// bf16 pairs: `rows[i · pairs + p] = bf16(op(A)[i][2p]) | bf16(op(A)[i][2p+1]) << 16`.
void CGEMMKernels_convertBF16(const float *a, long lda, int transposed, long m, long k, unsigned int *rows);

/// `C = A · B` (or `C += A · B` when `accumulate`) from `CGEMMKernels_convertBF16` rows (`pairs` words each)
/// and `CGEMMKernels_packBF16` panels, `n` a multiple of 32, fp32 accumulation. `native`: the AVX512-BF16
/// kernel (`vdpbf16ps`; the CPU must have AVX512_BF16), otherwise a portable scalar kernel that reads the
/// same layout and computes each step as Intel defines `vdpbf16ps` (high product then low, fused, round to
/// nearest even, denormals read as zero and flushed to zero): it checks the packing and the instruction's
/// arithmetic on any CPU; it is not for speed.
void CGEMMKernels_multiplyBF16(
    long m, long n, long pairs, const unsigned int *rows, const unsigned int *packed, float *c, long ldc,
    int accumulate, int native);

#ifdef __cplusplus
}
#endif

#endif
