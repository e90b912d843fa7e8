/* The greenlet type: what module.c and threadstate.c call. */
#ifndef GS_GREENLET_TYPE_H
#define GS_GREENLET_TYPE_H

#include "Python.h"

/* Our PyGreenlet: upstream's public layout, with `pimpl` typed as ours. */
#define GREENLET_MODULE
#define implementation_ptr_t struct gs_greenlet *
#include "greenlet.h"

struct gs_thread;

extern PyTypeObject PyGreenlet_Type;
extern PyTypeObject gs_unswitchable_type;

/* Module-wide objects the type needs, set up once by module.c. */
struct gs_globals {
    PyObject *error;            /* greenlet.error */
    PyObject *exit;             /* greenlet.GreenletExit */
    PyObject *str_run;          /* "run" */
    PyObject *str_switch;       /* "switch": trace event */
    PyObject *str_throw;        /* "throw": trace event */
    PyObject *empty_tuple;
    PyObject *kill_message;     /* the GreenletExit argument on a kill */
    size_t default_stack_size;  /* for greenlets created without one */
};
extern struct gs_globals gs_globals;

int gs_greenlet_type_ready(void);

/* A new main greenlet for thread `ts`. */
PyGreenlet *gs_greenlet_new_main(struct gs_thread *ts);

/* Number of main greenlet objects alive, for tests. */
Py_ssize_t gs_greenlet_main_count(void);

/* The thread of main greenlet `main` has exited. */
void gs_greenlet_thread_exited(PyGreenlet *main);

/* Kill a suspended greenlet of the calling thread by throwing
 * GreenletExit into it (the caller holds a reference). */
void gs_greenlet_kill(struct gs_thread *ts, PyGreenlet *g);

/* The C API (slot order of include/greenlet.h). */
PyGreenlet *gs_greenlet_new(PyObject *run, PyGreenlet *parent);
PyGreenlet *gs_greenlet_getcurrent(void);
PyObject *gs_greenlet_throw(PyGreenlet *g, PyObject *typ, PyObject *val,
                            PyObject *tb);
PyObject *gs_greenlet_switch(PyGreenlet *g, PyObject *args,
                             PyObject *kwargs);
int gs_greenlet_setparent(PyGreenlet *g, PyGreenlet *parent);
int gs_greenlet_is_main(PyGreenlet *g);
int gs_greenlet_is_started(PyGreenlet *g);
int gs_greenlet_is_active(PyGreenlet *g);
PyGreenlet *gs_greenlet_get_parent(PyGreenlet *g);

#endif /* GS_GREENLET_TYPE_H */
