/* Tests of the context-switch primitive (src/arch/switch.h) on Linux and
 * other POSIX systems, with no Python: the portable tests and their
 * harness (switch_tests_portable.h), the platform layer they need, and
 * what only POSIX has (a trap seen as a signal in a forked child,
 * _Unwind_Backtrace).
 *
 * Each file compiles alone, natively or for another CPU under qemu:
 *   cc -O2 -Wall -Wextra -Isrc/arch tests/c/test_switch.c \
 *       src/arch/switch_x86_64_sysv.S -o test_switch && ./test_switch
 *   crossrun aarch64 -Isrc/arch tests/c/test_switch.c \
 *       src/arch/switch_aarch64_aapcs.S
 * (for riscv64 with GCC 12, add -fasynchronous-unwind-tables: see
 * UNWIND_TABLES).
 * Arguments, if given, run only the tests whose names contain one of them
 * (tests/test_c_switch.py runs `test_switch unwind` under gdb).
 *
 * Stacks come from mmap(), with a PROT_NONE guard page below `limit`.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* MAP_STACK, MAP_NORESERVE, REG_RIP */
#endif

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <unwind.h>

#include "switch.h"

#if !defined(__x86_64__) && !defined(__aarch64__) && !defined(__i386__) && \
    !defined(__arm__) && !defined(__riscv) && !defined(__powerpc64__) && \
    !defined(__s390x__)
#error "test_switch.c does not know this CPU's registers"
#endif

/* gs_entry_trampoline is not in switch.h: nothing but the .S file and this
 * test needs its address. */
__attribute__((visibility("hidden"))) extern const char
    gs_entry_trampoline[];

/* The callee-saved registers test_probe_swap() loads and reads back, per
 * CPU (struct probe, in switch_tests_portable.h). */
#if defined(__x86_64__)
#define PROBE_NREGS 6
static const char *const probe_names[PROBE_NREGS] = {
    "rbx", "rbp", "r12", "r13", "r14", "r15",
};
#elif defined(__i386__)
/* On the 32-bit ABIs each 64-bit slot fills two core registers, low word
 * first, so that every bit of the patterns reaches a register. */
#define PROBE_NREGS 2
static const char *const probe_names[PROBE_NREGS] = {
    "ebx/esi", "edi/ebp",
};
#elif defined(__arm__)
#define PROBE_NREGS 12
static const char *const probe_names[PROBE_NREGS] = {
    "r4/r5", "r6/r7", "r8/r9", "r10/r11",
    "d8", "d9", "d10", "d11", "d12", "d13", "d14", "d15",
};
#elif defined(__riscv)
#define PROBE_NREGS 24
static const char *const probe_names[PROBE_NREGS] = {
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
    "fs0", "fs1", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9",
    "fs10", "fs11",
};
#elif defined(__powerpc64__)
/* A vector register takes two slots, its first and its second 8 bytes in
 * memory order; "cr" is cr2-cr4 (CR & 0x00fff000). */
#define PROBE_NREGS 63
static const char *const probe_names[PROBE_NREGS] = {
    "r2", "r14", "r15", "r16", "r17", "r18", "r19", "r20", "r21", "r22",
    "r23", "r24", "r25", "r26", "r27", "r28", "r29", "r30", "r31",
    "f14", "f15", "f16", "f17", "f18", "f19", "f20", "f21", "f22", "f23",
    "f24", "f25", "f26", "f27", "f28", "f29", "f30", "f31",
    "v20[0]", "v20[1]", "v21[0]", "v21[1]", "v22[0]", "v22[1]",
    "v23[0]", "v23[1]", "v24[0]", "v24[1]", "v25[0]", "v25[1]",
    "v26[0]", "v26[1]", "v27[0]", "v27[1]", "v28[0]", "v28[1]",
    "v29[0]", "v29[1]", "v30[0]", "v30[1]", "v31[0]", "v31[1]",
    "cr", "vrsave",
};
#elif defined(__s390x__)
#define PROBE_NREGS 16
static const char *const probe_names[PROBE_NREGS] = {
    "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r13",
    "f8", "f9", "f10", "f11", "f12", "f13", "f14", "f15",
};
#else
#define PROBE_NREGS 19
static const char *const probe_names[PROBE_NREGS] = {
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
    "x29", "d8", "d9", "d10", "d11", "d12", "d13", "d14", "d15",
};
#endif

#include "switch_tests_portable.h"

