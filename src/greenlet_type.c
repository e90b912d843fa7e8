/* The greenlet type: creation, switch, throw, death, GC and attributes.
 *
 * Every started greenlet other than a thread's main one runs on a stack of
 * its own from stack.c; a switch saves the running greenlet's slice of the
 * thread state (pystate.c), swaps stacks (src/arch), and restores the
 * target's. Nothing is ever copied between stacks.
 *
 * Who holds what:
 * - struct gs_thread.current holds a reference to the running greenlet.
 *   A switch hands that reference to the greenlet it resumes, as the
 *   value gs_swap() returns there ("origin"); the resumed side drops it
 *   once it is done with the origin (releasing its stack if it died).
 * - A greenlet holds its parent, and once started, its thread's main
 *   greenlet. Nothing holds a suspended greenlet but its users: when they
 *   let go, it is killed (GreenletExit thrown in) before it is freed.
 */
#define PY_SSIZE_T_CLEAN
#include "Python.h"

#include <stdint.h>
#include <string.h>

#include "greenlet_type.h"
#include "pystate.h"
#include "stack.h"
#include "switch.h"
#include "threadstate.h"

#if defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define GS_ASAN 1
#  endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#  define GS_ASAN 1
#endif
#ifdef GS_ASAN
#  include <pthread.h>
#  include <sanitizer/asan_interface.h>
#  include <sanitizer/common_interface_defs.h>
#endif

struct gs_greenlet {
    PyGreenlet *self;           /* borrowed back pointer */
    PyObject *run;              /* the run attribute until it starts */
    PyObject *start_callable;   /* what `run` looked up to at the start,
                                   until the new greenlet takes it */
    /* The call of run in progress (callable, args, kwargs): kept here, not
       on the greenlet's C stack, so that murder() can release them. */
    PyObject *call[3];
    PyGreenlet *parent;         /* strong; NULL for a main greenlet */
    PyGreenlet *main_greenlet;  /* strong, once started; NULL for main */
    struct gs_thread *thread;   /* main greenlets: their live thread */
    void *sp;                   /* saved stack pointer while suspended */
    struct gs_stack stack;      /* started user greenlets */
    uintptr_t c_stack_top;      /* where its C stack starts, in `stack` */
    uintptr_t low_water;        /* lowest saved stack pointer seen */
    size_t stack_size;          /* requested usable size, 0 = default */
    struct gs_pystate pystate;  /* saved thread state while not running */
    unsigned char is_main;
    unsigned char started;
    unsigned char finished;     /* run returned or raised, or murdered */
    unsigned char force_switch_error;   /* UnswitchableGreenlet tests */
};

struct gs_globals gs_globals;

static Py_ssize_t live_main_greenlets;

static inline struct gs_greenlet *
impl_of(PyGreenlet *g)
{
    return g->pimpl;
}

static inline int
is_active(struct gs_greenlet *g)
{
    if (g->is_main) {
        return g->thread != NULL;
    }
    return g->started && !g->finished;
}

/* The thread a started greenlet belongs to, NULL if it exited. */
static inline struct gs_thread *
owner_thread(struct gs_greenlet *g)
{
    if (g->is_main) {
        return g->thread;
    }
    if (g->main_greenlet == NULL) {
        return NULL;
    }
    return impl_of(g->main_greenlet)->thread;
}

/* Started, alive, and its thread is gone: it can never run again. */
static inline int
in_dead_thread(struct gs_greenlet *g)
{
    return !g->is_main && g->main_greenlet != NULL &&
           impl_of(g->main_greenlet)->thread == NULL;
}

/* The main greenlet of the thread `g` belongs to, found through its
   parents if it has not started (borrowed), or NULL. */
static PyGreenlet *
lineage_main(PyGreenlet *g)
{
    while (g != NULL) {
        struct gs_greenlet *i = impl_of(g);
        if (i->is_main) {
            return g;
        }
        if (i->main_greenlet != NULL) {
            return i->main_greenlet;
        }
        g = i->parent;
    }
    return NULL;
}

Py_ssize_t
gs_greenlet_main_count(void)
{
    return live_main_greenlets;
}

/* ---- allocation ------------------------------------------------------- */

/* Give a freshly allocated greenlet object (or NULL, its allocation
   failed) its implementation; on failure the object is released. */
static struct gs_greenlet *
attach_impl(PyGreenlet *self)
{
    if (self == NULL) {
        return NULL;
    }
    struct gs_greenlet *g = PyMem_RawCalloc(1, sizeof(*g));
    if (g == NULL) {
        PyErr_NoMemory();
        Py_DECREF(self);
        return NULL;
    }
    g->self = self;
    self->pimpl = g;
    return g;
}

PyGreenlet *
gs_greenlet_new_main(struct gs_thread *ts)
{
    PyGreenlet *self;
    struct gs_greenlet *g;

    self = (PyGreenlet *)PyType_GenericAlloc(&PyGreenlet_Type, 0);
    g = attach_impl(self);
    if (g == NULL) {
        return NULL;
    }
    g->is_main = 1;
    g->started = 1;
    g->thread = ts;
#ifdef GS_ASAN
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            g->stack.limit = (uintptr_t)addr;   /* slot stays NULL */
            g->stack.size = size;
        }
        pthread_attr_destroy(&attr);
    }
#endif
    live_main_greenlets++;
    return self;
}

void
gs_greenlet_thread_exited(PyGreenlet *main)
{
    if (main != NULL) {
        impl_of(main)->thread = NULL;
    }
}

static PyObject *
green_new(PyTypeObject *type, PyObject *Py_UNUSED(args),
          PyObject *Py_UNUSED(kwargs))
{
    struct gs_thread *ts = gs_thread_get();
    PyGreenlet *self;
    struct gs_greenlet *g;

    if (ts == NULL) {
        return NULL;
    }
    /* object.__new__ ignores its arguments only when given none. */
    self = (PyGreenlet *)PyBaseObject_Type.tp_new(
        type, gs_globals.empty_tuple, NULL);
    g = attach_impl(self);
    if (g == NULL) {
        return NULL;
    }
    g->parent = (PyGreenlet *)Py_NewRef(ts->current);
    g->stack_size = gs_globals.default_stack_size;
    return (PyObject *)self;
}

