/* Greenlet stacks: reservations with guards, carved from slabs, pooled.
 *
 * A slab is one anonymous MAP_NORESERVE mapping holding up to SLAB_SLOTS
 * stacks; each slot is a guard region followed by the usable stack:
 *
 *   slab base                                             slab end
 *   | guard | stack 0 ......... | guard | stack 1 ......... | ...
 *           ^limit         top^
 *
 * Guards are installed with madvise(MADV_GUARD_INSTALL) where the kernel
 * has it (Linux 6.13+): the slab stays one mapping, so the number of
 * mappings does not grow with the number of greenlets. Elsewhere each
 * stack gets a mapping of its own and its guard is mprotect(PROT_NONE)ed,
 * which splits it in two; running out of mappings is then an error
 * (GS_STACK_EMAPCOUNT), not a crash.
 *
 * Released stacks go back to a LIFO free list of their size and are reused
 * without system calls. The pages a greenlet dirtied below the hot part
 * next to `top` are given back with MADV_DONTNEED; how deep it went is
 * told by the caller (the lowest stack pointer it saw). A greenlet may
 * have gone deeper between two switches than any saved stack pointer
 * shows, so a stack released with a known depth is also queued as
 * "suspect", and every SWEEP_EVERY releases the oldest suspect is cleaned
 * whole: idle pooled stacks lose stale pages too, at one system call per
 * SWEEP_EVERY releases. At most HOT_LIMIT free stacks per size keep their
 * hot part; beyond that a release cleans the hot part too, and a slab
 * whose stacks are all free and cold is unmapped once more than COLD_KEEP
 * cold stacks of its size are pooled. docs/stacks.md has the numbers
 * behind these choices.
 *
 * One mutex guards the pool; fork handlers hold it across fork() so the
 * child never inherits it locked. The SIGSEGV handler's question (is this
 * address in a guard?) is answered from a separate table of slab bounds
 * that is read without locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
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
#ifndef MAP_STACK
#  define MAP_STACK 0
#endif

#define SLAB_SLOTS 64
/* Address space one slab may take. 64 default stacks take 516 MiB; big
   stacks come fewer to a slab (1 GiB ones: 3), and on 32-bit systems a
   few 8 MiB ones, so that one greenlet does not take a sixth of the
   address space. */
#if UINTPTR_MAX > 0xffffffffu
#  define SLAB_MAX_BYTES ((size_t)4 << 30)
#else
#  define SLAB_MAX_BYTES ((size_t)64 << 20)
#endif
#define GUARD_MIN ((size_t)64 << 10)     /* catches large frames too */
#define HOT_PART ((size_t)32 << 10)      /* kept resident in pooled stacks */
#define HOT_LIMIT 256                    /* pooled stacks kept hot, per size */
#define SWEEP_EVERY 128                  /* releases per suspect cleaned */
/* Wholly free slabs are unmapped only while more cold stacks than this
   are pooled for their size: bursts do not thrash mmap and munmap. */
#define COLD_KEEP (2 * SLAB_SLOTS)

/* The guard table: TABLE_CHUNKS chunks of TABLE_CHUNK entries, allocated
   as needed and never freed, so a reader never sees one go away. */
#define TABLE_CHUNK 4096
#define TABLE_CHUNKS 1024

_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2 &&
                   ATOMIC_LONG_LOCK_FREE == 2,
               "the SIGSEGV handler needs lock-free atomics");

enum guard_mode {
    GUARD_UNKNOWN = -1,
    GUARD_MPROTECT = 0,
    GUARD_MADVISE = 1,
};

struct slab;

struct slot {
    struct slab *slab;
    struct slot *prev;          /* free list links, while free */
    struct slot *next;
    struct slot *suspect_prev;  /* suspect queue links, while suspect */
    struct slot *suspect_next;
    uintptr_t limit;
    unsigned char is_free;
    unsigned char is_hot;       /* free with its hot part resident */
    unsigned char is_suspect;   /* free; pages below the depth we were
                                   told of may still be resident */
#ifdef GS_VALGRIND
    unsigned valgrind_id;
#endif
};