/* ---- the platform layer --------------------------------------------- */

static int
stack_guard(uintptr_t page)
{
    if (mprotect((void *)page, page_size, PROT_NONE) != 0) {
        perror("mprotect");
        return -1;
    }
    return 0;
}

static int
stack_alloc(struct test_stack *st, size_t size)
{
    size_t map_size = size + page_size;
    void *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                     -1, 0);

    if (map == MAP_FAILED) {
        perror("mmap");
        return -1;
    }
    if (stack_guard((uintptr_t)map) != 0) {
        munmap(map, map_size);
        return -1;
    }
    st->base = map;
    st->size = map_size;
    st->top = (uintptr_t)map + map_size;
    st->limit = (uintptr_t)map + page_size;
    return 0;
}

static void
stack_free(struct test_stack *st)
{
    if (munmap(st->base, st->size) != 0) {
        perror("munmap");
    }
}

static double
now_ns(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e9 + (double)now.tv_nsec;
}

/* ---- test_probe_swap, per CPU --------------------------------------- */

#if defined(__x86_64__)
/* in[] at 16: rbx rbp r12 r13 r14 r15; out[] at 64, same order. Seven
 * pushes (six registers and p) leave rsp 16-aligned for the call. */
__asm__(
    "        .text\n"
    "        .globl  test_probe_swap\n"
    "        .hidden test_probe_swap\n"
    "        .type   test_probe_swap, @function\n"
    "        .p2align 4\n"
    "test_probe_swap:\n"
    "        pushq   %rbp\n"
    "        pushq   %rbx\n"
    "        pushq   %r12\n"
    "        pushq   %r13\n"
    "        pushq   %r14\n"
    "        pushq   %r15\n"
    "        pushq   %rdi\n"
    "        movq    16(%rdi), %rbx\n"
    "        movq    24(%rdi), %rbp\n"
    "        movq    32(%rdi), %r12\n"
    "        movq    40(%rdi), %r13\n"
    "        movq    48(%rdi), %r14\n"
    "        movq    56(%rdi), %r15\n"
    "        movq    8(%rdi), %rsi\n"
    "        movq    (%rdi), %rdi\n"
    "        xorl    %edx, %edx\n"
    "        call    gs_swap\n"
    "        movq    (%rsp), %rdi\n"
    "        movq    %rbx, 64(%rdi)\n"
    "        movq    %rbp, 72(%rdi)\n"
    "        movq    %r12, 80(%rdi)\n"
    "        movq    %r13, 88(%rdi)\n"
    "        movq    %r14, 96(%rdi)\n"
    "        movq    %r15, 104(%rdi)\n"
    "        popq    %rdi\n"
    "        popq    %r15\n"
    "        popq    %r14\n"
    "        popq    %r13\n"
    "        popq    %r12\n"
    "        popq    %rbx\n"
    "        popq    %rbp\n"
    "        ret\n"
    "        .size   test_probe_swap, . - test_probe_swap\n");
#elif defined(__i386__)
/* p at 4(%esp) on entry; in[] at 8: ebx esi edi ebp; out[] at 24, same
 * order. Five pushes (four registers and p) and 12 bytes of padding put
 * esp at 12 (mod 16), so the three argument words end 16-aligned at the
 * call. */
__asm__(
    "        .text\n"
    "        .globl  test_probe_swap\n"
    "        .hidden test_probe_swap\n"
    "        .type   test_probe_swap, @function\n"
    "        .p2align 4\n"
    "test_probe_swap:\n"
    "        pushl   %ebp\n"
    "        pushl   %ebx\n"
    "        pushl   %esi\n"
    "        pushl   %edi\n"
    "        movl    20(%esp), %eax\n"
    "        pushl   %eax\n"
    "        subl    $12, %esp\n"
    "        pushl   $0\n"
    "        pushl   4(%eax)\n"
    "        pushl   (%eax)\n"
    "        movl    8(%eax), %ebx\n"
    "        movl    12(%eax), %esi\n"
    "        movl    16(%eax), %edi\n"
    "        movl    20(%eax), %ebp\n"
    "        call    gs_swap\n"
    "        addl    $24, %esp\n"
    "        movl    (%esp), %eax\n"
    "        movl    %ebx, 24(%eax)\n"
    "        movl    %esi, 28(%eax)\n"
    "        movl    %edi, 32(%eax)\n"
    "        movl    %ebp, 36(%eax)\n"
    "        popl    %eax\n"
    "        popl    %edi\n"
    "        popl    %esi\n"
    "        popl    %ebx\n"
    "        popl    %ebp\n"
    "        ret\n"
    "        .size   test_probe_swap, . - test_probe_swap\n");