/* Give a greenlet's stack back to the pool once nothing runs on it. */
static void
release_stack(struct gs_greenlet *g)
{
#ifdef GS_ASAN
    /* Frames abandoned on a dead stack leave their redzones poisoned;
       the memory may next be a new greenlet's stack or anything else. */
    ASAN_UNPOISON_MEMORY_REGION((void *)g->stack.limit, g->stack.size);
#endif
    /* Its final switch away never returned, so its last stack pointer
       is not in low_water yet. */
    uintptr_t low_water = g->low_water;
    if (g->sp != NULL && (uintptr_t)g->sp < low_water) {
        low_water = (uintptr_t)g->sp;
    }
    gs_stack_release(&g->stack, low_water);
}

/* ---- switching -------------------------------------------------------- */

/* Leave the running greenlet `cur` for `target`, whose context is ready
   (started and suspended, or laid out by gs_init). Returns, once something
   switches back to `cur`, the greenlet that did: a strong reference. */
static PyGreenlet *
swap_to(struct gs_thread *ts, struct gs_greenlet *cur,
        struct gs_greenlet *target, PyGreenlet *release)
{
    PyThreadState *tstate = ts->tstate;
    PyGreenlet *origin = ts->current;   /* our reference, handed over */
    void *resumed_by;

    ts->current = (PyGreenlet *)Py_NewRef(target->self);
    /* ts->current holds the target now, so this cannot free anything. */
    Py_XDECREF(release);
    if (cur->finished) {
        /* Leaving for good: its last Python code has run. */
        gs_pystate_finish(&cur->pystate, tstate);
    }
    gs_pystate_save(&cur->pystate, tstate);
#ifdef GS_ASAN
    /* Tell AddressSanitizer which stack we go to (a main greenlet's
       `stack` holds its thread's bounds, see gs_greenlet_new_main); a
       dying greenlet passes NULL so its fake stack is freed. */
    void *fake_stack = NULL;
    __sanitizer_start_switch_fiber(cur->finished ? NULL : &fake_stack,
                                   (const void *)target->stack.limit,
                                   target->stack.size);
#endif
    resumed_by = gs_swap(&cur->sp, target->sp, origin);
    /* Back on our stack: note how deep we were when we left, so that the
       pool knows which pages to give back when we die. */
    if ((uintptr_t)cur->sp < cur->low_water) {
        cur->low_water = (uintptr_t)cur->sp;
    }
#ifdef GS_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
#endif
    gs_pystate_restore(&cur->pystate, tstate);
    return (PyGreenlet *)resumed_by;
}

/* Pack what a resumed switch() returns, as upstream does: the positional
   arguments, unwrapped if there is exactly one; the keywords alone if
   there are no positional ones; else both as a pair. Steals both. */
static PyObject *
pack_result(PyObject *args, PyObject *kwargs)
{
    if (kwargs == NULL || PyDict_GET_SIZE(kwargs) == 0) {
        Py_XDECREF(kwargs);
        if (PyTuple_GET_SIZE(args) == 1) {
            PyObject *only = Py_NewRef(PyTuple_GET_ITEM(args, 0));
            Py_DECREF(args);
            return only;
        }
        return args;
    }
    if (PyTuple_GET_SIZE(args) == 0) {
        Py_DECREF(args);
        return kwargs;
    }
    PyObject *pair = PyTuple_Pack(2, args, kwargs);
    Py_DECREF(args);
    Py_DECREF(kwargs);
    return pair;
}

/* Call the thread's trace function for a switch from `origin` into
   `target`. On failure tracing is turned off and an exception is set. */
static int
call_trace(struct gs_thread *ts, PyObject *event, PyGreenlet *origin,
           PyGreenlet *target)
{
    PyObject *trace = Py_NewRef(ts->trace);  /* it may reset itself */
    struct gs_pending_exc saved;
    PyObject *result;

    gs_pystate_fetch_exc(&saved);
    gs_pystate_enter_tracing(ts->tstate);
    result = PyObject_CallFunction(trace, "O(OO)", event, origin, target);
    gs_pystate_leave_tracing(ts->tstate);
    Py_DECREF(trace);
    if (result == NULL) {
        Py_CLEAR(ts->trace);
        Py_XDECREF(saved.parts[0]);
        Py_XDECREF(saved.parts[1]);
        Py_XDECREF(saved.parts[2]);
        return -1;
    }
    Py_DECREF(result);
    gs_pystate_restore_exc(&saved);
    return 0;
}

/* Everything a greenlet does when it has just been resumed by `origin`
   (a strong reference, consumed): release the origin's stack if it died,
   take the arguments in flight, call the trace function. Fills *args and
   *kwargs (owned), or leaves them NULL with an exception set. */
static void
after_resume(struct gs_thread *ts, PyGreenlet *self, PyGreenlet *origin,
             PyObject **args, PyObject **kwargs)
{
    struct gs_greenlet *o = impl_of(origin);

    if (o->finished && o->stack.slot != NULL) {
        release_stack(o);
    }
    *args = ts->pending_args;
    *kwargs = ts->pending_kwargs;
    ts->pending_args = NULL;
    ts->pending_kwargs = NULL;
    if (*args == NULL && !PyErr_Occurred()) {
        PyErr_SetString(gs_globals.error,
                        "cannot switch with no pending arguments or "
                        "exception");
    }
    if (ts->trace != NULL) {
        PyObject *event = *args != NULL ? gs_globals.str_switch
                                        : gs_globals.str_throw;
        if (call_trace(ts, event, origin, self) < 0) {
            Py_CLEAR(*args);
            Py_CLEAR(*kwargs);
        }
    }
    /* Dropping the origin may kill it (it may have been its last
       reference), which runs Python code: keep our exception aside. */
    if (Py_REFCNT(origin) == 1 && *args == NULL) {
        struct gs_pending_exc saved;
        gs_pystate_fetch_exc(&saved);
        Py_DECREF(origin);
        gs_pystate_restore_exc(&saved);
    }
    else {
        Py_DECREF(origin);
    }
}