struct size_class {
    size_t size;                /* usable bytes, whole pages */
    struct size_class *next;
    struct slot *hot;           /* free, hot part resident (LIFO) */
    struct slot *cold;          /* free, nothing known resident (LIFO) */
    size_t n_hot;
    size_t n_cold;
    struct slab *slabs;         /* every slab of this size */
};

struct slab {
    struct slab *prev;          /* in its size class's list */
    struct slab *next;
    struct size_class *cls;
    uintptr_t base;
    size_t length;
    size_t table_index;
    unsigned n_slots;
    unsigned n_free;
    unsigned n_hot;
    unsigned mappings;          /* 1, or 2 per stack with mprotect guards */
    struct slot slots[];
};

/* One slab's bounds, for the SIGSEGV handler. A seqlock: the writer (who
   holds the pool lock) makes `seq` odd, changes the fields, makes it even
   again; a reader that sees it odd or changed skips the entry. Only slabs
   being created or unmapped are ever skipped, and those hold no stack in
   use, so no guard of a running stack can be missed. */
struct bounds {
    atomic_uint seq;
    atomic_uintptr_t base;      /* 0: entry unused */
    atomic_uintptr_t end;
    atomic_size_t slot_size;
};

static _Atomic(struct bounds *) table_chunk[TABLE_CHUNKS];
static atomic_size_t table_len;     /* entries ever used; never shrinks */
static size_t table_hint;           /* no unused entry below this one */

static struct {
    pthread_mutex_t lock;
    size_t page_size;
    size_t guard_size;          /* whole pages; also read by the handler */
    size_t hot_bytes;           /* HOT_PART rounded up to whole pages */
    enum guard_mode guard_mode;
    unsigned slab_slots;        /* stacks per slab with madvise guards */
    struct size_class *classes;
    struct size_class *last;    /* the class asked for last time */
    struct slot *suspect_head;  /* oldest suspect: cleaned next */
    struct slot *suspect_tail;
    unsigned releases;          /* counts to SWEEP_EVERY */
    size_t in_use;
    size_t abandoned;
    size_t pooled;
    size_t hot;
    size_t mappings;
    size_t reserved;
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .guard_mode = GUARD_UNKNOWN,
};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static inline size_t
round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* ---- /proc, on slow paths only ------------------------------------------ */

/* The number at the start of a /proc file, or -1. */
static long
read_proc_long(const char *path)
{
    char buf[32];
    long value = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n > 0) {
        char *end;
        buf[n] = '\0';
        value = strtol(buf, &end, 10);
        if (end == buf) {
            value = -1;
        }
    }
    return value;
}

/* Lines in /proc/self/maps: the mappings the process holds. A small buffer
   on purpose: we may be running on a greenlet's 64 KiB stack. */
static long
count_mappings(void)
{
    char buf[2048];
    long lines = 0;
    ssize_t n;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            lines += buf[i] == '\n';
        }
    }
    close(fd);
    return n < 0 ? -1 : lines;
}

/* Why mmap or mprotect failed with ENOMEM. */
static enum gs_stack_error
classify_enomem(void)
{
    long max_maps = read_proc_long("/proc/sys/vm/max_map_count");
    long maps = count_mappings();
    /* The kernel refuses a new mapping at max_map_count; /proc/self/maps
       shows a few more or fewer lines (vsyscall, a racing thread). */
    if (max_maps > 0 && maps >= 0 && maps + 64 >= max_maps) {
        return GS_STACK_EMAPCOUNT;
    }
    if (read_proc_long("/proc/sys/vm/overcommit_memory") == 2) {
        return GS_STACK_ECOMMIT;
    }
    return GS_STACK_ENOMEM;
}

/* ---- set-up, locking, fork ---------------------------------------------- */

static void
before_fork(void)
{
    pthread_mutex_lock(&pool.lock);
}

/* In the parent and in the child. The child's only thread is the one that
   forked and took the lock in before_fork(): a plain unlock is right.
   Stacks other threads were using stay counted as in use, for good. */
