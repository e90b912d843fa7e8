/* Tests of the Windows x64 context switch (src/arch/switch_x86_64_ms.S),
 * with no Python: the portable tests and their harness
 * (switch_tests_portable.h), the platform layer they need, and what only
 * Windows has (the TEB's stack fields, unwinding by .pdata, vectored and
 * C++ exceptions, fatal cases in child processes). Built with mingw-w64
 * and run on Windows or under Wine:
 *   x86_64-w64-mingw32-gcc -O2 -Wall -Wextra -Isrc/arch \
 *       tests/c/test_switch_win64.c src/arch/switch_x86_64_ms.S \
 *       -o test_switch_win64.exe && wine test_switch_win64.exe
 * Compiled with -DGS_TEST_CXX and linked by g++ with
 * tests/c/test_switch_win64_eh.cpp, it also runs the C++ exception cases.
 * tests/test_c_switch_win64.py drives both builds.
 *
 * Arguments, if given, run only the tests whose names contain one of them.
 * `child NAME` runs one of the cases below that must kill their process;
 * the tests that need one start the test binary itself that way with
 * CreateProcess and check how it ended.
 *
 * Stacks come from VirtualAlloc() with a PAGE_NOACCESS guard page below
 * `limit` (and, for the overflow case, PAGE_GUARD pages above it).
 */
#include <windows.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "switch.h"

#if !defined(_WIN64) || !defined(__x86_64__)
#error "test_switch_win64.c is for x86-64 Windows"
#endif

/* gs_entry_trampoline is not in switch.h: nothing but the .S file and the
 * tests need its address. */
extern const char gs_entry_trampoline[];

#if defined(GS_TEST_CXX)
/* tests/c/test_switch_win64_eh.cpp */
int gs_test_cxx_catch(int depth, int *destructors);
void gs_test_cxx_throw(void);
#endif

/* The nonvolatile registers test_probe_swap() loads and reads back
 * (struct probe, in switch_tests_portable.h); an xmm register takes two
 * slots, its low half first. */
#define PROBE_NREGS 28
static const char *const probe_names[PROBE_NREGS] = {
    "rbx", "rbp", "rdi", "rsi", "r12", "r13", "r14", "r15",
    "xmm6[0]", "xmm6[1]", "xmm7[0]", "xmm7[1]", "xmm8[0]", "xmm8[1]",
    "xmm9[0]", "xmm9[1]", "xmm10[0]", "xmm10[1]", "xmm11[0]", "xmm11[1]",
    "xmm12[0]", "xmm12[1]", "xmm13[0]", "xmm13[1]", "xmm14[0]",
    "xmm14[1]", "xmm15[0]", "xmm15[1]",
};

#include "switch_tests_portable.h"

/* ---- the platform layer --------------------------------------------- */

static int
stack_guard(uintptr_t page)
{
    DWORD old;

    if (!VirtualProtect((void *)page, page_size, PAGE_NOACCESS, &old)) {
        fprintf(stderr, "VirtualProtect: error %lu\n", GetLastError());
        return -1;
    }
    return 0;
}

/* stack_alloc() with, optionally, `below` more read-write bytes under the
 * guard page, and `soft_guard` pages at the bottom of the usable range
 * made PAGE_GUARD, as at the end of a thread's stack. */
static int
stack_alloc_ex(struct test_stack *st, size_t size, size_t below,
               size_t soft_guard)
{
    size_t total = below + page_size + size;
    char *base = VirtualAlloc(NULL, total, MEM_RESERVE | MEM_COMMIT,
                              PAGE_READWRITE);
    DWORD old;

    if (base == NULL) {
        fprintf(stderr, "VirtualAlloc: error %lu\n", GetLastError());
        return -1;
    }
    if (stack_guard((uintptr_t)base + below) != 0) {
        VirtualFree(base, 0, MEM_RELEASE);
        return -1;
    }
    if (soft_guard > 0 &&
        !VirtualProtect(base + below + page_size, soft_guard * page_size,
                        PAGE_READWRITE | PAGE_GUARD, &old)) {
        fprintf(stderr, "VirtualProtect: error %lu\n", GetLastError());
        VirtualFree(base, 0, MEM_RELEASE);
        return -1;
    }
    st->base = base;
    st->size = total;
    st->top = (uintptr_t)base + total;
    st->limit = (uintptr_t)base + below + page_size;
    return 0;
}