#elif defined(__arm__)
/* in[] at 8: r4-r11 in pairs, then d8-d15 at 40; out[] at 104, same
 * order (d8-d15 at 136). Nine core registers, eight d registers and p
 * make 104 bytes, so sp is 8-aligned at the call. Valid in Arm and in
 * Thumb state, whichever the compiler left the assembler in. */
__asm__(
    "        .syntax unified\n"
    "        .text\n"
    "        .globl  test_probe_swap\n"
    "        .hidden test_probe_swap\n"
    "        .type   test_probe_swap, %function\n"
    "        .p2align 2\n"
    "test_probe_swap:\n"
    "        push    {r4-r11, lr}\n"
    "        vpush   {d8-d15}\n"
    "        push    {r0}\n"
    "        ldrd    r4, r5, [r0, #8]\n"
    "        ldrd    r6, r7, [r0, #16]\n"
    "        ldrd    r8, r9, [r0, #24]\n"
    "        ldrd    r10, r11, [r0, #32]\n"
    "        add     r1, r0, #40\n"
    "        vldmia  r1, {d8-d15}\n"
    "        ldr     r1, [r0, #4]\n"
    "        ldr     r0, [r0]\n"
    "        movs    r2, #0\n"
    "        bl      gs_swap\n"
    "        ldr     r0, [sp]\n"
    "        strd    r4, r5, [r0, #104]\n"
    "        strd    r6, r7, [r0, #112]\n"
    "        strd    r8, r9, [r0, #120]\n"
    "        strd    r10, r11, [r0, #128]\n"
    "        add     r1, r0, #136\n"
    "        vstmia  r1, {d8-d15}\n"
    "        pop     {r0}\n"
    "        vpop    {d8-d15}\n"
    "        pop     {r4-r11, pc}\n"
    "        .size   test_probe_swap, . - test_probe_swap\n");
#elif defined(__riscv)
/* in[] at 16: s0-s11 then fs0-fs11; out[] at 208, same order. Frame:
 * 208 bytes (a multiple of 16): ra at 0, s0-s11 at 8, fs0-fs11 at 104,
 * p at 200. Each .irp round saves one register and loads its pattern. */
__asm__(
    "        .text\n"
    "        .globl  test_probe_swap\n"
    "        .hidden test_probe_swap\n"
    "        .type   test_probe_swap, @function\n"
    "        .p2align 2\n"
    "test_probe_swap:\n"
    "        addi    sp, sp, -208\n"
    "        sd      ra, 0(sp)\n"
    "        sd      a0, 200(sp)\n"
    "        .irp    i, 0,1,2,3,4,5,6,7,8,9,10,11\n"
    "        sd      s\\i, 8+8*\\i(sp)\n"
    "        fsd     fs\\i, 104+8*\\i(sp)\n"
    "        ld      s\\i, 16+8*\\i(a0)\n"
    "        fld     fs\\i, 112+8*\\i(a0)\n"
    "        .endr\n"
    "        ld      a1, 8(a0)\n"
    "        ld      a0, 0(a0)\n"
    "        li      a2, 0\n"
    "        call    gs_swap\n"
    "        ld      t0, 200(sp)\n"
    "        .irp    i, 0,1,2,3,4,5,6,7,8,9,10,11\n"
    "        sd      s\\i, 208+8*\\i(t0)\n"
    "        fsd     fs\\i, 304+8*\\i(t0)\n"
    "        ld      s\\i, 8+8*\\i(sp)\n"
    "        fld     fs\\i, 104+8*\\i(sp)\n"
    "        .endr\n"
    "        ld      ra, 0(sp)\n"
    "        addi    sp, sp, 208\n"
    "        ret\n"
    "        .size   test_probe_swap, . - test_probe_swap\n");