static void greenlet_entry(void *arg);

static void
release_call(struct gs_greenlet *g)
{
    for (size_t i = 0; i < sizeof(g->call) / sizeof(g->call[0]); i++) {
        Py_CLEAR(g->call[i]);
    }
}

static int check_same_thread(struct gs_thread *ts, PyGreenlet *target);

/* Take a stack for `target` and lay it out so that the next switch into
   it starts `run`. Looks `run` up first, which may run arbitrary Python
   code, even switches: returns 1 if that started the greenlet (the
   caller then switches to it as to any started greenlet, as upstream
   does), 0 when laid out, -1 with an exception set. */
static int
prepare_start(struct gs_thread *ts, struct gs_greenlet *target)
{
    /* A dying greenlet may be passing an exception up to this one: the
       lookup must neither see nor clear it. */
    struct gs_pending_exc passing;
    gs_pystate_fetch_exc(&passing);
    PyObject *run = PyObject_GetAttr((PyObject *)target->self,
                                     gs_globals.str_run);
    if (run == NULL) {
        Py_XDECREF(passing.parts[0]);
        Py_XDECREF(passing.parts[1]);
        Py_XDECREF(passing.parts[2]);
        return -1;
    }
    gs_pystate_restore_exc(&passing);
    if (target->started) {
        Py_DECREF(run);
        return 1;
    }
    /* The lookup may also have moved it to another thread's lineage. */
    if (check_same_thread(ts, target->self) < 0) {
        Py_DECREF(run);
        return -1;
    }
    if (target->force_switch_error) {
        Py_DECREF(run);
        PyErr_SetString(PyExc_SystemError,
                        "Failed to switch stacks into a greenlet for the "
                        "first time.");
        return -1;
    }
    enum gs_stack_error err = gs_stack_acquire(&target->stack,
                                               target->stack_size);
    if (err != GS_STACK_OK) {
        Py_DECREF(run);
        PyErr_Format(PyExc_MemoryError, "cannot allocate a greenlet stack: %s",
                     gs_stack_strerror(err));
        return -1;
    }
    /* The run attribute itself is dropped by the new greenlet, on its own
       stack: dropping it may run a __del__ that switches. */
    target->start_callable = run;
    Py_XSETREF(target->main_greenlet, (PyGreenlet *)Py_NewRef(ts->main));
    target->started = 1;
    uintptr_t c_stack_top = gs_pystate_prepare_start(
        &target->pystate, ts->tstate, target->stack.limit, target->stack.top);
    target->c_stack_top = c_stack_top;
    target->low_water = c_stack_top;
    target->sp = gs_init(c_stack_top, greenlet_entry, target->stack.limit);
    return 0;
}

/* Check that `target` may be switched to from this thread. */
static int
check_same_thread(struct gs_thread *ts, PyGreenlet *target)
{
    PyGreenlet *main = lineage_main(target);

    if (main == NULL) {
        PyErr_SetString(gs_globals.error,
                        "cannot switch to a garbage collected greenlet");
        return -1;
    }
    if (impl_of(main)->thread == NULL) {
        PyErr_SetString(gs_globals.error,
                        "cannot switch to a different thread (which happens "
                        "to have exited)");
        return -1;
    }
    if (main != ts->main) {
        PyErr_Format(gs_globals.error,
                     "Cannot switch to a different thread\n\tCurrent:  %R\n"
                     "\tExpected: %R", ts->main, main);
        return -1;
    }
    return 0;
}

/* The switch itself. `args`/`kwargs` are owned (stolen), or NULL when
   `exc` holds an exception to raise in the target instead (stolen too).
   Returns what the current greenlet receives when it is resumed, or NULL
   with an exception set; returns at once, without switching, on error.
   `release`, if not NULL, is a reference dropped once the switch is sure
   to happen (a dying greenlet's hold on its parent: it never returns). */
static PyObject *
switch_to(struct gs_thread *ts, PyGreenlet *target, PyObject *args,
          PyObject *kwargs, struct gs_pending_exc *exc, PyGreenlet *release)
{
    struct gs_greenlet *t;
    struct gs_greenlet *cur;
    PyGreenlet *self;
    PyGreenlet *origin;

    if (check_same_thread(ts, target) < 0) {
        goto fail;
    }
retry:
    /* A dead greenlet passes what it is sent on to its parent. */
    while (impl_of(target)->started && !is_active(impl_of(target))) {
        target = impl_of(target)->parent;
    }
    self = ts->current;
    cur = impl_of(self);
    t = impl_of(target);
    if (target == self) {
        /* Nothing to swap; upstream still reports it to the tracer. */
        if (exc != NULL) {
            gs_pystate_restore_exc(exc);
        }
        if (ts->trace != NULL &&
            call_trace(ts, args != NULL ? gs_globals.str_switch
                                        : gs_globals.str_throw,
                       self, self) < 0) {
            Py_CLEAR(args);
            Py_CLEAR(kwargs);
        }
        if (args == NULL) {
            return NULL;
        }
        return pack_result(args, kwargs);
    }
    if (!t->started) {
        Py_INCREF(target);      /* run's lookup may drop the last ref */
        int started = prepare_start(ts, t);
        if (started < 0) {
            Py_DECREF(target);
            goto fail;
        }
        if (started > 0) {
            /* Started meanwhile by a nested switch: switch to it now as
               to any started greenlet (it may even have died). */
            Py_DECREF(target);
            goto retry;
        }
        Py_DECREF(target);
    }
    else if (t->force_switch_error) {
        PyErr_SetString(PyExc_SystemError,
                        "Failed to switch stacks into a running greenlet.");
        goto fail;
    }
    /* From here to the swap, no Python code may run. */
    ts->pending_args = args;
    ts->pending_kwargs = kwargs;
    if (exc != NULL) {
        gs_pystate_restore_exc(exc);
    }
    /* No reference of ours keeps `self` alive while it is suspended: if
       its users let go, it is killed, which resumes it right here. */
    origin = swap_to(ts, cur, t, release);
    after_resume(ts, self, origin, &args, &kwargs);
    if (args == NULL) {
        return NULL;
    }
    return pack_result(args, kwargs);

fail:
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    if (exc != NULL) {
        Py_XDECREF(exc->parts[0]);
        Py_XDECREF(exc->parts[1]);
        Py_XDECREF(exc->parts[2]);
    }
    return NULL;
}

