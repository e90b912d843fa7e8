/* _capi_test: thin Python-callable wrappers over greenlet's C API.
 *
 * tests/test_capi.py compiles this file at test time against
 * include/greenlet.h and imports it, so the same source checks the API
 * of whichever `greenlet` the interpreter imports: ours, or upstream's
 * (proving the header is binary-compatible with upstream's module).
 *
 * Each wrapper calls one slot or macro and does as little else as it
 * can. Where a slot accepts NULL, the wrapper maps None to NULL. The
 * greenlet arguments are cast, not checked, so the slots' own argument
 * checks can be exercised; passing a non-greenlet where the API does
 * not check is the caller's business (the tests do it only in a child
 * process).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#include "greenlet.h"

static PyObject *
none_to_null(PyObject *op)
{
    return op == Py_None ? NULL : op;
}

/* A slot's int result: -1 with an exception raises it, anything else
   comes back as a Python int. */
static PyObject *
int_result(int result)
{
    if (result == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return PyLong_FromLong(result);
}

/* A slot's object result: NULL with an exception raises it, NULL
   without one is None. */
static PyObject *
object_result(PyObject *result)
{
    if (result == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return result;
}

/* ---- slots 0-2: the type and the exceptions ------------------------- */

static PyObject *
capi_greenlet_type(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
    return Py_NewRef((PyObject *)&PyGreenlet_Type);
}

static PyObject *
capi_error_type(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
    return Py_NewRef(PyExc_GreenletError);
}

static PyObject *
capi_exit_type(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
    return Py_NewRef(PyExc_GreenletExit);
}

/* Parses its one argument with "O!" and &PyGreenlet_Type; returns it. */
static PyObject *
capi_check_arg(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *g;

    if (!PyArg_ParseTuple(args, "O!", &PyGreenlet_Type, &g)) {
        return NULL;
    }
    return Py_NewRef(g);
}

/* ---- PyGreenlet_Check ----------------------------------------------- */

static PyObject *
capi_check(PyObject *Py_UNUSED(module), PyObject *op)
{
    return PyBool_FromLong(PyGreenlet_Check(op));
}

static PyObject *
capi_check_null(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
    PyObject *null = NULL;
    return PyBool_FromLong(PyGreenlet_Check(null));
}

/* ---- slot 3: PyGreenlet_New ----------------------------------------- */

/* new(run, parent): None for either passes NULL. */
static PyObject *
capi_new(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *run;
    PyObject *parent;

    if (!PyArg_ParseTuple(args, "OO:new", &run, &parent)) {
        return NULL;
    }
    return (PyObject *)PyGreenlet_New(none_to_null(run),
                                      (PyGreenlet *)none_to_null(parent));
}

/* new_raw(run, parent): passes both objects as they are, None included. */
static PyObject *
capi_new_raw(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *run;
    PyObject *parent;

    if (!PyArg_ParseTuple(args, "OO:new_raw", &run, &parent)) {
        return NULL;
    }
    return (PyObject *)PyGreenlet_New(run, (PyGreenlet *)parent);
}

/* ---- slot 4: PyGreenlet_GetCurrent ---------------------------------- */

static PyObject *
capi_get_current(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
    return (PyObject *)PyGreenlet_GetCurrent();
}

/* ---- slot 5: PyGreenlet_Throw --------------------------------------- */

/* throw(g, typ, val, tb): None for val or tb passes NULL. */
static PyObject *
capi_throw(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *g;
    PyObject *typ;
    PyObject *val;
    PyObject *tb;

    if (!PyArg_ParseTuple(args, "OOOO:throw", &g, &typ, &val, &tb)) {
        return NULL;
    }
    return PyGreenlet_Throw((PyGreenlet *)g, typ, none_to_null(val),
                            none_to_null(tb));
}

/* ---- slot 6: PyGreenlet_Switch -------------------------------------- */

/* switch(g, args, kwargs): None for args or kwargs passes NULL. */
static PyObject *
capi_switch(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *g;
    PyObject *sargs;
    PyObject *skwargs;

    if (!PyArg_ParseTuple(args, "OOO:switch", &g, &sargs, &skwargs)) {
        return NULL;
    }
    return PyGreenlet_Switch((PyGreenlet *)g, none_to_null(sargs),
                             none_to_null(skwargs));
}

/* ---- slot 7: PyGreenlet_SetParent ----------------------------------- */

/* set_parent(g, parent): None for parent passes NULL. Returns None. */
static PyObject *
capi_set_parent(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *g;
    PyObject *parent;
    int result;

    if (!PyArg_ParseTuple(args, "OO:set_parent", &g, &parent)) {
        return NULL;
    }
    result = PyGreenlet_SetParent((PyGreenlet *)g,
                                  (PyGreenlet *)none_to_null(parent));
    if (result == -1) {
        return NULL;
    }
    if (result != 0) {
        return PyErr_Format(PyExc_AssertionError,
                            "PyGreenlet_SetParent returned %d", result);
    }
    Py_RETURN_NONE;
}

/* ---- slots 8-10: PyGreenlet_MAIN, _STARTED, _ACTIVE ----------------- */

static PyObject *
capi_main(PyObject *Py_UNUSED(module), PyObject *g)
{
    return int_result(PyGreenlet_MAIN((PyGreenlet *)g));
}

static PyObject *
capi_started(PyObject *Py_UNUSED(module), PyObject *g)
{
    return int_result(PyGreenlet_STARTED((PyGreenlet *)g));
}

static PyObject *
capi_active(PyObject *Py_UNUSED(module), PyObject *g)
{
    return int_result(PyGreenlet_ACTIVE((PyGreenlet *)g));
}

/* ---- slot 11: PyGreenlet_GET_PARENT --------------------------------- */

/* The parent; None if the slot gives NULL without an exception. */
static PyObject *
capi_get_parent(PyObject *Py_UNUSED(module), PyObject *g)
{
    return object_result((PyObject *)PyGreenlet_GET_PARENT((PyGreenlet *)g));
}

/* (gave NULL, had an exception set): the raw outcome of the slot, with
   any exception cleared. */
static PyObject *
capi_get_parent_outcome(PyObject *Py_UNUSED(module), PyObject *g)
{
    PyGreenlet *parent = PyGreenlet_GET_PARENT((PyGreenlet *)g);
    int error_set = PyErr_Occurred() != NULL;

    PyErr_Clear();
    Py_XDECREF(parent);
    return Py_BuildValue("(OO)", parent == NULL ? Py_True : Py_False,
                         error_set ? Py_True : Py_False);
}

/* ---- the object layout ---------------------------------------------- */

/* (sizeof(PyGreenlet), offsetof weakreflist, offsetof dict) */
static PyObject *
capi_layout(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
    return Py_BuildValue("(nnn)", (Py_ssize_t)sizeof(PyGreenlet),
                         (Py_ssize_t)offsetof(PyGreenlet, weakreflist),
                         (Py_ssize_t)offsetof(PyGreenlet, dict));
}

static PyMethodDef capi_methods[] = {
    {"greenlet_type", capi_greenlet_type, METH_NOARGS,
     "PyGreenlet_Type."},
    {"error_type", capi_error_type, METH_NOARGS, "PyExc_GreenletError."},
    {"exit_type", capi_exit_type, METH_NOARGS, "PyExc_GreenletExit."},
    {"check_arg", capi_check_arg, METH_VARARGS,
     "check_arg(g): parse g with \"O!\" and &PyGreenlet_Type."},
    {"check", capi_check, METH_O, "PyGreenlet_Check(op)."},
    {"check_null", capi_check_null, METH_NOARGS, "PyGreenlet_Check(NULL)."},
    {"new", capi_new, METH_VARARGS,
     "new(run, parent): PyGreenlet_New, None passing NULL."},
    {"new_raw", capi_new_raw, METH_VARARGS,
     "new_raw(run, parent): PyGreenlet_New with the objects as given."},
    {"get_current", capi_get_current, METH_NOARGS,
     "PyGreenlet_GetCurrent()."},
    {"throw", capi_throw, METH_VARARGS,
     "throw(g, typ, val, tb): PyGreenlet_Throw, None val/tb passing NULL."},
    {"switch", capi_switch, METH_VARARGS,
     "switch(g, args, kwargs): PyGreenlet_Switch, None passing NULL."},
    {"set_parent", capi_set_parent, METH_VARARGS,
     "set_parent(g, parent): PyGreenlet_SetParent, None passing NULL."},
    {"main", capi_main, METH_O, "PyGreenlet_MAIN(g)."},
    {"started", capi_started, METH_O, "PyGreenlet_STARTED(g)."},
    {"active", capi_active, METH_O, "PyGreenlet_ACTIVE(g)."},
    {"get_parent", capi_get_parent, METH_O,
     "PyGreenlet_GET_PARENT(g); None for NULL without an exception."},
    {"get_parent_outcome", capi_get_parent_outcome, METH_O,
     "(returned NULL, exception set) for PyGreenlet_GET_PARENT(g)."},
    {"layout", capi_layout, METH_NOARGS,
     "(sizeof(PyGreenlet), offsetof weakreflist, offsetof dict)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef capi_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_capi_test",
    .m_doc = "Wrappers over greenlet's C API, for tests/test_capi.py.",
    .m_size = -1,
    .m_methods = capi_methods,
};

PyMODINIT_FUNC
PyInit__capi_test(void)
{
    PyGreenlet_Import();
    if (_PyGreenlet_API == NULL) {
        return NULL;
    }
    return PyModule_Create(&capi_module);
}
