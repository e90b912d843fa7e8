/* Context switch for RISC-V RV64, LP64D ABI, ELF (Linux).
 *
 * Implements src/arch/switch.h: gs_swap(), gs_init() and the
 * gs_entry_trampoline that a fresh context starts in.
 *
 * What is saved. The RISC-V psABI ("RISC-V ABIs Specification",
 * riscv-non-isa/riscv-elf-psabi-doc), chapter "RISC-V Calling Conventions",
 * section "Register Convention": sp, s0-s11 (x8, x9, x18-x27) and, for a
 * hard-float ABI, fs0-fs11 (f8, f9, f18-f27) are preserved across calls.
 * LP64D's FLEN is 64, so all 64 bits of each fs register are kept. gs_swap
 * also keeps ra, the address it returns to.
 *
 * The rounding mode. Section "Floating-point Register Convention" gives
 * fcsr "thread storage duration in accordance with C11 section 7.6": it is
 * global state, not a callee-saved register. We give every context its own
 * frm (fcsr bits 7:5, the dynamic rounding mode), as a thread has one, so
 * fesetround() in one greenlet does not leak into the others. fflags (fcsr
 * bits 4:0, the accrued exception flags) are deliberately not switched:
 *   - they are status, not control: AArch64's FPSR, whose cumulative bits
 *     switch_aarch64_aapcs.S leaves alone for the same reason, is the
 *     closest analogue;
 *   - inexact is raised by most FP arithmetic, so two contexts' fflags
 *     almost always differ, while their frm almost never does. Switching
 *     frm alone lets gs_swap skip the CSR write when the modes match; a
 *     CSR write may serialise the pipeline on real cores.
 * A program that tests flags with fetestexcept() must therefore not switch
 * greenlets between raising and testing them.
 *
 * Deliberately not saved either:
 *   - the caller-saved registers (t0-t6, a0-a7, ft0-ft11, fa0-fa7) and
 *     the vector registers, vl and vtype (section "Vector Register
 *     Convention": none preserved): the compiler already treats them as
 *     destroyed by a call to gs_swap;
 *   - vxrm and vxsat, the vector fixed-point rounding mode and saturation
 *     flag: thread storage like fcsr, but no C interface sets them, and
 *     reading them would fault on a CPU without the V extension;
 *   - gp (the global pointer, fixed for the whole program: the linker
 *     relaxes accesses relative to it) and tp (the thread pointer): they
 *     belong to the program and the thread, which every context shares;
 *   - the signal mask and errno, also the thread's. Unlike swapcontext(3)
 *     this makes no system call.
 *
 * Alignment. "The stack pointer shall be aligned to a 128-bit boundary
 * upon procedure entry" (section "Procedure Calling Convention"). gs_swap's
 * frame is 0xd0 bytes, a multiple of 16, so a suspended sp (the value
 * stored in *from and later passed as `to`) is 16-aligned. gs_init aligns
 * `top` down to 16 and builds the frame right below it, so the trampoline
 * runs, and calls entry, with sp == aligned top.
 *
 * Frame gs_swap leaves on a suspended stack. The saved stack pointer points
 * at offset 0; the frame is 0xd0 bytes, a multiple of 16.
 *   off   size  what
 *   0x00  8     ra (where gs_swap returns)
 *   0x08  8     s0 (fp)    0x10 s1
 *   0x18  8     s2         0x20 s3    0x28 s4    0x30 s5
 *   0x38  8     s6         0x40 s7    0x48 s8    0x50 s9
 *   0x58  8     s10        0x60 s11
 *   0x68  8     fs0        0x70 fs1
 *   0x78  8     fs2        0x80 fs3   0x88 fs4   0x90 fs5
 *   0x98  8     fs6        0xa0 fs7   0xa8 fs8   0xb0 fs9
 *   0xb8  8     fs10       0xc0 fs11
 *   0xc8  8     frm (in the low 3 bits; the rest is zero)
 *
 * A fresh frame from gs_init has the same layout, filled as:
 *   frm        copied from the thread calling gs_init: a new context
 *              inherits its creator's rounding mode, as a POSIX thread
 *              inherits its creator's FP environment
 *   s1         the entry function
 *   s0         0, so frame-pointer walkers stop at the first frame
 *   ra         .Ltrampoline_resume, inside gs_entry_trampoline
 *   all else   0
 *
 * Hardening. Nothing is claimed: the file emits no GNU property note, so
 * a binary linking it does not claim Zicfilp landing pads or Zicfiss
 * shadow stacks. Supporting them means an `lpad` at gs_swap and gs_init,
 * and switching shadow stacks before gs_swap's `ret`, which would
 * otherwise fail against the other stack's return address, as on x86-64
 * and AArch64.
 */

