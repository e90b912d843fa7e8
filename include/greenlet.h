/* greenlet's C API.
 *
 * Binary-compatible with upstream greenlet's header (2.0 and later):
 * the same object layout, the same capsule ("greenlet._C_API") and the
 * same twelve slots in the same order, so an extension compiled against
 * upstream's header imports and runs against this package unchanged, and
 * one compiled against this header runs against upstream's.
 *
 * Use from an extension:
 *
 *     #include <greenlet/greenlet.h>
 *     ...in the module init function:
 *     PyGreenlet_Import();
 *     if (_PyGreenlet_API == NULL) { return NULL; }
 */
#ifndef Py_GREENLETOBJECT_H
#define Py_GREENLETOBJECT_H

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kept for source compatibility; it has not changed since greenlet 1.0. */
#define GREENLET_VERSION "1.0.0"

/* Everything but the three fields below lives behind `pimpl`, so that
 * the object is exactly this size: compiled subclasses (gevent's Cython
 * classes) put their own fields right after it. The greenlet module
 * itself defines GREENLET_MODULE and its own implementation_ptr_t. */
#ifndef GREENLET_MODULE
#define implementation_ptr_t void *
#endif

typedef struct _greenlet {
    PyObject_HEAD
    PyObject *weakreflist;
    PyObject *dict;
    implementation_ptr_t pimpl;
} PyGreenlet;

#define PyGreenlet_Check(op) ((op) && PyObject_TypeCheck((op), &PyGreenlet_Type))

/* Slots of the capsule's table. */
#define PyGreenlet_Type_NUM 0
#define PyExc_GreenletError_NUM 1
#define PyExc_GreenletExit_NUM 2
#define PyGreenlet_New_NUM 3
#define PyGreenlet_GetCurrent_NUM 4
#define PyGreenlet_Throw_NUM 5
#define PyGreenlet_Switch_NUM 6
#define PyGreenlet_SetParent_NUM 7
#define PyGreenlet_MAIN_NUM 8
#define PyGreenlet_STARTED_NUM 9
#define PyGreenlet_ACTIVE_NUM 10
#define PyGreenlet_GET_PARENT_NUM 11

#define PyGreenlet_API_pointers 12

#ifndef GREENLET_MODULE
/* One table per translation unit that includes this header, filled by
 * PyGreenlet_Import(). */
static void **_PyGreenlet_API = NULL;

/* The greenlet.greenlet type object (so &PyGreenlet_Type works). */
#define PyGreenlet_Type \
    (*(PyTypeObject *)_PyGreenlet_API[PyGreenlet_Type_NUM])

/* greenlet.error and greenlet.GreenletExit. */
#define PyExc_GreenletError \
    ((PyObject *)_PyGreenlet_API[PyExc_GreenletError_NUM])
#define PyExc_GreenletExit \
    ((PyObject *)_PyGreenlet_API[PyExc_GreenletExit_NUM])

/* PyGreenlet *PyGreenlet_New(PyObject *run, PyGreenlet *parent)
 * A new, unstarted greenlet; either argument may be NULL (a NULL parent
 * means the current greenlet). */
#define PyGreenlet_New \
    (*(PyGreenlet * (*)(PyObject *run, PyGreenlet *parent)) \
         _PyGreenlet_API[PyGreenlet_New_NUM])

/* PyGreenlet *PyGreenlet_GetCurrent(void)
 * New reference to the calling thread's current greenlet; NULL with
 * RuntimeError while the interpreter is finalizing. */
#define PyGreenlet_GetCurrent \
    (*(PyGreenlet * (*)(void)) _PyGreenlet_API[PyGreenlet_GetCurrent_NUM])

/* PyObject *PyGreenlet_Throw(PyGreenlet *g, PyObject *typ, PyObject *val,
 *                            PyObject *tb)
 * Switch to g and raise the exception there, as g.throw(typ, val, tb). */
#define PyGreenlet_Throw \
    (*(PyObject * (*)(PyGreenlet *self, PyObject *typ, PyObject *val, \
                      PyObject *tb)) \
         _PyGreenlet_API[PyGreenlet_Throw_NUM])

/* PyObject *PyGreenlet_Switch(PyGreenlet *g, PyObject *args,
 *                             PyObject *kwargs)
 * As g.switch(*args, **kwargs); args and kwargs may be NULL. */
#define PyGreenlet_Switch \
    (*(PyObject * (*)(PyGreenlet *greenlet, PyObject *args, \
                      PyObject *kwargs)) \
         _PyGreenlet_API[PyGreenlet_Switch_NUM])

/* int PyGreenlet_SetParent(PyGreenlet *g, PyGreenlet *nparent)
 * As g.parent = nparent: 0, or -1 with an exception set. */
#define PyGreenlet_SetParent \
    (*(int (*)(PyGreenlet *greenlet, PyGreenlet *nparent)) \
         _PyGreenlet_API[PyGreenlet_SetParent_NUM])

/* int PyGreenlet_MAIN(PyGreenlet *g): is g a thread's main greenlet? */
#define PyGreenlet_MAIN \
    (*(int (*)(PyGreenlet *)) _PyGreenlet_API[PyGreenlet_MAIN_NUM])

/* int PyGreenlet_STARTED(PyGreenlet *g): has g been switched to? */
#define PyGreenlet_STARTED \
    (*(int (*)(PyGreenlet *)) _PyGreenlet_API[PyGreenlet_STARTED_NUM])

/* int PyGreenlet_ACTIVE(PyGreenlet *g): started and not finished? */
#define PyGreenlet_ACTIVE \
    (*(int (*)(PyGreenlet *)) _PyGreenlet_API[PyGreenlet_ACTIVE_NUM])

/* PyGreenlet *PyGreenlet_GetParent(PyGreenlet *g)
 * New reference to g's parent; NULL without an exception for a main
 * greenlet, which has none. */
#define PyGreenlet_GetParent \
    (*(PyGreenlet * (*)(PyGreenlet *)) \
         _PyGreenlet_API[PyGreenlet_GET_PARENT_NUM])

/* The older name of PyGreenlet_GetParent. */
#define PyGreenlet_GET_PARENT PyGreenlet_GetParent

/* Fill _PyGreenlet_API from the capsule; on failure it stays NULL with
 * an exception set. */
#define PyGreenlet_Import() \
    { \
        _PyGreenlet_API = (void **)PyCapsule_Import("greenlet._C_API", 0); \
    }

#endif /* !GREENLET_MODULE */

#ifdef __cplusplus
}
#endif

#endif /* !Py_GREENLETOBJECT_H */
