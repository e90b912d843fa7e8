/* Context switch for x86-64, Microsoft x64 calling convention: Windows,
 * PE/COFF, as built by mingw-w64's GNU assembler. AT&T syntax.
 *
 * Implements src/arch/switch.h: gs_swap(), gs_init() and the
 * gs_entry_trampoline that a fresh context starts in.
 *
 * What is saved. Microsoft's "x64 ABI conventions" (table "Register
 * volatility and preservation") makes rbx, rbp, rdi, rsi, r12-r15 and
 * xmm6-xmm15 (all 128 bits) nonvolatile; "x64 calling convention" adds
 * MXCSR bits 6-15 and the x87 control word (FPCSR). gs_swap stores exactly
 * those, next to the return address its caller's `call` already pushed.
 * Deliberately not saved:
 *   - the volatile registers (rax, rcx, rdx, r8-r11, xmm0-xmm5, the upper
 *     halves of every ymm/zmm, k registers, x87 st0-st7): the compiler
 *     treats them as destroyed by a call;
 *   - rflags: DF is clear at every call and return, the rest is scratch;
 *   - the x87 status word. MXCSR is kept as one 32-bit word, so its
 *     volatile exception flags travel with the context that raised them;
 *   - the rest of the TEB (last error, TLS slots, the activation context
 *     stack, GuaranteedStackBytes...): it belongs to the thread, which
 *     every context on it shares. No system call is made.
 *
 * What is saved besides registers: five TEB fields, read and written
 * through gs, which on x64 Windows points at the running thread's TEB:
 *   gs:0x08   NT_TIB.StackBase       the running stack's top
 *   gs:0x10   NT_TIB.StackLimit      its lowest committed address
 *   gs:0x1478 TEB.DeallocationStack  its lowest address (the allocation
 *                                    base of a thread stack)
 *   gs:0x20   NT_TIB.FiberData       GetCurrentFiber()'s answer
 *   gs:0x00   NT_TIB.ExceptionList   see below
 * The system reads the first three as the bounds of "the" stack, and a
 * greenlet stack must be that stack while it runs:
 *   - the exception dispatcher (RtlDispatchException, RtlUnwindEx) checks
 *     every frame it walks against [StackLimit, StackBase] and gives up
 *     on the first one outside ("invalid frame", EXCEPTION_STACK_INVALID):
 *     without these fields no SEH handler and no C++ catch inside a
 *     greenlet would ever run;
 *   - MSVC's __chkstk probes only the pages below StackLimit, so with the
 *     thread's StackLimit a large frame on a greenlet stack placed above
 *     the thread's stack is not probed at all and can step over the guard
 *     page, and one placed below is probed from the thread's StackLimit
 *     downwards, through memory that is not ours;
 *   - GetCurrentThreadStackLimits() returns [DeallocationStack,
 *     StackBase): CPython 3.12+ derives its C recursion limit from it;
 *   - the guard-page handler treats a fault inside [DeallocationStack,
 *     StackBase) as stack growth or stack overflow.
 * FiberData is kept per context so that code which converts the thread to
 * a fiber while a greenlet runs, or switches fibers, finds its own value
 * again after greenlet switches. ExceptionList is the x86 chain of
 * exception registrations; Windows x64 unwinds with tables and never
 * reads it, but Wine's own DLLs still register their __TRY frames on it,
 * and Wine's dispatcher calls every registration whose address is below
 * the frame it is walking. A context whose stack lies above the thread's
 * would thus see the thread's outermost handler (the unhandled-exception
 * filter) called before its own frames are searched: under Wine 8 a C++
 * throw inside a greenlet then ends in std::terminate(). Each context
 * keeps its own chain, and a fresh one starts empty (~0, the end mark).
 *
 * Alignment. rsp is 16-aligned at every call, so at gs_swap's first
 * instruction rsp = 8 (mod 16). Eight pushes (0x40) and a 0xd8-byte area
 * make a suspended sp (the value stored in *from and later passed as
 * `to`) 16-aligned, which the movaps of xmm6-xmm15 need. Every call site
 * also owes its callee 32 bytes of shadow space above the return address:
 * gs_swap and gs_init call nothing and use none of theirs; the trampoline
 * reserves it for the entry function.
 *
 * Frame gs_swap leaves on a suspended stack. The saved stack pointer
 * points at offset 0; the frame is 0x120 bytes.
 *   off   size  what
 *   0x00  16    xmm6       0x10 xmm7   0x20 xmm8   0x30 xmm9   0x40 xmm10
 *   0x50  16    xmm11      0x60 xmm12  0x70 xmm13  0x80 xmm14  0x90 xmm15
 *   0xa0  8     StackBase          (gs:0x08)
 *   0xa8  8     StackLimit         (gs:0x10)
 *   0xb0  8     DeallocationStack  (gs:0x1478)
 *   0xb8  8     FiberData          (gs:0x20)
 *   0xc0  8     ExceptionList      (gs:0x00)
 *   0xc8  4     MXCSR      (bits 6-15 nonvolatile)
 *   0xcc  2     x87 CW     (nonvolatile)
 *   0xce  10    padding, for the alignment above
 *   0xd8  8     r15        0xe0 r14    0xe8 r13    0xf0 r12
 *   0xf8  8     rsi        0x100 rdi   0x108 rbx   0x110 rbp
 *   0x118 8     return address pushed by the caller's call
 *
 * A fresh stack from gs_init, with T = top aligned down to 16, holds that
 * frame at T - 0x150, filled as:
 *   xmm6-xmm15     0
 *   StackBase      T
 *   StackLimit,    `limit`: the whole of [limit, T) is the stack and must
 *   DeallocationStack  be committed (see switch.h)
 *   FiberData      the value of the thread calling gs_init
 *   ExceptionList  ~0: no registration
 *   MXCSR, x87 CW  copied from the thread calling gs_init, with MXCSR's
 *                  exception flags cleared, as on the System V ABI
 *   r12            the entry function
 *   rbp            0, so frame-pointer walkers stop at the first frame
 *   rbx, rsi, rdi, r13-r15  0
 *   return address trampoline_resume, inside gs_entry_trampoline
 * and above it the trampoline's own frame:
 *   T-0x30  0x20  the entry function's shadow space
 *   T-0x10  8     padding, keeping the call 16-aligned
 *   T-0x08  8     0: the trampoline's return address
 *
 * Unwinding. Windows unwinds with the .pdata/.xdata tables that the .seh_
 * directives below produce; nothing here has DWARF CFI, as nothing GCC
 * emits for this target has. gs_swap's prologue is described push by push,
 * so an exception or a profiler sample anywhere in it unwinds correctly;
 * its body runs partly on the target's stack, whose frame has the same
 * layout. The trampoline's table says "0x28 bytes allocated, then the
 * return address", which gs_init set to 0: RtlVirtualUnwind then yields
 * rip = 0 and rsp = T = StackBase: a null return address ends a walk on
 * Windows, as at a thread's first frame, and Wine's dispatcher stops when
 * rsp reaches StackBase. An exception that no handler on the greenlet's
 * stack takes is therefore unhandled: the walk does not reach the
 * thread's own base frames and their unhandled-exception filter
 * (vectored handlers, which are called before any walk, still run).
 *
 * Stack overflow. As on a thread's stack, the system turns the first
 * touch of a PAGE_GUARD page inside [DeallocationStack, StackBase) into
 * STATUS_STACK_OVERFLOW and lets the handlers run on the pages left below
 * the faulting frame. A fault with no room to dispatch it (rsp already in
 * a no-access page) cannot be reported: the process just ends (under
 * Wine 8 it dies of SIGSEGV, and Windows-side its exit status reads 0).
 * Hence switch.h asks for the PAGE_GUARD pages at the bottom of [limit,
 * top); tests/c/test_switch_win64.c uses three above a no-access page.
 *
 * Symbols. PE has no visibility: a plain .globl is exported from a DLL
 * only if the DLL exports nothing explicitly, in which case GNU ld
 * exports every global ("auto-export"). The .drectve section at the end
 * tells ld (binutils 2.40 or newer) to exclude our three symbols from
 * that, the PE spelling of .hidden. Leading underscores: none on x64.
 *
 * Not supported: hardware-enforced stack protection (CET shadow stacks,
 * for images linked /CETCOMPAT): gs_swap's `ret` returns to an address
 * pushed on another stack, which the shadow stack refuses.
 */

