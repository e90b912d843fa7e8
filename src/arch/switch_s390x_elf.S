/* Context switch for IBM Z (s390x), 64-bit ELF ABI (Linux).
 *
 * Implements src/arch/switch.h: gs_swap(), gs_init() and the
 * gs_entry_trampoline that a fresh context starts in.
 *
 * What is saved. "ELF Application Binary Interface, s390x Supplement"
 * (IBM), section 1.2.1 "Registers": r6-r13, r15 (the stack pointer) and
 * f8-f15 are preserved across calls. gs_swap also keeps r14, the address
 * it returns to. Each is 64 bits; f8-f15 are the leftmost halves of
 * v8-v15, the only vector-register bits the ABI preserves, and d8-d15 is
 * all that std/ld move.
 *
 * The FP control state. The FPC register holds the IEEE exception masks
 * (byte 0), the IEEE exception flags (byte 1), the data-exception code
 * DXC (byte 2), the DFP rounding mode (bits 25-27) and the BFP rounding
 * mode (bits 29-31). We treat it as IBM's linkage conventions do (z/OS
 * MVS, "Linkage convention for the floating point control register"):
 * non-volatile except for the flags and the DXC, which are status; glibc
 * keeps it per thread. We give every context its own masks and rounding
 * modes, as a thread has its own FPC, so fesetround() or feenableexcept()
 * in one greenlet does not leak into the others; the flags and the DXC
 * stay with the thread:
 *   - they are status, not control: AArch64's FPSR, which
 *     switch_aarch64_aapcs.S leaves alone, is the closest analogue;
 *   - inexact is raised by most FP arithmetic, so two contexts' flags
 *     almost always differ, while their control bits almost never do.
 * gs_swap stores the whole FPC, then writes the target's control bits
 * (mask GS_FPC_CONTROL below) into the current FPC, and skips the write
 * when they already match: SFPC may serialise the pipeline.
 *
 * Deliberately not saved either:
 *   - the volatile registers (r0-r5, f0-f7, v16-v31 and the rightmost
 *     halves of v8-v15, the condition code): the compiler already treats
 *     them as destroyed by a call to gs_swap;
 *   - the access registers a0/a1 (the thread pointer), the signal mask and
 *     errno: they belong to the thread, which every context on it shares.
 *     Unlike swapcontext(3) this makes no system call;
 *   - the transactional-execution state: a transaction cannot span a
 *     switch.
 *
 * Alignment and frames. The stack pointer r15 is 8-byte aligned, and a
 * caller gives its callee a 160-byte register save area at 0(r15)
 * (section 1.2, "Function-Calling Sequence", standard frame layout): the
 * back chain at 0, r2-r15 at 16-127 (r6 at 48, r14 at 112, r15 at 120),
 * f0/f2/f4/f6 at 128-159. The callee saves its r6-r15 into its caller's
 * area, and so does gs_swap; it then pushes 0x48 bytes of its own for
 * f8-f15 and the FPC. It calls nothing, so it needs no save area of its
 * own, and it stores no back chain (Linux user code is built without
 * -mbackchain). Frames are multiples of 8, so a suspended sp (the value
 * stored in *from and later passed as `to`) is 8-aligned. gs_init aligns
 * `top` down to 8, lays out a 160-byte save area for the trampoline right
 * below it (back chain 0) and gs_swap's frame below that; the trampoline
 * runs, and calls entry, with r15 == aligned top - 160, the save area
 * entry's prologue stores into. The ABI has no red zone below r15, and
 * nothing here needs one: everything a suspended context needs is at or
 * above its r15. The CFA is r15 + 160 at a function's entry, as GCC's CFI
 * has it for s390x.
 *
 * Frame gs_swap leaves on a suspended stack. The saved stack pointer points
 * at offset 0; gs_swap's own part is 0x48 bytes, and the caller's register
 * save area follows it at 0x48.
 *   off   size  what
 *   0x00  8     f8         0x08 f9    0x10 f10   0x18 f11
 *   0x20  8     f12        0x28 f13   0x30 f14   0x38 f15
 *   0x40  4     FPC (only the GS_FPC_CONTROL bits are restored)
 *   0x44  4     padding
 *   0x48  160   the caller's register save area, of which gs_swap uses
 *   0x78  8     r6         0x80 r7    0x88 r8    0x90 r9
 *   0x98  8     r10        0xa0 r11   0xa8 r12   0xb0 r13
 *   0xb8  8     r14 (where gs_swap returns)
 *   0xc0  8     r15 (the caller's sp: our sp + 0x48)
 *
 * A fresh stack from gs_init, with C = aligned top - 160, has the same
 * layout with C at offset 0x48, filled as:
 *   FPC        the control bits of the thread calling gs_init: a new
 *              context inherits its creator's rounding modes and
 *              exception masks, as a POSIX thread inherits its creator's
 *              FP environment; flags and DXC zero
 *   r6         the entry function
 *   r14        .Ltrampoline_resume, inside gs_entry_trampoline
 *   r15        C, so gs_swap's closing lmg leaves r15 == C
 *   all else   0, the back chain at C+0 included: it ends the chain
 *
 * Hardening. Nothing to claim: IBM Z has no landing-pad or shadow-stack
 * scheme on Linux.
 */