/* Where every greenlet starts, on its own stack. Never returns. */
static void
greenlet_entry(void *arg)
{
    struct gs_thread *ts = gs_thread_tls;
    PyGreenlet *self = ts->current;     /* borrowed: ts holds it */
    struct gs_greenlet *g = impl_of(self);
    PyObject *args = NULL;
    PyObject *kwargs = NULL;
    PyObject *result = NULL;

#ifdef GS_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    gs_pystate_restore(&g->pystate, ts->tstate);
    g->call[0] = g->start_callable;
    g->start_callable = NULL;
    after_resume(ts, self, (PyGreenlet *)arg, &args, &kwargs);
    g->call[1] = args;
    g->call[2] = kwargs;
    /* The run attribute goes now, on our own stack: its __del__ may run
       Python code and switch away before run is called (as upstream). */
    if (g->run != NULL) {
        struct gs_pending_exc saved;
        gs_pystate_fetch_exc(&saved);
        Py_CLEAR(g->run);
        gs_pystate_restore_exc(&saved);
    }
    if (args != NULL) {
        result = PyObject_Call(g->call[0], args, kwargs);
    }
    release_call(g);
    if (result == NULL && PyErr_ExceptionMatches(gs_globals.exit)) {
        /* GreenletExit is how a greenlet is asked to end: its instance is
           the value handed to the parent. */
        result = gs_pystate_take_exc_instance();
    }
    g->finished = 1;

    /* Hand the result (or the exception) up the parent chain; a switch
       that returns failed, and its exception goes on to the next. */
    PyGreenlet *parent = g->parent;
    Py_XINCREF(parent);
    while (parent != NULL) {
        PyObject *pass = NULL;
        if (result != NULL) {
            pass = PyTuple_Pack(1, result);
            Py_CLEAR(result);
        }
        /* ts->current's reference to us goes to whoever we resume, as
           the origin, and it releases our stack. */
        if (pass != NULL || PyErr_Occurred()) {
            PyObject *back = switch_to(ts, parent, pass, NULL, NULL, parent);
            /* Reaching here means the switch failed: still our stack, and
               `parent` still ours. */
            Py_XDECREF(back);
        }
        PyGreenlet *next = impl_of(parent)->parent;
        Py_XINCREF(next);
        Py_DECREF(parent);
        parent = next;
    }
    PyErr_WriteUnraisable((PyObject *)self);
    Py_FatalError("greenlet: ran out of parent greenlets to return to");
}

/* ---- killing ---------------------------------------------------------- */

/* A suspended greenlet that can never run again: drop it without running
   any of its frames. */
static void
murder(struct gs_greenlet *g)
{
    /* Its frames were never unwound: if frame objects handed out while it
       was suspended still point at them, the memory under them (its
       stack, where the first frame chunk lives) must never be reused. */
    int exposed = gs_pystate_frames_exposed(&g->pystate);

    if (gs_pystate_discard(&g->pystate, !exposed)) {
        release_call(g);
    }
    g->finished = 1;
    if (g->stack.slot != NULL) {
        if (exposed) {
#ifdef GS_ASAN
            ASAN_UNPOISON_MEMORY_REGION((void *)g->stack.limit,
                                        g->stack.size);
#endif
            gs_stack_abandon(&g->stack);
        }
        else {
            release_stack(g);
        }
    }
}

static PyObject *throw_into(struct gs_thread *ts, PyGreenlet *g,
                            PyObject *typ, PyObject *val, PyObject *tb);

void
gs_greenlet_kill(struct gs_thread *ts, PyGreenlet *self)
{
    struct gs_greenlet *g = impl_of(self);
    struct gs_pending_exc saved;
    PyObject *result;

    if (!is_active(g) || g->is_main) {
        return;
    }
    if (gs_pystate_is_finalizing()) {
        murder(g);
        return;
    }
    gs_pystate_fetch_exc(&saved);
    Py_ssize_t refs_before = Py_REFCNT(self);
    /* Come back here once GreenletExit has unwound it. */
    PyGreenlet *old_parent = g->parent;
    g->parent = (PyGreenlet *)Py_NewRef(ts->current);
    result = throw_into(ts, self, gs_globals.exit, gs_globals.kill_message,
                        NULL);
    if (result == NULL) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    Py_XDECREF(result);
    Py_SETREF(g->parent, old_parent);
    /* Still suspended, but something took a new reference: resurrected,
       which is honoured. Nothing did: it refused to die. */
    if (is_active(g) && Py_REFCNT(self) <= refs_before) {
        /* It caught GreenletExit and switched away: it cannot be freed
           while suspended, so it stays alive for good, as upstream. */
        PyObject *r = PyObject_Repr((PyObject *)self);
        if (r != NULL) {
            PySys_FormatStderr("GreenletExit did not kill %U\n", r);
            Py_DECREF(r);
        }
        else {
            PyErr_Clear();
        }
        Py_INCREF(self);
    }
    gs_pystate_restore_exc(&saved);
}

/* Kill `self`, whose last reference went away, or arrange for it.
   Caller holds a (possibly resurrected) reference. */
static void
kill_unreferenced(PyGreenlet *self)
{
    struct gs_greenlet *g = impl_of(self);
    struct gs_thread *owner;

    if (g->is_main || !is_active(g)) {
        return;
    }
    owner = owner_thread(g);
    if (owner == NULL || gs_pystate_is_finalizing()) {
        murder(g);
    }
    else if (owner != gs_thread_tls) {
        /* Only its own thread can run it: queue the kill there. The
           queue's reference keeps it alive until then. */
        if (gs_thread_queue_kill(owner, self) < 0) {
            murder(g);
        }
    }
    else {
        gs_greenlet_kill(owner, self);
    }
}

