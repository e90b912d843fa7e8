/* Greenlet stacks: reservations with guards, carved from slabs, pooled.
 *
 * A slab is one anonymous MAP_NORESERVE mapping holding SLAB_SLOTS stacks;
 * each slot is a guard region followed by the usable stack:
 *
 *   slab base                                             slab end
 *   | guard | stack 0 ......... | guard | stack 1 ......... | ...
 *           ^limit         top^
 *
 * Guards are installed with madvise(MADV_GUARD_INSTALL) where the kernel
 * has it (Linux 6.13+): the slab stays one mapping, so the number of
 * mappings does not grow with the number of greenlets. Elsewhere each
 * guard is mprotect(PROT_NONE)ed, which splits the mapping (two per
 * stack); running out of mappings is then an error, not a crash.
 *
 * Released stacks go back to a LIFO free list of their size and are reused
 * without system calls. The pages a greenlet dirtied below the hot part
 * next to `top` are given back with MADV_DONTNEED; how deep it went is
 * told by the caller (the lowest stack pointer it saw), and every
 * FULL_CLEAN_EVERY releases a slot is cleaned whole, to catch deep use
 * between switches that no saved stack pointer shows. At most HOT_LIMIT
 * free stacks keep their hot part; beyond that a release cleans the
 * whole stack, and a slab whose stacks are all free is unmapped once
 * more than a slab's worth of cold stacks is pooled. docs/stacks.md has
 * the numbers behind these choices.
 *
 * Callers serialise: the extension calls in with the GIL held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stack.h"

#if defined(__has_include)
#  if __has_include(<valgrind/valgrind.h>)
#    include <valgrind/valgrind.h>
#    define GS_VALGRIND 1
#  endif
#endif

#ifndef MADV_GUARD_INSTALL
#  define MADV_GUARD_INSTALL 102
#endif

#define SLAB_SLOTS 64
#define GUARD_MIN ((size_t)64 << 10)     /* catches large frames too */
#define HOT_PART ((size_t)32 << 10)      /* kept resident in pooled stacks */
#define HOT_LIMIT 256                    /* pooled stacks kept hot */
#define FULL_CLEAN_EVERY 16
#define MAX_SLABS (1 << 16)              /* 4M stacks; bss, untouched */

struct slab;

struct slot {
    struct slab *slab;
    struct slot *prev;          /* free list links, while free */
    struct slot *next;
    uintptr_t limit;
    unsigned releases;          /* since the last full clean */
    unsigned char is_free;
    unsigned char is_hot;       /* free with its hot part resident */
#ifdef GS_VALGRIND
    unsigned valgrind_id;
#endif
};

struct size_class {
    size_t size;                /* usable bytes, whole pages */
    struct size_class *next;
    struct slot *hot;           /* free, hot part resident (LIFO) */
    struct slot *cold;          /* free, nothing resident */
    size_t n_hot;
    size_t n_cold;
};

struct slab {
    uintptr_t base;
    size_t length;
    struct size_class *cls;
    unsigned n_free;
    int table_index;
    struct slot slots[SLAB_SLOTS];
};

/* Read by the SIGSEGV handler without locks: entries are written before
   `slab_count` covers them, and cleared (end = 0) before unmapping. */
struct slab_bounds {
    volatile uintptr_t base;
    volatile uintptr_t end;
    volatile size_t slot_size;
    volatile size_t guard;
};
static struct slab_bounds slab_table[MAX_SLABS];
static volatile int slab_count;

static size_t page_size;
static size_t guard_size;
static int guard_mode = -1;     /* -1 unknown, 1 madvise, 0 mprotect */
static struct size_class *classes;
static size_t stats_in_use;
static size_t stats_pooled;
static size_t stats_slabs;

static void
init_once(void)
{
    if (page_size != 0) {
        return;
    }
    long ps = sysconf(_SC_PAGESIZE);
    page_size = ps > 0 ? (size_t)ps : 4096;
    guard_size = GUARD_MIN > page_size ? GUARD_MIN : page_size;
    const char *force = getenv("GS_STACK_NO_MADV_GUARD");
    if (force != NULL && force[0] == '1') {
        guard_mode = 0;
    }
}