#include "switch.h"
#include "asm_macros.h"

/* The FPC bits that belong to a context: the IEEE exception masks
 * (bits 0-5), the DFP rounding mode (25-27) and the BFP rounding mode
 * (29-31). Bit 0 is the most significant. */
#define GS_FPC_CONTROL 0xfc000077

        .text

/* void *gs_swap(void **from, void *to, void *arg)
 *   r2 = from, r3 = to, r4 = arg; returns in r2. At entry the CFA is
 *   r15 + 160, the top of the caller's register save area. */
GS_FUNCTION_BEGIN(gs_swap)
        .cfi_startproc
        stmg    %r6, %r15, 48(%r15)     /* into the caller's save area */
        .cfi_offset %r6, 48 - 160
        .cfi_offset %r7, 56 - 160
        .cfi_offset %r8, 64 - 160
        .cfi_offset %r9, 72 - 160
        .cfi_offset %r10, 80 - 160
        .cfi_offset %r11, 88 - 160
        .cfi_offset %r12, 96 - 160
        .cfi_offset %r13, 104 - 160
        .cfi_offset %r14, 112 - 160
        .cfi_offset %r15, 120 - 160
        aghi    %r15, -0x48
        .cfi_adjust_cfa_offset 0x48
        std     %f8, 0x00(%r15)
        .cfi_rel_offset %f8, 0x00
        std     %f9, 0x08(%r15)
        .cfi_rel_offset %f9, 0x08
        std     %f10, 0x10(%r15)
        .cfi_rel_offset %f10, 0x10
        std     %f11, 0x18(%r15)
        .cfi_rel_offset %f11, 0x18
        std     %f12, 0x20(%r15)
        .cfi_rel_offset %f12, 0x20
        std     %f13, 0x28(%r15)
        .cfi_rel_offset %f13, 0x28
        std     %f14, 0x30(%r15)
        .cfi_rel_offset %f14, 0x30
        std     %f15, 0x38(%r15)
        .cfi_rel_offset %f15, 0x38
        efpc    %r0
        st      %r0, 0x40(%r15)

        stg     %r15, 0(%r2)            /* publish our frame */
        lgr     %r15, %r3               /* adopt theirs: it has the same
                                           layout as ours (both built by
                                           this function, or by gs_init to
                                           match), so the CFI above now
                                           describes the target's frame and
                                           the target's caller */

        /* r0 still holds the FPC we run with. r1 = the control bits in
         * which the target's FPC differs from it; flip those, if any. */
        l       %r1, 0x40(%r15)
        xr      %r1, %r0
        nilf    %r1, GS_FPC_CONTROL
        jz      1f
        xr      %r0, %r1
        sfpc    %r0
