/* The tests of the context switch (src/arch/switch.h) that hold on every
 * platform, and their harness, for tests/c/test_switch.c (Linux, every
 * CPU) and tests/c/test_switch_win64.c (Windows x64). It defines
 * functions, so one file per program includes it. Each of the two adds
 * the tests only its platform has, and supplies this small platform
 * layer:
 *
 *   before the #include:
 *     PROBE_NREGS, probe_names[]   the registers test_probe_swap() loads
 *                                  and reads back (struct probe)
 *   anywhere in the file:
 *     stack_alloc(), stack_free()  a stack with a no-access guard page
 *                                  just below `limit`
 *     stack_guard()                make one more page no-access
 *     now_ns()                     a monotonic clock
 *     test_probe_swap()            assembly: see struct probe
 *     align_entry(),               how the ABI's entry alignment is seen:
 *     check_entry_frame()          see struct align_report
 *   main() sets page_size, then returns run_tests(...).
 *
 * CHECK() records a failure and goes on; run_tests() makes the exit
 * status 1 if any check failed. Stacks come from the platform layer, not
 * from src/stack.c, so that this tests the switch alone. Every context a
 * test starts is left suspended forever (entry functions never return),
 * and its stack is freed.
 */
#ifndef GS_TESTS_SWITCH_TESTS_PORTABLE_H
#define GS_TESTS_SWITCH_TESTS_PORTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "switch.h"
#include "fp_control.h"

#ifndef PROBE_NREGS
#error "define PROBE_NREGS and probe_names[] before including this file"
#endif

/* ---- checks --------------------------------------------------------- */

static int checks_total;
static int checks_failed;

static void
check_at(int ok, const char *what, const char *file, const char *func,
         int line)
{
    checks_total++;
    if (!ok) {
        checks_failed++;
        fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", file, line, func,
                what);
    }
}

