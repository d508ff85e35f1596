// The sgemm of CGEMMKernels: packing B into panels, and blocking A's rows so that each block stays in L2
// while it is multiplied by every panel. MicroKernels.h supplies the tiles of each instruction set; why
// these kernels exist is in include/CGEMMKernels.h.

#include "CGEMMKernels.h"

// Rows of A per block: a block's rows (at most 96·k floats) stay in L2 while each k × width panel
// of B is reused from L1 by all of them. Measured on ghostnet101's 1×1 shapes with AVX2: 96-row
// blocks ran 1.1–2.0× as fast as taking every panel for 6 rows at a time on five of six shapes,
// and 0.9× on `[50172, 32]·[32, 128]`.
enum { rowBlock = 96, tileRows = 6 };

int CGEMMKernels_panelWidth(CGEMMKernels_Level level) { return level == CGEMMKernels_avx512 ? 32 : 16; }

void CGEMMKernels_pack(
    CGEMMKernels_Level level, const float *b, long ldb, int transposed, long k, long n, float *packed) {
    const long width = CGEMMKernels_panelWidth(level);
    for (long panel = 0; panel < n / width; panel++) {
        float *target = packed + panel * k * width;
        for (long row = 0; row < k; row++) {
            for (long column = 0; column < width; column++) {
                const long j = panel * width + column;
                target[row * width + column] = transposed ? b[j * ldb + row] : b[row * ldb + j];
            }
        }
    }
}

// MARK: - The kernels of each instruction set

typedef float Vector8 __attribute__((ext_vector_type(8), aligned(4)));
typedef float Vector16 __attribute__((ext_vector_type(16), aligned(4)));

#define KERNEL_TARGET "avx2,fma"
#define Vector Vector8
#define STORE storeAVX2
#define TILE tileAVX2
#define ROWS rowsAVX2
#include "MicroKernels.h"
#undef KERNEL_TARGET
#undef Vector
#undef STORE
#undef TILE
#undef ROWS

#define KERNEL_TARGET "avx512f"
#define Vector Vector16
#define STORE storeAVX512
#define TILE tileAVX512
#define ROWS rowsAVX512
#include "MicroKernels.h"
#undef KERNEL_TARGET
#undef Vector
#undef STORE
#undef TILE
#undef ROWS

// MARK: - Blocking

void CGEMMKernels_multiply(
    CGEMMKernels_Level level, long m, long n, long k, const float *a, long lda, const float *packed, float *c,
    long ldc, int accumulate) {
    const long width = CGEMMKernels_panelWidth(level);
    for (long first = 0; first < m; first += rowBlock) {
        const long rows = m - first < rowBlock ? m - first : rowBlock;
        for (long panel = 0; panel < n / width; panel++) {
            const float *panelValues = packed + panel * k * width;
            const float *blockA = a + first * lda;
            float *blockC = c + first * ldc + panel * width;
            long row = 0;
            for (; row + tileRows <= rows; row += tileRows) {
                if (level == CGEMMKernels_avx512) {
                    tileAVX512(k, blockA + row * lda, lda, panelValues, blockC + row * ldc, ldc, accumulate);
                } else {
                    tileAVX2(k, blockA + row * lda, lda, panelValues, blockC + row * ldc, ldc, accumulate);
                }
            }
            if (row < rows) {
                if (level == CGEMMKernels_avx512) {
                    rowsAVX512(
                        rows - row, k, blockA + row * lda, lda, panelValues, blockC + row * ldc, ldc, accumulate);
                } else {
                    rowsAVX2(rows - row, k, blockA + row * lda, lda, panelValues, blockC + row * ldc, ldc, accumulate);
                }
            }
        }
    }
}
