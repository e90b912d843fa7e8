/* Context switch for x86-64, System V ABI: ELF (Linux) and Mach-O (macOS).
 * AT&T syntax.
 *
 * Implements src/arch/switch.h: gs_swap(), gs_init() and the
 * gs_entry_trampoline that a fresh context starts in.
 *
 * What is saved. The System V AMD64 psABI, section 3.2.1 "Registers"
 * (Figure 3.4, "Register Usage"), makes rbx, rbp and r12-r15 callee-saved,
 * together with the control bits of MXCSR and the x87 control word. gs_swap
 * stores exactly those, next to the return address its caller's `call`
 * already pushed. Deliberately not saved:
 *   - the caller-saved registers (rax, rcx, rdx, rsi, rdi, r8-r11, every
 *     xmm/ymm/zmm and k register, x87 st0-st7): the compiler already treats
 *     them as destroyed by a call to gs_swap;
 *   - rflags: DF is clear at every call and return (3.2.1), the arithmetic
 *     flags are scratch;
 *   - the x87 status word (caller-saved). MXCSR is kept as one 32-bit word,
 *     so its sticky exception flags, which the ABI leaves caller-saved,
 *     travel with the context that raised them, as they would per thread;
 *   - the signal mask, the TLS base (fs) and errno: they belong to the
 *     thread, which every context on it shares. Unlike swapcontext(3) this
 *     makes no system call;
 *   - the CET shadow stack: see "Hardening" below.
 *
 * Alignment. rsp is 16-aligned at every call instruction (psABI 3.2.2), so
 * at gs_swap's first instruction rsp = 8 (mod 16). Six pushes and the 8-byte
 * control slot add 0x38 bytes, so a suspended sp (the value stored in *from
 * and later passed as `to`) is 16-aligned. gs_init aligns `top` down to 16
 * and builds the same frame right below it, so the trampoline runs with
 * rsp == aligned top and its `call` gives the entry function the usual
 * entry alignment (rsp + 8 a multiple of 16).
 *
 * Frame gs_swap leaves on a suspended stack. The saved stack pointer points
 * at offset 0; the frame is 0x40 bytes, so a suspended sp is 16-aligned.
 *   off   size  what
 *   0x00  4     MXCSR      (control bits callee-saved, psABI 3.2.1)
 *   0x04  2     x87 CW     (likewise)
 *   0x06  2     padding
 *   0x08  8     r15        0x10 r14   0x18 r13   0x20 r12
 *   0x28  8     rbx        0x30 rbp
 *   0x38  8     return address pushed by the caller's call
 *
 * A fresh frame from gs_init has the same layout, filled as:
 *   MXCSR, x87 CW  copied from the thread calling gs_init, with MXCSR's
 *                  exception flags cleared: a new context inherits its
 *                  creator's rounding mode, exception masks and FTZ/DAZ,
 *                  as a POSIX thread inherits its creator's FP environment
 *                  (a library built with -ffast-math may have set FTZ/DAZ
 *                  for the whole thread; a greenlet keeps that setting)
 *   r12            the entry function
 *   rbp            0, so frame-pointer walkers stop at the first frame
 *   r13-r15, rbx   0
 *   return address the trampoline_resume label, inside
 *                  gs_entry_trampoline
 *
 * Hardening. With -fcf-protection=branch or =full (__CET__ bit 0) both
 * callable entry points start with endbr64, and the file carries a GNU
 * property note claiming IBT, and only IBT: the linker ANDs the notes of
 * all objects, so the .so keeps IBT if everything else has it too. The
 * trampoline needs no endbr64: it is reached only by gs_swap's `ret`, which
 * IBT does not check, and it reaches the entry function with an indirect
 * call, whose target is a C function that has its own endbr64. SHSTK is
 * never claimed: gs_swap's `ret` returns to an address pushed on another
 * stack, which the shadow stack would refuse (#CP) until the swap also
 * switches shadow stacks. As the linked .so then claims no SHSTK either,
 * the loader knows it cannot run with a shadow stack, instead of finding
 * out at the first switch.
 *
 * macOS. Apple's x86-64 calling convention is the System V psABI's, with
 * the same callee-saved registers, MXCSR and x87 control word and the
 * same alignment, so the code is the same as on Linux. macOS has no CET:
 * endbr64 appears only if a compiler defines __CET__, the ELF-only
 * property note never. Object format: asm_macros.h gives the symbols
 * Mach-O's leading underscore and .private_extern, and drops .type, .size
 * and the GNU notes. The address of trampoline_resume that gs_init
 * stores becomes a relocation against gs_entry_trampoline plus 1 (Mach-O
 * x86-64 refers to a point inside a function through the function's
 * symbol), which the linker resolves to the same address. The assembler
 * emits no compact unwind entry for these functions, so unwinders use
 * their FDEs in __eh_frame, the same CFI as on Linux.
 */