#elif defined(__powerpc64__)
/* in[] at 16: r2, r14-r31, f14-f31, v20-v31 (two slots each), cr, vrsave;
 * out[] at 520, same order. r2 is in the list because gs_swap switches it
 * (see switch_ppc64le_elfv2.S); nothing between the two swaps uses the
 * TOC. The probe first rewrites in[]'s cr and vrsave slots to what those
 * registers can hold: each slot XORed with itself rotated left by 28
 * (which brings the salt, different per context in the high word, into
 * all of cr2-cr4), then masked to cr2-cr4 (0x00fff000) and to VRSAVE's
 * 32 bits respectively. The
 * vector slots are only 8-aligned, hence lxvd2x/stxvd2x on vs52-vs63
 * (= v20-v31), which take any address and round-trip all 16 bytes.
 * Inside .irp, registers are plain numbers. Frame: 544 bytes, p at 32,
 * r2 at 40, r14-r31 at 48, f14-f31 at 192, v20-v31 at 336, VRSAVE at
 * 528; LR and CR go to the caller's frame, as the ABI has it. */
__asm__(
    "        .text\n"
    "        .globl  test_probe_swap\n"
    "        .hidden test_probe_swap\n"
    "        .type   test_probe_swap, @function\n"
    "        .p2align 4\n"
    "test_probe_swap:\n"
    "        mflr    %r0\n"
    "        mfcr    %r12\n"
    "        std     %r0, 16(%r1)\n"
    "        stw     %r12, 8(%r1)\n"
    "        stdu    %r1, -544(%r1)\n"
    "        std     %r3, 32(%r1)\n"
    "        std     %r2, 40(%r1)\n"
    "        .irp    i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    "        std     \\i, 48+8*(\\i-14)(%r1)\n"
    "        stfd    \\i, 192+8*(\\i-14)(%r1)\n"
    "        .endr\n"
    "        .irp    i, 20,21,22,23,24,25,26,27,28,29,30,31\n"
    "        li      %r0, 336+16*(\\i-20)\n"
    "        stvx    \\i, %r1, %r0\n"
    "        .endr\n"
    "        mfvrsave %r0\n"
    "        stw     %r0, 528(%r1)\n"
    "        ld      %r0, 504(%r3)\n"
    "        rotldi  %r12, %r0, 28\n"
    "        xor     %r0, %r0, %r12\n"
    "        rlwinm  %r0, %r0, 0, 8, 19\n"
    "        std     %r0, 504(%r3)\n"
    "        ld      %r0, 512(%r3)\n"
    "        rotldi  %r12, %r0, 28\n"
    "        xor     %r0, %r0, %r12\n"
    "        clrldi  %r0, %r0, 32\n"
    "        std     %r0, 512(%r3)\n"
    "        .irp    i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    "        ld      \\i, 24+8*(\\i-14)(%r3)\n"
    "        lfd     \\i, 168+8*(\\i-14)(%r3)\n"
    "        .endr\n"
    "        .irp    i, 20,21,22,23,24,25,26,27,28,29,30,31\n"
    "        li      %r0, 312+16*(\\i-20)\n"
    "        lxvd2x  32+\\i, %r3, %r0\n"
    "        .endr\n"
    "        ld      %r0, 504(%r3)\n"
    "        mtocrf  0x20, %r0\n"
    "        mtocrf  0x10, %r0\n"
    "        mtocrf  0x08, %r0\n"
    "        ld      %r0, 512(%r3)\n"
    "        mtvrsave %r0\n"
    "        ld      %r4, 8(%r3)\n"
    "        ld      %r2, 16(%r3)\n"
    "        ld      %r3, 0(%r3)\n"
    "        li      %r5, 0\n"
    "        bl      gs_swap\n"
    "        nop\n"
    "        ld      %r3, 32(%r1)\n"
    "        std     %r2, 520(%r3)\n"
    "        .irp    i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    "        std     \\i, 528+8*(\\i-14)(%r3)\n"
    "        stfd    \\i, 672+8*(\\i-14)(%r3)\n"
    "        .endr\n"
    "        .irp    i, 20,21,22,23,24,25,26,27,28,29,30,31\n"
    "        li      %r0, 816+16*(\\i-20)\n"
    "        stxvd2x 32+\\i, %r3, %r0\n"
    "        .endr\n"
    "        mfcr    %r0\n"
    "        rlwinm  %r0, %r0, 0, 8, 19\n"
    "        std     %r0, 1008(%r3)\n"
    "        mfvrsave %r0\n"
    "        std     %r0, 1016(%r3)\n"
    "        ld      %r2, 40(%r1)\n"
    "        .irp    i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    "        ld      \\i, 48+8*(\\i-14)(%r1)\n"
    "        lfd     \\i, 192+8*(\\i-14)(%r1)\n"
    "        .endr\n"
    "        .irp    i, 20,21,22,23,24,25,26,27,28,29,30,31\n"
    "        li      %r0, 336+16*(\\i-20)\n"
    "        lvx     \\i, %r1, %r0\n"
    "        .endr\n"
    "        lwz     %r0, 528(%r1)\n"
    "        mtvrsave %r0\n"
    "        addi    %r1, %r1, 544\n"
    "        ld      %r0, 16(%r1)\n"
    "        lwz     %r12, 8(%r1)\n"
    "        mtlr    %r0\n"
    "        mtocrf  0x20, %r12\n"
    "        mtocrf  0x10, %r12\n"
    "        mtocrf  0x08, %r12\n"
    "        blr\n"
    "        .size   test_probe_swap, . - test_probe_swap\n");