static int
stack_alloc(struct test_stack *st, size_t size)
{
    return stack_alloc_ex(st, size, 0, 0);
}

static void
stack_free(struct test_stack *st)
{
    if (!VirtualFree(st->base, 0, MEM_RELEASE)) {
        fprintf(stderr, "VirtualFree: error %lu\n", GetLastError());
    }
}

static double
now_ns(void)
{
    LARGE_INTEGER freq, now;

    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (double)now.QuadPart * 1e9 / (double)freq.QuadPart;
}

/* ---- test_probe_swap ------------------------------------------------ */

/* The return address of test_probe_swap's call to gs_swap, where the
 * unwinding tests expect a walk out of a suspended gs_swap to land. */
extern const char test_probe_swap_resume[];

/* p in rcx. in[] at 16: rbx rbp rdi rsi r12-r15, then xmm6-xmm15 at 80,
 * low half first; out[] at 240, same order (xmm6 at 304). Frame below
 * the eight pushes: 0xc8 bytes, 16-aligned: shadow space for gs_swap at
 * 0, the caller's xmm6-xmm15 at 0x20, p at 0xc0. */
__asm__(
    "        .text\n"
    "        .globl  test_probe_swap\n"
    "        .globl  test_probe_swap_resume\n"
    "        .p2align 4\n"
    "test_probe_swap:\n"
    "        pushq   %rbp\n"
    "        pushq   %rbx\n"
    "        pushq   %rdi\n"
    "        pushq   %rsi\n"
    "        pushq   %r12\n"
    "        pushq   %r13\n"
    "        pushq   %r14\n"
    "        pushq   %r15\n"
    "        subq    $0xc8, %rsp\n"
    "        .irp    i, 6,7,8,9,10,11,12,13,14,15\n"
    "        movaps  %xmm\\i, 0x20+16*(\\i-6)(%rsp)\n"
    "        movdqu  80+16*(\\i-6)(%rcx), %xmm\\i\n"
    "        .endr\n"
    "        movq    %rcx, 0xc0(%rsp)\n"
    "        movq    16(%rcx), %rbx\n"
    "        movq    24(%rcx), %rbp\n"
    "        movq    32(%rcx), %rdi\n"
    "        movq    40(%rcx), %rsi\n"
    "        movq    48(%rcx), %r12\n"
    "        movq    56(%rcx), %r13\n"
    "        movq    64(%rcx), %r14\n"
    "        movq    72(%rcx), %r15\n"
    "        movq    8(%rcx), %rdx\n"
    "        movq    (%rcx), %rcx\n"
    "        xorl    %r8d, %r8d\n"
    "        call    gs_swap\n"
    "test_probe_swap_resume:\n"
    "        movq    0xc0(%rsp), %rax\n"
    "        movq    %rbx, 240(%rax)\n"
    "        movq    %rbp, 248(%rax)\n"
    "        movq    %rdi, 256(%rax)\n"
    "        movq    %rsi, 264(%rax)\n"
    "        movq    %r12, 272(%rax)\n"
    "        movq    %r13, 280(%rax)\n"
    "        movq    %r14, 288(%rax)\n"
    "        movq    %r15, 296(%rax)\n"
    "        .irp    i, 6,7,8,9,10,11,12,13,14,15\n"
    "        movdqu  %xmm\\i, 304+16*(\\i-6)(%rax)\n"
    "        movaps  0x20+16*(\\i-6)(%rsp), %xmm\\i\n"
    "        .endr\n"
    "        addq    $0xc8, %rsp\n"
    "        popq    %r15\n"
    "        popq    %r14\n"
    "        popq    %r13\n"
    "        popq    %r12\n"
    "        popq    %rsi\n"
    "        popq    %rdi\n"
    "        popq    %rbx\n"
    "        popq    %rbp\n"
    "        ret\n");

/* ---- entry alignment ------------------------------------------------ */

_Static_assert(offsetof(struct align_report, frame) == 0,
               "align_entry stores rsp there");

/* Stores rsp, as the trampoline's call left it, in r->frame (r in rcx),
 * then becomes align_entry_body. */
__asm__(
    "        .text\n"
    "        .globl  align_entry\n"
    "        .p2align 4\n"
    "align_entry:\n"
    "        movq    %rsp, (%rcx)\n"
    "        jmp     align_entry_body\n");