#include "switch.h"
#include "asm_macros.h"

        .text

/* void *gs_swap(void **from, void *to, void *arg)
 *   a0 = from, a1 = to, a2 = arg; returns in a0. */
GS_FUNCTION_BEGIN(gs_swap)
        .cfi_startproc
        addi    sp, sp, -0xd0
        .cfi_def_cfa_offset 0xd0
        sd      ra, 0x00(sp)
        .cfi_rel_offset ra, 0x00
        sd      s0, 0x08(sp)
        .cfi_rel_offset s0, 0x08
        sd      s1, 0x10(sp)
        .cfi_rel_offset s1, 0x10
        sd      s2, 0x18(sp)
        .cfi_rel_offset s2, 0x18
        sd      s3, 0x20(sp)
        .cfi_rel_offset s3, 0x20
        sd      s4, 0x28(sp)
        .cfi_rel_offset s4, 0x28
        sd      s5, 0x30(sp)
        .cfi_rel_offset s5, 0x30
        sd      s6, 0x38(sp)
        .cfi_rel_offset s6, 0x38
        sd      s7, 0x40(sp)
        .cfi_rel_offset s7, 0x40
        sd      s8, 0x48(sp)
        .cfi_rel_offset s8, 0x48
        sd      s9, 0x50(sp)
        .cfi_rel_offset s9, 0x50
        sd      s10, 0x58(sp)
        .cfi_rel_offset s10, 0x58
        sd      s11, 0x60(sp)
        .cfi_rel_offset s11, 0x60
        fsd     fs0, 0x68(sp)
        .cfi_rel_offset fs0, 0x68
        fsd     fs1, 0x70(sp)
        .cfi_rel_offset fs1, 0x70
        fsd     fs2, 0x78(sp)
        .cfi_rel_offset fs2, 0x78
        fsd     fs3, 0x80(sp)
        .cfi_rel_offset fs3, 0x80
        fsd     fs4, 0x88(sp)
        .cfi_rel_offset fs4, 0x88
        fsd     fs5, 0x90(sp)
        .cfi_rel_offset fs5, 0x90
        fsd     fs6, 0x98(sp)
        .cfi_rel_offset fs6, 0x98
        fsd     fs7, 0xa0(sp)
        .cfi_rel_offset fs7, 0xa0
        fsd     fs8, 0xa8(sp)
        .cfi_rel_offset fs8, 0xa8
        fsd     fs9, 0xb0(sp)
        .cfi_rel_offset fs9, 0xb0
        fsd     fs10, 0xb8(sp)
        .cfi_rel_offset fs10, 0xb8
        fsd     fs11, 0xc0(sp)
        .cfi_rel_offset fs11, 0xc0
        frrm    t0
        sd      t0, 0xc8(sp)

        sd      sp, 0(a0)               /* publish our frame */
        mv      sp, a1                  /* adopt theirs: it has the same
                                           layout as ours (both built by
                                           this function, or by gs_init to
                                           match), so the CFI above now
                                           describes the target's frame and
                                           the target's caller */

        /* Writing frm is a CSR write, and two contexts almost always share
         * one rounding mode: skip equal writes. t0 still holds the mode we
         * are running with. */
        ld      t1, 0xc8(sp)
        beq     t0, t1, 1f
        fsrm    t1