#elif defined(__s390x__)
/* in[] at 16: r6-r13 then f8-f15; out[] at 144, same order. r6-r15 go to
 * the caller's register save area; the 232-byte frame holds a save area
 * for gs_swap (160), f8-f15 at 160 and p at 224. */
__asm__(
    "        .text\n"
    "        .globl  test_probe_swap\n"
    "        .hidden test_probe_swap\n"
    "        .type   test_probe_swap, @function\n"
    "        .p2align 3\n"
    "test_probe_swap:\n"
    "        stmg    %r6, %r15, 48(%r15)\n"
    "        aghi    %r15, -232\n"
    "        std     %f8, 160(%r15)\n"
    "        std     %f9, 168(%r15)\n"
    "        std     %f10, 176(%r15)\n"
    "        std     %f11, 184(%r15)\n"
    "        std     %f12, 192(%r15)\n"
    "        std     %f13, 200(%r15)\n"
    "        std     %f14, 208(%r15)\n"
    "        std     %f15, 216(%r15)\n"
    "        stg     %r2, 224(%r15)\n"
    "        lmg     %r6, %r13, 16(%r2)\n"
    "        ld      %f8, 80(%r2)\n"
    "        ld      %f9, 88(%r2)\n"
    "        ld      %f10, 96(%r2)\n"
    "        ld      %f11, 104(%r2)\n"
    "        ld      %f12, 112(%r2)\n"
    "        ld      %f13, 120(%r2)\n"
    "        ld      %f14, 128(%r2)\n"
    "        ld      %f15, 136(%r2)\n"
    "        lg      %r3, 8(%r2)\n"
    "        lg      %r2, 0(%r2)\n"
    "        lghi    %r4, 0\n"
    "        brasl   %r14, gs_swap\n"
    "        lg      %r1, 224(%r15)\n"
    "        stmg    %r6, %r13, 144(%r1)\n"
    "        std     %f8, 208(%r1)\n"
    "        std     %f9, 216(%r1)\n"
    "        std     %f10, 224(%r1)\n"
    "        std     %f11, 232(%r1)\n"
    "        std     %f12, 240(%r1)\n"
    "        std     %f13, 248(%r1)\n"
    "        std     %f14, 256(%r1)\n"
    "        std     %f15, 264(%r1)\n"
    "        ld      %f8, 160(%r15)\n"
    "        ld      %f9, 168(%r15)\n"
    "        ld      %f10, 176(%r15)\n"
    "        ld      %f11, 184(%r15)\n"
    "        ld      %f12, 192(%r15)\n"
    "        ld      %f13, 200(%r15)\n"
    "        ld      %f14, 208(%r15)\n"
    "        ld      %f15, 216(%r15)\n"
    "        lmg     %r6, %r15, 280(%r15)\n"
    "        br      %r14\n"
    "        .size   test_probe_swap, . - test_probe_swap\n");
#else
/* in[] at 16: x19-x29 then d8-d15; out[] at 168, same order. p is kept
 * at sp + 0xa0 in a 0xb0-byte frame. */
