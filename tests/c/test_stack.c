/* Tests of the stack allocator (src/stack.c), with no Python.
 *
 *   cc -O2 -Wall -Wextra -D_GNU_SOURCE -Isrc tests/c/test_stack.c \
 *      src/stack.c -o test_stack && ./test_stack [options]
 *
 * The suite runs twice: with the guards the system gives (MADV_GUARD_INSTALL
 * on Linux 6.13+), then in a forked child with mprotect guards forced
 * through gs_stack_force_mprotect_guards(). Each pass prints which guards
 * it ran with. Options, for slow or odd environments such as qemu-user:
 *
 *   many=N     stacks held at once by the "many stacks" case (default
 *              200000 with madvise guards; at most 1000 with mprotect
 *              guards, which cost two mappings per stack)
 *   loops=N    iterations of the timing case (default 1000000); each of
 *              the threading case's 4 threads does N / 50
 *   no-rss     leave out the checks of resident memory (qemu-user does
 *              not free pages on MADV_DONTNEED)
 *   no-limits  leave out the cases that exhaust address space or mappings
 *              (qemu-user ignores RLIMIT_AS)
 *
 * Prints one line per case and one per failed CHECK; exits 1 if any
 * failed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stack.h"

struct options {
    long many;
    long loops;
    int rss;
    int limits;
};

static int failures;
static const char *current_case;

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            printf("    FAILED %s: %s (line %d)\n", current_case, #cond, \
                   __LINE__); \
            failures++; \
        } \
    } while (0)

static void
begin(const char *name)
{
    current_case = name;
    printf("  %s\n", name);
}

/* ---- helpers ------------------------------------------------------------ */

static long
mapping_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long lines = 0;
    int c;
    if (f == NULL) {
        return -1;
    }
    while ((c = getc(f)) != EOF) {
        lines += c == '\n';
    }
    fclose(f);
    return lines;
}

/* Field `index` (0: size, 1: resident) of /proc/self/statm, in KiB. */
static long
statm_kib(int index)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long fields[2] = {-1, -1};
    if (f == NULL) {
        return -1;
    }
    if (fscanf(f, "%ld %ld", &fields[0], &fields[1]) != 2) {
        fields[index] = -1;
    }
    fclose(f);
    return fields[index] * (sysconf(_SC_PAGESIZE) / 1024);
}

static long
rss_kib(void)
{
    return statm_kib(1);
}

/* A "Name:  N kB" line of /proc/self/status, or -1. */
static long
status_kib(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long value = -1;
    size_t len = strlen(name);
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, name, len) == 0 && line[len] == ':') {
            value = atol(line + len + 1);
            break;
        }
    }
    fclose(f);
    return value;
}

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static struct gs_stack_stats
stats_now(void)
{
    struct gs_stack_stats stats;
    gs_stack_get_stats(&stats);
    return stats;
}

/* Fork; run fn(arg) in the child, which exits with what fn returns.
   Returns the child's wait status, or -1. */
static int
in_child(int (*fn)(uintptr_t), uintptr_t arg)
{
    int status = 0;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        _exit(fn(arg));
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    return status;
}

