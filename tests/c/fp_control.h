/* The floating-point control state a context switch keeps per context,
 * read and set per CPU, for the switch tests (switch_tests_portable.h).
 *
 * What fesetround() does, without needing -lm, on both control registers
 * where x86 has two: MXCSR for SSE (double on x86-64; on i386 only built
 * with __SSE__) and the x87 control word (long double; every float type
 * on i386 without -mfpmath=sse). The CPU, not the OS, decides all of
 * this: Windows x64 uses the x86 code as Linux does.
 */
#ifndef GS_TESTS_FP_CONTROL_H
#define GS_TESTS_FP_CONTROL_H

#include <stdint.h>

enum rounding { ROUND_NEAREST, ROUND_UP, ROUND_DOWN, ROUND_ZERO };

/* Encodings: x86 RC 0 nearest, 1 down, 2 up, 3 zero; AArch64 FPCR.RMode
 * and Arm FPSCR.RMode 0 nearest, 1 up, 2 down, 3 zero. */
static inline void
set_rounding(enum rounding mode)
{
#if defined(__x86_64__) || defined(__i386__)
    static const unsigned rc[] = {0, 2, 1, 3};
    unsigned short cw;
#if defined(__SSE__)
    unsigned int mxcsr;

    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    mxcsr = (mxcsr & ~0x6000u) | (rc[mode] << 13);
    __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
#endif
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    cw = (unsigned short)((cw & ~0x0c00u) | (rc[mode] << 10));
    __asm__ volatile("fldcw %0" : : "m"(cw));
#elif defined(__arm__)
    uint32_t fpscr;

    __asm__ volatile("vmrs %0, fpscr" : "=r"(fpscr));
    fpscr = (fpscr & ~((uint32_t)3 << 22)) | ((uint32_t)mode << 22);
    __asm__ volatile("vmsr fpscr, %0" : : "r"(fpscr));
#elif defined(__riscv)
    /* frm: 0 nearest, 1 zero, 2 down, 3 up. */
    static const unsigned rm[] = {0, 3, 2, 1};

    __asm__ volatile("fsrm %0" : : "r"(rm[mode]));
#elif defined(__powerpc64__)
    /* FPSCR RN (its 2 lowest bits): 0 nearest, 1 zero, 2 up, 3 down;
     * mtfsf 0x01 writes field 7 (XE, NI, RN) and nothing else. */
    static const unsigned rn[] = {0, 2, 3, 1};
    union {
        double d;
        uint64_t u;
    } fpscr;

    __asm__ volatile("mffs %0" : "=d"(fpscr.d));
    fpscr.u = (fpscr.u & ~(uint64_t)3) | rn[mode];
    __asm__ volatile("mtfsf 0x01, %0" : : "d"(fpscr.d));
#elif defined(__s390x__)
    /* FPC BFP rounding mode (its 3 lowest bits): 0 nearest, 1 zero,
     * 2 up, 3 down. */
    static const unsigned rm[] = {0, 2, 3, 1};
    unsigned int fpc;

    __asm__ volatile("efpc %0" : "=d"(fpc));
    fpc = (fpc & ~7u) | rm[mode];
    __asm__ volatile("sfpc %0" : : "d"(fpc));
#elif defined(__aarch64__)
    uint64_t fpcr;

    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = (fpcr & ~((uint64_t)3 << 22)) | ((uint64_t)mode << 22);
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
#else
#error "fp_control.h does not know this CPU's rounding mode"
#endif
}

/* The mode, or -1 if x86's two control registers disagree. */
static inline int
get_rounding(void)
{
#if defined(__x86_64__) || defined(__i386__)
    static const int mode[] = {ROUND_NEAREST, ROUND_DOWN, ROUND_UP,
                               ROUND_ZERO};
    unsigned short cw;

    __asm__ volatile("fnstcw %0" : "=m"(cw));
#if defined(__SSE__)
    {
        unsigned int mxcsr;

        __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
        if (((mxcsr >> 13) & 3) != ((cw >> 10) & 3u)) {
            return -1;
        }
    }
#endif
    return mode[(cw >> 10) & 3];
#elif defined(__arm__)
    uint32_t fpscr;

    __asm__ volatile("vmrs %0, fpscr" : "=r"(fpscr));
    return (int)((fpscr >> 22) & 3);
#elif defined(__riscv)
    static const int mode[] = {ROUND_NEAREST, ROUND_ZERO, ROUND_DOWN,
                               ROUND_UP};
    unsigned long frm;

    __asm__ volatile("frrm %0" : "=r"(frm));
    return frm < 4 ? mode[frm] : -1;    /* 4 is round to max magnitude */
#elif defined(__powerpc64__)
    static const int mode[] = {ROUND_NEAREST, ROUND_ZERO, ROUND_UP,
                               ROUND_DOWN};
    union {
        double d;
        uint64_t u;
    } fpscr;

    __asm__ volatile("mffs %0" : "=d"(fpscr.d));
    return mode[fpscr.u & 3];
#elif defined(__s390x__)
    static const int mode[] = {ROUND_NEAREST, ROUND_ZERO, ROUND_UP,
                               ROUND_DOWN};
    unsigned int fpc;

    __asm__ volatile("efpc %0" : "=d"(fpc));
    return (fpc & 7) < 4 ? mode[fpc & 7] : -1;
#else
    uint64_t fpcr;

    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (int)((fpcr >> 22) & 3);
#endif
}

#if defined(__SSE__)
/* MXCSR beyond its rounding bits: flush-to-zero, a control bit the switch
 * keeps per context, and the six sticky exception flags, which are status
 * and start clear in a new context. */
#define MXCSR_FTZ 0x8000u
#define MXCSR_INEXACT 0x20u
#define MXCSR_FLAGS 0x3fu

static inline unsigned int
get_mxcsr(void)
{
    unsigned int mxcsr;

    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    return mxcsr;
}

static inline void
set_mxcsr(unsigned int mxcsr)
{
    __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
}
#endif

#endif /* GS_TESTS_FP_CONTROL_H */
