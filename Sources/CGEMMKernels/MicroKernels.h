// The micro-kernels of CGEMMKernels, written once over a vector type.
//
// CGEMMKernels.c includes this file once per instruction set (so it has no include guard), after
// defining
//   KERNEL_TARGET  the target attribute, e.g. "avx2,fma"
//   Vector         a float vector of half a panel's width (8 or 16 lanes, 4-byte aligned)
//   STORE, TILE, ROWS  the names of the three functions to define.
// The vector arithmetic compiles to the instruction set's broadcasts and fused multiply-adds.

/// `c` (one row of a panel, two vectors) = `low, high`, plus what `c` held when `accumulate`.
__attribute__((target(KERNEL_TARGET))) static inline void STORE(float *c, Vector low, Vector high, int accumulate) {
    Vector *target = (Vector *)c;
    if (accumulate) {
        low += target[0];
        high += target[1];
    }
    target[0] = low;
    target[1] = high;
}

/// Six rows of A times one panel: twelve accumulators.
__attribute__((target(KERNEL_TARGET)))
static void TILE(long k, const float *a, long lda, const float *panel, float *c, long ldc, int accumulate) {
    Vector low[tileRows] = {0}, high[tileRows] = {0};
    const Vector *weights = (const Vector *)panel;
    for (long index = 0; index < k; index++) {
        const Vector panelLow = weights[2 * index], panelHigh = weights[2 * index + 1];
#pragma clang loop unroll(full)
        for (int row = 0; row < tileRows; row++) {
            const Vector x = a[row * lda + index];
            low[row] += x * panelLow;
            high[row] += x * panelHigh;
        }
    }
#pragma clang loop unroll(full)
    for (int row = 0; row < tileRows; row++) STORE(c + row * ldc, low[row], high[row], accumulate);
}

/// Fewer than six rows of A times one panel, a row at a time.
__attribute__((target(KERNEL_TARGET)))
static void ROWS(long rows, long k, const float *a, long lda, const float *panel, float *c, long ldc, int accumulate) {
    const Vector *weights = (const Vector *)panel;
    for (long row = 0; row < rows; row++) {
        Vector low = 0, high = 0;
        for (long index = 0; index < k; index++) {
            const Vector x = a[row * lda + index];
            low += x * weights[2 * index];
            high += x * weights[2 * index + 1];
        }
        STORE(c + row * ldc, low, high, accumulate);
    }
}
