/* Context switch for i386 (32-bit x86), System V ABI, ELF (Linux). AT&T
 * syntax.
 *
 * Implements src/arch/switch.h: gs_swap(), gs_init() and the
 * gs_entry_trampoline that a fresh context starts in.
 *
 * What is saved. The Intel386 psABI (System V ABI, Intel386 Architecture
 * Processor Supplement, version 1.1, gitlab.com/x86-psABIs/i386-ABI),
 * section 2.2.1 "Registers", makes ebx, esi, edi and ebp callee-saved
 * (esp too, which is what names a context here), together with the x87
 * control word and the control bits of MXCSR. gs_swap stores exactly
 * those, next to the return address its caller's `call` already pushed.
 * Arguments come on the stack (cdecl); the result goes back in eax.
 * Deliberately not saved:
 *   - the caller-saved registers (eax, ecx, edx, x87 st0-st7 and mm0-mm7,
 *     xmm0-xmm7): the compiler already treats them as destroyed by a call
 *     to gs_swap. The x87 register stack is empty at every call, so
 *     there is nothing on it to carry over;
 *   - eflags: DF is clear at every call and return, the arithmetic flags
 *     are scratch;
 *   - the x87 status word (caller-saved);
 *   - the signal mask, the TLS segment (gs) and errno: they belong to the
 *     thread, which every context on it shares. Unlike swapcontext(3) this
 *     makes no system call;
 *   - the CET shadow stack: see "Hardening" below.
 *
 * MXCSR only with SSE. stmxcsr/ldmxcsr exist only on CPUs with SSE, and
 * the i386 baseline (Debian's i686-linux-gnu, for one) does not assume
 * SSE: there the compiler keeps every float and double on the x87 unit,
 * whose control word this file always switches. So MXCSR is saved only
 * when the file is built with __SSE__ (-msse, -msse2, -march=pentium4 or
 * later), as one 32-bit word whose sticky exception flags, caller-saved
 * in the ABI, travel with the context that raised them, as on x86-64.
 * In a build without __SSE__, MXCSR is shared by all the contexts of a
 * thread: code compiled for SSE elsewhere in the process (a numpy
 * extension built with -msse2 -mfpmath=sse, say) would then see another
 * context's SSE rounding mode. Build with -msse2 where that matters;
 * every x86 CPU since the Pentium 4 has it. A runtime CPUID check would
 * cost a serialising instruction per switch, or a PIC load of a flag.
 *
 * Alignment. esp is 16-aligned at every call instruction (psABI 2.2.2,
 * "the end of the input argument area shall be aligned on a 16 byte
 * boundary"), so at gs_swap's first instruction esp = 12 (mod 16). Four
 * pushes and the 12-byte control slot add 0x1c bytes, so a suspended sp
 * (the value stored in *from and later passed as `to`) is 16-aligned.
 * gs_init aligns `top` down to 16 and builds the same frame right below
 * it, so the trampoline runs with esp == aligned top, and the 16-byte
 * argument block it pushes for entry ends on a 16-byte boundary, as the
 * ABI wants at a call.
 *
 * Frame gs_swap leaves on a suspended stack. The saved stack pointer points
 * at offset 0; the frame is 0x20 bytes, so a suspended sp is 16-aligned.
 *   off   size  what
 *   0x00  4     MXCSR      (with __SSE__; else unused, gs_init writes 0)
 *   0x04  2     x87 CW     (callee-saved, psABI 2.2.1)
 *   0x06  6     padding
 *   0x0c  4     edi        0x10 esi   0x14 ebx   0x18 ebp
 *   0x1c  4     return address pushed by the caller's call
 *
 * A fresh frame from gs_init has the same layout, filled as:
 *   MXCSR, x87 CW  copied from the thread calling gs_init, with MXCSR's
 *                  exception flags cleared: a new context inherits its
 *                  creator's rounding mode, precision control, exception
 *                  masks and FTZ/DAZ, as a POSIX thread inherits its
 *                  creator's FP environment
 *   esi            the entry function
 *   ebp            0, so frame-pointer walkers stop at the first frame
 *   edi, ebx       0
 *   return address .Ltrampoline_resume, inside gs_entry_trampoline
 *
 * Position independence. This file goes into a shared object, and i386
 * has no pc-relative data addressing, so gs_init finds the trampoline's
 * address from its own with a call to the next instruction (a pattern
 * most CPUs keep out of their return predictor) and the distance between
 * two labels, fixed at assembly: no relocation, so no text relocation and
 * no GOT.
 *
 * Hardening. With -fcf-protection=branch or =full (__CET__ bit 0) both
 * callable entry points start with endbr32, and the file carries a GNU
 * property note claiming IBT, and only IBT: the linker ANDs the notes of
 * all objects, so the .so keeps IBT if everything else has it too. The
 * trampoline needs no endbr32: it is reached only by gs_swap's `ret`,
 * which IBT does not check, and it reaches the entry function with an
 * indirect call, whose target is a C function that has its own endbr32.
 * SHSTK is never claimed: gs_swap's `ret` returns to an address pushed on
 * another stack, which the shadow stack would refuse (#CP) until the swap
 * also switches shadow stacks. gs_init's call to the next instruction,
 * which pops its return address instead of returning, would also make
 * gs_init's own `ret` fault.
 */

