/* Context switch for 64-bit PowerPC, ELFv2 ABI, little-endian (Linux).
 *
 * Implements src/arch/switch.h: gs_swap(), gs_init() and the
 * gs_entry_trampoline that a fresh context starts in.
 *
 * What is saved. "64-Bit ELF V2 ABI Specification, Power Architecture"
 * (OpenPOWER), chapter 2, "Function Calling Sequence", "Register Roles":
 * r1 (the stack pointer), r14-r31, f14-f31, v20-v31 and the CR fields
 * cr2-cr4 are nonvolatile. gs_swap also keeps LR, the address it returns
 * to, and r2, the TOC pointer (see "TOC" below). VRSAVE (SPR 256) is kept
 * too: the 64-bit PowerPC ELF ABI before v2 made it nonvolatile and ELFv2
 * reserves it for the system; Linux gives it no meaning, so code written
 * to either rule sees the value it left, for two SPR moves.
 *
 * The FP control state. The FPSCR's control fields (exception enables
 * VE OE UE ZE XE, NI and the rounding mode RN) are "limited-access" in the
 * ABI ("Limited-Access Bits", next to "Register Roles"): a function that
 * changes them must restore them, unless changing them is its purpose, as
 * with fesetround(). They belong to the thread, as C11 7.6 has it. We give
 * every context its own copy, as a thread has one, so fesetround() in one
 * greenlet does not leak into the others: gs_swap stores the whole FPSCR
 * image and restores fields 6 and 7 (FPSCR bits 56-63, exactly the control
 * bits above) with mtfsf. Deliberately not switched:
 *   - the status bits (FX, FEX, the sticky exception flags, FR, FI, FPRF):
 *     status, not control; AArch64's FPSR, which switch_aarch64_aapcs.S
 *     leaves alone, is the closest analogue. Inexact and FPRF change with
 *     most FP arithmetic, so switching them would also defeat the
 *     equal-value skip below;
 *   - DRN (FPSCR bits 29-31), the decimal rounding mode: it only affects
 *     decimal floating point, and switching it needs mtfsf's 64-bit form.
 * A write to the FPSCR may serialise the pipeline, and two contexts almost
 * always share one mode, so gs_swap compares the 8 control bits and skips
 * the write when they are equal.
 *
 * Deliberately not saved either:
 *   - the volatile registers (r0, r3-r12, f0-f13, v0-v19, the second
 *     doubleword of vs14-vs31, CTR, XER, cr0, cr1, cr5-cr7): the compiler
 *     already treats them as destroyed by a call to gs_swap;
 *   - VSCR (vector status and control: NJ and the saturation bit), the
 *     DSCR and the PPR: thread state that nothing here changes;
 *   - r13, the thread pointer, the signal mask and errno: they belong to
 *     the thread, which every context on it shares. Unlike swapcontext(3)
 *     this makes no system call;
 *   - transactional memory state: a transaction cannot span a switch.
 *
 * TOC. r2 points at the TOC of the code running. An ELFv2 function has a
 * global entry point, which expects the function's own address in r12 and
 * derives r2 from it, and a local entry point after that, for callers that
 * already share the callee's TOC (chapter 2, "Function Prologue"; the
 * distance between the two is in the symbol's st_other). gs_swap uses no
 * TOC-relative data, so it has one entry point and needs nothing in r12.
 * But it resumes a different caller from the one that called it, and a
 * large binary may have several TOCs (the linker groups them), so it saves
 * its caller's r2 in its frame's TOC save doubleword and reloads the
 * resumed side's. gs_init addresses the trampoline through the TOC, so it
 * has both entry points. The trampoline calls entry, a function pointer,
 * through its global entry point with r12 = entry, as an indirect call
 * must. It never needs its own r2 back: entry does not return.
 *
 * Alignment and frames. r1 is 16-byte aligned at all times and points at
 * a frame whose first doubleword is the back chain (the caller's r1); a
 * function may store its return address at 16(r1) and its CR at 8(r1) of
 * its caller's frame, so every frame is at least 32 bytes: back chain, CR
 * save word, LR save doubleword, TOC save doubleword (chapter 2, "The
 * Stack Frame"). gs_swap follows this: it stores LR and CR in its caller's
 * frame and pushes a 0x210-byte frame of its own with a back chain, so a
 * suspended sp (the value stored in *from and later passed as `to`) is
 * 16-aligned. gs_init aligns `top` down to 16, puts a 32-byte frame for
 * the trampoline right below it (back chain 0: the end of the chain) and
 * gs_swap's frame below that. The trampoline runs with r1 == aligned top -
 * 32, so entry gets a minimal caller frame to store its LR and CR into.
 * The 288-byte protected zone below r1 is not used: everything a suspended
 * context needs is at or above its r1.
 *
 * Frame gs_swap leaves on a suspended stack. The saved stack pointer
 * points at offset 0; the frame is 0x210 bytes, a multiple of 16. The
 * caller's frame follows at 0x210 and holds two words for us.
 *   off   size  what
 *   0x000 8     back chain: the caller's r1 (= our r1 + 0x210)
 *   0x008 16    (CR and LR save slots for our callees: we have none)
 *   0x018 8     r2, in the TOC save doubleword
 *   0x020 8     r14   0x028 r15   ...   0x0a8 r31   (r(14+n) at 0x20+8n)
 *   0x0b0 8     f14   0x0b8 f15   ...   0x138 f31   (f(14+n) at 0xb0+8n)
 *   0x140 16    v20   0x150 v21   ...   0x1f0 v31   (v(20+n) at 0x140+16n)
 *   0x200 4     VRSAVE
 *   0x204 4     padding
 *   0x208 8     FPSCR image (mffs); only bits 56-63 are restored
 *   0x210 8     caller's frame: back chain (not ours)
 *   0x218 4     caller's CR save word: CR, of which cr2-cr4 are restored
 *   0x220 8     caller's LR save doubleword: where gs_swap returns
 *
 * A fresh stack from gs_init, with T = aligned top - 32:
 *   T+0x00     0: the back chain ends here
 *   T+0x08     CR word 0
 *   T+0x10     .Ltrampoline_resume, inside gs_entry_trampoline
 *   T+0x18     0
 * and below T a gs_swap frame as above, filled as:
 *   back chain T
 *   r2         gs_init's TOC pointer (only restored, never used: entry
 *              computes its own)
 *   r14        the entry function
 *   VRSAVE,    copied from the thread calling gs_init: a new context
 *   FPSCR      inherits its creator's rounding mode and exception enables,
 *              as a POSIX thread inherits its creator's FP environment
 *   all else   0
 *
 * Hardening. Nothing to claim: Power has no landing-pad or shadow-stack
 * scheme on Linux. C code built with -mrop-protect (hashst/hashchk, ISA
 * 3.1) still checks its own return addresses; gs_swap stores LR plain.
 */