#include "switch.h"

        .text

/* void *gs_swap(void **from, void *to, void *arg)
 *   rcx = from, rdx = to, r8 = arg; returns in rax. */
        .globl  gs_swap
        .def    gs_swap; .scl 2; .type 32; .endef
        .p2align 4
        .seh_proc gs_swap
gs_swap:
        /* arg is what the side we resume returns; nothing below touches
         * rax. */
        movq    %r8, %rax

        /* The eight nonvolatile integer registers, from the top of the
         * table's frame down: rbp lands at 0x110, r15 at 0xd8. */
        pushq   %rbp
        .seh_pushreg %rbp
        pushq   %rbx
        .seh_pushreg %rbx
        pushq   %rdi
        .seh_pushreg %rdi
        pushq   %rsi
        .seh_pushreg %rsi
        pushq   %r12
        .seh_pushreg %r12
        pushq   %r13
        .seh_pushreg %r13
        pushq   %r14
        .seh_pushreg %r14
        pushq   %r15
        .seh_pushreg %r15
        subq    $0xd8, %rsp
        .seh_stackalloc 0xd8
        movaps  %xmm6, 0x00(%rsp)
        .seh_savexmm %xmm6, 0x00
        movaps  %xmm7, 0x10(%rsp)
        .seh_savexmm %xmm7, 0x10
        movaps  %xmm8, 0x20(%rsp)
        .seh_savexmm %xmm8, 0x20
        movaps  %xmm9, 0x30(%rsp)
        .seh_savexmm %xmm9, 0x30
        movaps  %xmm10, 0x40(%rsp)
        .seh_savexmm %xmm10, 0x40
        movaps  %xmm11, 0x50(%rsp)
        .seh_savexmm %xmm11, 0x50
        movaps  %xmm12, 0x60(%rsp)
        .seh_savexmm %xmm12, 0x60
        movaps  %xmm13, 0x70(%rsp)
        .seh_savexmm %xmm13, 0x70
        movaps  %xmm14, 0x80(%rsp)
        .seh_savexmm %xmm14, 0x80
        movaps  %xmm15, 0x90(%rsp)
        .seh_savexmm %xmm15, 0x90
        .seh_endprologue

        /* The rest is not register state, so unwinders need not know. */
        movq    %gs:0x08, %r10
        movq    %r10, 0xa0(%rsp)
        movq    %gs:0x10, %r10
        movq    %r10, 0xa8(%rsp)
        movq    %gs:0x1478, %r10
        movq    %r10, 0xb0(%rsp)
        movq    %gs:0x20, %r10
        movq    %r10, 0xb8(%rsp)
        movq    %gs:0x00, %r10
        movq    %r10, 0xc0(%rsp)
        stmxcsr 0xc8(%rsp)
        fnstcw  0xcc(%rsp)

        movq    %rsp, (%rcx)            /* publish our frame */
        movq    %rdx, %rsp              /* adopt theirs: it has the same
                                           layout as ours (both built by
                                           this function, or by gs_init to
                                           match), so the unwind codes
                                           above now describe the target's
                                           frame and the target's caller */

        /* The stack bounds first, so that the TEB agrees with rsp again
         * as early as possible. */
        movq    0xa0(%rsp), %r10
        movq    %r10, %gs:0x08
        movq    0xa8(%rsp), %r10
        movq    %r10, %gs:0x10
        movq    0xb0(%rsp), %r10
        movq    %r10, %gs:0x1478
        movq    0xb8(%rsp), %r10
        movq    %r10, %gs:0x20
        movq    0xc0(%rsp), %r10
        movq    %r10, %gs:0x00
        ldmxcsr 0xc8(%rsp)
        fldcw   0xcc(%rsp)
        movaps  0x00(%rsp), %xmm6
        movaps  0x10(%rsp), %xmm7
        movaps  0x20(%rsp), %xmm8
        movaps  0x30(%rsp), %xmm9
        movaps  0x40(%rsp), %xmm10
        movaps  0x50(%rsp), %xmm11
        movaps  0x60(%rsp), %xmm12
        movaps  0x70(%rsp), %xmm13
        movaps  0x80(%rsp), %xmm14
        movaps  0x90(%rsp), %xmm15

        /* The epilogue in the only form the Windows unwinder recognises
         * (add rsp, then pops, then ret), so that a sample taken inside it
         * still unwinds. */
        addq    $0xd8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rsi
        popq    %rdi
        popq    %rbx
        popq    %rbp
        /* To the target's caller, or for a fresh frame into the
         * trampoline, with rax = arg. */
        ret
        .seh_endproc