static void
green_finalize(PyObject *op)
{
    kill_unreferenced((PyGreenlet *)op);
}

/* ---- GC and deallocation ---------------------------------------------- */

static int
green_traverse(PyObject *op, visitproc visit, void *arg)
{
    PyGreenlet *self = (PyGreenlet *)op;
    struct gs_greenlet *g = impl_of(self);

    Py_VISIT(self->dict);
    if (g == NULL) {
        return 0;
    }
    Py_VISIT(g->run);
    Py_VISIT(g->start_callable);
    Py_VISIT(g->parent);
    Py_VISIT(g->main_greenlet);
    return gs_pystate_traverse(&g->pystate, visit, arg);
}

static int
green_clear(PyObject *op)
{
    PyGreenlet *self = (PyGreenlet *)op;
    struct gs_greenlet *g = impl_of(self);

    Py_CLEAR(self->dict);
    if (g == NULL || is_active(g)) {
        /* Collection finalizes before it clears, and a suspended greenlet
           is killed or resurrected by then; never cut a live one loose. */
        return 0;
    }
    Py_CLEAR(g->run);
    Py_CLEAR(g->start_callable);
    Py_CLEAR(g->parent);
    Py_CLEAR(g->main_greenlet);
    gs_pystate_clear(&g->pystate);
    return 0;
}

static void
green_dealloc(PyObject *op)
{
    PyGreenlet *self = (PyGreenlet *)op;
    struct gs_greenlet *g = impl_of(self);

    if (g != NULL && !g->is_main && is_active(g)) {
        /* The finalizer kills it, queues it or drops it. It runs once per
           object; if it ran before (a queued kill, a subclass __del__ in
           its place), kill here with the same temporary resurrection. */
        if (PyObject_CallFinalizerFromDealloc(op) < 0) {
            return;
        }
        if (is_active(g)) {
            Py_SET_REFCNT(op, 1);
            kill_unreferenced(self);
            Py_SET_REFCNT(op, Py_REFCNT(op) - 1);
            if (Py_REFCNT(op) != 0) {
                return;     /* resurrected */
            }
        }
    }
    PyObject_GC_UnTrack(op);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs(op);
    }
    Py_CLEAR(self->dict);
    if (g != NULL) {
        if (is_active(g) && !g->is_main) {
            murder(g);
        }
        if (g->stack.slot != NULL) {
            release_stack(g);
        }
        Py_CLEAR(g->run);
        Py_CLEAR(g->start_callable);
        Py_CLEAR(g->parent);
        Py_CLEAR(g->main_greenlet);
        gs_pystate_clear(&g->pystate);
        if (g->is_main) {
            live_main_greenlets--;
        }
        self->pimpl = NULL;
        PyMem_RawFree(g);
    }
    Py_TYPE(op)->tp_free(op);
}

/* ---- Python-level methods --------------------------------------------- */

/* The C API receives whatever its caller passes: as upstream, anything
   but a greenlet is a bad argument. */
static int
check_greenlet_arg(PyGreenlet *g)
{
    if (!PyGreenlet_Check(g)) {
        PyErr_BadArgument();
        return -1;
    }
    return 0;
}

PyObject *
gs_greenlet_switch(PyGreenlet *target, PyObject *args, PyObject *kwargs)
{
    struct gs_thread *ts;

    if (check_greenlet_arg(target) < 0) {
        return NULL;
    }
    if (kwargs != NULL && !PyDict_Check(kwargs)) {
        kwargs = NULL;      /* upstream ignores keywords that are not a dict */
    }
    ts = gs_thread_get();
    if (ts == NULL) {
        return NULL;
    }
    if (args == NULL) {
        args = Py_NewRef(gs_globals.empty_tuple);
    }
    else {
        Py_INCREF(args);
    }
    Py_XINCREF(kwargs);
    return switch_to(ts, target, args, kwargs, NULL, NULL);
}

static PyObject *
green_switch(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return gs_greenlet_switch((PyGreenlet *)self, args, kwargs);
}

/* Raise (typ, val, tb), checked as upstream checks them, in `g`. */
static PyObject *
throw_into(struct gs_thread *ts, PyGreenlet *g, PyObject *typ,
           PyObject *val, PyObject *tb)
{
    struct gs_pending_exc exc;
    PyObject *args = NULL;

    if (tb == Py_None) {
        tb = NULL;
    }
    if (tb != NULL && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError,
                        "throw() third argument must be a traceback object");
        return NULL;
    }
    Py_INCREF(typ);
    Py_XINCREF(val);
    Py_XINCREF(tb);
    if (PyExceptionClass_Check(typ)) {
        PyErr_NormalizeException(&typ, &val, &tb);
    }
    else if (PyExceptionInstance_Check(typ)) {
        if (val != NULL && val != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "instance exception may not have a separate "
                            "value");
            goto error;
        }
        Py_XSETREF(val, typ);
        typ = Py_NewRef(PyExceptionInstance_Class(val));
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "exceptions must be classes, or instances, not %s",
                     Py_TYPE(typ)->tp_name);
        goto error;
    }
    if (impl_of(g)->started && !is_active(impl_of(g)) &&
        PyErr_GivenExceptionMatches(typ, gs_globals.exit)) {
        /* Telling a dead greenlet to exit: the exit is its result. */
        args = PyTuple_Pack(1, val != NULL ? val : Py_None);
        Py_DECREF(typ);
        Py_XDECREF(val);
        Py_XDECREF(tb);
        if (args == NULL) {
            return NULL;
        }
        return switch_to(ts, g, args, NULL, NULL, NULL);
    }
    PyErr_Restore(typ, val, tb);
    gs_pystate_fetch_exc(&exc);
    return switch_to(ts, g, NULL, NULL, &exc, NULL);

error:
    Py_DECREF(typ);
    Py_XDECREF(val);
    Py_XDECREF(tb);
    return NULL;
}