static size_t
round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* ---- free lists ------------------------------------------------------- */

static void
list_push(struct slot **head, struct slot *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head != NULL) {
        (*head)->prev = s;
    }
    *head = s;
}

static void
list_remove(struct slot **head, struct slot *s)
{
    if (s->prev != NULL) {
        s->prev->next = s->next;
    }
    else {
        *head = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    s->prev = s->next = NULL;
}

static void
take_free(struct size_class *cls, struct slot *s)
{
    if (s->is_hot) {
        list_remove(&cls->hot, s);
        cls->n_hot--;
    }
    else {
        list_remove(&cls->cold, s);
        cls->n_cold--;
    }
    s->is_free = 0;
    s->is_hot = 0;
    s->slab->n_free--;
    stats_pooled--;
}

static struct size_class *
class_for(size_t size)
{
    struct size_class *c;
    for (c = classes; c != NULL; c = c->next) {
        if (c->size == size) {
            return c;
        }
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->size = size;
    c->next = classes;
    classes = c;
    return c;
}

/* ---- slabs ------------------------------------------------------------ */

static int
read_proc_int(const char *path)
{
    FILE *f = fopen(path, "r");
    int value = -1;
    if (f != NULL) {
        if (fscanf(f, "%d", &value) != 1) {
            value = -1;
        }
        fclose(f);
    }
    return value;
}

static int
count_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int lines = 0;
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

/* Why an mmap/mprotect failed with ENOMEM; only on the error path. */
static enum gs_stack_error
classify_enomem(void)
{
    int max_maps = read_proc_int("/proc/sys/vm/max_map_count");
    int maps = count_mappings();
    if (max_maps > 0 && maps >= 0 && maps + 16 >= max_maps) {
        return GS_STACK_EMAPCOUNT;
    }
    if (read_proc_int("/proc/sys/vm/overcommit_memory") == 2) {
        return GS_STACK_ECOMMIT;
    }
    return GS_STACK_ENOMEM;
}

static int
table_add(struct slab *slab, size_t slot_size)
{
    int i;
    for (i = 0; i < slab_count; i++) {
        if (slab_table[i].end == 0) {
            break;
        }
    }
    if (i == MAX_SLABS) {
        return -1;
    }
    slab_table[i].base = slab->base;
    slab_table[i].slot_size = slot_size;
    slab_table[i].guard = guard_size;
    __atomic_store_n(&slab_table[i].end, slab->base + slab->length,
                     __ATOMIC_RELEASE);
    if (i == slab_count) {
        __atomic_store_n(&slab_count, i + 1, __ATOMIC_RELEASE);
    }
    slab->table_index = i;
    return 0;
}

/* Does the guard at `addr` really fault? Some environments accept
   MADV_GUARD_INSTALL and do nothing (qemu-user returns 0 for advice it
   does not know). The kernel copying from a guard page into a pipe fails
   with EFAULT instead of faulting us. Asked once per process. */
static int
guard_really_faults(uintptr_t addr)
{
    int fds[2];
    int faults;
    if (pipe(fds) != 0) {
        return 0;
    }
    faults = write(fds[1], (const void *)addr, 1) < 0 && errno == EFAULT;
    close(fds[0]);
    close(fds[1]);
    return faults;
}

static int
install_guards(uintptr_t base, size_t slot_size, unsigned slots)
{
    if (guard_mode != 0) {
        int ok = 1;
        for (unsigned i = 0; i < slots && ok; i++) {
            ok = madvise((void *)(base + i * slot_size), guard_size,
                         MADV_GUARD_INSTALL) == 0;
        }
        if (ok && guard_mode == -1 && !guard_really_faults(base)) {
            ok = 0;
            errno = EINVAL;
        }
        if (ok) {
            guard_mode = 1;
            return 0;
        }
        if (guard_mode == 1 || errno != EINVAL) {
            return -1;      /* it worked before: a real failure */
        }
        guard_mode = 0;     /* this kernel lacks it: for good */
    }
    for (unsigned i = 0; i < slots; i++) {
        if (mprotect((void *)(base + i * slot_size), guard_size,
                     PROT_NONE) != 0) {
            return -1;
        }
    }
    return 0;
}

static enum gs_stack_error
new_slab(struct size_class *cls)
{
    size_t slot_size = guard_size + cls->size;
    unsigned slots = SLAB_SLOTS;
    struct slab *slab;
    void *mem = MAP_FAILED;

    slab = calloc(1, sizeof(*slab));
    if (slab == NULL) {
        return GS_STACK_ENOMEM;
    }
    while (slots > 0) {
        mem = mmap(NULL, slot_size * slots, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                   -1, 0);
        if (mem != MAP_FAILED) {
            break;
        }
        /* Strict overcommit counts the whole reservation: try smaller. */
        slots /= 4;
    }
    if (mem == MAP_FAILED) {
        free(slab);
        return classify_enomem();
    }
    slab->base = (uintptr_t)mem;
    slab->length = slot_size * slots;
    slab->cls = cls;
    if (install_guards(slab->base, slot_size, slots) != 0) {
        enum gs_stack_error err = errno == ENOMEM ? classify_enomem()
                                                  : GS_STACK_ENOMEM;
        munmap(mem, slab->length);
        free(slab);
        return err;
    }
    if (table_add(slab, slot_size) != 0) {
        munmap(mem, slab->length);
        free(slab);
        return GS_STACK_ENOMEM;
    }
    for (unsigned i = 0; i < slots; i++) {
        struct slot *s = &slab->slots[slots - 1 - i];
        s->slab = slab;
        s->limit = slab->base + (slots - 1 - i) * slot_size + guard_size;
        s->is_free = 1;
        list_push(&cls->cold, s);
        cls->n_cold++;
    }
    slab->n_free = slots;
    stats_pooled += slots;
    stats_slabs++;
    return GS_STACK_OK;
}

static void
free_slab(struct slab *slab)
{
    struct size_class *cls = slab->cls;
    unsigned slots = (unsigned)(slab->length / (guard_size + cls->size));

    for (unsigned i = 0; i < slots; i++) {
        take_free(cls, &slab->slots[i]);
    }
    __atomic_store_n(&slab_table[slab->table_index].end, 0,
                     __ATOMIC_RELEASE);
    if (munmap((void *)slab->base, slab->length) != 0) {
        /* Keep the bookkeeping consistent: the memory stays reserved
           but unused; nothing else can be done about it. */
        return;
    }
    stats_slabs--;
    free(slab);
}

/* ---- the interface ---------------------------------------------------- */

enum gs_stack_error
gs_stack_acquire(struct gs_stack *out, size_t size)
{
    struct size_class *cls;
    struct slot *s;

    memset(out, 0, sizeof(*out));
    init_once();
    if (size == 0) {
        size = GS_STACK_DEFAULT_SIZE;
    }
    if (size < GS_STACK_MIN_SIZE || size > GS_STACK_MAX_SIZE) {
        return GS_STACK_EINVAL;
    }
    size = round_up(size, page_size);
    cls = class_for(size);
    if (cls == NULL) {
        return GS_STACK_ENOMEM;
    }
    if (cls->hot == NULL && cls->cold == NULL) {
        enum gs_stack_error err = new_slab(cls);
        if (err != GS_STACK_OK) {
            return err;
        }
    }
    s = cls->hot != NULL ? cls->hot : cls->cold;
    take_free(cls, s);
    out->limit = s->limit;
    out->top = s->limit + size;
    out->size = size;
    out->slot = s;
#ifdef GS_VALGRIND
    s->valgrind_id = VALGRIND_STACK_REGISTER(out->limit, out->top);
#endif
    stats_in_use++;
    return GS_STACK_OK;
}

static int
dontneed(uintptr_t from, uintptr_t to)
{
    if (to <= from) {
        return 0;
    }
    return madvise((void *)from, to - from, MADV_DONTNEED);
}

void
gs_stack_release(struct gs_stack *stack, uintptr_t low_water)
{
    struct slot *s = stack->slot;
    struct size_class *cls;
    uintptr_t hot_floor;

    if (s == NULL) {
        return;
    }
    cls = s->slab->cls;
#ifdef GS_VALGRIND
    VALGRIND_STACK_DEREGISTER(s->valgrind_id);
#endif
    hot_floor = stack->top - HOT_PART;
    /* The lowest page known to be dirty; all of it when unknown or due. */
    uintptr_t dirty_from = low_water & ~(uintptr_t)(page_size - 1);
    if (low_water == 0 || ++s->releases >= FULL_CLEAN_EVERY ||
        dirty_from < stack->limit) {
        dirty_from = stack->limit;
        s->releases = 0;
    }
    if (cls->n_hot >= HOT_LIMIT) {
        /* Enough hot stacks pooled: this one keeps nothing resident. */
        dontneed(dirty_from, stack->top);
        s->is_hot = 0;
    }
    else {
        dontneed(dirty_from, hot_floor);
        s->is_hot = 1;
    }
    /* A failed madvise leaves pages resident, nothing worse: the stack
       is still fine to reuse. */
    s->is_free = 1;
    if (s->is_hot) {
        list_push(&cls->hot, s);
        cls->n_hot++;
    }
    else {
        list_push(&cls->cold, s);
        cls->n_cold++;
    }
    s->slab->n_free++;
    stats_in_use--;
    stats_pooled++;
    memset(stack, 0, sizeof(*stack));

    unsigned slots = (unsigned)(s->slab->length / (guard_size + cls->size));
    if (s->slab->n_free == slots && cls->n_cold > 2 * SLAB_SLOTS) {
        int all_cold = 1;
        for (unsigned i = 0; i < slots && all_cold; i++) {
            all_cold = !s->slab->slots[i].is_hot;
        }
        if (all_cold) {
            free_slab(s->slab);
        }
    }
}

void
gs_stack_trim(void)
{
    for (struct size_class *cls = classes; cls != NULL; cls = cls->next) {
        /* Cool every hot stack, then unmap every wholly free slab. */
        while (cls->hot != NULL) {
            struct slot *s = cls->hot;
            uintptr_t top = s->limit + cls->size;
            list_remove(&cls->hot, s);
            cls->n_hot--;
            dontneed(s->limit, top);
            s->is_hot = 0;
            s->releases = 0;
            list_push(&cls->cold, s);
            cls->n_cold++;
        }
        int again = 1;
        while (again) {
            again = 0;
            for (struct slot *s = cls->cold; s != NULL; s = s->next) {
                struct slab *slab = s->slab;
                unsigned slots =
                    (unsigned)(slab->length / (guard_size + cls->size));
                if (slab->n_free == slots) {
                    free_slab(slab);
                    again = 1;
                    break;
                }
            }
        }
    }
}

const char *
gs_stack_strerror(enum gs_stack_error err)
{
    switch (err) {
    case GS_STACK_OK:
        return "no error";
    case GS_STACK_ENOMEM:
        return "out of address space or memory";
    case GS_STACK_EMAPCOUNT:
        return "the process has as many memory mappings as "
               "vm.max_map_count allows";
    case GS_STACK_ECOMMIT:
        return "the kernel refused to commit the reservation "
               "(vm.overcommit_memory=2 counts every stack in full; "
               "a smaller stack_size helps)";
    case GS_STACK_EINVAL:
        return "stack size out of range";
    }
    return "unknown error";
}

int
gs_stack_addr_in_guard(uintptr_t addr)
{
    int n = __atomic_load_n(&slab_count, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        uintptr_t end = __atomic_load_n(&slab_table[i].end,
                                        __ATOMIC_ACQUIRE);
        uintptr_t base = slab_table[i].base;
        if (end != 0 && base <= addr && addr < end) {
            return (addr - base) % slab_table[i].slot_size <
                   slab_table[i].guard;
        }
    }
    return 0;
}

void
gs_stack_get_stats(struct gs_stack_stats *stats)
{
    init_once();
    stats->in_use = stats_in_use;
    stats->pooled = stats_pooled;
    /* With mprotect guards each stack splits its slab in two. */
    stats->mappings = guard_mode == 0 ? stats_slabs * (2 * SLAB_SLOTS)
                                      : stats_slabs;
    stats->guard_by_madvise = guard_mode != 0;
}