/* At a function's first instruction rsp + 8 is 16-aligned, and the
 * caller's 32-byte shadow space lies above the return address, inside the
 * stack. */
static void
check_entry_frame(const struct align_report *r, uintptr_t top)
{
    CHECK((r->frame + 8) % 16 == 0);
    CHECK(r->frame + 8 + 32 <= (top & ~(uintptr_t)15));
    CHECK(r->local < r->frame);
}

/* ---- large frames --------------------------------------------------- */

#define BIG_FRAME (256 * 1024)

/* A frame of more than a page: GCC calls ___chkstk_ms in the prologue to
 * touch each page in turn, top down, so that the first page beyond the
 * stack to be touched is the guard. */
static __attribute__((noinline)) uint64_t
big_frame(uintptr_t *lowest)
{
    volatile unsigned char buf[BIG_FRAME];
    uint64_t sum = 0;
    size_t i;

    for (i = 0; i < sizeof(buf); i += 64) {
        buf[i] = (unsigned char)i;
    }
    for (i = 0; i < sizeof(buf); i += 64) {
        sum += buf[i];
    }
    *lowest = (uintptr_t)buf;
    return sum;
}

static void *big_sp;

struct big_report {
    uintptr_t lowest;
    uint64_t sum;
};

static void
big_entry(void *arg)
{
    struct big_report *r = arg;

    r->sum = big_frame(&r->lowest);
    for (;;) {
        gs_swap(&big_sp, main_sp, NULL);
    }
}