1:
        ld      %f15, 0x38(%r15)
        .cfi_restore %f15
        ld      %f14, 0x30(%r15)
        .cfi_restore %f14
        ld      %f13, 0x28(%r15)
        .cfi_restore %f13
        ld      %f12, 0x20(%r15)
        .cfi_restore %f12
        ld      %f11, 0x18(%r15)
        .cfi_restore %f11
        ld      %f10, 0x10(%r15)
        .cfi_restore %f10
        ld      %f9, 0x08(%r15)
        .cfi_restore %f9
        ld      %f8, 0x00(%r15)
        .cfi_restore %f8
        /* r15 is the base and the last register loaded: it becomes the
         * saved caller's sp, our sp + 0x48, which pops our frame. */
        lmg     %r6, %r15, 0x48 + 48(%r15)
        .cfi_def_cfa_offset 160
        .cfi_restore %r6
        .cfi_restore %r7
        .cfi_restore %r8
        .cfi_restore %r9
        .cfi_restore %r10
        .cfi_restore %r11
        .cfi_restore %r12
        .cfi_restore %r13
        .cfi_restore %r14
        .cfi_restore %r15

        /* To the target's caller, or for a fresh frame into the
         * trampoline, with r2 = arg. */
        lgr     %r2, %r4
        br      %r14
        .cfi_endproc
GS_FUNCTION_END(gs_swap)

/* void *gs_init(uintptr_t top, gs_entry_fn entry, uintptr_t limit)
 *   r2 = top, r3 = entry, r4 = limit (unused);
 *   returns the new context in r2. */
GS_FUNCTION_BEGIN(gs_init)
        .cfi_startproc
        nill    %r2, 0xfff8             /* align top down to 8 */
        aghi    %r2, -(160 + 0x48)      /* the new context */
        xc      0(160 + 0x48, %r2), 0(%r2)      /* all zero */
        larl    %r1, GS_LOCAL(trampoline_resume)
        la      %r0, 0x48(%r2)          /* C: the trampoline's save area */
        stg     %r3, 0x48 + 48(%r2)     /* r6: the trampoline calls it */
        stg     %r1, 0x48 + 112(%r2)    /* r14: the trampoline */
        stg     %r0, 0x48 + 120(%r2)    /* r15: C */
        efpc    %r0
        nilf    %r0, GS_FPC_CONTROL
        st      %r0, 0x40(%r2)
        br      %r14
        .cfi_endproc
GS_FUNCTION_END(gs_init)

/* Where the first gs_swap into a fresh context returns to: r2 = that
 * swap's arg, r6 = entry, r15 = the aligned top of the stack - 160, a
 * zeroed register save area for entry. There is no caller; the CFI says
 * so, so that gdb, perf and libgcc's unwinder end the backtrace here
 * instead of reading past the stack top. */
GS_FUNCTION_BEGIN(gs_entry_trampoline)
        .cfi_startproc
        .cfi_def_cfa %r15, 160          /* CFA = the stack's aligned top */
        .cfi_undefined %r14             /* no return address: outermost */
        /* Unwinders look up the FDE of a return address at address - 1,
         * where the call instruction normally is. The fresh frame's return
         * address is .Ltrampoline_resume, so this instruction keeps
         * address - 1 inside this FDE (a profiler may sample the second
         * half of the first gs_swap into a context). */
        nopr
GS_LOCAL(trampoline_resume):
        basr    %r14, %r6
        /* entry() must not return: there is nothing to return to. Opcode
         * 0x00 is no instruction (and not 0x0001, the breakpoint the
         * kernel turns into SIGTRAP): SIGILL. */
        .word   0
        .cfi_endproc
GS_FUNCTION_END(gs_entry_trampoline)

GS_FILE_END