#include "switch.h"
#include "asm_macros.h"

        .text

/* void *gs_swap(void **from, void *to, void *arg)
 *   rdi = from, rsi = to, rdx = arg; returns in rax. */
GS_FUNCTION_BEGIN(gs_swap)
        .cfi_startproc
#if defined(__CET__) && (__CET__ & 1)
        endbr64
#endif
        /* arg is what the side we resume returns; nothing below touches
         * rax. */
        movq    %rdx, %rax

        /* The six callee-saved integer registers, from the top of the
         * table's frame down: rbp lands at 0x30, r15 at 0x08. */
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbp, 0
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbx, 0
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r12, 0
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r13, 0
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r14, 0
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r15, 0

        /* The FP control state. The 8-byte slot after the six pushes also
         * brings sp back to a multiple of 16. */
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr (%rsp)
        fnstcw  4(%rsp)

        movq    %rsp, (%rdi)            /* publish our frame */
        movq    %rsi, %rsp              /* adopt theirs: it has the same
                                           layout as ours (both built by
                                           this function, or by gs_init to
                                           match), so the CFI above now
                                           describes the target's frame and
                                           the target's caller */

        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8

        popq    %r15
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r15
        popq    %r14
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r14
        popq    %r13
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r13
        popq    %r12
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r12
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbx
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbp

        /* To the target's caller, or for a fresh frame into the
         * trampoline, with rax = arg. */
        ret
        .cfi_endproc
GS_FUNCTION_END(gs_swap)

/* void *gs_init(uintptr_t top, gs_entry_fn entry, uintptr_t limit)
 *   rdi = top, rsi = entry, rdx = limit (unused);
 *   returns the new context in rax. */
GS_FUNCTION_BEGIN(gs_init)
        .cfi_startproc
#if defined(__CET__) && (__CET__ & 1)
        endbr64
#endif
        andq    $-16, %rdi
        leaq    -0x40(%rdi), %rax

        /* The creator's control state; the 6 MXCSR exception flags
         * (bits 0-5) are status, not control, and start clear. */
        stmxcsr (%rax)
        andl    $-0x40, (%rax)
        fnstcw  4(%rax)
        movw    $0, 6(%rax)

        xorl    %ecx, %ecx
        movq    %rcx, 0x08(%rax)        /* r15 */
        movq    %rcx, 0x10(%rax)        /* r14 */
        movq    %rcx, 0x18(%rax)        /* r13 */
        movq    %rsi, 0x20(%rax)        /* r12: the trampoline calls it */
        movq    %rcx, 0x28(%rax)        /* rbx */
        movq    %rcx, 0x30(%rax)        /* rbp: ends frame-pointer chains */
        leaq    GS_LOCAL(trampoline_resume)(%rip), %rcx
        movq    %rcx, 0x38(%rax)
        ret
        .cfi_endproc
GS_FUNCTION_END(gs_init)

/* Where the first gs_swap into a fresh context returns to: rax = that
 * swap's arg, r12 = entry, rbp = 0, rsp = the aligned top of the stack.
 * There is no caller; the CFI says so, so that gdb, perf and libgcc's
 * unwinder end the backtrace here instead of reading past the stack top. */
GS_FUNCTION_BEGIN(gs_entry_trampoline)
        .cfi_startproc
        .cfi_def_cfa %rsp, 0            /* CFA = the stack's aligned top */
        .cfi_undefined %rip             /* no return address: outermost */
        /* Unwinders look up the FDE of a return address at address - 1,
         * where the call instruction normally is. The fresh frame's return
         * address is trampoline_resume, so this byte keeps address - 1
         * inside this FDE (a profiler may sample the second half of the
         * first gs_swap into a context). */
        nop
GS_LOCAL(trampoline_resume):
        movq    %rax, %rdi
        call    *%r12
        /* entry() must not return: there is nothing to return to. */
        ud2
        .cfi_endproc
GS_FUNCTION_END(gs_entry_trampoline)

#if defined(__ELF__) && defined(__CET__) && (__CET__ & 1)
/* NT_GNU_PROPERTY_TYPE_0 note: GNU_PROPERTY_X86_FEATURE_1_AND with only
 * GNU_PROPERTY_X86_FEATURE_1_IBT set (see "Hardening" above). */
        .pushsection .note.gnu.property, "a"
        .p2align 3
        .long   4                       /* n_namesz: "GNU" and its NUL */
        .long   16                      /* n_descsz: the property below */
        .long   5                       /* n_type: NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .long   0xc0000002              /* pr_type: X86_FEATURE_1_AND */
        .long   4                       /* pr_datasz */
        .long   1                       /* IBT; SHSTK (2) not claimed */
        .p2align 3                      /* pad the descriptor to 8 bytes */
        .popsection
#endif

GS_FILE_END