static void
after_fork(void)
{
    pthread_mutex_unlock(&pool.lock);
}

static void
init_pool(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    const char *force = getenv("GS_STACK_NO_MADV_GUARD");

    pool.page_size = ps > 0 ? (size_t)ps : 4096;
    pool.guard_size = round_up(GUARD_MIN, pool.page_size);
    pool.hot_bytes = round_up(HOT_PART, pool.page_size);
    if (force != NULL && strcmp(force, "1") == 0) {
        pool.guard_mode = GUARD_MPROTECT;
    }
    /* Strict overcommit charges a reservation in full, MAP_NORESERVE or
       not: a slab of 64 would take 64 stacks' worth of commit for one
       greenlet, and other allocations of the process would fail. */
    pool.slab_slots =
        read_proc_long("/proc/sys/vm/overcommit_memory") == 2 ? 1
                                                              : SLAB_SLOTS;
    if (pthread_atfork(before_fork, after_fork, after_fork) != 0) {
        /* Only without memory for the handler record. Then a fork while
           another thread is inside the allocator leaves the child's lock
           held; single-threaded programs and the GIL-holding extension
           are unaffected. Nothing better to do before any stack exists. */
    }
}

static inline void
enter(void)
{
    pthread_once(&pool_once, init_pool);
    pthread_mutex_lock(&pool.lock);
}

static inline void
leave(void)
{
    pthread_mutex_unlock(&pool.lock);
}

/* Does reading `addr` fault? The kernel copying from it into a pipe fails
   with EFAULT instead of faulting us. Emulators and valgrind only check
   their own view of the page and let the kernel do the copy, so this
   neither crashes nor fools them. 1 faults, 0 readable, -1 cannot tell
   (no file descriptor to spare). */
static int
read_faults(uintptr_t addr)
{
    int fds[2];
    int faults;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return -1;
    }
    faults = write(fds[1], (const void *)addr, 1) < 0 && errno == EFAULT;
    close(fds[0]);
    close(fds[1]);
    return faults;
}

/* Does MADV_GUARD_INSTALL work here? Asked once, on a scratch mapping.
   Kernels before 6.13 answer EINVAL; seccomp filters may answer EPERM or
   ENOSYS. Some environments accept the advice and do nothing (qemu-user
   answers 0 to advice it does not know), so the guard is also tried; if
   that cannot be done, the kernel's word is taken. Under valgrind,
   mprotect guards: valgrind tracks those and reports an overflow as one.
   Returns -1 (errno set) when the question could not be asked. */
static int
detect_guard_mode(void)
{
    size_t len = 2 * pool.page_size;
    int err = 0;
    void *mem;

#ifdef GS_VALGRIND
    if (RUNNING_ON_VALGRIND) {
        pool.guard_mode = GUARD_MPROTECT;
        return 0;
    }
#endif
    mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        return -1;
    }
    if (madvise(mem, pool.page_size, MADV_GUARD_INSTALL) == 0) {
        pool.guard_mode = read_faults((uintptr_t)mem) != 0 ? GUARD_MADVISE
                                                           : GUARD_MPROTECT;
    }
    else if (errno == ENOMEM || errno == EAGAIN || errno == EINTR) {
        err = errno;        /* ask again next time */
    }
    else {
        pool.guard_mode = GUARD_MPROTECT;       /* for good */
    }
    if (munmap(mem, len) != 0) {
        /* Two pages stay reserved; the answer above still holds. */
    }
    errno = err;
    return err == 0 ? 0 : -1;
}

/* ---- the guard table ---------------------------------------------------- */

static inline struct bounds *
table_entry(size_t i)
{
    struct bounds *chunk = atomic_load_explicit(&table_chunk[i / TABLE_CHUNK],
                                                memory_order_acquire);
    return chunk == NULL ? NULL : &chunk[i % TABLE_CHUNK];
}