#define CHECK(cond) \
    check_at((cond) ? 1 : 0, #cond, __FILE__, __func__, __LINE__)

/* ---- the platform layer --------------------------------------------- */

static size_t page_size;

/* The stack the test itself runs on, saved while a context runs. */
static void *main_sp;

struct test_stack {
    void *base;         /* what stack_free() releases */
    size_t size;        /* its size, the guard included */
    uintptr_t top;
    uintptr_t limit;    /* lowest usable byte, just above the guard */
};

/* Reserve `size` usable bytes with a no-access guard page below them.
 * Returns 0, or -1 after printing why. */
static int stack_alloc(struct test_stack *st, size_t size);
static void stack_free(struct test_stack *st);
/* Make the page at `page` no-access. Returns 0, or -1 after printing
 * why. */
static int stack_guard(uintptr_t page);
static double now_ns(void);

/* test_probe_swap(p) loads every callee-saved ("nonvolatile", in
 * Microsoft's words) register from p->in, calls gs_swap(p->from, p->to,
 * NULL) with them live, and stores what the registers hold after the
 * swap returns in p->out; it restores its caller's values before
 * returning, as the ABI asks. It is written in assembly because C cannot
 * pin values in callee-saved registers across a call; no CFI: nothing
 * unwinds through it. */
struct probe {
    void **from;
    void *to;
    uint64_t in[PROBE_NREGS];
    uint64_t out[PROBE_NREGS];
};

_Static_assert(offsetof(struct probe, to) == sizeof(void *),
               "offsets in the platform's test_probe_swap");
_Static_assert(offsetof(struct probe, in) == 2 * sizeof(void *),
               "offsets in the platform's test_probe_swap");
_Static_assert(offsetof(struct probe, out) ==
                   2 * sizeof(void *) + 8 * PROBE_NREGS,
               "offsets in the platform's test_probe_swap");

void test_probe_swap(struct probe *p);

/* align_entry(r) stores in r->frame a stack address that shows whether it
 * was entered on a stack aligned as the ABI asks (the platform's
 * check_entry_frame() judges it), then goes on as align_entry_body(r). */
struct align_report {
    uintptr_t frame;    /* first: an assembly align_entry stores it */
    uintptr_t local;
    char text[32];
};

void align_entry(void *arg);
void align_entry_body(struct align_report *r);     /* defined below */
static void check_entry_frame(const struct align_report *r, uintptr_t top);

/* ---- ping-pong and arguments ---------------------------------------- */

#define PINGPONG_ROUNDS 500000  /* two switches each: 1,000,000 switches */

static void *pingpong_sp;
static unsigned long pingpong_bad;

/* Receives 1, 3, 5, ... and answers each with the next even number. */
static void
pingpong_entry(void *arg)
{
    uintptr_t expect = 1;
    uintptr_t got = (uintptr_t)arg;

    for (;;) {
        if (got != expect) {
            pingpong_bad++;
        }
        expect = got + 2;
        got = (uintptr_t)gs_swap(&pingpong_sp, main_sp, (void *)(got + 1));
    }
}

static void
test_pingpong_passes_values_both_ways(void)
{
    struct test_stack st;
    double start, end;
    unsigned long bad = 0;
    uintptr_t i;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    pingpong_sp = gs_init(st.top, pingpong_entry, st.limit);
    start = now_ns();
    for (i = 0; i < PINGPONG_ROUNDS; i++) {
        uintptr_t got = (uintptr_t)gs_swap(&main_sp, pingpong_sp,
                                           (void *)(2 * i + 1));
        if (got != 2 * i + 2) {
            bad++;
        }
    }
    end = now_ns();
    CHECK(bad == 0);
    CHECK(pingpong_bad == 0);
    printf("     %d switches, %.1f ns per switch\n", 2 * PINGPONG_ROUNDS,
           (end - start) / (2.0 * PINGPONG_ROUNDS));
    stack_free(&st);
}

static void *echo_sp;

/* Answers each value with itself (the platform tests use it too). */
static void
echo_entry(void *arg)
{
    for (;;) {
        arg = gs_swap(&echo_sp, main_sp, arg);
    }
}

static void
test_arguments_round_trip_unchanged(void)
{
    static int some_object;
    void *const values[] = {
        NULL, &some_object, (void *)UINTPTR_MAX,
        (void *)((uintptr_t)1 << (8 * sizeof(void *) - 1)), (void *)1,
    };
    struct test_stack st;
    size_t i;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    echo_sp = gs_init(st.top, echo_entry, st.limit);
    /* The first value is also the first swap's: entry's argument. */
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        CHECK(gs_swap(&main_sp, echo_sp, values[i]) == values[i]);
    }
    stack_free(&st);
}

/* Keeps its saved stack pointer in a local of its own stack, and hands the
 * test that local's address. */
static void
local_slot_entry(void *arg)
{
    void *self = NULL;

    (void)arg;
    for (;;) {
        gs_swap(&self, main_sp, &self);
    }
}

static void
test_from_may_point_into_the_stack_being_left(void)
{
    struct test_stack st;
    void **slot;
    int i;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    slot = gs_swap(&main_sp, gs_init(st.top, local_slot_entry, st.limit),
                   NULL);
    CHECK((uintptr_t)slot < st.top);
    CHECK((uintptr_t)slot >= st.top - 64 * 1024);
    for (i = 0; i < 3; i++) {
        CHECK(gs_swap(&main_sp, *slot, NULL) == slot);
    }
    stack_free(&st);
}

/* ---- callee-saved registers ----------------------------------------- */

/* Distinct, non-zero bit patterns per register and per `salt`. */
static void
probe_fill(struct probe *p, uint64_t salt)
{
    int i;

    for (i = 0; i < PROBE_NREGS; i++) {
        p->in[i] = (0x0101010101010101u * (uint64_t)(i + 1)) ^ salt;
        p->out[i] = 0;
    }
}

static int
probe_mismatches(const struct probe *p, const char *who)
{
    int i, n = 0;

    for (i = 0; i < PROBE_NREGS; i++) {
        if (p->out[i] != p->in[i]) {
            fprintf(stderr, "  %s: %s was %#llx, became %#llx\n", who,
                    probe_names[i], (unsigned long long)p->in[i],
                    (unsigned long long)p->out[i]);
            n++;
        }
    }
    return n;
}