#include "switch.h"
#include "asm_macros.h"

        .text

/* void *gs_swap(void **from, void *to, void *arg)
 *   4(%esp) = from, 8(%esp) = to, 12(%esp) = arg; returns in eax. */
GS_FUNCTION_BEGIN(gs_swap)
        .cfi_startproc
#if defined(__CET__) && (__CET__ & 1)
        endbr32
#endif
        /* The arguments go to scratch registers before the pushes move
         * them. arg is what the side we resume returns; nothing below
         * touches eax. */
        movl    4(%esp), %ecx
        movl    8(%esp), %edx
        movl    12(%esp), %eax

        /* The four callee-saved integer registers, from the top of the
         * table's frame down: ebp lands at 0x18, edi at 0x0c. */
        pushl   %ebp
        .cfi_adjust_cfa_offset 4
        .cfi_rel_offset %ebp, 0
        pushl   %ebx
        .cfi_adjust_cfa_offset 4
        .cfi_rel_offset %ebx, 0
        pushl   %esi
        .cfi_adjust_cfa_offset 4
        .cfi_rel_offset %esi, 0
        pushl   %edi
        .cfi_adjust_cfa_offset 4
        .cfi_rel_offset %edi, 0

        /* The FP control state. The 12-byte slot after the four pushes
         * also brings sp back to a multiple of 16. */
        subl    $12, %esp
        .cfi_adjust_cfa_offset 12
#if defined(__SSE__)
        stmxcsr (%esp)
#endif
        fnstcw  4(%esp)

        movl    %esp, (%ecx)            /* publish our frame */
        movl    %edx, %esp              /* adopt theirs: it has the same
                                           layout as ours (both built by
                                           this function, or by gs_init to
                                           match), so the CFI above now
                                           describes the target's frame and
                                           the target's caller */

#if defined(__SSE__)
        ldmxcsr (%esp)
#endif
        fldcw   4(%esp)
        addl    $12, %esp
        .cfi_adjust_cfa_offset -12

        popl    %edi
        .cfi_adjust_cfa_offset -4
        .cfi_restore %edi
        popl    %esi
        .cfi_adjust_cfa_offset -4
        .cfi_restore %esi
        popl    %ebx
        .cfi_adjust_cfa_offset -4
        .cfi_restore %ebx
        popl    %ebp
        .cfi_adjust_cfa_offset -4
        .cfi_restore %ebp

        /* To the target's caller, or for a fresh frame into the
         * trampoline, with eax = arg. */
        ret
        .cfi_endproc
GS_FUNCTION_END(gs_swap)