#if !defined(_CALL_ELF) || _CALL_ELF != 2
#error "switch_ppc64le_elfv2.S is for the ELFv2 ABI only"
#endif

#include "switch.h"
#include "asm_macros.h"

        .abiversion 2
        .text

/* void *gs_swap(void **from, void *to, void *arg)
 *   r3 = from, r4 = to, r5 = arg; returns in r3. One entry point: it
 *   needs no TOC (no .localentry, so st_other says exactly that). */
GS_FUNCTION_BEGIN(gs_swap)
        .cfi_startproc
        /* LR and CR into the save slots of the caller's frame. */
        mflr    %r0
        mfcr    %r12
        std     %r0, 16(%r1)
        stw     %r12, 8(%r1)
        stdu    %r1, -0x210(%r1)
        .cfi_def_cfa_offset 0x210
        .cfi_offset lr, 16
        .cfi_offset cr2, 8
        .cfi_offset cr3, 8
        .cfi_offset cr4, 8

        std     %r2, 0x18(%r1)
        .cfi_rel_offset r2, 0x18
        std     %r14, 0x20(%r1)
        .cfi_rel_offset r14, 0x20
        std     %r15, 0x28(%r1)
        .cfi_rel_offset r15, 0x28
        std     %r16, 0x30(%r1)
        .cfi_rel_offset r16, 0x30
        std     %r17, 0x38(%r1)
        .cfi_rel_offset r17, 0x38
        std     %r18, 0x40(%r1)
        .cfi_rel_offset r18, 0x40
        std     %r19, 0x48(%r1)
        .cfi_rel_offset r19, 0x48
        std     %r20, 0x50(%r1)
        .cfi_rel_offset r20, 0x50
        std     %r21, 0x58(%r1)
        .cfi_rel_offset r21, 0x58
        std     %r22, 0x60(%r1)
        .cfi_rel_offset r22, 0x60
        std     %r23, 0x68(%r1)
        .cfi_rel_offset r23, 0x68
        std     %r24, 0x70(%r1)
        .cfi_rel_offset r24, 0x70
        std     %r25, 0x78(%r1)
        .cfi_rel_offset r25, 0x78
        std     %r26, 0x80(%r1)
        .cfi_rel_offset r26, 0x80
        std     %r27, 0x88(%r1)
        .cfi_rel_offset r27, 0x88
        std     %r28, 0x90(%r1)
        .cfi_rel_offset r28, 0x90
        std     %r29, 0x98(%r1)
        .cfi_rel_offset r29, 0x98
        std     %r30, 0xa0(%r1)
        .cfi_rel_offset r30, 0xa0
        std     %r31, 0xa8(%r1)
        .cfi_rel_offset r31, 0xa8
        stfd    %f14, 0xb0(%r1)
        .cfi_rel_offset f14, 0xb0
        stfd    %f15, 0xb8(%r1)
        .cfi_rel_offset f15, 0xb8
        stfd    %f16, 0xc0(%r1)
        .cfi_rel_offset f16, 0xc0
        stfd    %f17, 0xc8(%r1)
        .cfi_rel_offset f17, 0xc8
        stfd    %f18, 0xd0(%r1)
        .cfi_rel_offset f18, 0xd0
        stfd    %f19, 0xd8(%r1)
        .cfi_rel_offset f19, 0xd8
        stfd    %f20, 0xe0(%r1)
        .cfi_rel_offset f20, 0xe0
        stfd    %f21, 0xe8(%r1)
        .cfi_rel_offset f21, 0xe8
        stfd    %f22, 0xf0(%r1)
        .cfi_rel_offset f22, 0xf0
        stfd    %f23, 0xf8(%r1)
        .cfi_rel_offset f23, 0xf8
        stfd    %f24, 0x100(%r1)
        .cfi_rel_offset f24, 0x100
        stfd    %f25, 0x108(%r1)
        .cfi_rel_offset f25, 0x108
        stfd    %f26, 0x110(%r1)
        .cfi_rel_offset f26, 0x110
        stfd    %f27, 0x118(%r1)
        .cfi_rel_offset f27, 0x118
        stfd    %f28, 0x120(%r1)
        .cfi_rel_offset f28, 0x120
        stfd    %f29, 0x128(%r1)
        .cfi_rel_offset f29, 0x128
        stfd    %f30, 0x130(%r1)
        .cfi_rel_offset f30, 0x130
        stfd    %f31, 0x138(%r1)
        .cfi_rel_offset f31, 0x138

        /* stvx has only a register+register form: r11 walks the vector
         * area in 0x40-byte steps, r6-r8 index within a step. */
        addi    %r11, %r1, 0x140
        li      %r6, 0x10
        li      %r7, 0x20
        li      %r8, 0x30
        stvx    %v20, 0, %r11
        .cfi_rel_offset v20, 0x140
        stvx    %v21, %r11, %r6
        .cfi_rel_offset v21, 0x150
        stvx    %v22, %r11, %r7
        .cfi_rel_offset v22, 0x160
        stvx    %v23, %r11, %r8
        .cfi_rel_offset v23, 0x170
        addi    %r11, %r11, 0x40
        stvx    %v24, 0, %r11
        .cfi_rel_offset v24, 0x180
        stvx    %v25, %r11, %r6
        .cfi_rel_offset v25, 0x190
        stvx    %v26, %r11, %r7
        .cfi_rel_offset v26, 0x1a0
        stvx    %v27, %r11, %r8
        .cfi_rel_offset v27, 0x1b0
        addi    %r11, %r11, 0x40
        stvx    %v28, 0, %r11
        .cfi_rel_offset v28, 0x1c0
        stvx    %v29, %r11, %r6
        .cfi_rel_offset v29, 0x1d0
        stvx    %v30, %r11, %r7
        .cfi_rel_offset v30, 0x1e0
        stvx    %v31, %r11, %r8
        .cfi_rel_offset v31, 0x1f0

        mfvrsave %r0
        stw     %r0, 0x200(%r1)
        /* The FPSCR image goes through a GPR (mfvsrd: f0 is vs0), where
         * r9 keeps it for the comparison after the swap. */
        mffs    %f0
        mfvsrd  %r9, %vs0
        std     %r9, 0x208(%r1)

        std     %r1, 0(%r3)             /* publish our frame */
        mr      %r1, %r4                /* adopt theirs: it has the same
                                           layout as ours (both built by
                                           this function, or by gs_init to
                                           match), so the CFI above now
                                           describes the target's frame and
                                           the target's caller */

        /* Restore FPSCR fields 6 and 7 (FLM 0x03) unless they already hold
         * the target's values. */
        ld      %r10, 0x208(%r1)
        xor     %r0, %r9, %r10
        andi.   %r0, %r0, 0xff
        beq     %cr0, 1f
        mtvsrd  %vs0, %r10
        mtfsf   0x03, %f0