static void *regs_sp;
static struct probe regs_other;     /* the other side's last probe */
static int regs_other_mismatches;
static int regs_other_rounds;

/* The other side: holds its own patterns in every callee-saved register
 * each time it swaps back, and checks them when resumed. */
static void
regs_entry(void *arg)
{
    uint64_t salt = 0x5a5a000000000000u;

    (void)arg;
    for (;;) {
        probe_fill(&regs_other, salt);
        regs_other.from = &regs_sp;
        regs_other.to = main_sp;
        test_probe_swap(&regs_other);
        regs_other_mismatches += probe_mismatches(&regs_other,
                                                  "other context");
        regs_other_rounds++;
        salt += 0x0000000100000001u;
    }
}

static void
test_callee_saved_registers_survive_a_swap(void)
{
    struct test_stack st;
    struct probe p;
    int round, mismatches = 0;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    regs_other_rounds = 0;
    regs_sp = gs_init(st.top, regs_entry, st.limit);
    gs_swap(&main_sp, regs_sp, NULL);   /* runs up to its first probe */
    for (round = 0; round < 3; round++) {
        probe_fill(&p, 0xa5a5000000000000u + (uint64_t)round);
        p.from = &main_sp;
        p.to = regs_sp;
        test_probe_swap(&p);
        mismatches += probe_mismatches(&p, "test context");
    }
    CHECK(mismatches == 0);
    CHECK(regs_other_rounds == 3);
    CHECK(regs_other_mismatches == 0);
    stack_free(&st);
}

/* ---- FP control state ----------------------------------------------- */

/* 1/3 as the current rounding mode computes it, in double and (on x86,
 * through the x87 unit) in long double. */
struct third {
    double d;
    long double ld;
};

/* noinline: inlined, the divisions are plain arithmetic that a compiler
 * may move across the asm that sets the mode (clang 14 merges two calls'
 * into one divpd). */
static __attribute__((noinline)) struct third
compute_third(void)
{
    volatile double one = 1.0, three = 3.0;
    volatile long double lone = 1.0L, lthree = 3.0L;
    struct third t;

    t.d = one / three;
    t.ld = lone / lthree;
    return t;
}

static void *fp_sp;
static int fp_seen_mode[3];
static struct third fp_seen_third[3];

/* Runs with rounding upward; records what it sees each time it resumes. */
static void
fp_entry(void *arg)
{
    int i;

    (void)arg;
    set_rounding(ROUND_UP);
    for (i = 0;; i++) {
        gs_swap(&fp_sp, main_sp, NULL);
        if (i < 3) {
            fp_seen_mode[i] = get_rounding();
            fp_seen_third[i] = compute_third();
        }
    }
}

static void
test_rounding_mode_is_per_context(void)
{
    struct test_stack st;
    struct third up, down, mine;
    int i;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    set_rounding(ROUND_UP);
    up = compute_third();
    set_rounding(ROUND_DOWN);
    down = compute_third();
    CHECK(up.d > down.d);       /* the modes are observable at all */
    CHECK(up.ld > down.ld);

    fp_sp = gs_init(st.top, fp_entry, st.limit);
    gs_swap(&main_sp, fp_sp, NULL);     /* it sets ROUND_UP and comes back */
    for (i = 0; i < 3; i++) {
        CHECK(get_rounding() == ROUND_DOWN);
        mine = compute_third();
        CHECK(mine.d == down.d);
        CHECK(mine.ld == down.ld);
        gs_swap(&main_sp, fp_sp, NULL);
        CHECK(fp_seen_mode[i] == ROUND_UP);
        CHECK(fp_seen_third[i].d == up.d);
        CHECK(fp_seen_third[i].ld == up.ld);
    }
    set_rounding(ROUND_NEAREST);
    stack_free(&st);
}

static int inherit_seen_mode;
#if defined(__SSE__)
static unsigned int inherit_seen_mxcsr;
#endif
static void *inherit_sp;