PyObject *
gs_greenlet_throw(PyGreenlet *g, PyObject *typ, PyObject *val, PyObject *tb)
{
    struct gs_thread *ts;

    if (check_greenlet_arg(g) < 0) {
        return NULL;
    }
    ts = gs_thread_get();
    if (ts == NULL) {
        return NULL;
    }
    return throw_into(ts, g, typ != NULL ? typ : gs_globals.exit, val, tb);
}

static PyObject *
green_throw(PyObject *self, PyObject *args)
{
    PyObject *typ = gs_globals.exit;
    PyObject *val = NULL;
    PyObject *tb = NULL;

    if (!PyArg_ParseTuple(args, "|OOO:throw", &typ, &val, &tb)) {
        return NULL;
    }
    return gs_greenlet_throw((PyGreenlet *)self, typ, val, tb);
}

static PyObject *
green_getstate(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyErr_Format(PyExc_TypeError, "cannot serialize '%s' object",
                 Py_TYPE(self)->tp_name);
    return NULL;
}

static int set_parent(PyGreenlet *self, PyObject *nparent);

static int
green_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"run", "parent", "stack_size", NULL};
    PyGreenlet *self = (PyGreenlet *)op;
    PyObject *run = NULL;
    PyObject *parent = NULL;
    PyObject *stack_size = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO$O:green", kwlist,
                                     &run, &parent, &stack_size)) {
        return -1;
    }
    if (run != NULL) {
        if (impl_of(self)->started) {
            PyErr_SetString(PyExc_AttributeError,
                            "run cannot be set after the start of the "
                            "greenlet");
            return -1;
        }
        Py_XSETREF(impl_of(self)->run, Py_NewRef(run));
    }
    if (stack_size != NULL && stack_size != Py_None) {
        Py_ssize_t n = PyNumber_AsSsize_t(stack_size, PyExc_OverflowError);
        if (n == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (n < (Py_ssize_t)GS_STACK_MIN_SIZE ||
            (size_t)n > GS_STACK_MAX_SIZE) {
            PyErr_Format(PyExc_ValueError,
                         "stack_size must be between %zu and %zu bytes, "
                         "not %zd", GS_STACK_MIN_SIZE, GS_STACK_MAX_SIZE, n);
            return -1;
        }
        impl_of(self)->stack_size = (size_t)n;
    }
    if (parent != NULL && parent != Py_None) {
        return set_parent(self, parent);
    }
    return 0;
}

/* ---- attributes ------------------------------------------------------- */

static PyObject *
green_getdict(PyObject *op, void *Py_UNUSED(closure))
{
    PyGreenlet *self = (PyGreenlet *)op;
    if (self->dict == NULL) {
        self->dict = PyDict_New();
        if (self->dict == NULL) {
            return NULL;
        }
    }
    return Py_NewRef(self->dict);
}

static int
green_setdict(PyObject *op, PyObject *value, void *Py_UNUSED(closure))
{
    PyGreenlet *self = (PyGreenlet *)op;
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "__dict__ may not be deleted");
        return -1;
    }
    if (!PyDict_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "__dict__ must be a dictionary");
        return -1;
    }
    Py_XSETREF(self->dict, Py_NewRef(value));
    return 0;
}

static PyObject *
green_getrun(PyObject *op, void *Py_UNUSED(closure))
{
    struct gs_greenlet *g = impl_of((PyGreenlet *)op);
    if (g->is_main) {
        PyErr_SetString(PyExc_AttributeError,
                        "Main greenlets do not have a run attribute.");
        return NULL;
    }
    if (g->started || g->run == NULL) {
        PyErr_SetString(PyExc_AttributeError, "run");
        return NULL;
    }
    return Py_NewRef(g->run);
}

static int
green_setrun(PyObject *op, PyObject *value, void *Py_UNUSED(closure))
{
    struct gs_greenlet *g = impl_of((PyGreenlet *)op);
    if (g->is_main) {
        PyErr_SetString(PyExc_AttributeError,
                        "Main greenlets do not have a run attribute.");
        return -1;
    }
    if (g->started) {
        PyErr_SetString(PyExc_AttributeError,
                        "run cannot be set after the start of the greenlet");
        return -1;
    }
    Py_XSETREF(g->run, Py_XNewRef(value));
    return 0;
}

