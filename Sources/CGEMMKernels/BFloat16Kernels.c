// bfloat16 for CGEMMKernels: round-to-nearest-even conversion, the emulated path's rounding of fp32 operands,
// the pair-interleaved packing of both operands, and the AVX512-BF16 micro-kernel (`vdpbf16ps`) that
// multiplies them with fp32 accumulation. The portable kernel reads the same packed layout in plain C and
// follows Intel's definition of `vdpbf16ps` step for step (order, rounding, DAZ/FTZ), so the packing and the
// instruction's arithmetic are checked on every CPU; the native kernel keeps the same loop shape and is
// checked against both where the CPU has AVX512_BF16.

#include <float.h>
#include <math.h>
#include <string.h>

#include <immintrin.h>

#include "CGEMMKernels.h"

enum { bf16Width = 32, bf16TileRows = 6 };

unsigned short CGEMMKernels_bf16(float value) {
    unsigned int bits;
    memcpy(&bits, &value, sizeof bits);
    // A NaN keeps its sign and upper payload; setting the quiet bit keeps it a NaN when the low bits were
    // its only payload.
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((bits >> 16) | 0x0040u);
    // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then truncate. Carries into the
    // exponent are the correct rounding (up to infinity past the largest bfloat16).
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (unsigned short)(bits >> 16);
}

float CGEMMKernels_bf16ToFloat(unsigned short bits) {
    const unsigned int wide = (unsigned int)bits << 16;
    float value;
    memcpy(&value, &wide, sizeof value);
    return value;
}

void CGEMMKernels_roundToBF16(long rows, long columns, const float *source, long lds, float *target, long ldt) {
    for (long row = 0; row < rows; row++) {
        for (long column = 0; column < columns; column++) {
            target[row * ldt + column] = CGEMMKernels_bf16ToFloat(CGEMMKernels_bf16(source[row * lds + column]));
        }
    }
}

long CGEMMKernels_bf16Pairs(long k) { return (k + 1) / 2; }

/// Two bfloat16 in one word, `low` in the low half: the order `vdpbf16ps` pairs them in.
static inline unsigned int pairOf(float low, float high) {
    return (unsigned int)CGEMMKernels_bf16(low) | (unsigned int)CGEMMKernels_bf16(high) << 16;
}

void CGEMMKernels_packBF16(const float *b, long ldb, int transposed, long k, long n, unsigned int *packed) {
    const long pairs = CGEMMKernels_bf16Pairs(k);
    for (long panel = 0; panel < n / bf16Width; panel++) {
        unsigned int *target = packed + panel * pairs * bf16Width;
        for (long pair = 0; pair < pairs; pair++) {
            for (long column = 0; column < bf16Width; column++) {
                const long j = panel * bf16Width + column, even = 2 * pair, odd = 2 * pair + 1;
                const float low = transposed ? b[j * ldb + even] : b[even * ldb + j];
                const float high = odd < k ? (transposed ? b[j * ldb + odd] : b[odd * ldb + j]) : 0;
                target[pair * bf16Width + column] = pairOf(low, high);
            }
        }
    }
}

void CGEMMKernels_convertBF16(const float *a, long lda, int transposed, long m, long k, unsigned int *rows) {
    const long pairs = CGEMMKernels_bf16Pairs(k);
    for (long row = 0; row < m; row++) {
        for (long pair = 0; pair < pairs; pair++) {
            const long even = 2 * pair, odd = 2 * pair + 1;
            const float low = transposed ? a[even * lda + row] : a[row * lda + even];
            const float high = odd < k ? (transposed ? a[odd * lda + row] : a[row * lda + odd]) : 0;
            rows[row * pairs + pair] = pairOf(low, high);
        }
    }
}

/// `rows` (≤ 6, a constant after inlining, so the twelve accumulators stay in registers) rows of A times one
/// panel with `vdpbf16ps`: each step broadcasts a row's pair to all 16 lanes and adds
/// `a[2p+1]·b[2p+1][j]`, then `a[2p]·b[2p][j]`, to column `j`'s fp32 sum.
__attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl"), always_inline)) static inline void tileNativeRows(
    const int rows, long pairs, const unsigned int *a, const unsigned int *panel, float *c, long ldc, int accumulate) {
    __m512 low[bf16TileRows], high[bf16TileRows];
#pragma clang loop unroll(full)
    for (int row = 0; row < rows; row++) low[row] = high[row] = _mm512_setzero_ps();
    for (long pair = 0; pair < pairs; pair++) {
        const __m512bh panelLow = (__m512bh)_mm512_loadu_si512(panel + pair * bf16Width);
        const __m512bh panelHigh = (__m512bh)_mm512_loadu_si512(panel + pair * bf16Width + 16);
#pragma clang loop unroll(full)
        for (int row = 0; row < rows; row++) {
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[row * pairs + pair]);
            low[row] = _mm512_dpbf16_ps(low[row], x, panelLow);
            high[row] = _mm512_dpbf16_ps(high[row], x, panelHigh);
        }
    }