__asm__(
    "        .text\n"
    "        .globl  test_probe_swap\n"
    "        .hidden test_probe_swap\n"
    "        .type   test_probe_swap, %function\n"
    "        .p2align 4\n"
    "test_probe_swap:\n"
    "        stp     x29, x30, [sp, #-0xb0]!\n"
    "        stp     x19, x20, [sp, #0x10]\n"
    "        stp     x21, x22, [sp, #0x20]\n"
    "        stp     x23, x24, [sp, #0x30]\n"
    "        stp     x25, x26, [sp, #0x40]\n"
    "        stp     x27, x28, [sp, #0x50]\n"
    "        stp     d8, d9, [sp, #0x60]\n"
    "        stp     d10, d11, [sp, #0x70]\n"
    "        stp     d12, d13, [sp, #0x80]\n"
    "        stp     d14, d15, [sp, #0x90]\n"
    "        str     x0, [sp, #0xa0]\n"
    "        ldp     x19, x20, [x0, #16]\n"
    "        ldp     x21, x22, [x0, #32]\n"
    "        ldp     x23, x24, [x0, #48]\n"
    "        ldp     x25, x26, [x0, #64]\n"
    "        ldp     x27, x28, [x0, #80]\n"
    "        ldr     x29, [x0, #96]\n"
    "        ldp     d8, d9, [x0, #104]\n"
    "        ldp     d10, d11, [x0, #120]\n"
    "        ldp     d12, d13, [x0, #136]\n"
    "        ldp     d14, d15, [x0, #152]\n"
    "        ldr     x1, [x0, #8]\n"
    "        ldr     x0, [x0]\n"
    "        mov     x2, #0\n"
    "        bl      gs_swap\n"
    "        ldr     x9, [sp, #0xa0]\n"
    "        stp     x19, x20, [x9, #168]\n"
    "        stp     x21, x22, [x9, #184]\n"
    "        stp     x23, x24, [x9, #200]\n"
    "        stp     x25, x26, [x9, #216]\n"
    "        stp     x27, x28, [x9, #232]\n"
    "        str     x29, [x9, #248]\n"
    "        stp     d8, d9, [x9, #256]\n"
    "        stp     d10, d11, [x9, #272]\n"
    "        stp     d12, d13, [x9, #288]\n"
    "        stp     d14, d15, [x9, #304]\n"
    "        ldp     d14, d15, [sp, #0x90]\n"
    "        ldp     d12, d13, [sp, #0x80]\n"
    "        ldp     d10, d11, [sp, #0x70]\n"
    "        ldp     d8, d9, [sp, #0x60]\n"
    "        ldp     x27, x28, [sp, #0x50]\n"
    "        ldp     x25, x26, [sp, #0x40]\n"
    "        ldp     x23, x24, [sp, #0x30]\n"
    "        ldp     x21, x22, [sp, #0x20]\n"
    "        ldp     x19, x20, [sp, #0x10]\n"
    "        ldp     x29, x30, [sp], #0xb0\n"
    "        ret\n"
    "        .size   test_probe_swap, . - test_probe_swap\n");
#endif

/* ---- entry alignment ------------------------------------------------ */

/* The frame address is sp after the prologue's frame-pointer push (x86)
 * or frame-record store (AArch64): a multiple of 16 if entry was called
 * with the ABI's alignment. FRAME_BIAS + frame must be a multiple of
 * FRAME_ALIGN. */
#if defined(__i386__)
/* ebp after `push %ebp`: the call's 16-aligned esp less the return
 * address and the saved ebp. */
#define FRAME_ALIGN 16
#define FRAME_BIAS 8
#elif defined(__arm__)
/* Arm code's frame pointer points at a saved register, not at an aligned
 * record, so align_entry reads sp, which GCC keeps as aligned as it was
 * at entry: 8 bytes at a public interface (AAPCS 6.2.1.2). */
#define FRAME_ALIGN 8
#define FRAME_BIAS 0
#elif defined(__s390x__)
/* The s390x ABI keeps r15 8-byte aligned, and so does gs_init. */
#define FRAME_ALIGN 8
#define FRAME_BIAS 0
#else
#define FRAME_ALIGN 16
#define FRAME_BIAS 0
#endif

void
align_entry(void *arg)
{
    struct align_report *r = arg;

#if defined(__arm__)
    __asm__ volatile("mov %0, sp" : "=r"(r->frame));
#elif defined(__riscv)
    /* RISC-V's frame address is the CFA, the caller's sp, which for an
     * entry function is the aligned top itself: read sp, which the ABI
     * keeps 16-aligned all along. */
    __asm__ volatile("mv %0, sp" : "=r"(r->frame));
#else
    r->frame = (uintptr_t)__builtin_frame_address(0);
#endif
    align_entry_body(r);
}

static void
check_entry_frame(const struct align_report *r, uintptr_t top)
{
    CHECK((r->frame + FRAME_BIAS) % FRAME_ALIGN == 0);
    CHECK(r->frame < top);
}

/* ---- unwinding ------------------------------------------------------ */

#define BT_MAX 32

