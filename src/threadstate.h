/* Per-thread greenlet bookkeeping: the main greenlet, the current one, the
 * trace function, kills queued from other threads, and the arguments in
 * flight during a switch. One struct gs_thread per Python thread state,
 * created lazily and torn down with the thread state. */
#ifndef GS_THREADSTATE_H
#define GS_THREADSTATE_H

#include "Python.h"

#include "greenlet_type.h"

struct gs_thread {
    PyThreadState *tstate;      /* the thread state this belongs to */
    PyGreenlet *main;           /* strong: the thread's main greenlet */
    PyGreenlet *current;        /* strong: the greenlet running now */
    PyObject *trace;            /* strong or NULL: greenlet.settrace() */
    /* Greenlets whose last reference went away in another thread, queued
       here (each holding a reference) to be killed by this thread. A list
       or NULL; other threads append to it under the GIL. */
    PyObject *deleteme;
    /* What the greenlet being resumed receives: a tuple and a dict, both
       owned, or NULL/NULL when an exception is pending instead. */
    PyObject *pending_args;
    PyObject *pending_kwargs;
};

/* This OS thread's bookkeeping, or NULL before the first use. */
extern _Thread_local struct gs_thread *gs_thread_tls;

/* Create this thread's bookkeeping and main greenlet. NULL with an
 * exception set on failure. */
struct gs_thread *gs_thread_create(void);

/* Kill what other threads queued for this one. Keeps a pending exception
 * in place. */
void gs_thread_drain_deleteme(struct gs_thread *ts);

/* The calling thread's bookkeeping, created on first use, with queued
 * kills run first (they may run arbitrary code). NULL with an exception
 * set on failure. */
static inline struct gs_thread *
gs_thread_get(void)
{
    struct gs_thread *ts = gs_thread_tls;
    if (ts == NULL) {
        return gs_thread_create();
    }
    if (ts->deleteme != NULL) {
        gs_thread_drain_deleteme(ts);
    }
    return ts;
}

/* Queue `g` (a new reference is taken) to be killed by thread `owner`.
 * Returns -1 without an exception if it could not be queued. */
int gs_thread_queue_kill(struct gs_thread *owner, PyGreenlet *g);

#endif /* GS_THREADSTATE_H */