static void
test_large_frame_runs_on_a_guarded_stack(void)
{
    struct test_stack st;
    struct big_report r = {0, 0};
    uint64_t expect = 0;
    size_t i;

    if (stack_alloc(&st, 1024 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    for (i = 0; i < BIG_FRAME; i += 64) {
        expect += (unsigned char)i;
    }
    big_sp = gs_init(st.top, big_entry, st.limit);
    gs_swap(&main_sp, big_sp, &r);
    CHECK(r.sum == expect);
    CHECK(r.lowest >= st.limit);
    CHECK(r.lowest < st.top - BIG_FRAME);
    stack_free(&st);
}

/* ---- the TEB -------------------------------------------------------- */

/* TEB offsets: NT_TIB.Self, which gives the NT_TIB fields through
 * <winnt.h>'s struct, and DeallocationStack, which no public header has. */
#define TEB_SELF 0x30
#define TEB_DEALLOCATION_STACK 0x1478

/* A TEB word. Not NtCurrentTeb() or __readgsqword(): GCC 12's
 * -Warray-bounds misreads mingw-w64's inline versions of them. */
static inline uintptr_t
teb_word(uintptr_t offset)
{
    uintptr_t value;

    __asm__ volatile("movq %%gs:(%1), %0" : "=r"(value) : "r"(offset));
    return value;
}

static inline NT_TIB *
current_tib(void)
{
    return (NT_TIB *)teb_word(TEB_SELF);
}

struct bounds {
    uintptr_t base, limit, deallocation;    /* from the TEB */
    ULONG_PTR api_low, api_high;            /* GetCurrentThreadStackLimits */
    void *fiber_data;
    void *exception_list;
};

static void
read_bounds(struct bounds *b)
{
    NT_TIB *tib = current_tib();

    b->base = (uintptr_t)tib->StackBase;
    b->limit = (uintptr_t)tib->StackLimit;
    b->deallocation = teb_word(TEB_DEALLOCATION_STACK);
    b->fiber_data = tib->FiberData;
    b->exception_list = tib->ExceptionList;
    GetCurrentThreadStackLimits(&b->api_low, &b->api_high);
}

static int
same_bounds(const struct bounds *a, const struct bounds *b)
{
    return a->base == b->base && a->limit == b->limit &&
           a->deallocation == b->deallocation &&
           a->api_low == b->api_low && a->api_high == b->api_high &&
           a->fiber_data == b->fiber_data &&
           a->exception_list == b->exception_list;
}

struct bounds_report {
    struct bounds seen[2];      /* at entry, and after a round trip */
    uintptr_t local;
};

static void *bounds_sp;

static void
bounds_entry(void *arg)
{
    struct bounds_report *r = arg;
    volatile int local = 0;

    read_bounds(&r->seen[0]);
    r->local = (uintptr_t)&local;
    gs_swap(&bounds_sp, main_sp, NULL);
    read_bounds(&r->seen[1]);
    for (;;) {
        gs_swap(&bounds_sp, main_sp, NULL);
    }
}

static void
check_context_bounds(const struct bounds *b, const struct test_stack *st)
{
    CHECK(b->base == st->top);
    CHECK(b->limit == st->limit);
    CHECK(b->deallocation == st->limit);
    CHECK(b->api_low == st->limit);
    CHECK(b->api_high == st->top);
}

static void
test_teb_stack_bounds_follow_the_running_context(void)
{
    struct test_stack st;
    struct bounds_report r;
    struct bounds thread, back;

    if (stack_alloc(&st, 256 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    memset(&r, 0, sizeof(r));
    read_bounds(&thread);
    CHECK(thread.base > (uintptr_t)&r && thread.limit <= (uintptr_t)&r);
    bounds_sp = gs_init(st.top, bounds_entry, st.limit);
    gs_swap(&main_sp, bounds_sp, &r);
    check_context_bounds(&r.seen[0], &st);
    /* A fresh context has no exception registrations of its own (see
     * "ExceptionList" in the .S file). */
    CHECK(r.seen[0].exception_list == (void *)UINTPTR_MAX);
    CHECK(r.local >= st.limit && r.local < st.top);
    read_bounds(&back);
    CHECK(same_bounds(&back, &thread));
    gs_swap(&main_sp, bounds_sp, NULL);
    check_context_bounds(&r.seen[1], &st);
    read_bounds(&back);
    CHECK(same_bounds(&back, &thread));
    stack_free(&st);
}

static void *fiber_sp;
static void *fiber_seen[3];

/* Reports the FiberData it starts with, sets its own, and reports it
 * again after each resumption. */
static void
fiber_entry(void *arg)
{
    NT_TIB *tib = current_tib();
    int i = 0;

    (void)arg;
    fiber_seen[i++] = tib->FiberData;
    tib->FiberData = (void *)(uintptr_t)0xf1be5;
    for (;;) {
        gs_swap(&fiber_sp, main_sp, NULL);
        if (i < 3) {
            fiber_seen[i++] = tib->FiberData;
        }
    }
}

static void
test_fiber_data_is_per_context(void)
{
    NT_TIB *tib = current_tib();
    void *mine = tib->FiberData;
    struct test_stack st;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    fiber_sp = gs_init(st.top, fiber_entry, st.limit);
    gs_swap(&main_sp, fiber_sp, NULL);
    CHECK(fiber_seen[0] == mine);       /* inherited from gs_init's caller */
    CHECK(tib->FiberData == mine);
    gs_swap(&main_sp, fiber_sp, NULL);
    CHECK(tib->FiberData == mine);
    gs_swap(&main_sp, fiber_sp, NULL);
    CHECK(fiber_seen[1] == (void *)(uintptr_t)0xf1be5);
    CHECK(fiber_seen[2] == (void *)(uintptr_t)0xf1be5);
    CHECK(tib->FiberData == mine);
    stack_free(&st);
}

/* ---- unwinding ------------------------------------------------------ */

#define WALK_MAX 32

struct walk {
    int frames;
    uintptr_t func[WALK_MAX];   /* start of each frame's function */
    DWORD64 final_rip, final_rsp;
};

/* Walks `ctx` up with the .pdata tables, as the exception dispatcher and
 * debuggers do, until a null return address. */
static void
walk_from(CONTEXT *ctx, struct walk *w)
{
    w->frames = 0;
    while (ctx->Rip != 0 && w->frames < WALK_MAX) {
        DWORD64 image_base = 0, frame = 0;
        void *handler_data = NULL;
        PRUNTIME_FUNCTION fn = RtlLookupFunctionEntry(ctx->Rip, &image_base,
                                                      NULL);

        if (fn == NULL) {
            /* A leaf without a table entry: its rsp holds the return
             * address. None of ours; record it as an unknown frame. */
            w->func[w->frames++] = 0;
            ctx->Rip = *(DWORD64 *)ctx->Rsp;
            ctx->Rsp += 8;
            continue;
        }
        w->func[w->frames++] = (uintptr_t)(image_base + fn->BeginAddress);
        RtlVirtualUnwind(UNW_FLAG_NHANDLER, image_base, ctx->Rip, fn, ctx,
                         &handler_data, &frame, NULL);
    }
    w->final_rip = ctx->Rip;
    w->final_rsp = ctx->Rsp;
}

static __attribute__((noinline)) void
walk_here(struct walk *w)
{
    CONTEXT ctx;

    RtlCaptureContext(&ctx);
    walk_from(&ctx, w);
}

static int
walk_has(const struct walk *w, const void *func)
{
    int i;

    for (i = 0; i < w->frames; i++) {
        if (w->func[i] == (uintptr_t)func) {
            return 1;
        }
    }
    return 0;
}

static void *unwind_sp;

static void
unwind_entry(void *arg)
{
    walk_here(arg);
    for (;;) {
        gs_swap(&unwind_sp, main_sp, NULL);
    }
}

static void
test_walk_from_an_entry_ends_at_the_trampoline(void)
{
    struct test_stack st;
    struct walk w;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    memset(&w, 0, sizeof(w));
    unwind_sp = gs_init(st.top, unwind_entry, st.limit);
    gs_swap(&main_sp, unwind_sp, &w);
    CHECK(w.frames >= 3);       /* walk_here, unwind_entry, trampoline */
    CHECK(w.frames <= 6);
    CHECK(w.frames > 0 && w.func[0] == (uintptr_t)walk_here);
    CHECK(walk_has(&w, unwind_entry));
    CHECK(w.frames > 0 &&
          w.func[w.frames - 1] == (uintptr_t)gs_entry_trampoline);
    /* Where Windows (rip 0) and Wine (rsp == StackBase) end a walk. */
    CHECK(w.final_rip == 0);
    CHECK(w.final_rsp == st.top);
    stack_free(&st);
}

/* A context suspended inside gs_swap, seen from outside as a debugger
 * sees it: rsp is its saved stack pointer and rip any point of gs_swap's
 * body (the first instruction after the prologue here). */
static void
context_of_suspended(void *sp, CONTEXT *ctx)
{
    DWORD64 image_base = 0;
    PRUNTIME_FUNCTION fn = RtlLookupFunctionEntry((DWORD64)gs_swap,
                                                  &image_base, NULL);
    const unsigned char *unwind_info;

    memset(ctx, 0, sizeof(*ctx));
    ctx->Rsp = (DWORD64)sp;
    if (fn == NULL) {
        return;
    }
    /* UNWIND_INFO: version and flags, then the prologue's size. */
    unwind_info = (const unsigned char *)(image_base + fn->UnwindData);
    ctx->Rip = image_base + fn->BeginAddress + unwind_info[1];
}

static void
test_walk_of_a_suspended_context_ends_at_the_trampoline(void)
{
    struct test_stack st;
    struct walk w;
    CONTEXT ctx;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    memset(&w, 0, sizeof(w));
    echo_sp = gs_init(st.top, echo_entry, st.limit);
    gs_swap(&main_sp, echo_sp, NULL);   /* now suspended in echo_entry */
    context_of_suspended(echo_sp, &ctx);
    CHECK(ctx.Rip != 0);
    walk_from(&ctx, &w);
    CHECK(w.frames == 3);       /* gs_swap, echo_entry, trampoline */
    CHECK(w.frames == 3 && w.func[0] == (uintptr_t)gs_swap);
    CHECK(w.frames == 3 && w.func[1] == (uintptr_t)echo_entry);
    CHECK(w.frames == 3 && w.func[2] == (uintptr_t)gs_entry_trampoline);
    CHECK(w.final_rip == 0);
    CHECK(w.final_rsp == st.top);
    stack_free(&st);
}

/* The unwind codes of gs_swap against its frame: one RtlVirtualUnwind
 * from a suspended gs_swap must give back the registers its caller
 * held. */
static void
test_unwinding_gs_swap_recovers_the_callers_registers(void)
{
    struct test_stack st;
    DWORD64 image_base = 0, frame = 0;
    void *handler_data = NULL;
    PRUNTIME_FUNCTION fn;
    CONTEXT ctx;
    const M128A *xmm[10] = {
        &ctx.Xmm6, &ctx.Xmm7, &ctx.Xmm8, &ctx.Xmm9, &ctx.Xmm10,
        &ctx.Xmm11, &ctx.Xmm12, &ctx.Xmm13, &ctx.Xmm14, &ctx.Xmm15,
    };
    uint64_t got[PROBE_NREGS];
    int i, mismatches = 0;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    regs_sp = gs_init(st.top, regs_entry, st.limit);
    gs_swap(&main_sp, regs_sp, NULL);   /* suspended in test_probe_swap */
    context_of_suspended(regs_sp, &ctx);
    fn = RtlLookupFunctionEntry(ctx.Rip, &image_base, NULL);
    CHECK(fn != NULL);
    if (fn == NULL) {
        stack_free(&st);
        return;
    }
    RtlVirtualUnwind(UNW_FLAG_NHANDLER, image_base, ctx.Rip, fn, &ctx,
                     &handler_data, &frame, NULL);
    CHECK(ctx.Rip == (DWORD64)test_probe_swap_resume);
    CHECK(ctx.Rsp == (DWORD64)regs_sp + 0x120);
    got[0] = ctx.Rbx;
    got[1] = ctx.Rbp;
    got[2] = ctx.Rdi;
    got[3] = ctx.Rsi;
    got[4] = ctx.R12;
    got[5] = ctx.R13;
    got[6] = ctx.R14;
    got[7] = ctx.R15;
    for (i = 0; i < 10; i++) {
        got[8 + 2 * i] = xmm[i]->Low;
        got[9 + 2 * i] = (uint64_t)xmm[i]->High;
    }
    for (i = 0; i < PROBE_NREGS; i++) {
        if (got[i] != regs_other.in[i]) {
            fprintf(stderr, "  unwound %s: %#llx, expected %#llx\n",
                    probe_names[i], (unsigned long long)got[i],
                    (unsigned long long)regs_other.in[i]);
            mismatches++;
        }
    }
    CHECK(mismatches == 0);
    stack_free(&st);
}

/* ---- exceptions ----------------------------------------------------- */

#define TEST_EXCEPTION 0xE0474D01u  /* customer bit set, our own code */

static volatile LONG veh_calls;
static volatile uintptr_t veh_local;
static struct bounds veh_bounds;

static LONG CALLBACK
continue_test_exception(EXCEPTION_POINTERS *info)
{
    volatile int local = 0;

    if (info->ExceptionRecord->ExceptionCode != TEST_EXCEPTION) {
        return EXCEPTION_CONTINUE_SEARCH;
    }
    veh_calls++;
    veh_local = (uintptr_t)&local;
    read_bounds(&veh_bounds);
    return EXCEPTION_CONTINUE_EXECUTION;
}

static void *veh_sp;

static void
veh_entry(void *arg)
{
    int *after = arg;

    RaiseException(TEST_EXCEPTION, 0, 0, NULL);
    *after = 1;
    for (;;) {
        gs_swap(&veh_sp, main_sp, NULL);
    }
}

static void
test_vectored_handler_runs_on_the_context_stack(void)
{
    struct test_stack st;
    void *handler;
    int after = 0;

    if (stack_alloc(&st, 256 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    handler = AddVectoredExceptionHandler(1, continue_test_exception);
    CHECK(handler != NULL);
    veh_calls = 0;
    veh_sp = gs_init(st.top, veh_entry, st.limit);
    gs_swap(&main_sp, veh_sp, &after);
    CHECK(veh_calls == 1);
    CHECK(after == 1);
    CHECK(veh_local >= st.limit && veh_local < st.top);
    check_context_bounds(&veh_bounds, &st);
    if (handler != NULL) {
        RemoveVectoredExceptionHandler(handler);
    }
    stack_free(&st);
}

#if defined(GS_TEST_CXX)
struct cxx_report {
    int caught;
    int destructors;
};

static void *cxx_sp;

static void
cxx_entry(void *arg)
{
    struct cxx_report *r = arg;

    for (;;) {
        r->caught = gs_test_cxx_catch(100, &r->destructors);
        r = gs_swap(&cxx_sp, main_sp, NULL);
    }
}

/* The dispatcher checks every frame it walks against the TEB's stack
 * bounds: with the thread's bounds, it would refuse the context's frames
 * and the throw would end the process. */
static void
test_cxx_exception_is_caught_inside_a_context(void)
{
    struct test_stack st;
    struct cxx_report r = {0, 0};
    int destructors = 0;

    if (stack_alloc(&st, 1024 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    cxx_sp = gs_init(st.top, cxx_entry, st.limit);
    gs_swap(&main_sp, cxx_sp, &r);
    CHECK(r.caught == 1);
    CHECK(r.destructors == 101);
    /* On the thread's stack too, between two visits to the context. */
    CHECK(gs_test_cxx_catch(10, &destructors) == 1);
    CHECK(destructors == 11);
    memset(&r, 0, sizeof(r));
    gs_swap(&main_sp, cxx_sp, &r);
    CHECK(r.caught == 1);
    CHECK(r.destructors == 101);
    stack_free(&st);
}
#endif

/* ---- cases that end their process ----------------------------------- */

/* Exit status of a child case that came back when it should not have. */
#define CHILD_SURVIVED 101

static void
returning_entry(void *arg)
{
    (void)arg;
}

static void
overflow_entry(void *arg)
{
    uintptr_t lowest = UINTPTR_MAX;

    (void)arg;
    recurse(1000000, &lowest);  /* 1 GiB: far beyond the stack */
}

static void
big_frame_entry(void *arg)
{
    uintptr_t lowest;

    (void)arg;
    big_frame(&lowest);
}

static void
raise_entry(void *arg)
{
    (void)arg;
    RaiseException(TEST_EXCEPTION, EXCEPTION_NONCONTINUABLE, 0, NULL);
}

#if defined(GS_TEST_CXX)
static void
cxx_throw_entry(void *arg)
{
    (void)arg;
    gs_test_cxx_throw();
}
#endif

static LONG CALLBACK
exit_if_in_trampoline(EXCEPTION_POINTERS *info)
{
    uintptr_t at = (uintptr_t)info->ExceptionRecord->ExceptionAddress;
    uintptr_t start = (uintptr_t)gs_entry_trampoline;

    ExitProcess(at >= start && at < start + 32 ? 0 : 102);
}

/* Runs `entry` in a fresh context on a 64 KiB stack (see
 * stack_alloc_ex() for `below` and `soft_guard`). */
static int
child_run(gs_entry_fn entry, size_t below, size_t soft_guard)
{
    struct test_stack st;

    if (stack_alloc_ex(&st, 64 * 1024, below, soft_guard) != 0) {
        return 100;
    }
    gs_swap(&main_sp, gs_init(st.top, entry, st.limit), NULL);
    return CHILD_SURVIVED;
}

static int
run_child_case(const char *name)
{
    /* Anything unhandled on the thread's own stack must end the process
     * too, not start Wine's debugger. */
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
    if (strcmp(name, "returning_entry") == 0) {
        return child_run(returning_entry, 0, 0);
    }
    if (strcmp(name, "trap_in_trampoline") == 0) {
        AddVectoredExceptionHandler(1, exit_if_in_trampoline);
        return child_run(returning_entry, 0, 0);
    }
    if (strcmp(name, "overflow") == 0) {
        return child_run(overflow_entry, 0, 3);
    }
    if (strcmp(name, "big_frame") == 0) {
        /* Without probes, the frame would land in the read-write memory
         * below the guard and the child would survive. */
        return child_run(big_frame_entry, 2 * BIG_FRAME, 0);
    }
    if (strcmp(name, "raise") == 0) {
        return child_run(raise_entry, 0, 0);
    }
#if defined(GS_TEST_CXX)
    if (strcmp(name, "cxx_throw") == 0) {
        return child_run(cxx_throw_entry, 0, 0);
    }
#endif
    fprintf(stderr, "test_switch_win64: no child case %s\n", name);
    return 2;
}

#define CHILD_TIMEOUT_MS 60000

/* Runs this program as `child NAME` and returns its exit status, or
 * (DWORD)-1 after a failure to start it or a timeout. */
static DWORD
run_child(const char *name)
{
    char path[MAX_PATH], cmd[2 * MAX_PATH];
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    DWORD status = (DWORD)-1;
    DWORD n = GetModuleFileNameA(NULL, path, sizeof(path));

    if (n == 0 || n >= sizeof(path)) {
        fprintf(stderr, "GetModuleFileName: error %lu\n", GetLastError());
        return status;
    }
    snprintf(cmd, sizeof(cmd), "\"%s\" child %s", path, name);
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    fflush(stdout);
    fflush(stderr);
    if (!CreateProcessA(path, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si,
                        &pi)) {
        fprintf(stderr, "CreateProcess: error %lu\n", GetLastError());
        return status;
    }
    if (WaitForSingleObject(pi.hProcess, CHILD_TIMEOUT_MS) != WAIT_OBJECT_0) {
        fprintf(stderr, "  child %s hangs: terminated\n", name);
        TerminateProcess(pi.hProcess, 1);
        WaitForSingleObject(pi.hProcess, INFINITE);
    }
    else if (!GetExitCodeProcess(pi.hProcess, &status)) {
        status = (DWORD)-1;
    }
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    printf("     child %s: exit status %#lx\n", name, status);
    return status;
}

static void
test_returning_entry_traps(void)
{
    CHECK(run_child("returning_entry") == STATUS_ILLEGAL_INSTRUCTION);
}

static void
test_trap_is_raised_inside_the_trampoline(void)
{
    CHECK(run_child("trap_in_trampoline") == 0);
}

/* The stack ends in three PAGE_GUARD pages, as a thread's does: the first
 * touch becomes STATUS_STACK_OVERFLOW, dispatched on the pages below the
 * faulting frame; nothing on the context's stack handles it, so it ends
 * the process with that status. (Behind a no-access page alone, the fault
 * could not be dispatched at all: see the .S file.) */
static void
test_stack_overflow_ends_the_process(void)
{
    CHECK(run_child("overflow") == STATUS_STACK_OVERFLOW);
}

/* ___chkstk_ms probes the new frame page by page before moving rsp, so
 * the probe that reaches the no-access guard faults with rsp still
 * inside the stack, and the access violation is dispatched normally. */
static void
test_large_frame_hits_the_guard_instead_of_skipping_it(void)
{
    CHECK(run_child("big_frame") == STATUS_ACCESS_VIOLATION);
}

/* No frame on the context's stack handles it, and the walk ends at the
 * trampoline: the exception is unhandled, and its code becomes the exit
 * status (the thread's own base frame, with its unhandled-exception
 * filter, is not on this stack). */
static void
test_unhandled_exception_in_a_context_ends_the_process(void)
{
    CHECK(run_child("raise") == TEST_EXCEPTION);
}

#if defined(GS_TEST_CXX)
/* Likewise for a C++ exception: libgcc raises it as STATUS_GCC_THROW and
 * counts on mingw-w64's unhandled-exception filter, which a context's
 * walk never reaches, to turn it into std::terminate(). */
#define STATUS_GCC_THROW 0x20474343u

static void
test_uncaught_cxx_exception_in_a_context_ends_the_process(void)
{
    DWORD status = run_child("cxx_throw");

    CHECK(status == STATUS_GCC_THROW || status == 3);   /* 3: abort() */
}
#endif

/* ---- driver --------------------------------------------------------- */

static const struct test win64_tests[] = {
    TEST(test_large_frame_runs_on_a_guarded_stack),
    TEST(test_teb_stack_bounds_follow_the_running_context),
    TEST(test_fiber_data_is_per_context),
    TEST(test_walk_from_an_entry_ends_at_the_trampoline),
    TEST(test_walk_of_a_suspended_context_ends_at_the_trampoline),
    TEST(test_unwinding_gs_swap_recovers_the_callers_registers),
    TEST(test_vectored_handler_runs_on_the_context_stack),
#if defined(GS_TEST_CXX)
    TEST(test_cxx_exception_is_caught_inside_a_context),
#endif
    TEST(test_returning_entry_traps),
    TEST(test_trap_is_raised_inside_the_trampoline),
    TEST(test_stack_overflow_ends_the_process),
    TEST(test_large_frame_hits_the_guard_instead_of_skipping_it),
    TEST(test_unhandled_exception_in_a_context_ends_the_process),
#if defined(GS_TEST_CXX)
    TEST(test_uncaught_cxx_exception_in_a_context_ends_the_process),
#endif
};

int
main(int argc, char **argv)
{
    SYSTEM_INFO si;

    GetSystemInfo(&si);
    page_size = si.dwPageSize;
    if (argc == 3 && strcmp(argv[1], "child") == 0) {
        return run_child_case(argv[2]);
    }
    /* The C runtime's _IOLBF buffers fully: unbuffered, a crash leaves
     * all that came before it on the screen. */
    setvbuf(stdout, NULL, _IONBF, 0);
    return run_tests("test_switch_win64", win64_tests,
                     sizeof(win64_tests) / sizeof(win64_tests[0]), argc,
                     argv);
}
