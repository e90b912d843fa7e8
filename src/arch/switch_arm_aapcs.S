/* Context switch for 32-bit Arm (AArch32), AAPCS with VFP, ELF (Linux):
 * the hard-float ABI of Debian's armhf (arm-linux-gnueabihf). Unified
 * syntax; assembles to Arm or Thumb-2 code, whichever the compiler is
 * generating (-marm, -mthumb; Debian armhf defaults to Thumb-2).
 *
 * Implements src/arch/switch.h: gs_swap(), gs_init() and the
 * gs_entry_trampoline that a fresh context starts in.
 *
 * What is saved. AAPCS ("Procedure Call Standard for the Arm
 * Architecture", IHI 0042; section numbers as in the current text at
 * github.com/ARM-software/abi-aa), 6.1.1 "Core registers": r4-r8, r10,
 * r11 and SP are preserved across a call, and r9 too where the platform
 * makes it the callee-saved v6, as Linux does; gs_swap also keeps LR, the
 * address it returns to. 6.1.2.1 "VFP register usage conventions":
 * s16-s31, i.e. d8-d15, are preserved; FPSCR is a global register whose
 * exception-control, rounding-mode and flush-to-zero bits only designated
 * functions change. We give every context its own FPSCR, as a thread has
 * one, so fesetround() in one greenlet does not leak into the others. It
 * is kept as one 32-bit word, so its cumulative exception flags (bits 0-4
 * and 7, "not preserved across a public interface") travel with the
 * context that raised them, as on x86-64; gs_init starts a context with
 * them clear.
 * Deliberately not saved:
 *   - the caller-saved registers (r0-r3, r12, d0-d7, d16-d31): the
 *     compiler already treats them as destroyed by a call to gs_swap;
 *   - CPSR's flags (N, Z, C, V, Q, GE: undefined across calls, 6.1.1) and
 *     FPSCR's condition flags and QC (bits 27-31), which are not preserved
 *     across a call either and are merely carried along in the FPSCR word;
 *   - the signal mask, the TLS register (TPIDRURO) and errno: they belong
 *     to the thread, which every context on it shares. Unlike
 *     swapcontext(3) this makes no system call.
 *
 * This file needs the VFP register file (__ARM_FP); a soft-float build
 * for a CPU without VFP stops with #error rather than assemble code that
 * would fault. The argument-passing variant does not matter here: with
 * -mfloat-abi=softfp the same registers are callee-saved.
 *
 * Alignment. SP mod 4 = 0 at all times, SP mod 8 = 0 at every public
 * interface (6.2.1.1, 6.2.1.2). The frame is 0x68 bytes, a multiple of 8,
 * so a suspended sp (the value stored in *from and later passed as `to`)
 * is 8-aligned. gs_init aligns `top` down to 16, more than the ABI asks,
 * as on the 64-bit ports, and builds the frame right below it, so the
 * trampoline runs, and calls entry, with sp == aligned top.
 *
 * Frame gs_swap leaves on a suspended stack. The saved stack pointer points
 * at offset 0; the frame is 0x68 bytes, a multiple of 8.
 *   off   size  what
 *   0x00  8     d8         0x08 d9    0x10 d10   0x18 d11
 *   0x20  8     d12        0x28 d13   0x30 d14   0x38 d15
 *   0x40  4     FPSCR      (stored from r3, hence its place in the push)
 *   0x44  4     r4         0x48 r5    0x4c r6    0x50 r7
 *   0x54  4     r8         0x58 r9    0x5c r10   0x60 r11
 *   0x64  4     lr         (where gs_swap returns; bit 0 set for Thumb)
 *
 * A fresh frame from gs_init has the same layout, filled as:
 *   FPSCR      copied from the thread calling gs_init, with the flags
 *              (bits 0-4, 7 and 27-31) cleared: a new context inherits its
 *              creator's rounding mode, flush-to-zero, default-NaN and
 *              trap enables, as a POSIX thread inherits its creator's FP
 *              environment
 *   r4         the entry function
 *   lr         .Ltrampoline_resume, with bit 0 set in Thumb state so that
 *              gs_swap's `bx lr` enters it in the state it was built for
 *   all else   0; r7 and r11, the frame pointers of Thumb and Arm code,
 *              hold a zero previous-frame address, which ends the frame
 *              record chain (6.2.1.4)
 *
 * Unwind tables: both kinds, for two audiences.
 *   - EHABI (.fnstart/.save/.vsave/.cantunwind/.fnend, which become
 *     .ARM.exidx entries) is what libgcc's unwinder reads on Arm Linux: C++
 *     exceptions, _Unwind_Backtrace, glibc's backtrace(). It never reads
 *     .eh_frame on this target. The trampoline is .cantunwind, so the
 *     walk ends there: _Unwind_Backtrace reports the entry function as
 *     the last frame, not the trampoline, and returns _URC_FAILURE (GCC
 *     12's libgcc ends every EHABI backtrace so, GCC bug 49404); a C++
 *     exception that escapes an entry function finds no handler and
 *     __cxa_throw calls std::terminate(), instead of the unwinder reading
 *     past the top of the stack.
 *   - DWARF CFI, for gdb (which prefers it to EHABI tables) and other
 *     DWARF-based tools. GCC puts the CFI of Arm code in .debug_frame,
 *     which strip removes; ours goes to .eh_frame (under 200 bytes that
 *     libgcc never reads on this target) because that survives stripping.
 *     With EHABI tables alone, gdb also stops at the trampoline, but says
 *     "previous frame identical to this frame (corrupt stack?)". The
 *     trampoline's CFI marks lr, the return-address column, undefined,
 *     so gdb's backtrace ends there cleanly.
 *
 * Hardening. AArch32 Linux has no BTI, PAC or shadow stack for user code,
 * so there is no landing pad to place and no property note to write.
 */