/* Records the control state it starts with. */
static void
inherit_entry(void *arg)
{
    (void)arg;
#if defined(__SSE__)
    inherit_seen_mxcsr = get_mxcsr();
#endif
    inherit_seen_mode = get_rounding();
    for (;;) {
        gs_swap(&inherit_sp, main_sp, NULL);
    }
}

/* switch_*.S documents the choice: gs_init copies its caller's control
 * state into the fresh frame. */
static void
test_new_context_starts_with_gs_init_callers_rounding_mode(void)
{
    struct test_stack st;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    set_rounding(ROUND_ZERO);
    inherit_sp = gs_init(st.top, inherit_entry, st.limit);
    set_rounding(ROUND_NEAREST);
    gs_swap(&main_sp, inherit_sp, NULL);
    CHECK(inherit_seen_mode == ROUND_ZERO);
    CHECK(get_rounding() == ROUND_NEAREST);
    stack_free(&st);
}

#if defined(__SSE__)
/* The x86 switch files document it: gs_init copies its caller's MXCSR
 * control bits and clears the exception flags, which are status. */
static void
test_new_context_starts_with_callers_mxcsr_control_and_no_flags(void)
{
    struct test_stack st;
    unsigned int saved = get_mxcsr();

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    set_mxcsr(saved | MXCSR_FTZ | MXCSR_INEXACT);
    inherit_sp = gs_init(st.top, inherit_entry, st.limit);
    set_mxcsr(saved);
    gs_swap(&main_sp, inherit_sp, NULL);
    CHECK((inherit_seen_mxcsr & MXCSR_FTZ) != 0);
    CHECK((inherit_seen_mxcsr & MXCSR_FLAGS) == 0);
    CHECK((get_mxcsr() & MXCSR_FTZ) == 0);
    set_mxcsr(saved);
    stack_free(&st);
}
#endif

/* ---- the fresh stack ------------------------------------------------ */

static void *align_sp;

/* The rest of align_entry. A 16-aligned local checks what the compiler
 * assumed, and snprintf of a double on x86 uses aligned SSE stores.
 * Not static: an assembly align_entry jumps here. */
void
align_entry_body(struct align_report *r)
{
    _Alignas(16) volatile char local[16];
    volatile double value = 2.5;

    local[0] = 1;
    r->local = (uintptr_t)&local[0];
    snprintf(r->text, sizeof(r->text), "%.3f|%g", value, value * 4);
    for (;;) {
        gs_swap(&align_sp, main_sp, NULL);
    }
}

static void
test_entry_runs_on_an_abi_aligned_stack(void)
{
    struct test_stack st;
    uintptr_t skew;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    /* gs_init aligns `top` down whatever its low bits. */
    for (skew = 0; skew < 16; skew += 3) {
        uintptr_t top = st.top - 256 - skew;
        struct align_report r;

        memset(&r, 0, sizeof(r));
        align_sp = gs_init(top, align_entry, st.limit);
        gs_swap(&main_sp, align_sp, &r);
        check_entry_frame(&r, top);
        CHECK(r.local % 16 == 0);
        CHECK(strcmp(r.text, "2.500|10") == 0);
    }
    stack_free(&st);
}