static PyObject *
green_getparent(PyObject *op, void *Py_UNUSED(closure))
{
    PyGreenlet *parent = impl_of((PyGreenlet *)op)->parent;
    if (parent == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(parent);
}

static int
set_parent(PyGreenlet *self, PyObject *nparent)
{
    struct gs_greenlet *g = impl_of(self);
    PyGreenlet *main_of_new = NULL;

    if (nparent == NULL) {
        PyErr_SetString(PyExc_AttributeError, "can't delete attribute");
        return -1;
    }
    if (g->is_main) {
        PyErr_SetString(PyExc_AttributeError,
                        "cannot set the parent of a main greenlet");
        return -1;
    }
    if (!PyGreenlet_Check(nparent)) {
        PyErr_Format(PyExc_TypeError,
                     "GreenletChecker: Expected any type of greenlet, not %s",
                     Py_TYPE(nparent)->tp_name);
        return -1;
    }
    for (PyGreenlet *p = (PyGreenlet *)nparent; p != NULL;
         p = impl_of(p)->parent) {
        if (p == self) {
            PyErr_SetString(PyExc_ValueError, "cyclic parent chain");
            return -1;
        }
        struct gs_greenlet *pi = impl_of(p);
        main_of_new = pi->is_main ? p : pi->main_greenlet;
    }
    if (main_of_new == NULL) {
        PyErr_SetString(PyExc_ValueError,
                        "parent must not be garbage collected");
        return -1;
    }
    if (g->started && g->main_greenlet != main_of_new) {
        PyErr_SetString(PyExc_ValueError,
                        "parent cannot be on a different thread");
        return -1;
    }
    Py_XSETREF(g->parent, (PyGreenlet *)Py_NewRef(nparent));
    return 0;
}

static int
green_setparent(PyObject *op, PyObject *value, void *Py_UNUSED(closure))
{
    return set_parent((PyGreenlet *)op, value);
}

static int running_somewhere(struct gs_greenlet *g);

static PyObject *
green_getframe(PyObject *op, void *Py_UNUSED(closure))
{
    struct gs_greenlet *g = impl_of((PyGreenlet *)op);
    struct gs_thread *ts = gs_thread_tls;
    PyObject *frame = NULL;

    /* Only a suspended greenlet has frames to show (one running shows
       them through sys._getframe()). Its frames stay where they are while
       it is suspended, in whichever thread, even once that thread has
       exited (a greenlet dropped without running keeps its stack, see
       murder()); we hold the GIL, so nothing runs them meanwhile. */
    if (ts == NULL) {
        ts = gs_thread_get();
        if (ts == NULL) {
            return NULL;
        }
    }
    if (is_active(g) && !running_somewhere(g)) {
        frame = gs_pystate_top_frame(&g->pystate, ts->tstate);
    }
    if (frame == NULL) {
        Py_RETURN_NONE;
    }
    return frame;
}

/* Is `g` the greenlet running in its thread right now? */
static int
running_somewhere(struct gs_greenlet *g)
{
    struct gs_thread *owner;
    if (!is_active(g)) {
        return 0;
    }
    owner = owner_thread(g);
    return owner != NULL && owner->current == g->self;
}

static PyObject *
green_getcontext(PyObject *op, void *Py_UNUSED(closure))
{
    struct gs_greenlet *g = impl_of((PyGreenlet *)op);
    PyObject *context;

    if (running_somewhere(g)) {
        if (owner_thread(g) != gs_thread_tls) {
            PyErr_SetString(PyExc_ValueError,
                            "cannot get context of a greenlet that is "
                            "running in a different thread");
            return NULL;
        }
        context = gs_pystate_current_context(PyThreadState_Get());
    }
    else {
        context = *gs_pystate_context_slot(&g->pystate);
    }
    if (context == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(context);
}

static int
green_setcontext(PyObject *op, PyObject *value, void *Py_UNUSED(closure))
{
    struct gs_greenlet *g = impl_of((PyGreenlet *)op);
    PyObject **slot;

    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError,
                        "can't delete context attribute");
        return -1;
    }
    if (value == Py_None) {
        value = NULL;
    }
    else if (!PyContext_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError,
                        "greenlet context must be a contextvars.Context or "
                        "None");
        return -1;
    }
    if (running_somewhere(g)) {
        if (owner_thread(g) != gs_thread_tls) {
            PyErr_SetString(PyExc_ValueError,
                            "cannot set context of a greenlet that is "
                            "running in a different thread");
            return -1;
        }
        gs_pystate_set_current_context(PyThreadState_Get(), value);
        return 0;
    }
    slot = gs_pystate_context_slot(&g->pystate);
    Py_XSETREF(*slot, Py_XNewRef(value));
    return 0;
}

static int
is_dead(struct gs_greenlet *g)
{
    if (in_dead_thread(g)) {
        return 1;
    }
    if (g->is_main) {
        return g->thread == NULL;
    }
    return g->started && g->finished;
}

static PyObject *
green_getdead(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(is_dead(impl_of((PyGreenlet *)op)));
}

static PyObject *
green_get_stack_saved(PyObject *op, void *Py_UNUSED(closure))
{
    /* Upstream reports the bytes of C stack it copied to the heap. Ours
       never moves; report the bytes of its own stack a suspended greenlet
       has in use (0 while running, unstarted or dead), which is what
       memory accounting built on this number wants to know. */
    struct gs_greenlet *g = impl_of((PyGreenlet *)op);
    Py_ssize_t used = 0;

    if (!g->is_main && is_active(g) && !running_somewhere(g) &&
        g->stack.slot != NULL && g->sp != NULL) {
        used = (Py_ssize_t)(g->c_stack_top - (uintptr_t)g->sp);
    }
    return PyLong_FromSsize_t(used);
}

static PyObject *
green_get_stack_size(PyObject *op, void *Py_UNUSED(closure))
{
    struct gs_greenlet *g = impl_of((PyGreenlet *)op);
    if (g->is_main) {
        Py_RETURN_NONE;
    }
    return PyLong_FromSize_t(g->stack_size != 0 ? g->stack_size
                                                : GS_STACK_DEFAULT_SIZE);
}

static int
green_bool(PyObject *op)
{
    struct gs_greenlet *g = impl_of((PyGreenlet *)op);
    return is_active(g) && !in_dead_thread(g);
}

static PyObject *
green_repr(PyObject *op)
{
    PyGreenlet *self = (PyGreenlet *)op;
    struct gs_greenlet *g = impl_of(self);
    struct gs_thread *owner = g->started ? owner_thread(g) : NULL;
    const char *tp_name = Py_TYPE(op)->tp_name;

    if (!is_dead(g)) {
        const char *where;
        if (gs_thread_tls != NULL && gs_thread_tls->current == self) {
            where = " current";
        }
        else {
            where = g->started ? " suspended" : "";
        }
        return PyUnicode_FromFormat("<%s object at %p (otid=%p)%s%s%s%s>",
                                    tp_name, op, (void *)owner, where,
                                    is_active(g) ? " active" : "",
                                    g->started ? " started" : " pending",
                                    g->is_main ? " main" : "");
    }
    return PyUnicode_FromFormat("<%s object at %p (otid=%p) %sdead>",
                                tp_name, op, (void *)owner,
                                in_dead_thread(g) ||
                                (g->is_main && g->thread == NULL)
                                    ? "(thread exited) " : "");
}

/* ---- the C API -------------------------------------------------------- */

PyGreenlet *
gs_greenlet_getcurrent(void)
{
    struct gs_thread *ts = gs_thread_get();
    if (ts == NULL) {
        return NULL;
    }
    return (PyGreenlet *)Py_NewRef(ts->current);
}

