// COpenBLAS: OpenBLAS's CBLAS interface plus the x86 CPUID query used to choose its kernels.
#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H

#include <cblas.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/// Runs CPUID with `leaf` and `subleaf` and stores EAX, EBX, ECX, EDX in `registers`.
/// Returns 0 when the leaf is not supported (or the CPU is not x86), 1 otherwise.
///
/// Why a shim: `__get_cpuid_count` is a GCC/Clang builtin-backed inline from <cpuid.h>,
/// which Swift cannot call; OpenBLAS must know the CPU's features *before* it initialises.
static inline int COpenBLAS_cpuid(unsigned int leaf, unsigned int subleaf, unsigned int registers[4]) {
#if defined(__x86_64__) || defined(__i386__)
    return __get_cpuid_count(leaf, subleaf, &registers[0], &registers[1], &registers[2], &registers[3]);
#else
    registers[0] = registers[1] = registers[2] = registers[3] = 0;
    return 0;
#endif
}

/// Reads XCR0 (the OS-enabled register state). AVX-512 kernels are only safe when the OS saves
/// the opmask and ZMM state (bits 5-7) as well as SSE/AVX state (bits 1-2).
///
/// Why a shim: `xgetbv` is an instruction with no Swift spelling.
static inline unsigned long long COpenBLAS_xgetbv0(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
#else
    return 0;
#endif
}

#endif
