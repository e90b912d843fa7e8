/* The greenlet._greenlet module: exceptions, module functions, the C API
 * capsule, and the process-wide objects the type needs.
 *
 * Single-phase initialisation (m_size = -1) on purpose: upstream's C API
 * hands out functions that receive no module, and extensions compiled
 * against it (gevent) subclass our static type; an isolated
 * subinterpreter gets an ImportError rather than shared state.
 */
#define PY_SSIZE_T_CLEAN
#include "Python.h"

#include <time.h>

#include "greenlet_type.h"
#include "overflow.h"
#include "pystate.h"
#include "stack.h"
#include "threadstate.h"

/* The capsule's table, in upstream's slot order (include/greenlet.h). */
static void *c_api[PyGreenlet_API_pointers];

/* enable_optional_cleanup() state, kept only to answer as upstream does. */
static int optional_cleanup_enabled = 1;

static PyObject *
mod_getcurrent(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    if (gs_pystate_is_finalizing()) {
        PyErr_SetString(PyExc_RuntimeError, "greenlet is being finalized");
        return NULL;
    }
    return (PyObject *)gs_greenlet_getcurrent();
}

static PyGreenlet *
capi_getcurrent(void)
{
    if (gs_pystate_is_finalizing()) {
        PyErr_SetString(PyExc_RuntimeError, "greenlet is being finalized");
        return NULL;
    }
    return gs_greenlet_getcurrent();
}

static PyObject *
mod_settrace(PyObject *Py_UNUSED(module), PyObject *callback)
{
    struct gs_thread *ts = gs_thread_get();
    PyObject *previous;

    if (ts == NULL) {
        return NULL;
    }
    previous = ts->trace;
    ts->trace = callback == Py_None ? NULL : Py_NewRef(callback);
    if (previous == NULL) {
        Py_RETURN_NONE;
    }
    return previous;
}