1:
        lwz     %r0, 0x200(%r1)
        mtvrsave %r0

        /* r6-r8 still hold 0x10, 0x20 and 0x30. */
        addi    %r11, %r1, 0x140
        lvx     %v20, 0, %r11
        .cfi_restore v20
        lvx     %v21, %r11, %r6
        .cfi_restore v21
        lvx     %v22, %r11, %r7
        .cfi_restore v22
        lvx     %v23, %r11, %r8
        .cfi_restore v23
        addi    %r11, %r11, 0x40
        lvx     %v24, 0, %r11
        .cfi_restore v24
        lvx     %v25, %r11, %r6
        .cfi_restore v25
        lvx     %v26, %r11, %r7
        .cfi_restore v26
        lvx     %v27, %r11, %r8
        .cfi_restore v27
        addi    %r11, %r11, 0x40
        lvx     %v28, 0, %r11
        .cfi_restore v28
        lvx     %v29, %r11, %r6
        .cfi_restore v29
        lvx     %v30, %r11, %r7
        .cfi_restore v30
        lvx     %v31, %r11, %r8
        .cfi_restore v31

        lfd     %f31, 0x138(%r1)
        .cfi_restore f31
        lfd     %f30, 0x130(%r1)
        .cfi_restore f30
        lfd     %f29, 0x128(%r1)
        .cfi_restore f29
        lfd     %f28, 0x120(%r1)
        .cfi_restore f28
        lfd     %f27, 0x118(%r1)
        .cfi_restore f27
        lfd     %f26, 0x110(%r1)
        .cfi_restore f26
        lfd     %f25, 0x108(%r1)
        .cfi_restore f25
        lfd     %f24, 0x100(%r1)
        .cfi_restore f24
        lfd     %f23, 0xf8(%r1)
        .cfi_restore f23
        lfd     %f22, 0xf0(%r1)
        .cfi_restore f22
        lfd     %f21, 0xe8(%r1)
        .cfi_restore f21
        lfd     %f20, 0xe0(%r1)
        .cfi_restore f20
        lfd     %f19, 0xd8(%r1)
        .cfi_restore f19
        lfd     %f18, 0xd0(%r1)
        .cfi_restore f18
        lfd     %f17, 0xc8(%r1)
        .cfi_restore f17
        lfd     %f16, 0xc0(%r1)
        .cfi_restore f16
        lfd     %f15, 0xb8(%r1)
        .cfi_restore f15
        lfd     %f14, 0xb0(%r1)
        .cfi_restore f14
        ld      %r31, 0xa8(%r1)
        .cfi_restore r31
        ld      %r30, 0xa0(%r1)
        .cfi_restore r30
        ld      %r29, 0x98(%r1)
        .cfi_restore r29
        ld      %r28, 0x90(%r1)
        .cfi_restore r28
        ld      %r27, 0x88(%r1)
        .cfi_restore r27
        ld      %r26, 0x80(%r1)
        .cfi_restore r26
        ld      %r25, 0x78(%r1)
        .cfi_restore r25
        ld      %r24, 0x70(%r1)
        .cfi_restore r24
        ld      %r23, 0x68(%r1)
        .cfi_restore r23
        ld      %r22, 0x60(%r1)
        .cfi_restore r22
        ld      %r21, 0x58(%r1)
        .cfi_restore r21
        ld      %r20, 0x50(%r1)
        .cfi_restore r20
        ld      %r19, 0x48(%r1)
        .cfi_restore r19
        ld      %r18, 0x40(%r1)
        .cfi_restore r18
        ld      %r17, 0x38(%r1)
        .cfi_restore r17
        ld      %r16, 0x30(%r1)
        .cfi_restore r16
        ld      %r15, 0x28(%r1)
        .cfi_restore r15
        ld      %r14, 0x20(%r1)
        .cfi_restore r14
        ld      %r2, 0x18(%r1)
        .cfi_restore r2

        addi    %r1, %r1, 0x210
        .cfi_def_cfa_offset 0
        ld      %r0, 16(%r1)
        lwz     %r12, 8(%r1)
        mtlr    %r0
        .cfi_restore lr
        /* One field per mtocrf: the single-field form is the fast one. */
        mtocrf  0x20, %r12
        .cfi_restore cr2
        mtocrf  0x10, %r12
        .cfi_restore cr3
        mtocrf  0x08, %r12
        .cfi_restore cr4

        /* To the target's caller, or for a fresh frame into the
         * trampoline, with r3 = arg. */
        mr      %r3, %r5
        blr
        .cfi_endproc
