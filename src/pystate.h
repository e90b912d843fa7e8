/* The part of CPython's per-thread state that follows a greenlet.
 *
 * Python code running on a greenlet's stack changes fields of the thread
 * state (the current frame, the frame data stack, recursion depth, the
 * handled exception, the contextvars context...). Each greenlet keeps its
 * own copy in a struct gs_pystate; a switch saves the running greenlet's
 * fields and restores the target's. Which fields these are differs per
 * CPython version: every such difference lives in pystate.c, and nothing
 * outside it tests PY_VERSION_HEX.
 */
#ifndef GS_PYSTATE_H
#define GS_PYSTATE_H

#include "Python.h"

#include <stddef.h>
#include <stdint.h>

/* Storage for one greenlet's saved state. Its real layout is private to
 * pystate.c, which checks at compile time that it fits. Zero-filled means
 * "nothing saved". */
struct gs_pystate {
    void *opaque[24];
};

/* A pending exception taken out of the thread state, to be put back later
 * (the form differs per version). */
struct gs_pending_exc {
    PyObject *parts[3];
};

/* Copy the running greenlet's fields out of `ts` into `s`. No Python code
 * runs. Called just before the stack switch. */
void gs_pystate_save(struct gs_pystate *s, PyThreadState *ts);

/* Install `s` into `ts`; `s` then holds nothing. No Python code runs.
 * Called just after the stack switch, on the greenlet's own stack. */
void gs_pystate_restore(struct gs_pystate *s, PyThreadState *ts);

/* Fill `s` with the state of a greenlet about to run for the first time
 * from the thread state `ts` it is started from: no frames, an empty data
 * stack, no handled exception, the caller's recursion depth (as upstream),
 * the context already in `s` (set through gr_context before the start),
 * and the stack reservation [stack_limit, stack_top) it runs on. May keep
 * the top of that reservation for the frame data stack (3.11+); returns
 * the address the C stack starts from. */
uintptr_t gs_pystate_prepare_start(struct gs_pystate *s, PyThreadState *ts,
                                   uintptr_t stack_limit,
                                   uintptr_t stack_top);

/* Called on a greenlet that is about to leave its stack for good, after
 * its last Python code ran, with its state `s`: frees the frame data
 * stack CPython allocated for it. */
void gs_pystate_finish(struct gs_pystate *s, PyThreadState *ts);

/* Does a frame object point into the frames of the suspended greenlet
 * saved in `s`? Then its memory must outlive it. */
int gs_pystate_frames_exposed(struct gs_pystate *s);

/* Release what `s` holds of a suspended greenlet that will never run
 * again (its thread has exited, or the interpreter is finalizing): its
 * references, and with `free_frames` the frame memory CPython allocated.
 * Its frames are not run. Returns 1 if what its frames referenced was
 * released as well (where upstream does so: 3.15), so that the caller
 * releases what the suspended C calls under them hold too; 0 if that is
 * left referenced, as upstream leaves it. */
int gs_pystate_discard(struct gs_pystate *s, int free_frames);

/* The context slot of a greenlet that is not running (borrowed slot; the
 * pointer it holds is a strong reference or NULL). */
PyObject **gs_pystate_context_slot(struct gs_pystate *s);

/* The context of the running greenlet, which lives in the thread state
 * (borrowed, NULL for none); setting it (a new reference is taken)
 * invalidates the ContextVar caches. */
PyObject *gs_pystate_current_context(PyThreadState *ts);
void gs_pystate_set_current_context(PyThreadState *ts, PyObject *context);

/* The thread's trashcan nesting depth, for upstream's test helper; -1 where
 * this CPython has no such counter (3.13+). */
int gs_pystate_trash_delete_nesting(PyThreadState *ts);

/* New reference to the top Python frame of a suspended greenlet, or NULL
 * (without an exception) if it has none. */
PyObject *gs_pystate_top_frame(struct gs_pystate *s, PyThreadState *ts);

/* Visit / clear the references held in `s` (context, handled exception),
 * for the owner's tp_traverse and tp_clear. */
int gs_pystate_traverse(struct gs_pystate *s, visitproc visit, void *arg);
void gs_pystate_clear(struct gs_pystate *s);

/* Take the pending exception out of the thread state (it may be none),
 * and put it back. */
void gs_pystate_fetch_exc(struct gs_pending_exc *e);
void gs_pystate_restore_exc(struct gs_pending_exc *e);

/* Take the pending exception out of the thread state and return its
 * instance (a new reference; normalised first where needed). */
PyObject *gs_pystate_take_exc_instance(void);

/* Run a greenlet trace function with CPython's own tracing muted. */
void gs_pystate_enter_tracing(PyThreadState *ts);
void gs_pystate_leave_tracing(PyThreadState *ts);

/* Is the interpreter shutting down? */
int gs_pystate_is_finalizing(void);

/* Once per process, at module import: look up optional CPython functions
 * (3.14's stack protection API). Returns -1 with an exception set if this
 * CPython cannot run greenlets on their own stacks safely. */
int gs_pystate_init_runtime(void);

/* 3.14+: how a greenlet's C stack bounds reach CPython: "api" (3.14.1+),
 * "direct" (the fields are written, for 3.14.0), "none" (before 3.14). */
const char *gs_pystate_stack_bounds_mode(void);

/* Tests: use the direct mode even where the API exists, so that the
 * 3.14.0 path runs on the 3.14 we have. -1 with an exception set if the
 * fields cannot be found (or before 3.14). */
int gs_pystate_force_direct_stack_bounds(void);

#endif /* GS_PYSTATE_H */