#include "switch.h"
#include "asm_macros.h"

#if !defined(__ARM_FP)
#error "switch_arm_aapcs.S needs the VFP registers (armhf, or softfp)"
#endif

        .syntax unified
#if defined(__thumb2__)
        .thumb
/* A code address taken with adr lacks the Thumb bit that `bx` needs. */
#define CODE_STATE_BIT 1
#else
        .arm
#define CODE_STATE_BIT 0
#endif
        .cfi_sections .eh_frame         /* see "Unwind tables" above */
        .text

/* void *gs_swap(void **from, void *to, void *arg)
 *   r0 = from, r1 = to, r2 = arg; returns in r0. */
GS_FUNCTION_BEGIN(gs_swap)
        .fnstart
        .cfi_startproc
        /* FPSCR rides in r3, a scratch register, so that one push stores
         * it with the ten words above d8-d15: sp stays 8-aligned
         * throughout and the table's 0x40-0x67 is a single push. */
        vmrs    r3, fpscr
        push    {r3-r11, lr}
        .save   {r3-r11, lr}
        .cfi_adjust_cfa_offset 40
        .cfi_rel_offset r4, 0x04
        .cfi_rel_offset r5, 0x08
        .cfi_rel_offset r6, 0x0c
        .cfi_rel_offset r7, 0x10
        .cfi_rel_offset r8, 0x14
        .cfi_rel_offset r9, 0x18
        .cfi_rel_offset r10, 0x1c
        .cfi_rel_offset r11, 0x20
        .cfi_rel_offset lr, 0x24
        vpush   {d8-d15}
        .vsave  {d8-d15}
        .cfi_adjust_cfa_offset 64
        .cfi_rel_offset d8, 0x00
        .cfi_rel_offset d9, 0x08
        .cfi_rel_offset d10, 0x10
        .cfi_rel_offset d11, 0x18
        .cfi_rel_offset d12, 0x20
        .cfi_rel_offset d13, 0x28
        .cfi_rel_offset d14, 0x30
        .cfi_rel_offset d15, 0x38

        str     sp, [r0]                /* publish our frame */
        mov     sp, r1                  /* adopt theirs: it has the same
                                           layout as ours (both built by
                                           this function, or by gs_init to
                                           match), so the CFI and the
                                           EHABI entry above now describe
                                           the target's frame and the
                                           target's caller */

        vpop    {d8-d15}
        .cfi_adjust_cfa_offset -64
        .cfi_restore d8
        .cfi_restore d9
        .cfi_restore d10
        .cfi_restore d11
        .cfi_restore d12
        .cfi_restore d13
        .cfi_restore d14
        .cfi_restore d15
        mov     r1, r3                  /* the FPSCR we are running with */
        pop     {r3-r11, lr}
        .cfi_adjust_cfa_offset -40
        .cfi_restore r4
        .cfi_restore r5
        .cfi_restore r6
        .cfi_restore r7
        .cfi_restore r8
        .cfi_restore r9
        .cfi_restore r10
        .cfi_restore r11
        .cfi_restore lr

        /* A write to FPSCR waits for the VFP pipeline to drain on many
         * cores, and two contexts almost always share one FPSCR value:
         * skip equal writes. */
        cmp     r1, r3
        it      ne
        vmsrne  fpscr, r3

        /* To the target's caller, or for a fresh frame into the
         * trampoline, with r0 = arg. */
        mov     r0, r2
        bx      lr
        .cfi_endproc
        .fnend