1:
        fld     fs11, 0xc0(sp)
        .cfi_restore fs11
        fld     fs10, 0xb8(sp)
        .cfi_restore fs10
        fld     fs9, 0xb0(sp)
        .cfi_restore fs9
        fld     fs8, 0xa8(sp)
        .cfi_restore fs8
        fld     fs7, 0xa0(sp)
        .cfi_restore fs7
        fld     fs6, 0x98(sp)
        .cfi_restore fs6
        fld     fs5, 0x90(sp)
        .cfi_restore fs5
        fld     fs4, 0x88(sp)
        .cfi_restore fs4
        fld     fs3, 0x80(sp)
        .cfi_restore fs3
        fld     fs2, 0x78(sp)
        .cfi_restore fs2
        fld     fs1, 0x70(sp)
        .cfi_restore fs1
        fld     fs0, 0x68(sp)
        .cfi_restore fs0
        ld      s11, 0x60(sp)
        .cfi_restore s11
        ld      s10, 0x58(sp)
        .cfi_restore s10
        ld      s9, 0x50(sp)
        .cfi_restore s9
        ld      s8, 0x48(sp)
        .cfi_restore s8
        ld      s7, 0x40(sp)
        .cfi_restore s7
        ld      s6, 0x38(sp)
        .cfi_restore s6
        ld      s5, 0x30(sp)
        .cfi_restore s5
        ld      s4, 0x28(sp)
        .cfi_restore s4
        ld      s3, 0x20(sp)
        .cfi_restore s3
        ld      s2, 0x18(sp)
        .cfi_restore s2
        ld      s1, 0x10(sp)
        .cfi_restore s1
        ld      s0, 0x08(sp)
        .cfi_restore s0
        ld      ra, 0x00(sp)
        .cfi_restore ra
        addi    sp, sp, 0xd0
        .cfi_def_cfa_offset 0

        /* To the target's caller, or for a fresh frame into the
         * trampoline, with a0 = arg. */
        mv      a0, a2
        ret
        .cfi_endproc
GS_FUNCTION_END(gs_swap)

/* void *gs_init(uintptr_t top, gs_entry_fn entry, uintptr_t limit)
 *   a0 = top, a1 = entry, a2 = limit (unused);
 *   returns the new context in a0. */
GS_FUNCTION_BEGIN(gs_init)
        .cfi_startproc
        andi    a0, a0, -16
        addi    a0, a0, -0xd0
        lla     t0, GS_LOCAL(trampoline_resume)
        sd      t0, 0x00(a0)            /* ra: the trampoline */
        sd      zero, 0x08(a0)          /* s0: ends frame-pointer chains */
        sd      a1, 0x10(a0)            /* s1: the trampoline calls it */
        sd      zero, 0x18(a0)
        sd      zero, 0x20(a0)
        sd      zero, 0x28(a0)
        sd      zero, 0x30(a0)
        sd      zero, 0x38(a0)
        sd      zero, 0x40(a0)
        sd      zero, 0x48(a0)
        sd      zero, 0x50(a0)
        sd      zero, 0x58(a0)
        sd      zero, 0x60(a0)
        sd      zero, 0x68(a0)          /* fs0-fs11: +0.0 */
        sd      zero, 0x70(a0)
        sd      zero, 0x78(a0)
        sd      zero, 0x80(a0)
        sd      zero, 0x88(a0)
        sd      zero, 0x90(a0)
        sd      zero, 0x98(a0)
        sd      zero, 0xa0(a0)
        sd      zero, 0xa8(a0)
        sd      zero, 0xb0(a0)
        sd      zero, 0xb8(a0)
        sd      zero, 0xc0(a0)
        frrm    t0
        sd      t0, 0xc8(a0)
        ret
        .cfi_endproc
GS_FUNCTION_END(gs_init)

/* Where the first gs_swap into a fresh context returns to: a0 = that
 * swap's arg, s1 = entry, s0 = 0, sp = the aligned top of the stack.
 * There is no caller; the CFI says so, so that gdb, perf and libgcc's
 * unwinder end the backtrace here instead of reading past the stack top. */
GS_FUNCTION_BEGIN(gs_entry_trampoline)
        .cfi_startproc
        .cfi_def_cfa sp, 0              /* CFA = the stack's aligned top */
        .cfi_undefined ra               /* no return address: outermost */
        /* Unwinders look up the FDE of a return address at address - 1,
         * where the call instruction normally is. The fresh frame's return
         * address is .Ltrampoline_resume, so this instruction keeps
         * address - 1 inside this FDE (a profiler may sample the second
         * half of the first gs_swap into a context). */
        nop
GS_LOCAL(trampoline_resume):
        jalr    s1
        /* entry() must not return: there is nothing to return to. */
        unimp
        .cfi_endproc
GS_FUNCTION_END(gs_entry_trampoline)

GS_FILE_END