/* void *gs_init(uintptr_t top, gs_entry_fn entry, uintptr_t limit)
 *   4(%esp) = top, 8(%esp) = entry, 12(%esp) = limit
 *   (unused); returns the new context in eax. */
GS_FUNCTION_BEGIN(gs_init)
        .cfi_startproc
#if defined(__CET__) && (__CET__ & 1)
        endbr32
#endif
        movl    4(%esp), %eax
        movl    8(%esp), %edx
        andl    $-16, %eax
        subl    $0x20, %eax

        /* ecx = our own address at .Linit_pc, then the trampoline's: the
         * difference of two labels of this section is fixed when this
         * file is assembled. */
        call    GS_LOCAL(init_pc)
GS_LOCAL(init_pc):
        .cfi_adjust_cfa_offset 4
        popl    %ecx
        .cfi_adjust_cfa_offset -4
        addl    $(GS_LOCAL(trampoline_resume) - GS_LOCAL(init_pc)), %ecx

        /* The creator's control state; the 6 MXCSR exception flags
         * (bits 0-5) are status, not control, and start clear. */
#if defined(__SSE__)
        stmxcsr (%eax)
        andl    $-0x40, (%eax)
#else
        movl    $0, (%eax)
#endif
        fnstcw  4(%eax)
        movw    $0, 6(%eax)
        movl    $0, 0x08(%eax)

        movl    $0, 0x0c(%eax)          /* edi */
        movl    %edx, 0x10(%eax)        /* esi: the trampoline calls it */
        movl    $0, 0x14(%eax)          /* ebx */
        movl    $0, 0x18(%eax)          /* ebp: ends frame-pointer chains */
        movl    %ecx, 0x1c(%eax)
        ret
        .cfi_endproc
GS_FUNCTION_END(gs_init)

/* Where the first gs_swap into a fresh context returns to: eax = that
 * swap's arg, esi = entry, ebp = 0, esp = the aligned top of the stack.
 * There is no caller; the CFI says so, so that gdb, perf and libgcc's
 * unwinder end the backtrace here instead of reading past the stack top. */
GS_FUNCTION_BEGIN(gs_entry_trampoline)
        .cfi_startproc
        .cfi_def_cfa %esp, 0            /* CFA = the stack's aligned top */
        .cfi_undefined %eip             /* no return address: outermost */
        /* Unwinders look up the FDE of a return address at address - 1,
         * where the call instruction normally is. The fresh frame's return
         * address is .Ltrampoline_resume, so this byte keeps address - 1
         * inside this FDE (a profiler may sample the second half of the
         * first gs_swap into a context). */
        nop
GS_LOCAL(trampoline_resume):
        /* entry(arg), with the 16-byte block holding arg (and 12 bytes of
         * padding above it) ending at the 16-aligned top. */
        subl    $12, %esp
        .cfi_adjust_cfa_offset 12
        pushl   %eax
        .cfi_adjust_cfa_offset 4
        call    *%esi
        /* entry() must not return: there is nothing to return to. */
        ud2
        .cfi_endproc
GS_FUNCTION_END(gs_entry_trampoline)

#if defined(__CET__) && (__CET__ & 1)
/* NT_GNU_PROPERTY_TYPE_0 note: GNU_PROPERTY_X86_FEATURE_1_AND with only
 * GNU_PROPERTY_X86_FEATURE_1_IBT set (see "Hardening" above). ELF32 notes
 * are 4-byte aligned, so the descriptor needs no padding. */
        .pushsection .note.gnu.property, "a"
        .p2align 2
        .long   4                       /* n_namesz: "GNU" and its NUL */
        .long   12                      /* n_descsz: the property below */
        .long   5                       /* n_type: NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .long   0xc0000002              /* pr_type: X86_FEATURE_1_AND */
        .long   4                       /* pr_datasz */
        .long   1                       /* IBT; SHSTK (2) not claimed */
        .popsection
#endif

GS_FILE_END