static void
table_write(struct bounds *e, uintptr_t base, uintptr_t end, size_t slot_size)
{
    unsigned seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
    atomic_store_explicit(&e->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->base, base, memory_order_relaxed);
    atomic_store_explicit(&e->end, end, memory_order_relaxed);
    atomic_store_explicit(&e->slot_size, slot_size, memory_order_relaxed);
    atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
}

/* Record a slab's bounds; its index goes to *index. -1 if out of room. */
static int
table_add(uintptr_t base, uintptr_t end, size_t slot_size, size_t *index)
{
    size_t len = atomic_load_explicit(&table_len, memory_order_relaxed);
    size_t i = table_hint;

    while (i < len &&
           atomic_load_explicit(&table_entry(i)->base,
                                memory_order_relaxed) != 0) {
        i++;
    }
    if (i == len) {
        if (i == (size_t)TABLE_CHUNK * TABLE_CHUNKS) {
            return -1;
        }
        if (table_entry(i) == NULL) {
            struct bounds *chunk = calloc(TABLE_CHUNK, sizeof(*chunk));
            if (chunk == NULL) {
                return -1;
            }
            atomic_store_explicit(&table_chunk[i / TABLE_CHUNK], chunk,
                                  memory_order_release);
        }
    }
    table_write(table_entry(i), base, end, slot_size);
    if (i == len) {
        atomic_store_explicit(&table_len, len + 1, memory_order_release);
    }
    table_hint = i + 1;
    *index = i;
    return 0;
}

static void
table_remove(size_t i)
{
    table_write(table_entry(i), 0, 0, 0);
    if (i < table_hint) {
        table_hint = i;
    }
}

/* ---- free lists --------------------------------------------------------- */

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
suspect_push(struct slot *s)
{
    s->is_suspect = 1;
    s->suspect_next = NULL;
    s->suspect_prev = pool.suspect_tail;
    if (pool.suspect_tail != NULL) {
        pool.suspect_tail->suspect_next = s;
    }
    else {
        pool.suspect_head = s;
    }
    pool.suspect_tail = s;
}

static void
suspect_remove(struct slot *s)
{
    if (!s->is_suspect) {
        return;
    }
    if (s->suspect_prev != NULL) {
        s->suspect_prev->suspect_next = s->suspect_next;
    }
    else {
        pool.suspect_head = s->suspect_next;
    }
    if (s->suspect_next != NULL) {
        s->suspect_next->suspect_prev = s->suspect_prev;
    }
    else {
        pool.suspect_tail = s->suspect_prev;
    }
    s->suspect_prev = s->suspect_next = NULL;
    s->is_suspect = 0;
}

static void
put_free(struct size_class *cls, struct slot *s, int hot)
{
    s->is_free = 1;
    s->is_hot = (unsigned char)hot;
    if (hot) {
        list_push(&cls->hot, s);
        cls->n_hot++;
        s->slab->n_hot++;
        pool.hot++;
    }
    else {
        list_push(&cls->cold, s);
        cls->n_cold++;
    }
    s->slab->n_free++;
    pool.pooled++;
}

static void
take_free(struct size_class *cls, struct slot *s)
{
    if (s->is_hot) {
        list_remove(&cls->hot, s);
        cls->n_hot--;
        s->slab->n_hot--;
        pool.hot--;
    }
    else {
        list_remove(&cls->cold, s);
        cls->n_cold--;
    }
    suspect_remove(s);
    s->is_free = 0;
    s->is_hot = 0;
    s->slab->n_free--;
    pool.pooled--;
}