static PyObject *
mod_gettrace(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    struct gs_thread *ts = gs_thread_get();

    if (ts == NULL) {
        return NULL;
    }
    if (ts->trace == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(ts->trace);
}

static PyObject *
mod_set_thread_local(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *key;
    PyObject *value;
    PyObject *dict;

    if (!PyArg_ParseTuple(args, "OO:set_thread_local", &key, &value)) {
        return NULL;
    }
    dict = PyThreadState_GetDict();     /* borrowed */
    if (dict == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no thread state dict");
        return NULL;
    }
    if (PyDict_SetItem(dict, key, value) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
mod_get_pending_cleanup_count(PyObject *Py_UNUSED(module),
                              PyObject *Py_UNUSED(ignored))
{
    /* Upstream defers tearing down an exited thread's greenlet state; we
       do it as the thread state is cleared, so nothing is ever pending. */
    return PyLong_FromLong(0);
}

static PyObject *
mod_get_total_main_greenlets(PyObject *Py_UNUSED(module),
                             PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(gs_greenlet_main_count());
}

static PyObject *
mod_get_clocks_used_doing_optional_cleanup(PyObject *Py_UNUSED(module),
                                           PyObject *Py_UNUSED(ignored))
{
    /* Upstream's optional cleanup searches gc.get_referrers() for frames
       of exited threads; our thread teardown needs no such search, so no
       time is ever spent on it: disabled reads as None, enabled as 0. */
    if (!optional_cleanup_enabled) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLong(0);
}

static PyObject *
mod_enable_optional_cleanup(PyObject *Py_UNUSED(module), PyObject *flag)
{
    int enabled = PyObject_IsTrue(flag);
    if (enabled < 0) {
        return NULL;
    }
    optional_cleanup_enabled = enabled;
    Py_RETURN_NONE;
}

static PyObject *
mod_set_default_stack_size(PyObject *Py_UNUSED(module), PyObject *arg)
{
    size_t previous = gs_globals.default_stack_size;
    Py_ssize_t n = PyNumber_AsSsize_t(arg, PyExc_OverflowError);

    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < (Py_ssize_t)GS_STACK_MIN_SIZE || (size_t)n > GS_STACK_MAX_SIZE) {
        PyErr_Format(PyExc_ValueError,
                     "stack_size must be between %zu and %zu bytes, not %zd",
                     GS_STACK_MIN_SIZE, GS_STACK_MAX_SIZE, n);
        return NULL;
    }
    gs_globals.default_stack_size = (size_t)n;
    return PyLong_FromSize_t(previous);
}

static PyObject *
mod_get_default_stack_size(PyObject *Py_UNUSED(module),
                           PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(gs_globals.default_stack_size);
}

static PyObject *
mod_get_stack_stats(PyObject *Py_UNUSED(module),
                    PyObject *Py_UNUSED(ignored))
{
    struct gs_stack_stats stats;
    gs_stack_get_stats(&stats);
    return Py_BuildValue("{s:n,s:n,s:n,s:O}",
                         "in_use", (Py_ssize_t)stats.in_use,
                         "pooled", (Py_ssize_t)stats.pooled,
                         "mappings", (Py_ssize_t)stats.mappings,
                         "guard_by_madvise",
                         stats.guard_by_madvise ? Py_True : Py_False);
}

static PyObject *
mod_get_tstate_trash_delete_nesting(PyObject *Py_UNUSED(module),
                                    PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(
        gs_pystate_trash_delete_nesting(PyThreadState_Get()));
}

static PyMethodDef trash_nesting_method = {
    "get_tstate_trash_delete_nesting", mod_get_tstate_trash_delete_nesting,
    METH_NOARGS,
    PyDoc_STR("get_tstate_trash_delete_nesting($module, /)\n--\n\n"
              "The thread's trashcan nesting (CPython before 3.13 only)."),
};

static PyObject *
mod_trim_stack_pool(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    gs_stack_trim();
    Py_RETURN_NONE;
}

static PyObject *
mod_stack_bounds_mode(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyUnicode_FromString(gs_pystate_stack_bounds_mode());
}

static PyObject *
mod_force_direct_stack_bounds(PyObject *Py_UNUSED(module),
                              PyObject *Py_UNUSED(ignored))
{
    /* The main greenlet keeps the thread's bounds when it next leaves, so
       the switch of mode is only safe while it runs. */
    PyGreenlet *current = gs_greenlet_getcurrent();
    if (current == NULL) {
        return NULL;
    }
    int is_main = gs_greenlet_is_main(current);
    Py_DECREF(current);
    if (!is_main) {
        PyErr_SetString(PyExc_RuntimeError,
                        "only the main greenlet can change the mode");
        return NULL;
    }
    /* Another thread's main greenlet may be switched out, its thread's
       bounds never kept. */
    if (gs_greenlet_main_count() > 1) {
        PyErr_SetString(PyExc_RuntimeError,
                        "only before greenlets are used in other threads");
        return NULL;
    }
    if (gs_pystate_force_direct_stack_bounds() < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"getcurrent", mod_getcurrent, METH_NOARGS,
     PyDoc_STR("getcurrent($module, /)\n--\n\n"
               "Return the greenlet running in the calling thread.")},
    {"settrace", mod_settrace, METH_O,
     PyDoc_STR("settrace($module, callback, /)\n--\n\n"
               "Call callback(event, (origin, target)) on every switch in "
               "this thread;\nreturn the previous callback. None turns "
               "tracing off.")},
    {"gettrace", mod_gettrace, METH_NOARGS,
     PyDoc_STR("gettrace($module, /)\n--\n\n"
               "Return this thread's greenlet trace callback, or None.")},
    {"set_thread_local", mod_set_thread_local, METH_VARARGS,
     PyDoc_STR("set_thread_local($module, key, value, /)\n--\n\n"
               "Set an item in the thread state's dict (for tests).")},
    {"get_pending_cleanup_count", mod_get_pending_cleanup_count, METH_NOARGS,
     PyDoc_STR("get_pending_cleanup_count($module, /)\n--\n\n"
               "Exited threads whose greenlet state awaits cleanup: "
               "always 0 here.")},
    {"get_total_main_greenlets", mod_get_total_main_greenlets, METH_NOARGS,
     PyDoc_STR("get_total_main_greenlets($module, /)\n--\n\n"
               "Number of main greenlet objects alive.")},
    {"get_clocks_used_doing_optional_cleanup",
     mod_get_clocks_used_doing_optional_cleanup, METH_NOARGS,
     PyDoc_STR("get_clocks_used_doing_optional_cleanup($module, /)\n--\n\n"
               "Clock ticks spent in optional cleanup (None if disabled).")},
    {"enable_optional_cleanup", mod_enable_optional_cleanup, METH_O,
     PyDoc_STR("enable_optional_cleanup($module, flag, /)\n--\n\n"
               "Turn optional thread cleanup on or off.")},
    {"set_default_stack_size", mod_set_default_stack_size, METH_O,
     PyDoc_STR("set_default_stack_size($module, size, /)\n--\n\n"
               "Set the C stack size of greenlets created from now on; "
               "return the\nprevious one.")},
    {"get_default_stack_size", mod_get_default_stack_size, METH_NOARGS,
     PyDoc_STR("get_default_stack_size($module, /)\n--\n\n"
               "The C stack size new greenlets get.")},
    {"_get_stack_stats", mod_get_stack_stats, METH_NOARGS,
     PyDoc_STR("_get_stack_stats($module, /)\n--\n\n"
               "Counters of the stack allocator (for tests).")},
    {"_trim_stack_pool", mod_trim_stack_pool, METH_NOARGS,
     PyDoc_STR("_trim_stack_pool($module, /)\n--\n\n"
               "Unmap every pooled stack (for tests).")},
    {"_stack_bounds_mode", mod_stack_bounds_mode, METH_NOARGS,
     PyDoc_STR("_stack_bounds_mode($module, /)\n--\n\n"
               "How greenlets tell CPython 3.14+ where their C stack is: "
               "'api',\n'direct' (3.14.0: the fields are written) or "
               "'none' (before 3.14).")},
    {"_force_direct_stack_bounds", mod_force_direct_stack_bounds, METH_NOARGS,
     PyDoc_STR("_force_direct_stack_bounds($module, /)\n--\n\n"
               "Write the C stack bounds directly, as on 3.14.0, even where "
               "the API\nexists (for tests; call it before any other "
               "greenlet starts).")},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef greenlet_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "greenlet._greenlet",
    .m_size = -1,
    .m_methods = module_methods,
};

static int
init_globals(void)
{
    struct gs_globals *g = &gs_globals;

    g->error = PyErr_NewException("greenlet.error", NULL, NULL);
    g->exit = PyErr_NewException("greenlet.GreenletExit",
                                 PyExc_BaseException, NULL);
    g->str_run = PyUnicode_InternFromString("run");
    g->str_switch = PyUnicode_InternFromString("switch");
    g->str_throw = PyUnicode_InternFromString("throw");
    g->empty_tuple = PyTuple_New(0);
    g->kill_message = PyUnicode_FromString(
        "Killing the greenlet because all references have vanished.");
    g->default_stack_size = GS_STACK_DEFAULT_SIZE;
    if (g->error == NULL || g->exit == NULL || g->str_run == NULL ||
        g->str_switch == NULL || g->str_throw == NULL ||
        g->empty_tuple == NULL || g->kill_message == NULL) {
        return -1;
    }
    return 0;
}

static int
fill_capsule_table(void)
{
    c_api[PyGreenlet_Type_NUM] = (void *)&PyGreenlet_Type;
    c_api[PyExc_GreenletError_NUM] = (void *)gs_globals.error;
    c_api[PyExc_GreenletExit_NUM] = (void *)gs_globals.exit;
    c_api[PyGreenlet_New_NUM] = (void *)gs_greenlet_new;
    c_api[PyGreenlet_GetCurrent_NUM] = (void *)capi_getcurrent;
    c_api[PyGreenlet_Throw_NUM] = (void *)gs_greenlet_throw;
    c_api[PyGreenlet_Switch_NUM] = (void *)gs_greenlet_switch;
    c_api[PyGreenlet_SetParent_NUM] = (void *)gs_greenlet_setparent;
    c_api[PyGreenlet_MAIN_NUM] = (void *)gs_greenlet_is_main;
    c_api[PyGreenlet_STARTED_NUM] = (void *)gs_greenlet_is_started;
    c_api[PyGreenlet_ACTIVE_NUM] = (void *)gs_greenlet_is_active;
    c_api[PyGreenlet_GET_PARENT_NUM] = (void *)gs_greenlet_get_parent;
    return 0;
}

/* Module attributes that upstream also puts in the greenlet type's dict,
   so greenlet.greenlet.getcurrent() and greenlet.GreenletExit work when
   `greenlet` names the class. */
static const char *const copied_to_type[] = {
    "getcurrent", "error", "GreenletExit", "settrace", "gettrace", NULL,
};

PyMODINIT_FUNC
PyInit__greenlet(void)
{
    PyObject *m = NULL;
    PyObject *capsule = NULL;

    if (gs_pystate_init_runtime() < 0) {
        return NULL;
    }
    if (init_globals() < 0 || gs_greenlet_type_ready() < 0) {
        return NULL;
    }
    m = PyModule_Create(&greenlet_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "greenlet",
                              (PyObject *)&PyGreenlet_Type) < 0 ||
        PyModule_AddObjectRef(m, "UnswitchableGreenlet",
                              (PyObject *)&gs_unswitchable_type) < 0 ||
        PyModule_AddObjectRef(m, "error", gs_globals.error) < 0 ||
        PyModule_AddObjectRef(m, "GreenletExit", gs_globals.exit) < 0 ||
        PyModule_AddIntConstant(m, "GREENLET_USE_GC", 1) < 0 ||
        PyModule_AddIntConstant(m, "GREENLET_USE_TRACING", 1) < 0 ||
        PyModule_AddIntConstant(m, "GREENLET_USE_CONTEXT_VARS", 1) < 0 ||
        PyModule_AddIntConstant(m, "GREENLET_USE_STANDARD_THREADING", 1) < 0 ||
        PyModule_AddIntConstant(m, "CLOCKS_PER_SEC", CLOCKS_PER_SEC) < 0) {
        goto error;
    }
    for (const char *const *name = copied_to_type; *name != NULL; name++) {
        PyObject *value = PyObject_GetAttrString(m, *name);
        if (value == NULL) {
            goto error;
        }
        int failed = PyDict_SetItemString(PyGreenlet_Type.tp_dict, *name,
                                          value);
        Py_DECREF(value);
        if (failed) {
            goto error;
        }
    }
    PyType_Modified(&PyGreenlet_Type);
    /* Like upstream, only where CPython has the counter: its test falls
       back when the function is missing. */
    if (gs_pystate_trash_delete_nesting(PyThreadState_Get()) >= 0) {
        PyObject *f = PyCFunction_New(&trash_nesting_method, NULL);
        if (f == NULL || PyModule_AddObject(m, trash_nesting_method.ml_name,
                                            f) < 0) {
            Py_XDECREF(f);
            goto error;
        }
    }
    fill_capsule_table();
    capsule = PyCapsule_New(c_api, "greenlet._C_API", NULL);
    if (capsule == NULL || PyModule_AddObjectRef(m, "_C_API", capsule) < 0) {
        goto error;
    }
    Py_DECREF(capsule);
    gs_overflow_install();
    return m;

error:
    Py_XDECREF(capsule);
    Py_DECREF(m);
    return NULL;
}