GS_FUNCTION_END(gs_swap)

/* void *gs_init(uintptr_t top, gs_entry_fn entry, uintptr_t limit)
 *   r3 = top, r4 = entry, r5 = limit (unused);
 *   returns the new context in r3. */
GS_FUNCTION_BEGIN(gs_init)
        .cfi_startproc
        /* Global entry point: r12 = gs_init, from which r2 = our TOC. */
0:      addis   %r2, %r12, .TOC. - 0b@ha
        addi    %r2, %r2, .TOC. - 0b@l
        .localentry gs_init, . - gs_init

        clrrdi  %r3, %r3, 4             /* align top down to 16 */
        addi    %r9, %r3, -32           /* T: the trampoline's frame */
        addi    %r3, %r3, -(32 + 0x210) /* gs_swap's frame below it */

        li      %r0, 0
        addis   %r10, %r2, GS_LOCAL(trampoline_resume)@toc@ha
        addi    %r10, %r10, GS_LOCAL(trampoline_resume)@toc@l
        std     %r0, 0x00(%r9)          /* back chain: none */
        std     %r0, 0x08(%r9)          /* CR: cr2-cr4 start clear */
        std     %r10, 0x10(%r9)         /* LR: the trampoline */
        std     %r0, 0x18(%r9)

        std     %r9, 0x000(%r3)         /* back chain: T */
        std     %r0, 0x008(%r3)
        std     %r0, 0x010(%r3)
        std     %r2, 0x018(%r3)
        std     %r4, 0x020(%r3)         /* r14: the trampoline calls it */
        /* 0x028-0x1ff: r15-r31, f14-f31 (+0.0), v20-v31: 59 zero
         * doublewords. stdu pre-increments: the first lands at 0x028. */
        addi    %r11, %r3, 0x020
        li      %r12, 59
        mtctr   %r12