static void
test_init_writes_nothing_at_or_above_top(void)
{
    struct test_stack st;
    struct align_report r;
    unsigned char *above;
    uintptr_t top;
    size_t i, bad = 0;

    if (stack_alloc(&st, 64 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    top = st.top - 128 - 5;     /* an unaligned top, 133 bytes below */
    above = (unsigned char *)top;
    memset(above, 0xa5, st.top - top);
    align_sp = gs_init(top, align_entry, st.limit);
    gs_swap(&main_sp, align_sp, &r);    /* the context runs as well */
    for (i = 0; i < st.top - top; i++) {
        if (above[i] != 0xa5) {
            bad++;
        }
    }
    CHECK(bad == 0);
    stack_free(&st);
}

struct recursion {
    unsigned depth;
    uintptr_t lowest;   /* lowest local address reached */
    uint64_t sum;
};

static void *recursion_sp;

/* About 1 KiB of stack per level, all of it written (the platform tests
 * use it to overflow a stack, too). */
static __attribute__((noinline)) uint64_t
recurse(unsigned depth, uintptr_t *lowest)
{
    volatile unsigned char buf[1024];
    uint64_t below;
    unsigned i;

    for (i = 0; i < sizeof(buf); i++) {
        buf[i] = (unsigned char)(depth + i);
    }
    if ((uintptr_t)buf < *lowest) {
        *lowest = (uintptr_t)buf;
    }
    below = depth > 0 ? recurse(depth - 1, lowest) : 0;
    return below + buf[depth % sizeof(buf)];
}

static void
recursion_entry(void *arg)
{
    struct recursion *r = arg;

    r->lowest = UINTPTR_MAX;
    r->sum = recurse(r->depth, &r->lowest);
    for (;;) {
        gs_swap(&recursion_sp, main_sp, NULL);
    }
}

static void
test_deep_recursion_on_a_guarded_8_mib_stack(void)
{
    struct test_stack st;
    struct recursion r;
    uint64_t expect = 0;
    unsigned d;

    if (stack_alloc(&st, 8 * 1024 * 1024) != 0) {
        CHECK(!"stack_alloc");
        return;
    }
    r.depth = 3000;             /* about 3 MiB */
    for (d = 0; d <= r.depth; d++) {
        expect += (unsigned char)(d + d % 1024);
    }
    recursion_sp = gs_init(st.top, recursion_entry, st.limit);
    gs_swap(&main_sp, recursion_sp, &r);
    CHECK(r.sum == expect);
    CHECK(st.top - r.lowest >= 1024 * 1024);
    CHECK(r.lowest >= st.limit);
    printf("     %.2f MiB of stack used\n",
           (double)(st.top - r.lowest) / (1024 * 1024));
    stack_free(&st);
}

/* ---- many contexts -------------------------------------------------- */

#define MANY 10000
#define MANY_STACK (32 * 1024)
#define MANY_ROUNDS 3

static void **many_sp;
static unsigned long many_bad;

/* Announces its id, then answers (id, round) with (id, round) + 1. The
 * locals live on its own stack, so a mix-up of stacks shows. */
static void
many_entry(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uintptr_t round = 0;
    uintptr_t got = (uintptr_t)gs_swap(&many_sp[id], main_sp, (void *)id);

    for (;;) {
        if (got != id * 16 + round) {
            many_bad++;
        }
        round++;
        got = (uintptr_t)gs_swap(&many_sp[id], main_sp, (void *)(got + 1));
    }
}

static void
test_ten_thousand_contexts_ping_pong(void)
{
    struct test_stack st;
    unsigned long bad = 0;
    uintptr_t i, round;

    many_sp = calloc(MANY, sizeof(*many_sp));
    if (many_sp == NULL) {
        CHECK(!"calloc");
        return;
    }
    /* One allocation, then a guard page at the low end of each stack. */
    if (stack_alloc(&st, (size_t)MANY * MANY_STACK) != 0) {
        CHECK(!"stack_alloc");
        free(many_sp);
        return;
    }
    for (i = 0; i < MANY; i++) {
        uintptr_t top = st.top - i * MANY_STACK;

        if (stack_guard(top - MANY_STACK) != 0) {
            CHECK(!"stack_guard");
            goto done;
        }
        many_sp[i] = gs_init(top, many_entry,
                             top - MANY_STACK + page_size);
        if ((uintptr_t)gs_swap(&main_sp, many_sp[i], (void *)i) != i) {
            bad++;
        }
    }
    for (round = 0; round < MANY_ROUNDS; round++) {
        for (i = 0; i < MANY; i++) {
            uintptr_t v = i * 16 + round;

            if ((uintptr_t)gs_swap(&main_sp, many_sp[i], (void *)v) !=
                    v + 1) {
                bad++;
            }
        }
    }
    CHECK(bad == 0);
    CHECK(many_bad == 0);
done:
    stack_free(&st);
    free(many_sp);
    many_sp = NULL;
}

#define RING 3

static void *ring_sp[RING];

/* Each member passes the token, plus one, straight to the next member;
 * the last one passes it back to the test. */
static void
ring_entry(void *arg)
{
    uintptr_t me = (uintptr_t)arg;
    uintptr_t token = (uintptr_t)gs_swap(&ring_sp[me], main_sp, NULL);

    for (;;) {
        void *next = me + 1 < RING ? ring_sp[me + 1] : main_sp;

        token = (uintptr_t)gs_swap(&ring_sp[me], next, (void *)(token + 1));
    }
}

static void
test_contexts_switch_directly_among_themselves(void)
{
    struct test_stack st[RING];
    unsigned long bad = 0;
    uintptr_t i;
    int n;

    for (n = 0; n < RING; n++) {
        if (stack_alloc(&st[n], 64 * 1024) != 0) {
            CHECK(!"stack_alloc");
            goto done;
        }
        ring_sp[n] = gs_init(st[n].top, ring_entry, st[n].limit);
        gs_swap(&main_sp, ring_sp[n], (void *)(uintptr_t)n);
    }
    for (i = 0; i < 1000; i++) {
        if ((uintptr_t)gs_swap(&main_sp, ring_sp[0], (void *)(i * 10)) !=
                i * 10 + RING) {
            bad++;
        }
    }
    CHECK(bad == 0);
done:
    while (n-- > 0) {
        stack_free(&st[n]);
    }
}

/* ---- driver --------------------------------------------------------- */

struct test {
    const char *name;
    void (*run)(void);
};

#define TEST(fn) {#fn, fn}

static const struct test portable_tests[] = {
    TEST(test_pingpong_passes_values_both_ways),
    TEST(test_arguments_round_trip_unchanged),
    TEST(test_from_may_point_into_the_stack_being_left),
    TEST(test_callee_saved_registers_survive_a_swap),
    TEST(test_rounding_mode_is_per_context),
    TEST(test_new_context_starts_with_gs_init_callers_rounding_mode),
#if defined(__SSE__)
    TEST(test_new_context_starts_with_callers_mxcsr_control_and_no_flags),
#endif
    TEST(test_entry_runs_on_an_abi_aligned_stack),
    TEST(test_init_writes_nothing_at_or_above_top),
    TEST(test_deep_recursion_on_a_guarded_8_mib_stack),
    TEST(test_ten_thousand_contexts_ping_pong),
    TEST(test_contexts_switch_directly_among_themselves),
};

static int
selected(const char *name, int argc, char **argv)
{
    int i;

    if (argc < 2) {
        return 1;
    }
    for (i = 1; i < argc; i++) {
        if (strstr(name, argv[i]) != NULL) {
            return 1;
        }
    }
    return 0;
}

/* Runs the portable tests, then the platform's `own`: those whose names
 * contain one of the arguments, or all without arguments. Returns main()'s
 * exit status: 0, 1 if a check failed, 2 if no test matched. */
static int
run_tests(const char *program, const struct test *own, size_t n_own,
          int argc, char **argv)
{
    const size_t n_portable =
        sizeof(portable_tests) / sizeof(portable_tests[0]);
    size_t i;
    int ran = 0;

    for (i = 0; i < n_portable + n_own; i++) {
        const struct test *t = i < n_portable ? &portable_tests[i]
                                              : &own[i - n_portable];
        int failed_before = checks_failed;

        if (!selected(t->name, argc, argv)) {
            continue;
        }
        t->run();
        ran++;
        printf("%s %s\n", checks_failed == failed_before ? "ok  " : "FAIL",
               t->name);
    }
    if (ran == 0) {
        fprintf(stderr, "%s: no test matches the arguments\n", program);
        return 2;
    }
    printf("%s: %d tests, %d checks, %d failed\n", program, ran,
           checks_total, checks_failed);
    return checks_failed != 0;
}

#endif /* GS_TESTS_SWITCH_TESTS_PORTABLE_H */