static struct size_class *
class_for(size_t size)
{
    struct size_class *c = pool.last;
    if (c != NULL && c->size == size) {
        return c;
    }
    for (c = pool.classes; c != NULL; c = c->next) {
        if (c->size == size) {
            pool.last = c;
            return c;
        }
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->size = size;
    c->next = pool.classes;
    pool.classes = c;
    pool.last = c;
    return c;
}

/* ---- slabs -------------------------------------------------------------- */

/* Give [from, to) back to the kernel; the next touch finds zeroes. */
static int
clean(uintptr_t from, uintptr_t to)
{
    if (to <= from) {
        return 0;
    }
    return madvise((void *)from, to - from, MADV_DONTNEED);
}

/* Clean a free slot whole: all of it if cold, all but the hot part if hot.
   It is no longer suspect then, unless madvise failed. */
static void
clean_whole(struct slot *s)
{
    uintptr_t top = s->limit + s->slab->cls->size;
    suspect_remove(s);
    if (clean(s->limit, s->is_hot ? top - pool.hot_bytes : top) != 0) {
        suspect_push(s);    /* a later sweep or trim tries again */
    }
}

/* Reserve `*slots` slots of `slot_size`, or fewer when the kernel says
   ENOMEM (address space limits, strict overcommit): 64, 16, 4, 1. */
static void *
reserve(size_t slot_size, unsigned *slots)
{
    for (;;) {
        void *mem = mmap(NULL, slot_size * *slots, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                             MAP_STACK,
                         -1, 0);
        if (mem != MAP_FAILED || errno != ENOMEM || *slots == 1) {
            return mem;
        }
        *slots = *slots > 4 ? *slots / 4 : 1;
    }
}

static int
install_guards(uintptr_t base, size_t slot_size, unsigned slots)
{
    for (unsigned i = 0; i < slots; i++) {
        void *guard = (void *)(base + i * slot_size);
        int rc = pool.guard_mode == GUARD_MADVISE
                     ? madvise(guard, pool.guard_size, MADV_GUARD_INSTALL)
                     : mprotect(guard, pool.guard_size, PROT_NONE);
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

static enum gs_stack_error
new_slab(struct size_class *cls)
{
    size_t slot_size = pool.guard_size + cls->size;
    unsigned slots;
    struct slab *slab = NULL;
    void *mem = MAP_FAILED;
    size_t length = 0;
    enum gs_stack_error err = GS_STACK_OK;

    if (pool.guard_mode == GUARD_UNKNOWN && detect_guard_mode() != 0) {
        err = errno == ENOMEM ? classify_enomem() : GS_STACK_ENOMEM;
        goto error;
    }
    if (pool.guard_mode == GUARD_MADVISE) {
        size_t fit = SLAB_MAX_BYTES / slot_size;
        slots = fit < pool.slab_slots ? (fit > 0 ? (unsigned)fit : 1)
                                      : pool.slab_slots;
    }
    else {
        /* Each guard splits the mapping anyway: one stack per mapping,
           so a free stack can be unmapped on its own. */
        slots = 1;
    }
    mem = reserve(slot_size, &slots);
    if (mem == MAP_FAILED) {
        err = errno == ENOMEM ? classify_enomem() : GS_STACK_ENOMEM;
        goto error;
    }
    length = slot_size * slots;
    /* Kernels before 6.7 do not infer this from MAP_STACK: with
       transparent huge pages "always", touching the top of a stack would
       otherwise fault in 2 MiB. */
    if (madvise(mem, length, MADV_NOHUGEPAGE) != 0) {
        /* EINVAL: a kernel without THP. Any failure costs memory at
           worst, never correctness: go on without it. */
    }
    if (install_guards((uintptr_t)mem, slot_size, slots) != 0) {
        err = errno == ENOMEM ? classify_enomem() : GS_STACK_ENOMEM;
        goto error;
    }
    slab = calloc(1, sizeof(*slab) + slots * sizeof(struct slot));
    if (slab == NULL) {
        err = GS_STACK_ENOMEM;
        goto error;
    }
    slab->cls = cls;
    slab->base = (uintptr_t)mem;
    slab->length = length;
    slab->n_slots = slots;
    slab->mappings = pool.guard_mode == GUARD_MADVISE ? 1 : 2 * slots;
    if (table_add(slab->base, slab->base + length, slot_size,
                  &slab->table_index) != 0) {
        err = GS_STACK_ENOMEM;
        goto error;
    }
    /* Pushed last to first, so the lowest slot is handed out first. */
    for (unsigned i = slots; i-- > 0;) {
        struct slot *s = &slab->slots[i];
        s->slab = slab;
        s->limit = slab->base + i * slot_size + pool.guard_size;
        put_free(cls, s, 0);
    }
    slab->next = cls->slabs;
    if (cls->slabs != NULL) {
        cls->slabs->prev = slab;
    }
    cls->slabs = slab;
    pool.mappings += slab->mappings;
    pool.reserved += length;
    return GS_STACK_OK;

error:
    if (mem != MAP_FAILED && munmap(mem, length) != 0) {
        /* Left reserved and unused: nothing else can be done with it. */
    }
    free(slab);
    return err;
}

/* Unmap a slab whose stacks are all free. -1 if munmap failed (it may need
   a new mapping to split a merged one); the slab then stays as it was. */
static int
free_slab(struct slab *slab)
{
    struct size_class *cls = slab->cls;

    /* Out of the table first: from here on a fault in the range is not
       ours (the kernel may hand the range to someone else). */
    table_remove(slab->table_index);
    if (munmap((void *)slab->base, slab->length) != 0) {
        /* Cannot fail: the entry just freed is free again. */
        (void)table_add(slab->base, slab->base + slab->length,
                        pool.guard_size + cls->size, &slab->table_index);
        return -1;
    }
    for (unsigned i = 0; i < slab->n_slots; i++) {
        take_free(cls, &slab->slots[i]);
    }
    if (slab->prev != NULL) {
        slab->prev->next = slab->next;
    }
    else {
        cls->slabs = slab->next;
    }
    if (slab->next != NULL) {
        slab->next->prev = slab->prev;
    }
    pool.mappings -= slab->mappings;
    pool.reserved -= slab->length;
    free(slab);
    return 0;
}

/* ---- the interface ------------------------------------------------------ */

enum gs_stack_error
gs_stack_acquire(struct gs_stack *out, size_t size)
{
    enum gs_stack_error err = GS_STACK_OK;
    struct size_class *cls;
    struct slot *s;

    memset(out, 0, sizeof(*out));
    if (size == 0) {
        size = GS_STACK_DEFAULT_SIZE;
    }
    if (size < GS_STACK_MIN_SIZE || size > GS_STACK_MAX_SIZE) {
        return GS_STACK_EINVAL;
    }
    enter();
    size = round_up(size, pool.page_size);
    cls = class_for(size);
    if (cls == NULL) {
        err = GS_STACK_ENOMEM;
        goto done;
    }
    if (cls->hot == NULL && cls->cold == NULL) {
        err = new_slab(cls);
        if (err != GS_STACK_OK) {
            goto done;
        }
    }
    s = cls->hot != NULL ? cls->hot : cls->cold;
    take_free(cls, s);
    pool.in_use++;
    out->limit = s->limit;
    out->top = s->limit + size;
    out->size = size;
    out->slot = s;
#ifdef GS_VALGRIND
    s->valgrind_id = VALGRIND_STACK_REGISTER(out->limit, out->top);
#endif

done:
    leave();
    return err;
}

void
gs_stack_release(struct gs_stack *stack, uintptr_t low_water)
{
    struct slot *s = stack->slot;
    struct size_class *cls;
    struct slab *slab;
    uintptr_t limit, top, dirty_from;
    int hot, told;

    if (s == NULL) {
        return;
    }
    memset(stack, 0, sizeof(*stack));
    enter();
    slab = s->slab;
    cls = slab->cls;
    limit = s->limit;
    top = limit + cls->size;
#ifdef GS_VALGRIND
    VALGRIND_STACK_DEREGISTER(s->valgrind_id);
#endif
    /* The lowest page known to be dirty; all of them when the depth is
       unknown or implausible. */
    dirty_from = low_water & ~(uintptr_t)(pool.page_size - 1);
    told = low_water != 0 && low_water <= top && dirty_from >= limit;
    if (!told) {
        dirty_from = limit;
    }
    hot = cls->n_hot < HOT_LIMIT;
    if (!hot && dirty_from > top - pool.hot_bytes) {
        dirty_from = top - pool.hot_bytes;  /* every greenlet touches it */
    }
    pool.in_use--;
    put_free(cls, s, hot);
    /* A failed madvise leaves pages resident, nothing worse: the stack is
       still fine to reuse, and a sweep or gs_stack_trim() tries again. */
    if (clean(dirty_from, hot ? top - pool.hot_bytes : top) != 0 || told) {
        suspect_push(s);
    }
    if (++pool.releases == SWEEP_EVERY) {
        pool.releases = 0;
        if (pool.suspect_head != NULL) {
            clean_whole(pool.suspect_head);
        }
    }
    if (slab->n_free == slab->n_slots && slab->n_hot == 0 &&
        cls->n_cold > COLD_KEEP) {
        free_slab(slab);    /* if munmap fails the slab stays pooled */
    }
    leave();
}

void
gs_stack_abandon(struct gs_stack *stack)
{
    struct slot *s = stack->slot;
    uintptr_t keep_from;

    if (s == NULL) {
        return;
    }
    /* Frame objects may still point into the top of the stack (where the
       first frame chunk lives): keep that part mapped and resident, and
       the slot out of the pool for good. The rest goes back now. */
    keep_from = stack->top - pool.hot_bytes;
    memset(stack, 0, sizeof(*stack));
    enter();
    clean(s->limit, keep_from);
    pool.in_use--;
    pool.abandoned++;
    leave();
}

void
gs_stack_trim(void)
{
    enter();
    pool.releases = 0;      /* everything is clean: the sweep starts over */
    for (struct size_class *cls = pool.classes; cls != NULL;
         cls = cls->next) {
        struct slab *next;
        for (struct slab *slab = cls->slabs; slab != NULL; slab = next) {
            next = slab->next;
            if (slab->n_free == slab->n_slots && free_slab(slab) == 0) {
                continue;
            }
            /* Kept (a stack in use, or munmap failed): clean the free
               stacks' pages that may be resident. */
            for (unsigned i = 0; i < slab->n_slots; i++) {
                struct slot *s = &slab->slots[i];
                if (!s->is_free || (!s->is_hot && !s->is_suspect)) {
                    continue;
                }
                if (s->is_hot) {
                    take_free(cls, s);
                    put_free(cls, s, 0);
                }
                clean_whole(s);
            }
        }
    }
    leave();
}

void
gs_stack_force_mprotect_guards(void)
{
    enter();
    pool.guard_mode = GUARD_MPROTECT;
    leave();
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
    size_t len = atomic_load_explicit(&table_len, memory_order_acquire);

    for (size_t i = 0; i < len; i++) {
        struct bounds *e = table_entry(i);
        unsigned seq;
        uintptr_t base, end;
        size_t slot_size;

        if (e == NULL) {
            break;      /* cannot be: table_len covers published chunks */
        }
        seq = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (seq & 1) {
            continue;
        }
        base = atomic_load_explicit(&e->base, memory_order_relaxed);
        end = atomic_load_explicit(&e->end, memory_order_relaxed);
        slot_size = atomic_load_explicit(&e->slot_size, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) != seq) {
            continue;
        }
        if (base <= addr && addr < end) {
            /* guard_size is set once, before the first entry exists. */
            return (addr - base) % slot_size < pool.guard_size;
        }
    }
    return 0;
}

void
gs_stack_get_stats(struct gs_stack_stats *stats)
{
    enter();
    if (pool.guard_mode == GUARD_UNKNOWN && detect_guard_mode() != 0) {
        /* Could not ask (no memory for a scratch page): no guard of
           either kind exists yet, and the report says mprotect. */
    }
    stats->in_use = pool.in_use;
    stats->abandoned = pool.abandoned;
    stats->pooled = pool.pooled;
    stats->mappings = pool.mappings;
    stats->guard_by_madvise = pool.guard_mode == GUARD_MADVISE;
    stats->hot = pool.hot;
    stats->reserved = pool.reserved;
    leave();
}
