/* Per-thread bookkeeping (see threadstate.h).
 *
 * Thread exit is noticed through a small sentinel object stored in the
 * thread state's dict: CPython clears that dict when the thread state is
 * cleared, with the GIL held, on the exiting thread (or, after fork(), on
 * the thread that survived). A pthread key destructor would run later,
 * without the GIL and after the thread state is gone.
 */
#define PY_SSIZE_T_CLEAN
#include "Python.h"

#include <stdlib.h>

#include "overflow.h"
#include "pystate.h"
#include "threadstate.h"

_Thread_local struct gs_thread *gs_thread_tls;

/* ---- the sentinel ----------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    struct gs_thread *thread;
} sentinel_object;

static void
thread_teardown(struct gs_thread *ts)
{
    PyGreenlet *main = ts->main;

    if (gs_thread_tls == ts) {
        /* Still on the exiting thread, with the GIL: greenlets whose last
           reference went away in other threads can still be killed here
           properly, their finally blocks run, rather than dropped. */
        if (ts->deleteme != NULL && ts->current == main) {
            gs_thread_drain_deleteme(ts);
        }
        gs_thread_tls = NULL;
    }
    /* From here on, greenlets of this thread read as belonging to an
       exited thread: killing them means dropping their frames. */
    gs_greenlet_thread_exited(main);
    Py_CLEAR(ts->deleteme);
    Py_CLEAR(ts->trace);
    Py_CLEAR(ts->pending_args);
    Py_CLEAR(ts->pending_kwargs);
    Py_CLEAR(ts->current);
    ts->main = NULL;
    Py_XDECREF(main);
    PyMem_RawFree(ts);
}

static void
sentinel_dealloc(PyObject *op)
{
    sentinel_object *self = (sentinel_object *)op;
    struct gs_thread *ts = self->thread;

    self->thread = NULL;
    if (ts != NULL) {
        thread_teardown(ts);
    }
    Py_TYPE(op)->tp_free(op);
}

static PyTypeObject sentinel_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "greenlet._greenlet._ThreadSentinel",
    .tp_basicsize = sizeof(sentinel_object),
    .tp_dealloc = sentinel_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tears down a thread's greenlets with its thread state.",
};

/* ---- creation --------------------------------------------------------- */

struct gs_thread *
gs_thread_create(void)
{
    static PyObject *key;
    struct gs_thread *ts = NULL;
    sentinel_object *sentinel = NULL;
    PyObject *dict;

    if (key == NULL) {
        if (PyType_Ready(&sentinel_type) < 0) {
            return NULL;
        }
        key = PyUnicode_InternFromString("greenlet._greenlet.thread");
        if (key == NULL) {
            return NULL;
        }
    }
    dict = PyThreadState_GetDict();     /* borrowed */
    if (dict == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "greenlet: this thread has no thread state dict");
        return NULL;
    }
    ts = PyMem_RawCalloc(1, sizeof(*ts));
    if (ts == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    ts->tstate = PyThreadState_Get();
    ts->main = gs_greenlet_new_main(ts);
    if (ts->main == NULL) {
        PyMem_RawFree(ts);
        return NULL;
    }
    ts->current = (PyGreenlet *)Py_NewRef(ts->main);

    sentinel = PyObject_New(sentinel_object, &sentinel_type);
    if (sentinel == NULL) {
        goto error;
    }
    sentinel->thread = ts;
    gs_thread_tls = ts;
    if (PyDict_SetItem(dict, key, (PyObject *)sentinel) < 0) {
        sentinel->thread = NULL;
        gs_thread_tls = NULL;
        Py_DECREF(sentinel);
        goto error;
    }
    Py_DECREF(sentinel);    /* the dict owns it now */
    gs_overflow_thread_init();
    return ts;

error:
    thread_teardown(ts);
    return NULL;
}

/* ---- kills queued from other threads --------------------------------- */

int
gs_thread_queue_kill(struct gs_thread *owner, PyGreenlet *g)
{
    struct gs_pending_exc saved;
    int result = -1;

    gs_pystate_fetch_exc(&saved);
    if (owner->deleteme == NULL) {
        owner->deleteme = PyList_New(0);
    }
    if (owner->deleteme != NULL &&
        PyList_Append(owner->deleteme, (PyObject *)g) == 0) {
        result = 0;
    }
    if (result < 0) {
        PyErr_Clear();
    }
    gs_pystate_restore_exc(&saved);
    return result;
}

void
gs_thread_drain_deleteme(struct gs_thread *ts)
{
    struct gs_pending_exc saved;
    PyObject *queued = ts->deleteme;   /* take ownership: kills may queue */

    ts->deleteme = NULL;
    gs_pystate_fetch_exc(&saved);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(queued); i++) {
        PyGreenlet *g = (PyGreenlet *)PyList_GET_ITEM(queued, i);
        gs_greenlet_kill(ts, g);
    }
    Py_DECREF(queued);
    gs_pystate_restore_exc(&saved);
}