static int
killed_by(int status, int sig)
{
    return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

static int
exited_ok(int status)
{
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int
write_byte(uintptr_t addr)
{
    *(volatile char *)addr = 1;
    return 0;
}

/* ---- cases -------------------------------------------------------------- */

static void
test_acquired_stack_is_writable_from_limit_to_top(void)
{
    struct gs_stack s;
    begin("acquired stack is writable from limit to top");
    CHECK(gs_stack_acquire(&s, 0) == GS_STACK_OK);
    CHECK(s.slot != NULL);
    CHECK(s.top - s.limit == s.size);
    CHECK(s.size == GS_STACK_DEFAULT_SIZE);
    CHECK(s.top % (uintptr_t)sysconf(_SC_PAGESIZE) == 0);
    *(volatile char *)s.limit = 1;
    *(volatile char *)(s.top - 1) = 2;
    CHECK(*(volatile char *)s.limit == 1);
    CHECK(*(volatile char *)(s.top - 1) == 2);
    gs_stack_release(&s, 0);
    CHECK(s.slot == NULL && s.top == 0 && s.limit == 0);
}

static void
test_touching_the_guard_kills_with_sigsegv(void)
{
    struct gs_stack s;
    begin("touching the guard kills with SIGSEGV");
    CHECK(gs_stack_acquire(&s, 0) == GS_STACK_OK);
    CHECK(killed_by(in_child(write_byte, s.limit - 1), SIGSEGV));
    CHECK(killed_by(in_child(write_byte, s.limit - 4096), SIGSEGV));
    CHECK(exited_ok(in_child(write_byte, s.limit)));
    gs_stack_release(&s, 0);
}

static void
test_guard_addresses_are_recognised(void)
{
    struct gs_stack s;
    int local = 0;
    char *heap = malloc(64);
    begin("guard addresses are recognised");
    CHECK(gs_stack_acquire(&s, 256 << 10) == GS_STACK_OK);
    CHECK(gs_stack_addr_in_guard(s.limit - 1));
    CHECK(gs_stack_addr_in_guard(s.limit - 4096));
    CHECK(!gs_stack_addr_in_guard(s.limit));
    CHECK(!gs_stack_addr_in_guard(s.top - 1));
    CHECK(!gs_stack_addr_in_guard((uintptr_t)&local));
    CHECK(heap != NULL && !gs_stack_addr_in_guard((uintptr_t)heap));
    CHECK(!gs_stack_addr_in_guard((uintptr_t)&failures));
    CHECK(!gs_stack_addr_in_guard(0));
    CHECK(!gs_stack_addr_in_guard(UINTPTR_MAX));
    gs_stack_release(&s, 0);
    free(heap);
}

static void
test_guards_of_unmapped_slabs_are_forgotten(void)
{
    struct gs_stack s;
    begin("guards of unmapped slabs are forgotten");
    gs_stack_trim();
    CHECK(gs_stack_acquire(&s, 320 << 10) == GS_STACK_OK);
    uintptr_t guard = s.limit - 1;
    CHECK(gs_stack_addr_in_guard(guard));
    gs_stack_release(&s, 0);
    CHECK(gs_stack_addr_in_guard(guard));      /* pooled: still ours */
    gs_stack_trim();
    CHECK(!gs_stack_addr_in_guard(guard));
}

static void
test_released_stack_is_reused_without_new_mappings(void)
{
    struct gs_stack a, b;
    begin("released stack is reused without new mappings");
    CHECK(gs_stack_acquire(&a, 0) == GS_STACK_OK);
    uintptr_t first = a.limit;
    gs_stack_release(&a, a.top - 128);
    struct gs_stack_stats before = stats_now();
    long maps = mapping_count();
    for (int i = 0; i < 1000; i++) {
        CHECK(gs_stack_acquire(&b, 0) == GS_STACK_OK);
        CHECK(b.limit == first);
        gs_stack_release(&b, b.top - 128);
    }
    struct gs_stack_stats after = stats_now();
    CHECK(after.mappings == before.mappings);
    CHECK(after.reserved == before.reserved);
    CHECK(mapping_count() == maps);
}

static void
test_sizes_have_pools_of_their_own(void)
{
    struct gs_stack small, big, again;
    begin("sizes have pools of their own");
    CHECK(gs_stack_acquire(&small, 128 << 10) == GS_STACK_OK);
    uintptr_t small_limit = small.limit;
    gs_stack_release(&small, 0);
    CHECK(gs_stack_acquire(&big, 512 << 10) == GS_STACK_OK);
    CHECK(big.limit != small_limit);
    CHECK(big.size == 512 << 10);
    CHECK(gs_stack_acquire(&again, 128 << 10) == GS_STACK_OK);
    CHECK(again.limit == small_limit);
    gs_stack_release(&big, 0);
    gs_stack_release(&again, 0);
}

static void
test_sizes_out_of_range_are_refused(void)
{
    struct gs_stack s;
    begin("sizes out of range are refused");
    CHECK(gs_stack_acquire(&s, 1) == GS_STACK_EINVAL);
    CHECK(s.slot == NULL && s.top == 0);
    CHECK(gs_stack_acquire(&s, GS_STACK_MIN_SIZE - 1) == GS_STACK_EINVAL);
    CHECK(gs_stack_acquire(&s, GS_STACK_MAX_SIZE + 1) == GS_STACK_EINVAL);
    CHECK(gs_stack_acquire(&s, SIZE_MAX) == GS_STACK_EINVAL);
    CHECK(s.slot == NULL);
}

static void
test_sizes_are_rounded_up_to_whole_pages(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    struct gs_stack s;
    begin("sizes are rounded up to whole pages");
    CHECK(gs_stack_acquire(&s, GS_STACK_MIN_SIZE + 1) == GS_STACK_OK);
    CHECK(s.size == GS_STACK_MIN_SIZE + page);
    CHECK(s.top - s.limit == s.size);
    gs_stack_release(&s, 0);
    CHECK(gs_stack_acquire(&s, GS_STACK_MIN_SIZE) == GS_STACK_OK);
    CHECK(s.size == GS_STACK_MIN_SIZE);
    gs_stack_release(&s, 0);
    CHECK(gs_stack_acquire(&s, GS_STACK_MAX_SIZE) == GS_STACK_OK);
    CHECK(s.size == GS_STACK_MAX_SIZE);
    *(volatile char *)s.limit = 1;
    gs_stack_release(&s, 0);
}

static void
test_stats_count_stacks_in_use_and_pooled(void)
{
    struct gs_stack s[3];
    begin("stats count stacks in use and pooled");
    struct gs_stack_stats before = stats_now();
    for (int i = 0; i < 3; i++) {
        CHECK(gs_stack_acquire(&s[i], 0) == GS_STACK_OK);
    }
    struct gs_stack_stats held = stats_now();
    CHECK(held.in_use == before.in_use + 3);
    CHECK(held.in_use + held.pooled >= 3);
    CHECK(held.mappings > 0);
    CHECK(held.reserved >= 3 * GS_STACK_DEFAULT_SIZE);
    for (int i = 0; i < 3; i++) {
        gs_stack_release(&s[i], s[i].top - 64);
    }
    struct gs_stack_stats after = stats_now();
    CHECK(after.in_use == before.in_use);
    CHECK(after.pooled == held.pooled + 3);
    CHECK(after.hot >= 3);
    gs_stack_trim();
    after = stats_now();
    CHECK(after.in_use == before.in_use);
    CHECK(after.hot == 0);
    if (after.in_use == 0) {
        CHECK(after.pooled == 0 && after.mappings == 0 &&
              after.reserved == 0);
    }
}

static void
test_hot_stacks_in_the_pool_are_capped(void)
{
    enum { N = 600 };
    static struct gs_stack s[N];
    begin("hot stacks in the pool are capped");
    for (int i = 0; i < N; i++) {
        CHECK(gs_stack_acquire(&s[i], 0) == GS_STACK_OK);
        *(volatile char *)(s[i].top - 1) = 1;
    }
    for (int i = 0; i < N; i++) {
        gs_stack_release(&s[i], s[i].top - 64);
    }
    struct gs_stack_stats stats = stats_now();
    printf("    %d released: %zu pooled, %zu of them hot\n", N,
           stats.pooled, stats.hot);
    CHECK(stats.hot > 0);
    CHECK(stats.hot < N / 2);
    gs_stack_trim();
}

static void
test_many_stacks_live_at_once(const struct options *opt)
{
    struct gs_stack_stats stats = stats_now();
    long many = opt->many;
    long ok = 0;
    enum gs_stack_error err = GS_STACK_OK;
    begin("many stacks live at once");
    if (!stats.guard_by_madvise && many > 1000) {
        printf("    mprotect guards: 1000 stacks, not %ld\n", many);
        many = 1000;
    }
    struct gs_stack *stacks = calloc((size_t)many, sizeof(*stacks));
    CHECK(stacks != NULL);
    if (stacks == NULL) {
        return;
    }
    gs_stack_trim();
    long maps_before = mapping_count();
    long rss_before = rss_kib();
    double t0 = now_ns();
    for (long i = 0; i < many; i++) {
        err = gs_stack_acquire(&stacks[i], 0);
        if (err != GS_STACK_OK) {
            break;
        }
        *(volatile char *)(stacks[i].top - 1) = 1;
        ok++;
    }
    double t1 = now_ns();
    long maps_during = mapping_count();
    long rss_during = rss_kib();
    long pte_during = status_kib("VmPTE");
    stats = stats_now();
    printf("    %ld stacks of %zu KiB live (%.0f ns each): /proc/self/maps "
           "%ld -> %ld lines (allocator's count %zu); %zu GiB reserved; "
           "RSS %ld -> %ld KiB, page tables %ld KiB\n",
           ok, GS_STACK_DEFAULT_SIZE >> 10, ok ? (t1 - t0) / ok : 0.0,
           maps_before, maps_during, stats.mappings, stats.reserved >> 30,
           rss_before, rss_during, pte_during);
    if (err != GS_STACK_OK) {
        printf("    stopped by: %s\n", gs_stack_strerror(err));
    }
    CHECK(ok == many);
    CHECK(maps_during < 65530 / 2);
    if (stats.guard_by_madvise) {
        CHECK(maps_during - maps_before <= many / 32 + 8);
    }
    else {
        CHECK(maps_during - maps_before <= 2 * many + 8);
    }
    for (long i = 0; i < ok; i++) {
        gs_stack_release(&stacks[i], stacks[i].top - 64);
    }
    gs_stack_trim();
    free(stacks);
    stats = stats_now();
    long maps_after = mapping_count();
    long rss_after = rss_kib();
    printf("    released and trimmed: %ld lines, RSS %ld KiB, %zu in use, "
           "%zu pooled\n", maps_after, rss_after, stats.in_use,
           stats.pooled);
    CHECK(stats.in_use == 0);
    CHECK(stats.pooled == 0);
    CHECK(maps_after <= maps_before + 2);
    if (opt->rss) {
        CHECK(rss_after - rss_before < 4096);
    }
}

static void
test_dirtied_pages_are_given_back(void)
{
    enum { N = 1000, DIRTY = 256 << 10 };
    static struct gs_stack stacks[N];
    begin("dirtied pages are given back");
    gs_stack_trim();
    long base = rss_kib();
    for (int i = 0; i < N; i++) {
        CHECK(gs_stack_acquire(&stacks[i], 0) == GS_STACK_OK);
        memset((void *)(stacks[i].top - DIRTY), 1, DIRTY);
    }
    long held = rss_kib();
    for (int i = 0; i < N; i++) {
        /* The caller saw the greenlet this deep. */
        gs_stack_release(&stacks[i], stacks[i].top - DIRTY);
    }
    long after = rss_kib();
    struct gs_stack_stats stats = stats_now();
    gs_stack_trim();
    long trimmed = rss_kib();
    printf("    RSS %ld KiB -> %ld KiB with %d x %d KiB dirty -> %ld KiB "
           "released (%zu hot) -> %ld KiB trimmed\n", base, held, N,
           DIRTY >> 10, after, stats.hot, trimmed);
    CHECK(held - base > N * (DIRTY >> 10) * 9 / 10);
    /* What stays: the hot parts of the pooled hot stacks (32 KiB each, a
       whole page where pages are bigger) and the allocator's books. */
    long page_kib = sysconf(_SC_PAGESIZE) / 1024;
    long hot_kib = page_kib > 32 ? page_kib : 32;
    CHECK(after - base < (long)stats.hot * hot_kib + 2048);
    CHECK(trimmed - base < 2048);
}

static void
test_unknown_depth_cleans_the_whole_stack(void)
{
    struct gs_stack s;
    begin("unknown depth cleans the whole stack");
    gs_stack_trim();
    long base = rss_kib();
    CHECK(gs_stack_acquire(&s, 0) == GS_STACK_OK);
    memset((void *)(s.top - (4 << 20)), 1, 4 << 20);
    CHECK(rss_kib() - base > 4000);
    gs_stack_release(&s, 0);
    CHECK(rss_kib() - base < 256);
    gs_stack_trim();
}

/* Dirty 2 MiB of a stack but release it as if seen only 64 bytes deep:
   the deep pages stay resident until a sweep. Returns the KiB kept. */
static long
release_with_unseen_deep_use(struct gs_stack *s, long base)
{
    memset((void *)(s->top - (2 << 20)), 1, 2 << 20);
    gs_stack_release(s, s->top - 64);
    return rss_kib() - base;
}

static void
test_deep_use_nobody_saw_is_cleaned_by_a_sweep(void)
{
    struct gs_stack s;
    begin("deep use nobody saw is cleaned by a sweep");
    gs_stack_trim();
    long base = rss_kib();
    CHECK(gs_stack_acquire(&s, 0) == GS_STACK_OK);
    long kept = release_with_unseen_deep_use(&s, base);
    for (int i = 0; i < 128; i++) {
        CHECK(gs_stack_acquire(&s, 0) == GS_STACK_OK);
        gs_stack_release(&s, s.top - 64);
    }
    long later = rss_kib() - base;
    printf("    2 MiB dirty, seen 64 bytes deep: %ld KiB kept, %ld KiB "
           "after 128 more releases\n", kept, later);
    CHECK(kept > 1800);
    CHECK(later < 256);
    gs_stack_trim();
}

static void
test_idle_pooled_stacks_are_swept_too(void)
{
    struct gs_stack idle, busy;
    begin("idle pooled stacks are swept too");
    gs_stack_trim();
    long base = rss_kib();
    CHECK(gs_stack_acquire(&idle, 0) == GS_STACK_OK);
    long kept = release_with_unseen_deep_use(&idle, base);
    /* Another size: the idle stack is never handed out again. */
    for (int i = 0; i < 128; i++) {
        CHECK(gs_stack_acquire(&busy, GS_STACK_MIN_SIZE) == GS_STACK_OK);
        gs_stack_release(&busy, busy.top - 64);
    }
    long later = rss_kib() - base;
    printf("    %ld KiB kept, %ld KiB after 128 releases of another size\n",
           kept, later);
    CHECK(kept > 1800);
    CHECK(later < 256);
    gs_stack_trim();
}

static void
test_trim_cleans_pooled_stacks_of_busy_slabs(void)
{
    struct gs_stack live, idle;
    begin("trim cleans pooled stacks of slabs still in use");
    gs_stack_trim();
    long base = rss_kib();
    CHECK(gs_stack_acquire(&live, 0) == GS_STACK_OK);
    CHECK(gs_stack_acquire(&idle, 0) == GS_STACK_OK);
    release_with_unseen_deep_use(&idle, base);
    gs_stack_trim();
    struct gs_stack_stats stats = stats_now();
    CHECK(stats.in_use >= 1 && stats.hot == 0);
    CHECK(rss_kib() - base < 256);
    gs_stack_release(&live, 0);
    gs_stack_trim();
}

static int
exhaust_address_space(uintptr_t unused)
{
    struct gs_stack s;
    struct rlimit lim;
    (void)unused;
    /* Room for malloc, none for a 1 GiB stack. */
    lim.rlim_cur = lim.rlim_max =
        (rlim_t)statm_kib(0) * 1024 + ((rlim_t)128 << 20);
    if (setrlimit(RLIMIT_AS, &lim) != 0) {
        return 2;
    }
    enum gs_stack_error err = gs_stack_acquire(&s, GS_STACK_MAX_SIZE);
    printf("    under RLIMIT_AS: %s\n", gs_stack_strerror(err));
    return err == GS_STACK_ENOMEM && s.slot == NULL ? 0 : 1;
}

static void
test_exhausted_address_space_gives_enomem(const struct options *opt)
{
    begin("exhausted address space gives ENOMEM");
    if (!opt->limits) {
        printf("    skipped: no-limits\n");
        return;
    }
    gs_stack_trim();
    CHECK(exited_ok(in_child(exhaust_address_space, 0)));
}

static int
exhaust_mappings(uintptr_t unused)
{
    enum { MAX = 200000 };
    static struct gs_stack stacks[MAX];
    enum gs_stack_error err = GS_STACK_OK;
    long n = 0;
    (void)unused;
    while (n < MAX) {
        err = gs_stack_acquire(&stacks[n], GS_STACK_MIN_SIZE);
        if (err != GS_STACK_OK) {
            break;
        }
        n++;
    }
    printf("    stopped after %ld stacks (%ld mappings): %s\n", n,
           mapping_count(), gs_stack_strerror(err));
    for (long i = 0; i < n; i++) {
        gs_stack_release(&stacks[i], 0);
    }
    gs_stack_trim();
    struct gs_stack_stats stats = stats_now();
    struct gs_stack s;
    enum gs_stack_error again = gs_stack_acquire(&s, GS_STACK_MIN_SIZE);
    return err == GS_STACK_EMAPCOUNT && n > 1000 && stats.in_use == 0 &&
                   again == GS_STACK_OK
               ? 0
               : 1;
}

static void
test_running_out_of_mappings_gives_emapcount(const struct options *opt)
{
    begin("running out of mappings gives EMAPCOUNT");
    if (!opt->limits) {
        printf("    skipped: no-limits\n");
        return;
    }
    if (stats_now().guard_by_madvise) {
        printf("    skipped: madvise guards do not add mappings\n");
        return;
    }
    CHECK(exited_ok(in_child(exhaust_mappings, 0)));
}

struct worker {
    pthread_t thread;
    long loops;
    int id;
    long errors;
};

/* Holds a few stacks at a time, marks each with its id and checks the
   marks are still there when it gives them back: two threads handed the
   same stack would overwrite each other's. */
static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    struct gs_stack held[8];
    memset(held, 0, sizeof(held));
    for (long i = 0; i < w->loops; i++) {
        struct gs_stack *s = &held[i % 8];
        if (s->slot != NULL) {
            if (*(volatile int *)(s->top - sizeof(int)) != w->id ||
                *(volatile int *)s->limit != w->id) {
                w->errors++;
            }
            gs_stack_release(s, s->top - 256);
        }
        size_t size = (i & 1) ? GS_STACK_MIN_SIZE : 0;
        if (gs_stack_acquire(s, size) != GS_STACK_OK) {
            w->errors++;
            continue;
        }
        *(volatile int *)(s->top - sizeof(int)) = w->id;
        *(volatile int *)s->limit = w->id;
    }
    for (int i = 0; i < 8; i++) {
        gs_stack_release(&held[i], 0);
    }
    return NULL;
}

static void
test_threads_share_the_pool_safely(const struct options *opt)
{
    enum { THREADS = 4 };
    struct worker workers[THREADS];
    begin("threads share the pool safely");
    size_t in_use = stats_now().in_use;
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){.loops = opt->loops / 50, .id = i + 1};
        CHECK(pthread_create(&workers[i].thread, NULL, worker_main,
                             &workers[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(workers[i].thread, NULL) == 0);
        CHECK(workers[i].errors == 0);
    }
    CHECK(stats_now().in_use == in_use);
    gs_stack_trim();
}

static volatile int churn_stop;

static void *
churn(void *unused)
{
    struct gs_stack s;
    (void)unused;
    while (!churn_stop) {
        if (gs_stack_acquire(&s, GS_STACK_MIN_SIZE) == GS_STACK_OK) {
            gs_stack_release(&s, 0);
        }
    }
    return NULL;
}

static int
use_pool_briefly(uintptr_t unused)
{
    struct gs_stack s;
    (void)unused;
    alarm(10);      /* a lock inherited held would hang us */
    if (gs_stack_acquire(&s, GS_STACK_MIN_SIZE) != GS_STACK_OK) {
        return 1;
    }
    *(volatile char *)s.limit = 1;
    gs_stack_release(&s, 0);
    return 0;
}

static void
test_forked_child_can_use_the_pool_while_a_thread_did(void)
{
    pthread_t thread;
    int bad = 0;
    begin("forked child can use the pool while a thread did");
    churn_stop = 0;
    CHECK(pthread_create(&thread, NULL, churn, NULL) == 0);
    for (int i = 0; i < 100; i++) {
        bad += !exited_ok(in_child(use_pool_briefly, 0));
    }
    churn_stop = 1;
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK(bad == 0);
    gs_stack_trim();
}

/* Prints the cost; asserts nothing about it (a loaded machine is slow). */
static void
test_pooled_acquire_and_release_cost(const struct options *opt)
{
    enum { ROUNDS = 10 };
    struct gs_stack s;
    long loops = opt->loops / ROUNDS > 0 ? opt->loops / ROUNDS : 1;
    double best = 0.0;
    begin("pooled acquire and release cost");
    CHECK(gs_stack_acquire(&s, 0) == GS_STACK_OK);
    gs_stack_release(&s, s.top - 256);
    for (int round = 0; round < ROUNDS; round++) {
        double t0 = now_ns();
        for (long i = 0; i < loops; i++) {
            gs_stack_acquire(&s, 0);
            gs_stack_release(&s, s.top - 256);
        }
        double each = (now_ns() - t0) / (double)loops;
        if (round == 0 || each < best) {
            best = each;
        }
    }
    printf("    acquire + release of a pooled stack: %.1f ns (best of %d "
           "rounds of %ld, sweeps included)\n", best, ROUNDS, loops);
    CHECK(s.slot == NULL);
}

static void
test_every_error_has_a_message(void)
{
    begin("every error has a message");
    CHECK(strstr(gs_stack_strerror(GS_STACK_EMAPCOUNT), "max_map_count"));
    CHECK(strstr(gs_stack_strerror(GS_STACK_ECOMMIT), "overcommit"));
    CHECK(strlen(gs_stack_strerror(GS_STACK_ENOMEM)) > 10);
    CHECK(strlen(gs_stack_strerror(GS_STACK_EINVAL)) > 10);
    CHECK(strlen(gs_stack_strerror((enum gs_stack_error)99)) > 0);
}

/* ---- driver ------------------------------------------------------------- */

static void
run_suite(const struct options *opt)
{
    printf("guards by %s\n", stats_now().guard_by_madvise
                                 ? "MADV_GUARD_INSTALL"
                                 : "mprotect");
    test_acquired_stack_is_writable_from_limit_to_top();
    test_touching_the_guard_kills_with_sigsegv();
    test_guard_addresses_are_recognised();
    test_guards_of_unmapped_slabs_are_forgotten();
    test_released_stack_is_reused_without_new_mappings();
    test_sizes_have_pools_of_their_own();
    test_sizes_out_of_range_are_refused();
    test_sizes_are_rounded_up_to_whole_pages();
    test_stats_count_stacks_in_use_and_pooled();
    test_hot_stacks_in_the_pool_are_capped();
    test_many_stacks_live_at_once(opt);
    if (opt->rss) {
        test_dirtied_pages_are_given_back();
        test_unknown_depth_cleans_the_whole_stack();
        test_deep_use_nobody_saw_is_cleaned_by_a_sweep();
        test_idle_pooled_stacks_are_swept_too();
        test_trim_cleans_pooled_stacks_of_busy_slabs();
    }
    else {
        printf("  resident-memory cases skipped: no-rss\n");
    }
    test_exhausted_address_space_gives_enomem(opt);
    test_running_out_of_mappings_gives_emapcount(opt);
    test_threads_share_the_pool_safely(opt);
    test_forked_child_can_use_the_pool_while_a_thread_did();
    test_pooled_acquire_and_release_cost(opt);
    test_every_error_has_a_message();
}

static const struct options *forced_opt;

static int
run_suite_with_mprotect_guards(uintptr_t unused)
{
    (void)unused;
    failures = 0;
    gs_stack_trim();
    gs_stack_force_mprotect_guards();
    run_suite(forced_opt);
    return failures ? 1 : 0;
}

int
main(int argc, char **argv)
{
    struct options opt = {.many = 200000, .loops = 1000000, .rss = 1,
                          .limits = 1};

    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "many=", 5) == 0) {
            opt.many = atol(argv[i] + 5);
        }
        else if (strncmp(argv[i], "loops=", 6) == 0) {
            opt.loops = atol(argv[i] + 6);
        }
        else if (strcmp(argv[i], "no-rss") == 0) {
            opt.rss = 0;
        }
        else if (strcmp(argv[i], "no-limits") == 0) {
            opt.limits = 0;
        }
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    run_suite(&opt);

    struct options forced = opt;
    forced.many = opt.many < 1000 ? opt.many : 1000;
    forced_opt = &forced;
    int status = in_child(run_suite_with_mprotect_guards, 0);
    if (!exited_ok(status)) {
        printf("  FAILED the mprotect pass (wait status %#x)\n", status);
        failures++;
    }
    printf("%s: %d failed\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