struct backtrace {
    int frames;
    void *func[BT_MAX];         /* start of each frame's function */
    uintptr_t ip[BT_MAX];       /* each frame's pc, a return address */
    uintptr_t return_address;   /* take_backtrace's, on Arm */
    _Unwind_Reason_Code reason;
};

static _Unwind_Reason_Code
backtrace_step(struct _Unwind_Context *ctx, void *arg)
{
    struct backtrace *bt = arg;
    int before_insn = 0;
    uintptr_t ip = _Unwind_GetIPInfo(ctx, &before_insn);

    if (ip == 0) {
        /* libgcc calls once more past the outermost frame, whose return
         * address is undefined, with ip 0: the end, not a frame. */
        return _URC_NO_REASON;
    }
    if (bt->frames >= BT_MAX) {
        return _URC_END_OF_STACK;       /* runaway: ends as a failure */
    }
    bt->ip[bt->frames] = ip;
#if defined(__arm__)
    /* EHABI has no _Unwind_FindEnclosingFunction. The frame's index entry
     * gives a region start, but ld merges the entries of neighbouring
     * functions that unwind alike, so it does not name a function. */
    (void)before_insn;
    bt->func[bt->frames++] = (void *)_Unwind_GetRegionStart(ctx);
#else
    /* A return address belongs to the call before it. */
    bt->func[bt->frames++] =
        _Unwind_FindEnclosingFunction((void *)(ip - (before_insn ? 0 : 1)));
#endif
    return _URC_NO_REASON;
}

#if defined(__arm__)
/* GCC emits no EHABI unwind entries for C unless -funwind-tables, and
 * _Unwind_Backtrace stops at the first function without one: give them to
 * the two functions between _Unwind_Backtrace and the trampoline. */
#define UNWIND_TABLES __attribute__((optimize("unwind-tables")))
#elif defined(__riscv)
/* GCC 12 on RISC-V defaults to no unwind tables (later GCCs turn on
 * -fasynchronous-unwind-tables). The attribute gives these two functions
 * CFI; but with -g and no unwind-table flag for the whole file, GCC sends
 * all CFI to .debug_frame, which _Unwind_Backtrace does not read: build
 * with -fasynchronous-unwind-tables then (tests/test_c_switch.py does). */
#define UNWIND_TABLES __attribute__((optimize("unwind-tables")))
#else
#define UNWIND_TABLES
#endif

/* tests/test_c_switch.py puts a gdb breakpoint here. */
__attribute__((noinline)) UNWIND_TABLES void
take_backtrace(struct backtrace *bt)
{
    bt->frames = 0;
#if defined(__arm__)
    /* The pc the unwinder must find in the next frame, which
     * _Unwind_GetIP gives without the Thumb bit. */
    bt->return_address =
        (uintptr_t)__builtin_return_address(0) & ~(uintptr_t)1;
#endif
    bt->reason = _Unwind_Backtrace(backtrace_step, bt);
}

static void *unwind_sp;

static UNWIND_TABLES void
unwind_entry(void *arg)
{
    take_backtrace(arg);
    for (;;) {
        gs_swap(&unwind_sp, main_sp, NULL);
    }
}

static void
test_unwind_backtrace_stops_at_the_trampoline(void)
{
    struct test_stack st;
    struct backtrace bt;
    int i, saw_entry = 0;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    memset(&bt, 0, sizeof(bt));
    unwind_sp = gs_init(st.top, unwind_entry, st.limit);
    gs_swap(&main_sp, unwind_sp, &bt);
#if defined(__arm__)
    /* libgcc's EHABI unwinder reads the trampoline's .cantunwind entry and
     * stops without reporting the trampoline as a frame, so exactly two
     * frames come back: take_backtrace, and unwind_entry, recognised by
     * its pc (see backtrace_step). Had the trampoline unwind data, the
     * walk would go on past the top of the stack. The status tells
     * nothing: libgcc's EHABI _Unwind_Backtrace (GCC 12's, at least)
     * returns _URC_FAILURE at every end of the stack, .cantunwind
     * included (GCC bug 49404), so either status is accepted.
     * tests/test_c_switch.py checks the .cantunwind entry itself. */
    (void)i;
    (void)saw_entry;
    CHECK(bt.reason == _URC_END_OF_STACK || bt.reason == _URC_FAILURE);
    CHECK(bt.frames == 2);
    CHECK(bt.frames == 2 && bt.ip[1] == bt.return_address);
#else
#if defined(__riscv)
    if (_Unwind_FindEnclosingFunction((char *)take_backtrace + 1) == NULL) {
        fprintf(stderr, "  no .eh_frame entry for take_backtrace: "
                "build with -fasynchronous-unwind-tables\n");
    }
#endif
    CHECK(bt.reason == _URC_END_OF_STACK);
    CHECK(bt.frames >= 3);      /* take_backtrace, unwind_entry, trampoline */
    CHECK(bt.frames <= 6);
    for (i = 0; i < bt.frames; i++) {
        saw_entry |= bt.func[i] == (void *)unwind_entry;
    }
    CHECK(saw_entry);
    CHECK(bt.frames > 0 &&
          bt.func[bt.frames - 1] == (const void *)gs_entry_trampoline);
#endif
    stack_free(&st);
}

