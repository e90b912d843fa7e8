/* Context switch for AArch64, AAPCS64: ELF (Linux) and Mach-O (macOS).
 *
 * Implements src/arch/switch.h: gs_swap(), gs_init() and the
 * gs_entry_trampoline that a fresh context starts in.
 *
 * What is saved. AAPCS64 ("Procedure Call Standard for the Arm 64-bit
 * Architecture", IHI 0055; section numbers as in the current text at
 * github.com/ARM-software/abi-aa), 6.1.1 "General-purpose Registers":
 * x19-x29 and SP are preserved across a call; gs_swap also keeps x30
 * (LR), the address it returns to. 6.1.2 "SIMD and Floating-Point
 * registers": the low 64 bits of v8-v15, i.e. d8-d15, are preserved; the
 * same section describes FPCR (rounding mode, flush-to-zero, exception
 * enables) as global state that only designated functions change. We give
 * every context its own FPCR, as a thread has one, so fesetround() in one
 * greenlet does not leak into the others.
 * Deliberately not saved:
 *   - the caller-saved registers (x0-x18, v0-v7 and v16-v31, the upper 64
 *     bits of v8-v15, SVE z/p registers): the compiler already treats them
 *     as destroyed by a call to gs_swap. x18 is the platform register: a
 *     temporary on Linux, reserved on macOS (below); no instruction here
 *     uses it;
 *   - NZCV (undefined across calls) and FPSR, whose cumulative exception
 *     bits "are not preserved across a public interface" (6.1.2);
 *   - SME state (PSTATE.SM, ZA, TPIDR2_EL0): gs_swap is an ordinary
 *     non-streaming function, and nothing switches with ZA live;
 *   - the signal mask, the TLS base (TPIDR_EL0; TPIDRRO_EL0 on macOS) and
 *     errno: they belong to the thread, which every context on it shares.
 *     Unlike swapcontext(3) this makes no system call;
 *   - return-address signing and GCS: see "Hardening" below.
 *
 * Alignment. SP mod 16 = 0 whenever memory is accessed through it and at
 * every public interface (6.4.5.1, 6.4.5.2). Every frame here is a
 * multiple of 16 bytes, so a suspended sp (the value stored in *from and
 * later passed as `to`) is 16-aligned. gs_init aligns `top` down to 16 and
 * builds the frame right below it, so the trampoline runs, and calls
 * entry, with sp == aligned top.
 *
 * Frame gs_swap leaves on a suspended stack. The saved stack pointer points
 * at offset 0; the frame is 0xb0 bytes, a multiple of 16.
 *   off   size  what
 *   0x00  8     x29 (FP)   0x08 x30 (LR: where gs_swap returns)
 *   0x10  8     x19        0x18 x20
 *   0x20  8     x21        0x28 x22
 *   0x30  8     x23        0x38 x24
 *   0x40  8     x25        0x48 x26
 *   0x50  8     x27        0x58 x28
 *   0x60  8     d8         0x68 d9
 *   0x70  8     d10        0x78 d11
 *   0x80  8     d12        0x88 d13
 *   0x90  8     d14        0x98 d15
 *   0xa0  8     FPCR
 *   0xa8  8     padding
 *
 * A fresh frame from gs_init has the same layout, filled as:
 *   FPCR       copied from the thread calling gs_init: a new context
 *              inherits its creator's rounding mode and flush-to-zero,
 *              as a POSIX thread inherits its creator's FP environment
 *   x19        the entry function
 *   x29        0: a zero previous-frame address ends the frame-record
 *              chain (6.4.6), so frame-pointer walkers stop here
 *   x30        the trampoline_resume label, inside gs_entry_trampoline
 *   all else   0
 *
 * Hardening. With -mbranch-protection=bti or =standard
 * (__ARM_FEATURE_BTI_DEFAULT) both callable entry points start with
 * `bti c`, and the file carries a GNU property note claiming BTI, and only
 * BTI: the linker ANDs the notes of all objects, so the .so keeps BTI if
 * everything else has it too. The trampoline needs no landing pad: it is
 * reached only by gs_swap's `ret`, which BTI does not check, and it calls
 * the entry function with `blr`, whose target is a C function that has its
 * own `bti c` (or paciasp). PAC is not claimed: the return addresses saved
 * here are stored unsigned (C code around us still signs its own). GCS is
 * not claimed either: gs_swap's `ret` returns to an address saved on
 * another stack, which a guarded control stack would refuse until the swap
 * also switches control stacks. As the linked .so then claims no GCS
 * either, the loader knows it cannot run with one, instead of finding out
 * at the first switch.
 *
 * macOS. Apple's arm64 ABI ("Writing ARM64 code for Apple platforms") is
 * AAPCS64 with a few platform choices. Those a switch could trip over:
 *   - x18 is reserved to the platform: "don't use this register". It is
 *     neither saved nor touched, so no context carries a stale x18 into
 *     another;
 *   - x29 must always address a valid frame record: gs_swap makes no call
 *     and leaves x29 alone until it reloads the target's, and a fresh
 *     context starts with x29 = 0, which ends the chain as on Linux;
 *   - the callee-saved set (x19-x28, x29, x30 as the return address,
 *     d8-d15) and FPCR are AAPCS64's, so the frame above and every
 *     instruction are the same as on Linux: tests/test_arch_macho.py
 *     checks that the Mach-O code bytes equal the ELF ones;
 *   - arm64e, Apple's pointer-authentication ABI for system code, is not a
 *     target: there `entry` would arrive as a signed pointer that a plain
 *     `blr` cannot call. Plain arm64, which Python and its wheels use, has
 *     no PAC or BTI in its ABI, so no landing pad or note is emitted unless
 *     asked for (and the ELF-only note never).
 * Object format: asm_macros.h gives the symbols Mach-O's leading
 * underscore and .private_extern, and drops .type, .size and the GNU
 * notes. The assembler turns each function's CFI into a compact unwind
 * entry where that format can express it (gs_init: no frame) and
 * otherwise into an entry that sends the unwinder to the FDE in
 * __eh_frame (gs_swap, whose frame is not the compact format's x29-based
 * one, and the trampoline, whose return address is undefined): macOS
 * unwinders read the same CFI as Linux's.
 */

