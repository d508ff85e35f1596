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

#ifdef __cplusplus
}
#endif

#endif