/* void *gs_init(uintptr_t top, gs_entry_fn entry, uintptr_t limit)
 *   rcx = top, rdx = entry, r8 = limit; returns the new context in rax.
 *   A leaf that touches no nonvolatile register: its table entry has an
 *   empty prologue. */
        .globl  gs_init
        .def    gs_init; .scl 2; .type 32; .endef
        .p2align 4
        .seh_proc gs_init
gs_init:
        .seh_endprologue
        andq    $-16, %rcx
        leaq    -0x150(%rcx), %rax

        xorps   %xmm0, %xmm0
        movaps  %xmm0, 0x00(%rax)       /* xmm6-xmm15 */
        movaps  %xmm0, 0x10(%rax)
        movaps  %xmm0, 0x20(%rax)
        movaps  %xmm0, 0x30(%rax)
        movaps  %xmm0, 0x40(%rax)
        movaps  %xmm0, 0x50(%rax)
        movaps  %xmm0, 0x60(%rax)
        movaps  %xmm0, 0x70(%rax)
        movaps  %xmm0, 0x80(%rax)
        movaps  %xmm0, 0x90(%rax)

        movq    %rcx, 0xa0(%rax)        /* StackBase: the aligned top */
        movq    %r8, 0xa8(%rax)         /* StackLimit */
        movq    %r8, 0xb0(%rax)         /* DeallocationStack */
        movq    %gs:0x20, %r10
        movq    %r10, 0xb8(%rax)        /* FiberData: the creator's */
        movq    $-1, 0xc0(%rax)         /* ExceptionList: empty */

        /* The creator's control state; the 6 MXCSR exception flags
         * (bits 0-5) are status, not control, and start clear. */
        stmxcsr 0xc8(%rax)
        andl    $-0x40, 0xc8(%rax)
        fnstcw  0xcc(%rax)

        xorl    %r9d, %r9d
        movw    %r9w, 0xce(%rax)        /* padding */
        movq    %r9, 0xd0(%rax)
        movq    %r9, 0xd8(%rax)         /* r15 */
        movq    %r9, 0xe0(%rax)         /* r14 */
        movq    %r9, 0xe8(%rax)         /* r13 */
        movq    %rdx, 0xf0(%rax)        /* r12: the trampoline calls it */
        movq    %r9, 0xf8(%rax)         /* rsi */
        movq    %r9, 0x100(%rax)        /* rdi */
        movq    %r9, 0x108(%rax)        /* rbx */
        movq    %r9, 0x110(%rax)        /* rbp: ends frame-pointer chains */
        leaq    .Ltrampoline_resume(%rip), %r10
        movq    %r10, 0x118(%rax)

        /* The trampoline's frame: 0x28 bytes, then a null return
         * address, which ends every unwind (see "Unwinding"). */
        movq    %r9, 0x120(%rax)
        movq    %r9, 0x128(%rax)
        movq    %r9, 0x130(%rax)
        movq    %r9, 0x138(%rax)
        movq    %r9, 0x140(%rax)
        movq    %r9, 0x148(%rax)
        ret
        .seh_endproc

/* Where the first gs_swap into a fresh context returns to: rax = that
 * swap's arg, r12 = entry, rbp = 0, rsp = T - 0x30 (16-aligned). The
 * subq is never executed: it is there so that the table describes the
 * frame gs_init built, as if this function had been called and had run
 * its prologue. The unwinder applies a prologue's codes only to an rip
 * past them; trampoline_resume is, and so is every return address
 * in this function. */
        .globl  gs_entry_trampoline
        .def    gs_entry_trampoline; .scl 2; .type 32; .endef
        .p2align 4
        .seh_proc gs_entry_trampoline
gs_entry_trampoline:
        subq    $0x28, %rsp
        .seh_stackalloc 0x28
        .seh_endprologue
.Ltrampoline_resume:
        movq    %rax, %rcx
        call    *%r12
        /* entry() must not return: there is nothing to return to. The
         * ud2 also keeps the call's return address inside this function's
         * table entry. */
        ud2
        .seh_endproc

/* Linker directives (see "Symbols" above): keep our symbols out of a
 * DLL's automatic exports. */
        .section .drectve, "yn"
        .ascii  " -exclude-symbols:gs_swap,gs_init,gs_entry_trampoline"