PyGreenlet *
gs_greenlet_new(PyObject *run, PyGreenlet *parent)
{
    PyGreenlet *g = (PyGreenlet *)green_new(&PyGreenlet_Type, NULL, NULL);
    if (g == NULL) {
        return NULL;
    }
    if (run != NULL) {
        Py_XSETREF(impl_of(g)->run, Py_NewRef(run));
    }
    /* As greenlet(parent=None): None means the current greenlet. */
    if (parent != NULL && (PyObject *)parent != Py_None &&
        set_parent(g, (PyObject *)parent) < 0) {
        Py_DECREF(g);
        return NULL;
    }
    return g;
}

int
gs_greenlet_setparent(PyGreenlet *g, PyGreenlet *parent)
{
    if (!PyGreenlet_Check(g)) {
        PyErr_Format(PyExc_TypeError,
                     "GreenletChecker: Expected any type of greenlet, not %s",
                     Py_TYPE(g)->tp_name);
        return -1;
    }
    return set_parent(g, (PyObject *)parent);
}

int
gs_greenlet_is_main(PyGreenlet *g)
{
    return check_greenlet_arg(g) < 0 ? -1 : impl_of(g)->is_main;
}

int
gs_greenlet_is_started(PyGreenlet *g)
{
    return check_greenlet_arg(g) < 0 ? -1 : impl_of(g)->started;
}

int
gs_greenlet_is_active(PyGreenlet *g)
{
    return check_greenlet_arg(g) < 0 ? -1 : is_active(impl_of(g));
}

PyGreenlet *
gs_greenlet_get_parent(PyGreenlet *g)
{
    if (check_greenlet_arg(g) < 0) {
        return NULL;
    }
    /* Upstream's contract: NULL, without an exception, for a main. */
    return (PyGreenlet *)Py_XNewRef(impl_of(g)->parent);
}

/* ---- the type --------------------------------------------------------- */

static PyMethodDef green_methods[] = {
    {"switch", (PyCFunction)(void (*)(void))green_switch,
     METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("switch($self, /, *args, **kwargs)\n--\n\n"
               "Switch to this greenlet, starting it with run(*args, "
               "**kwargs)\nif it has not started. Returns what is passed "
               "back when\nsomething switches to the caller again.")},
    {"throw", green_throw, METH_VARARGS,
     PyDoc_STR("throw($self, typ=GreenletExit, val=None, tb=None, /)\n--\n\n"
               "Switch to this greenlet and raise the exception there.")},
    {"__getstate__", green_getstate, METH_NOARGS,
     PyDoc_STR("Greenlets cannot be pickled or copied.")},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef green_getsets[] = {
    {"__dict__", green_getdict, green_setdict, NULL, NULL},
    {"run", green_getrun, green_setrun,
     PyDoc_STR("The callable this greenlet runs when it starts."), NULL},
    {"parent", green_getparent, green_setparent,
     PyDoc_STR("The greenlet that receives control when this one ends."),
     NULL},
    {"gr_frame", green_getframe, NULL,
     PyDoc_STR("The top frame of a suspended greenlet, else None."), NULL},
    {"gr_context", green_getcontext, green_setcontext,
     PyDoc_STR("The contextvars.Context this greenlet runs in."), NULL},
    {"dead", green_getdead, NULL,
     PyDoc_STR("True once the greenlet has finished."), NULL},
    {"_stack_saved", green_get_stack_saved, NULL,
     PyDoc_STR("Bytes of its own stack a suspended greenlet is using."),
     NULL},
    {"stack_size", green_get_stack_size, NULL,
     PyDoc_STR("Usable size of this greenlet's C stack, in bytes."), NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyNumberMethods green_as_number = {
    .nb_bool = green_bool,
};

PyTypeObject PyGreenlet_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "greenlet.greenlet",
    .tp_basicsize = sizeof(PyGreenlet),
    .tp_dealloc = green_dealloc,
    .tp_repr = green_repr,
    .tp_as_number = &green_as_number,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE |
                Py_TPFLAGS_HAVE_GC,
    .tp_doc = PyDoc_STR(
        "greenlet(run=None, parent=None, *, stack_size=None)\n--\n\n"
        "A micro-thread with a C stack of its own."),
    .tp_traverse = green_traverse,
    .tp_clear = green_clear,
    .tp_weaklistoffset = offsetof(PyGreenlet, weakreflist),
    .tp_methods = green_methods,
    .tp_getset = green_getsets,
    .tp_dictoffset = offsetof(PyGreenlet, dict),
    .tp_init = green_init,
    .tp_alloc = PyType_GenericAlloc,
    .tp_new = green_new,
    .tp_free = PyObject_GC_Del,
    .tp_finalize = green_finalize,
};

/* ---- UnswitchableGreenlet: forced failures for upstream's tests ------- */

static PyObject *
unswitchable_get_force(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(impl_of((PyGreenlet *)op)->force_switch_error);
}

static int
unswitchable_set_force(PyObject *op, PyObject *value,
                       void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError,
                        "Cannot delete force_switch_error");
        return -1;
    }
    int flag = PyObject_IsTrue(value);
    if (flag < 0) {
        return -1;
    }
    impl_of((PyGreenlet *)op)->force_switch_error = (unsigned char)flag;
    return 0;
}

static PyGetSetDef unswitchable_getsets[] = {
    {"force_switch_error", unswitchable_get_force, unswitchable_set_force,
     PyDoc_STR("Make the next switch into it fail with SystemError."), NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject gs_unswitchable_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "greenlet._greenlet.UnswitchableGreenlet",
    .tp_basicsize = sizeof(PyGreenlet),
    /* Py_TPFLAGS_HAVE_GC and the GC slots are inherited. */
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = PyDoc_STR("A greenlet whose switches can be made to fail, "
                        "for tests."),
    .tp_getset = unswitchable_getsets,
};

int
gs_greenlet_type_ready(void)
{
    if (PyType_Ready(&PyGreenlet_Type) < 0) {
        return -1;
    }
    gs_unswitchable_type.tp_base = &PyGreenlet_Type;
    return PyType_Ready(&gs_unswitchable_type);
}