/* ---- an entry that returns ------------------------------------------ */

#if defined(__x86_64__) || defined(__i386__)
#define TRAP_SIGNAL SIGILL      /* ud2 */
#elif defined(__arm__)
#define TRAP_SIGNAL SIGILL      /* udf #0 */
#elif defined(__riscv)
#define TRAP_SIGNAL SIGILL      /* unimp */
#elif defined(__powerpc64__)
#define TRAP_SIGNAL SIGTRAP     /* trap */
#elif defined(__s390x__)
#define TRAP_SIGNAL SIGILL      /* .word 0 */
#else
#define TRAP_SIGNAL SIGTRAP     /* brk #0 */
#endif

static void
returning_entry(void *arg)
{
    (void)arg;
}

/* In a child: start a context whose entry returns. Never returns. */
static void
child_run_returning_entry(void)
{
    struct rlimit no_core = {0, 0};
    struct test_stack st;

    setrlimit(RLIMIT_CORE, &no_core);
    if (stack_alloc(&st, 64 * 1024) != 0) {
        _exit(100);
    }
    gs_swap(&main_sp, gs_init(st.top, returning_entry, st.limit), NULL);
    _exit(101);     /* the trampoline fell through and came back here */
}

static pid_t
fork_flushed(void)
{
    fflush(stdout);
    fflush(stderr);
    return fork();
}

static int
wait_for(pid_t pid)
{
    int status = -1;

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            return -1;
        }
    }
    return status;
}

static void
test_returning_entry_traps(void)
{
    pid_t pid = fork_flushed();
    int status;

    if (pid == 0) {
        child_run_returning_entry();
    }
    CHECK(pid > 0);
    if (pid < 0) {
        perror("fork");
        return;
    }
    status = wait_for(pid);
    CHECK(status != -1 && WIFSIGNALED(status));
    CHECK(status != -1 && WIFSIGNALED(status) &&
          WTERMSIG(status) == TRAP_SIGNAL);
}

static void
on_trap(int sig, siginfo_t *info, void *ucontext)
{
    const ucontext_t *uc = ucontext;
    uintptr_t start = (uintptr_t)gs_entry_trampoline;
#if defined(__x86_64__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__i386__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_EIP];
#elif defined(__arm__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.arm_pc;
#elif defined(__riscv)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.__gregs[REG_PC];
#elif defined(__powerpc64__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gp_regs[32];    /* PT_NIP */
#elif defined(__s390x__)
    /* An operation exception may leave the PSW past the 2-byte trap,
     * which is still inside the trampoline. */
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.psw.addr;
#else
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.pc;
#endif

    (void)sig;
    (void)info;
    _exit(pc >= start && pc < start + 32 ? 0 : 102);
}

static void
test_trap_is_raised_inside_the_trampoline(void)
{
    pid_t pid = fork_flushed();
    int status;

    if (pid == 0) {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_trap;
        sa.sa_flags = SA_SIGINFO;
        sigaction(TRAP_SIGNAL, &sa, NULL);
        child_run_returning_entry();
    }
    CHECK(pid > 0);
    if (pid < 0) {
        perror("fork");
        return;
    }
    status = wait_for(pid);
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- driver --------------------------------------------------------- */

static const struct test posix_tests[] = {
    TEST(test_unwind_backtrace_stops_at_the_trampoline),
    TEST(test_returning_entry_traps),
    TEST(test_trap_is_raised_inside_the_trampoline),
};

int
main(int argc, char **argv)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    setvbuf(stdout, NULL, _IOLBF, 0);
    return run_tests("test_switch", posix_tests,
                     sizeof(posix_tests) / sizeof(posix_tests[0]), argc,
                     argv);
}