#include "switch.h"
#include "asm_macros.h"

        .text

/* void *gs_swap(void **from, void *to, void *arg)
 *   x0 = from, x1 = to, x2 = arg; returns in x0. */
GS_FUNCTION_BEGIN(gs_swap)
        .cfi_startproc
#if defined(__ARM_FEATURE_BTI_DEFAULT)
        bti     c
#endif
        stp     x29, x30, [sp, #-0xb0]!
        .cfi_def_cfa_offset 0xb0
        .cfi_rel_offset x29, 0x00
        .cfi_rel_offset x30, 0x08
        stp     x19, x20, [sp, #0x10]
        .cfi_rel_offset x19, 0x10
        .cfi_rel_offset x20, 0x18
        stp     x21, x22, [sp, #0x20]
        .cfi_rel_offset x21, 0x20
        .cfi_rel_offset x22, 0x28
        stp     x23, x24, [sp, #0x30]
        .cfi_rel_offset x23, 0x30
        .cfi_rel_offset x24, 0x38
        stp     x25, x26, [sp, #0x40]
        .cfi_rel_offset x25, 0x40
        .cfi_rel_offset x26, 0x48
        stp     x27, x28, [sp, #0x50]
        .cfi_rel_offset x27, 0x50
        .cfi_rel_offset x28, 0x58
        stp     d8, d9, [sp, #0x60]
        .cfi_rel_offset d8, 0x60
        .cfi_rel_offset d9, 0x68
        stp     d10, d11, [sp, #0x70]
        .cfi_rel_offset d10, 0x70
        .cfi_rel_offset d11, 0x78
        stp     d12, d13, [sp, #0x80]
        .cfi_rel_offset d12, 0x80
        .cfi_rel_offset d13, 0x88
        stp     d14, d15, [sp, #0x90]
        .cfi_rel_offset d14, 0x90
        .cfi_rel_offset d15, 0x98
        mrs     x9, fpcr
        str     x9, [sp, #0xa0]

        mov     x10, sp
        str     x10, [x0]               /* publish our frame */
        mov     sp, x1                  /* adopt theirs: it has the same
                                           layout as ours (both built by
                                           this function, or by gs_init to
                                           match), so the CFI above now
                                           describes the target's frame and
                                           the target's caller */

        /* A write to FPCR is a system-register write, costlier than a
         * compare on many cores, and two contexts almost always share one
         * FPCR value: skip equal writes. x9 still holds the FPCR we are
         * running with. */
        ldr     x10, [sp, #0xa0]
        cmp     x9, x10
        b.eq    1f
        msr     fpcr, x10
1:
        ldp     d14, d15, [sp, #0x90]
        .cfi_restore d14
        .cfi_restore d15
        ldp     d12, d13, [sp, #0x80]
        .cfi_restore d12
        .cfi_restore d13
        ldp     d10, d11, [sp, #0x70]
        .cfi_restore d10
        .cfi_restore d11
        ldp     d8, d9, [sp, #0x60]
        .cfi_restore d8
        .cfi_restore d9
        ldp     x27, x28, [sp, #0x50]
        .cfi_restore x27
        .cfi_restore x28
        ldp     x25, x26, [sp, #0x40]
        .cfi_restore x25
        .cfi_restore x26
        ldp     x23, x24, [sp, #0x30]
        .cfi_restore x23
        .cfi_restore x24
        ldp     x21, x22, [sp, #0x20]
        .cfi_restore x21
        .cfi_restore x22
        ldp     x19, x20, [sp, #0x10]
        .cfi_restore x19
        .cfi_restore x20
        ldp     x29, x30, [sp], #0xb0
        .cfi_def_cfa_offset 0
        .cfi_restore x29
        .cfi_restore x30

        /* To the target's caller, or for a fresh frame into the
         * trampoline, with x0 = arg. */
        mov     x0, x2
        ret
        .cfi_endproc
GS_FUNCTION_END(gs_swap)

/* void *gs_init(uintptr_t top, gs_entry_fn entry, uintptr_t limit)
 *   x0 = top, x1 = entry, x2 = limit (unused);
 *   returns the new context in x0. */
GS_FUNCTION_BEGIN(gs_init)
        .cfi_startproc
#if defined(__ARM_FEATURE_BTI_DEFAULT)
        bti     c
#endif
        and     x0, x0, #~15
        sub     x0, x0, #0xb0
        adr     x9, GS_LOCAL(trampoline_resume)
        stp     xzr, x9, [x0, #0x00]    /* x29 = 0 ends frame-pointer
                                           chains; x30 = the trampoline */
        stp     x1, xzr, [x0, #0x10]    /* x19: the trampoline calls it */
        stp     xzr, xzr, [x0, #0x20]
        stp     xzr, xzr, [x0, #0x30]
        stp     xzr, xzr, [x0, #0x40]
        stp     xzr, xzr, [x0, #0x50]
        stp     xzr, xzr, [x0, #0x60]
        stp     xzr, xzr, [x0, #0x70]
        stp     xzr, xzr, [x0, #0x80]
        stp     xzr, xzr, [x0, #0x90]
        mrs     x9, fpcr
        stp     x9, xzr, [x0, #0xa0]
        ret
        .cfi_endproc
GS_FUNCTION_END(gs_init)

/* Where the first gs_swap into a fresh context returns to: x0 = that
 * swap's arg, x19 = entry, x29 = 0, sp = the aligned top of the stack.
 * There is no caller; the CFI says so, so that gdb, perf and libgcc's
 * unwinder end the backtrace here instead of reading past the stack top. */
GS_FUNCTION_BEGIN(gs_entry_trampoline)
        .cfi_startproc
        .cfi_def_cfa sp, 0              /* CFA = the stack's aligned top */
        .cfi_undefined x30              /* no return address: outermost */
        /* Unwinders look up the FDE of a return address at address - 1,
         * where the call instruction normally is. The fresh frame's return
         * address is trampoline_resume, so this instruction keeps
         * address - 1 inside this FDE (a profiler may sample the second
         * half of the first gs_swap into a context). */
        nop
GS_LOCAL(trampoline_resume):
        blr     x19
        /* entry() must not return: there is nothing to return to. */
        brk     #0
        .cfi_endproc
GS_FUNCTION_END(gs_entry_trampoline)

#if defined(__ELF__) && defined(__ARM_FEATURE_BTI_DEFAULT)
/* NT_GNU_PROPERTY_TYPE_0 note: GNU_PROPERTY_AARCH64_FEATURE_1_AND with only
 * GNU_PROPERTY_AARCH64_FEATURE_1_BTI set (see "Hardening" above). */
        .pushsection .note.gnu.property, "a"
        .p2align 3
        .word   4                       /* n_namesz: "GNU" and its NUL */
        .word   16                      /* n_descsz: the property below */
        .word   5                       /* n_type: NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .word   0xc0000000              /* pr_type: AARCH64_FEATURE_1_AND */
        .word   4                       /* pr_datasz */
        .word   1                       /* BTI; PAC (2) and GCS (4) not
                                           claimed */
        .p2align 3                      /* pad the descriptor to 8 bytes */
        .popsection
#endif

GS_FILE_END
