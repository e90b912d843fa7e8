/* Tests of the stack allocator (src/stack.c), with no Python.
 *
 *   cc -O2 -Wall -Wextra -D_GNU_SOURCE -Isrc tests/c/test_stack.c \
 *      src/stack.c -o test_stack && ./test_stack [many]
 *
 * Run it with GS_STACK_NO_MADV_GUARD=1 to test the mprotect guards.
 * `many` is how many stacks the "many live at once" case holds (default
 * 200000 with madvise guards, 1000 with mprotect guards, which cost two
 * mappings per stack). A second argument `no-rss` leaves out the checks
 * of resident memory, for qemu-user, which does not free pages on
 * MADV_DONTNEED. Prints one line per case; exits 1 if any failed.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stack.h"

static int failures;
static const char *current_case;

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            printf("  FAILED %s: %s (line %d)\n", current_case, #cond, \
                   __LINE__); \
            failures++; \
        } \
    } while (0)

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

static long
rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f == NULL) {
        return -1;
    }
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) {
        resident = -1;
    }
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Run fn in a forked child; return the signal that killed it, or 0. */
static int
signal_of_child(void (*fn)(uintptr_t), uintptr_t arg)
{
    pid_t pid = fork();
    int status = 0;
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        fn(arg);
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void
write_byte(uintptr_t addr)
{
    *(volatile char *)addr = 1;
}

static void
test_acquired_stack_is_writable_end_to_end(void)
{
    struct gs_stack s;
    current_case = "acquired stack is writable end to end";
    CHECK(gs_stack_acquire(&s, 0) == GS_STACK_OK);
    CHECK(s.top - s.limit == s.size);
    CHECK(s.size >= GS_STACK_DEFAULT_SIZE);
    CHECK(s.top % 16 == 0);
    *(volatile char *)s.limit = 1;
    *(volatile char *)(s.top - 1) = 2;
    CHECK(*(volatile char *)s.limit == 1);
    gs_stack_release(&s, s.top - 64);
    CHECK(s.slot == NULL);
}

static void
test_touching_the_guard_kills_with_sigsegv(void)
{
    struct gs_stack s;
    struct gs_stack_stats stats;
    current_case = "touching the guard kills with SIGSEGV";
    CHECK(gs_stack_acquire(&s, 0) == GS_STACK_OK);
    CHECK(signal_of_child(write_byte, s.limit - 1) == SIGSEGV);
    CHECK(signal_of_child(write_byte, s.limit) == 0);
    gs_stack_get_stats(&stats);
    printf("  guards by %s\n", stats.guard_by_madvise ? "MADV_GUARD_INSTALL"
                                                      : "mprotect");
    gs_stack_release(&s, 0);
}

static void
test_guard_addresses_are_recognised(void)
{
    struct gs_stack s;
    int on_heap = 0;
    current_case = "guard addresses are recognised";
    CHECK(gs_stack_acquire(&s, 256 << 10) == GS_STACK_OK);
    CHECK(gs_stack_addr_in_guard(s.limit - 1));
    CHECK(gs_stack_addr_in_guard(s.limit - 4096));
    CHECK(!gs_stack_addr_in_guard(s.limit));
    CHECK(!gs_stack_addr_in_guard(s.top - 1));
    CHECK(!gs_stack_addr_in_guard((uintptr_t)&on_heap));
    CHECK(!gs_stack_addr_in_guard(0));
    gs_stack_release(&s, 0);
}

static void
test_released_stack_is_reused_without_new_mappings(void)
{
    struct gs_stack a, b;
    struct gs_stack_stats before, after;
    current_case = "released stack is reused without new mappings";
    CHECK(gs_stack_acquire(&a, 0) == GS_STACK_OK);
    uintptr_t first = a.limit;
    gs_stack_release(&a, a.top - 128);
    gs_stack_get_stats(&before);
    long maps = mapping_count();
    for (int i = 0; i < 1000; i++) {
        CHECK(gs_stack_acquire(&b, 0) == GS_STACK_OK);
        gs_stack_release(&b, b.top - 128);
    }
    CHECK(gs_stack_acquire(&b, 0) == GS_STACK_OK);
    CHECK(b.limit == first);
    gs_stack_release(&b, 0);
    gs_stack_get_stats(&after);
    CHECK(after.mappings == before.mappings);
    CHECK(mapping_count() == maps);
}

static void
test_sizes_out_of_range_are_refused(void)
{
    struct gs_stack s;
    current_case = "sizes out of range are refused";
    CHECK(gs_stack_acquire(&s, 1024) == GS_STACK_EINVAL);
    CHECK(s.slot == NULL);
    CHECK(gs_stack_acquire(&s, GS_STACK_MAX_SIZE + 1) == GS_STACK_EINVAL);
    CHECK(gs_stack_acquire(&s, GS_STACK_MIN_SIZE + 1) == GS_STACK_OK);
    CHECK(s.size % (size_t)sysconf(_SC_PAGESIZE) == 0);
    CHECK(s.size > GS_STACK_MIN_SIZE);
    gs_stack_release(&s, 0);
    CHECK(strlen(gs_stack_strerror(GS_STACK_EMAPCOUNT)) > 10);
}

static void
test_many_stacks_live_at_once(long many)
{
    struct gs_stack *stacks = calloc((size_t)many, sizeof(*stacks));
    struct gs_stack_stats stats;
    long ok = 0;
    current_case = "many stacks live at once";
    CHECK(stacks != NULL);
    if (stacks == NULL) {
        return;
    }
    long maps_before = mapping_count();
    for (long i = 0; i < many; i++) {
        if (gs_stack_acquire(&stacks[i], 0) != GS_STACK_OK) {
            break;
        }
        *(volatile char *)(stacks[i].top - 1) = 1;
        ok++;
    }
    long maps_during = mapping_count();
    gs_stack_get_stats(&stats);
    printf("  %ld stacks of %zu KiB live: /proc/self/maps %ld -> %ld lines"
           " (allocator's count %zu)\n", ok,
           (size_t)(GS_STACK_DEFAULT_SIZE >> 10), maps_before, maps_during,
           stats.mappings);
    CHECK(ok == many);
    CHECK(maps_during < 65530);
    if (stats.guard_by_madvise) {
        CHECK(maps_during - maps_before <= many / 32 + 4);
    }
    for (long i = 0; i < ok; i++) {
        gs_stack_release(&stacks[i], stacks[i].top - 64);
    }
    gs_stack_trim();
    gs_stack_get_stats(&stats);
    printf("  after release and trim: %ld lines, %zu in use\n",
           mapping_count(), stats.in_use);
    CHECK(stats.in_use == 0);
    CHECK(mapping_count() <= maps_before + 2);
    free(stacks);
}

static void
test_dirtied_pages_are_given_back(void)
{
    enum { N = 1000, DIRTY = 256 << 10 };
    static struct gs_stack stacks[N];
    current_case = "dirtied pages are given back";
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
    printf("  RSS %ld KiB -> %ld KiB with %d x %d KiB dirty -> %ld KiB "
           "released\n", base, held, N, DIRTY >> 10, after);
    CHECK(held - base > N * (DIRTY >> 10) * 9 / 10);
    /* At most the hot parts of the pooled hot stacks stay resident. */
    CHECK(after - base < 256 * 32 + 2048);
    gs_stack_trim();
    CHECK(rss_kib() - base < 2048);
}

static void
test_unknown_depth_cleans_the_whole_stack(void)
{
    struct gs_stack s;
    current_case = "unknown depth cleans the whole stack";
    gs_stack_trim();
    long base = rss_kib();
    CHECK(gs_stack_acquire(&s, 0) == GS_STACK_OK);
    memset((void *)(s.top - (4 << 20)), 1, 4 << 20);
    gs_stack_release(&s, 0);
    CHECK(rss_kib() - base < 256);
}

int
main(int argc, char **argv)
{
    const char *no_madv = getenv("GS_STACK_NO_MADV_GUARD");
    int mprotect_mode = no_madv != NULL && no_madv[0] == '1';
    long many = argc > 1 ? atol(argv[1]) : (mprotect_mode ? 1000 : 200000);

    test_acquired_stack_is_writable_end_to_end();
    test_touching_the_guard_kills_with_sigsegv();
    test_guard_addresses_are_recognised();
    test_released_stack_is_reused_without_new_mappings();
    test_sizes_out_of_range_are_refused();
    test_many_stacks_live_at_once(many);
    if (!(argc > 2 && strcmp(argv[2], "no-rss") == 0)) {
        test_dirtied_pages_are_given_back();
        test_unknown_depth_cleans_the_whole_stack();
    }
    printf("%s: %d failed\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
