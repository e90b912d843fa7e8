/* Stacks for greenlets: reserved address space with a guard below, handed
 * out from a pool. Python-free on purpose: tests/c/ exercises it alone, and
 * callers turn its error codes into Python exceptions. docs/stacks.md
 * describes the layout, the pool's policy and its measured costs.
 *
 * Thread safety: every function may be called from any thread; a mutex
 * serialises pool operations (uncontended, it costs a few ns), and
 * fork() handlers keep it usable in the child. gs_stack_addr_in_guard()
 * takes no lock at all. */
#ifndef GS_STACK_H
#define GS_STACK_H

#include <stddef.h>
#include <stdint.h>

/* One stack. [limit, top) is usable; the guard lies just below `limit`. */
struct gs_stack {
    uintptr_t top;      /* highest address + 1; a fresh stack starts here */
    uintptr_t limit;    /* lowest usable byte */
    size_t size;        /* top - limit: the size that was asked for, rounded
                           up to whole pages */
    void *slot;         /* the allocator's own bookkeeping; NULL if empty */
};

/* Error codes of gs_stack_acquire(). */
enum gs_stack_error {
    GS_STACK_OK = 0,
    GS_STACK_ENOMEM,        /* address space exhausted (mmap ENOMEM) */
    GS_STACK_EMAPCOUNT,     /* vm.max_map_count reached */
    GS_STACK_ECOMMIT,       /* strict overcommit refused the reservation */
    GS_STACK_EINVAL,        /* size out of range */
};

/* The default usable size: large enough that code that runs in a thread
 * (8 MiB stack) also runs in a greenlet; pages cost memory only once
 * touched. */
#define GS_STACK_DEFAULT_SIZE ((size_t)8 << 20)

/* Smallest size accepted. */
#define GS_STACK_MIN_SIZE ((size_t)64 << 10)

/* Largest size accepted. */
#define GS_STACK_MAX_SIZE ((size_t)1 << 30)

/* Hand out a stack of at least `size` usable bytes (0 = default). A size
 * outside [GS_STACK_MIN_SIZE, GS_STACK_MAX_SIZE] gives GS_STACK_EINVAL; one
 * inside is rounded up to whole pages. On success fills *out and returns
 * GS_STACK_OK; otherwise leaves *out empty and returns an error code.
 * Reuses a pooled stack without system calls when one of that size is
 * free. */
enum gs_stack_error gs_stack_acquire(struct gs_stack *out, size_t size);

/* Give a stack back to the pool. Pages it dirtied beyond a small hot part
 * next to `top` are returned to the kernel: `low_water` is the lowest
 * stack pointer the caller saw on it (0 if unknown: the whole cold part is
 * cleaned). Must not be called for the stack currently running. Leaves
 * *stack empty; does nothing if it already is. */
void gs_stack_release(struct gs_stack *stack, uintptr_t low_water);

/* Give up a stack that can never be released safely: that of a greenlet
 * dropped without running its frames (its thread exited), whose frame
 * objects may outlive it and still point into the top of the stack. The
 * top HOT part stays resident and the slot is never reused; the rest of
 * its memory goes back to the kernel. Leaves *stack empty. */
void gs_stack_abandon(struct gs_stack *stack);

/* A sentence describing an error code, for exception messages. */
const char *gs_stack_strerror(enum gs_stack_error err);

/* Is `addr` inside the guard region of a stack this allocator handed out?
 * Async-signal-safe (a lock-free read of the slab table), for the SIGSEGV
 * handler that reports greenlet stack overflows. */
int gs_stack_addr_in_guard(uintptr_t addr);

/* Statistics, for tests and benchmarks. */
struct gs_stack_stats {
    size_t in_use;          /* stacks handed out and not released */
    size_t abandoned;       /* stacks given up by gs_stack_abandon() */
    size_t pooled;          /* stacks released and kept for reuse */
    size_t mappings;        /* mmap regions this allocator holds; with
                               madvise guards the kernel may merge
                               neighbouring slabs into fewer */
    int guard_by_madvise;   /* 1: MADV_GUARD_INSTALL, 0: mprotect guards */
    size_t hot;             /* pooled stacks whose hot part stays resident */
    size_t reserved;        /* bytes of address space held, guards included */
};
void gs_stack_get_stats(struct gs_stack_stats *stats);

/* Return every pooled stack's memory to the kernel and unmap the slabs
 * that hold no stack in use. For tests and memory-conscious callers. */
void gs_stack_trim(void);

/* Testing aid: stacks reserved from now on get mprotect(PROT_NONE) guards,
 * one mapping per stack, as on kernels without MADV_GUARD_INSTALL (setting
 * GS_STACK_NO_MADV_GUARD=1 in the environment does it from the start).
 * Pooled stacks keep their guards: call gs_stack_trim() first. */
void gs_stack_force_mprotect_guards(void);

#endif /* GS_STACK_H */