#pragma clang loop unroll(full)
    for (int row = 0; row < rows; row++) {
        float *target = c + row * ldc;
        if (accumulate) {
            low[row] = _mm512_add_ps(low[row], _mm512_loadu_ps(target));
            high[row] = _mm512_add_ps(high[row], _mm512_loadu_ps(target + 16));
        }
        _mm512_storeu_ps(target, low[row]);
        _mm512_storeu_ps(target + 16, high[row]);
    }
}

/// ``tileNativeRows`` for 1–6 rows, each row count its own unrolled copy (a tile's last rows need not be six).
__attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl"))) static void tileNative(
    long rows, long pairs, const unsigned int *a, const unsigned int *panel, float *c, long ldc, int accumulate) {
    switch (rows) {
    case 6: tileNativeRows(6, pairs, a, panel, c, ldc, accumulate); break;
    case 5: tileNativeRows(5, pairs, a, panel, c, ldc, accumulate); break;
    case 4: tileNativeRows(4, pairs, a, panel, c, ldc, accumulate); break;
    case 3: tileNativeRows(3, pairs, a, panel, c, ldc, accumulate); break;
    case 2: tileNativeRows(2, pairs, a, panel, c, ldc, accumulate); break;
    default: tileNativeRows(1, pairs, a, panel, c, ldc, accumulate); break;
    }
}

/// A bf16 as `vdpbf16ps` reads it: a denormal (zero exponent) is taken as a zero of its sign (DAZ).
static inline float bf16Operand(unsigned short bits) {
    return CGEMMKernels_bf16ToFloat((bits & 0x7f80u) == 0 ? (unsigned short)(bits & 0x8000u) : bits);
}

/// A `vdpbf16ps` result: a denormal is flushed to a zero of its sign (FTZ).
static inline float flushedToZero(float value) { return fabsf(value) < FLT_MIN ? copysignf(0.0f, value) : value; }

/// The same tile in plain C, step for step as Intel defines `vdpbf16ps` (SDM, "VDPBF16PS"): per column, the
/// pair's high product and then its low product added to the running fp32 sum, each as a fused multiply-add
/// rounded to nearest even whatever MXCSR says, denormal inputs read as zero and denormal sums flushed to zero.
static void tilePortable(
    long rows, long pairs, const unsigned int *a, const unsigned int *panel, float *c, long ldc, int accumulate) {
    for (long row = 0; row < rows; row++) {
        for (long column = 0; column < bf16Width; column++) {
            float sum = 0;
            for (long pair = 0; pair < pairs; pair++) {
                const unsigned int x = a[row * pairs + pair], w = panel[pair * bf16Width + column];
                sum = flushedToZero(
                    fmaf(bf16Operand((unsigned short)(x >> 16)), bf16Operand((unsigned short)(w >> 16)), sum));
                sum = flushedToZero(fmaf(bf16Operand((unsigned short)x), bf16Operand((unsigned short)w), sum));
            }
            c[row * ldc + column] = accumulate ? c[row * ldc + column] + sum : sum;
        }
    }
}

void CGEMMKernels_multiplyBF16(
    long m, long n, long pairs, const unsigned int *rows, const unsigned int *packed, float *c, long ldc,
    int accumulate, int native) {
    for (long panel = 0; panel < n / bf16Width; panel++) {
        const unsigned int *panelValues = packed + panel * pairs * bf16Width;
        for (long row = 0; row < m; row += bf16TileRows) {
            const long count = m - row < bf16TileRows ? m - row : bf16TileRows;
            float *tile = c + row * ldc + panel * bf16Width;
            if (native) {
                tileNative(count, pairs, rows + row * pairs, panelValues, tile, ldc, accumulate);
            } else {
                tilePortable(count, pairs, rows + row * pairs, panelValues, tile, ldc, accumulate);
            }
        }
    }
}