GS_FUNCTION_END(gs_swap)

/* void *gs_init(uintptr_t top, gs_entry_fn entry, uintptr_t limit)
 *   r0 = top, r1 = entry, r2 = limit (unused);
 *   returns the new context in r0. A leaf that
 *   touches no stack: its EHABI entry is the default, return through lr. */
GS_FUNCTION_BEGIN(gs_init)
        .fnstart
        .cfi_startproc
        bic     r0, r0, #15
        sub     r0, r0, #0x68

        movs    r2, #0
        movs    r3, #0
        strd    r2, r3, [r0, #0x00]     /* d8-d15 */
        strd    r2, r3, [r0, #0x08]
        strd    r2, r3, [r0, #0x10]
        strd    r2, r3, [r0, #0x18]
        strd    r2, r3, [r0, #0x20]
        strd    r2, r3, [r0, #0x28]
        strd    r2, r3, [r0, #0x30]
        strd    r2, r3, [r0, #0x38]

        /* The creator's control state; the cumulative exception flags
         * (bits 0-4, 7), QC and the condition flags (bits 27-31) are
         * status, not control, and start clear. */
        vmrs    ip, fpscr
        bic     ip, ip, #0xf8000000
        bic     ip, ip, #0x9f
        str     ip, [r0, #0x40]

        str     r1, [r0, #0x44]         /* r4: the trampoline calls it */
        strd    r2, r3, [r0, #0x48]     /* r5, r6 */
        strd    r2, r3, [r0, #0x50]     /* r7 (Thumb fp), r8 */
        strd    r2, r3, [r0, #0x58]     /* r9, r10 */
        str     r2, [r0, #0x60]         /* r11 (Arm fp) */
        adr     ip, GS_LOCAL(trampoline_resume) + CODE_STATE_BIT
        str     ip, [r0, #0x64]         /* lr */
        bx      lr
        .cfi_endproc
        .fnend
GS_FUNCTION_END(gs_init)

/* Where the first gs_swap into a fresh context returns to: r0 = that
 * swap's arg, r4 = entry, r7 = r11 = 0, sp = the aligned top of the stack.
 * There is no caller: .cantunwind tells libgcc, the CFI tells gdb (see
 * "Unwind tables" above). */
GS_FUNCTION_BEGIN(gs_entry_trampoline)
        .fnstart
        .cantunwind
        .cfi_startproc
        .cfi_def_cfa sp, 0              /* CFA = the stack's aligned top */
        .cfi_undefined lr               /* no return address: outermost */
        /* Unwinders look up the table entry of a return address a little
         * before it (libgcc: address - 2, gdb: address - 1), where the
         * call instruction normally is. The fresh frame's return address
         * is .Ltrampoline_resume, so this instruction keeps that lookup
         * inside this function (a profiler may sample the second half of
         * the first gs_swap into a context). */
        nop
GS_LOCAL(trampoline_resume):
        blx     r4
        /* entry() must not return: there is nothing to return to. */
        udf     #0
        .cfi_endproc
        .fnend
GS_FUNCTION_END(gs_entry_trampoline)

GS_FILE_END