2:      stdu    %r0, 8(%r11)
        bdnz    2b

        mfvrsave %r11
        stw     %r11, 0x200(%r3)
        stw     %r0, 0x204(%r3)
        mffs    %f0
        stfd    %f0, 0x208(%r3)
        blr
        .cfi_endproc
GS_FUNCTION_END(gs_init)

/* Where the first gs_swap into a fresh context returns to: r3 = that
 * swap's arg, r14 = entry, r1 = the aligned top of the stack - 32, where
 * gs_init left a minimal frame whose back chain is 0. There is no caller;
 * the CFI says so, so that gdb, perf and libgcc's unwinder end the
 * backtrace here instead of reading past the stack top. */
GS_FUNCTION_BEGIN(gs_entry_trampoline)
        .cfi_startproc
        .cfi_def_cfa r1, 32             /* CFA = the stack's aligned top */
        .cfi_undefined lr               /* no return address: outermost */
        /* Unwinders look up the FDE of a return address at address - 1,
         * where the call instruction normally is. The fresh frame's return
         * address is .Ltrampoline_resume, so this instruction keeps
         * address - 1 inside this FDE (a profiler may sample the second
         * half of the first gs_swap into a context). */
        nop
GS_LOCAL(trampoline_resume):
        /* An indirect call enters at the global entry point, which needs
         * its own address in r12 to find its TOC. */
        mtctr   %r14
        mr      %r12, %r14
        bctrl
        /* entry() must not return: there is nothing to return to (and so
         * no r2 to reload from a TOC save slot). */
        trap
        .cfi_endproc
GS_FUNCTION_END(gs_entry_trampoline)

GS_FILE_END
