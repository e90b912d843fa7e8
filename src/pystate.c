/* Save and restore the per-greenlet part of CPython's thread state.
 *
 * Every PY_VERSION_HEX test of the project lives in this file. Each field
 * below and the reason it follows a greenlet is documented, per version, in
 * docs/maintainers.md (from the field-by-field reading of each CPython's
 * sources). The rule of thumb: whatever Python code running on a stack
 * changes in the thread state and expects to find again when it resumes is
 * saved here; whatever is thread-wide (tracing hooks, the pending
 * exception that carries a throw(), caches) is left alone.
 */
#define PY_SSIZE_T_CLEAN
#include "Python.h"

#include <dlfcn.h>
#include <string.h>

#include "pystate.h"

/* 3.11+: the interpreter frame layout (frame_obj, previous), to tell
   whether a frame object points into a greenlet's frames. Included after
   Python.h, as upstream does, so public macros keep their public form. */
#if PY_VERSION_HEX >= 0x030B0000
#  define Py_BUILD_CORE 1
#  if PY_VERSION_HEX >= 0x030E0000
#    include "internal/pycore_interpframe_structs.h"
#    include "internal/pycore_tstate.h"     /* _PyThreadStateImpl */
#    if PY_VERSION_HEX >= 0x030F0000
/* CPython's own build does not use -Wextra: its inline helpers leave
   parameters unused. */
#      if defined(__GNUC__)
#        pragma GCC diagnostic push
#        pragma GCC diagnostic ignored "-Wunused-parameter"
#      endif
#      include "internal/pycore_stackref.h" /* PyStackRef_CLEAR */
#      if defined(__GNUC__)
#        pragma GCC diagnostic pop
#      endif
#    endif
#  else
#    include "internal/pycore_frame.h"
#  endif
#endif

#if PY_VERSION_HEX < 0x030A0000
#  error "greenlet needs CPython 3.10 or newer"
#endif
#if PY_VERSION_HEX < 0x030B0000
#  include "frameobject.h"     /* 3.10: PyFrameObject's fields */
#endif
#if PY_VERSION_HEX >= 0x03100000
#  error "CPython 3.16+ has not been checked: see docs/maintainers.md"
#endif

/* 3.10-3.12: the eval loop threads a CFrame through the C stack. */
#if PY_VERSION_HEX < 0x030D0000
#  define GS_HAS_CFRAME 1
#else
#  define GS_HAS_CFRAME 0
#endif

/* 3.11+: frames live in per-thread data-stack chunks. */
#if PY_VERSION_HEX >= 0x030B0000
#  define GS_HAS_DATASTACK 1
#else
#  define GS_HAS_DATASTACK 0
#endif

/* The stack CPython's recursion limits are tuned for: a Linux thread's
   default (RLIMIT_STACK 8 MiB). */
#define GS_THREAD_STACK_SIZE ((size_t)8 << 20)

/* The root chunk takes the top of the reservation, less a little than
   CPython's own chunk size (DATA_STACK_CHUNK_SIZE, 16 KiB): it starts
   3 KiB into a page, so the C stack grows down from the middle of that
   page and a shallow greenlet's C frames (under 1 KiB) and first Python
   frames share one page of memory instead of touching two. */
#define GS_ROOT_CHUNK_SIZE ((uintptr_t)13 << 10)

#if PY_VERSION_HEX < 0x030B0000
/* 3.10 names the CFrame type without the underscore prefix. */
typedef CFrame gs_cframe;
#elif GS_HAS_CFRAME
typedef _PyCFrame gs_cframe;
#endif

#if PY_VERSION_HEX >= 0x030E0000
/* 3.14+: the C stack bounds, laid out as in _PyThreadStateImpl. */
struct c_stack_bounds {
    uintptr_t top;
    uintptr_t soft_limit;
    uintptr_t hard_limit;
};
#endif

/* What one greenlet keeps while it is not running. */
struct saved_state {
    PyObject *context;              /* strong reference or NULL */
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *exc_value;            /* the greenlet's bottom handled exc */
#else
    PyObject *exc_type, *exc_value, *exc_traceback;
#endif
    _PyErr_StackItem *exc_info;     /* NULL: the thread's own exc_state */
    int recursion_depth;            /* Python recursion, as a depth */
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030E0000
    int c_recursion_depth;          /* 3.12-3.13: C recursion, as a depth */
#endif
#if PY_VERSION_HEX < 0x030D0000
    int trash_delete_nesting;
#endif
#if PY_VERSION_HEX < 0x030B0000
    /* 3.10: the top frame object hangs off the thread state (borrowed:
       the greenlet's own suspended C frames keep it alive). */
    PyFrameObject *frame;
#endif
#if GS_HAS_CFRAME
    gs_cframe *cframe;
    /* The first CFrame of a greenlet: the eval loop links its own CFrame
       to it, so its `previous` must stay valid while the greenlet lives,
       and its current_frame is NULL so run's frame ends the f_back chain. */
    gs_cframe root_cframe;
#else
    struct _PyInterpreterFrame *current_frame;
#endif
#if GS_HAS_DATASTACK
    _PyStackChunk *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
    /* The root chunk carved from the top of the greenlet's own stack
       reservation: never allocated or freed through CPython. */
    _PyStackChunk *own_root_chunk;
    /* Where the greenlet's own frame chain ends: NULL, or on 3.15 its
       own base frame (in its root chunk). */
    struct _PyInterpreterFrame *frames_end;
#endif
#if PY_VERSION_HEX >= 0x030E0000
    /* 3.14+: the C stack bounds CPython checks the stack pointer against.
       Both 0 for a main greenlet: it runs on the thread's own stack. */
    uintptr_t stack_limit;
    uintptr_t stack_top;
    /* A main greenlet's own bounds, kept while another greenlet runs when
       they are written directly (3.14.0; see install_stack_bounds). */
    struct c_stack_bounds thread_bounds;
    PyObject *current_executor;     /* JIT: the running executor */
#endif
#ifdef Py_GIL_DISABLED
    uintptr_t critical_section;
#endif
};

_Static_assert(sizeof(struct saved_state) <= sizeof(struct gs_pystate),
               "struct gs_pystate is too small for this CPython");

static inline struct saved_state *
as_saved(struct gs_pystate *s)
{
    return (struct saved_state *)(void *)s;
}

/* ---- recursion depth ------------------------------------------------- */

static inline int
py_depth(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030C0000
    /* 3.12: Python and C recursion are counted apart. */
    return ts->py_recursion_limit - ts->py_recursion_remaining;
#elif PY_VERSION_HEX >= 0x030B0000
    /* 3.11: a remaining budget; sys.setrecursionlimit rewrites both. */
    return ts->recursion_limit - ts->recursion_remaining;
#else
    return ts->recursion_depth;
#endif
}

static inline void
set_py_depth(PyThreadState *ts, int depth)
{
#if PY_VERSION_HEX >= 0x030C0000
    ts->py_recursion_remaining = ts->py_recursion_limit - depth;
#elif PY_VERSION_HEX >= 0x030B0000
    ts->recursion_remaining = ts->recursion_limit - depth;
#else
    ts->recursion_depth = depth;
#endif
}

#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030E0000
#  if PY_VERSION_HEX >= 0x030D0000
#    define GS_C_RECURSION_LIMIT Py_C_RECURSION_LIMIT
#  else
#    define GS_C_RECURSION_LIMIT C_RECURSION_LIMIT
#  endif
/* The C recursion budget is sized for an 8 MiB thread stack; a greenlet
   on a smaller stack gets a proportional share so that RecursionError
   comes before the guard page. */
static int
c_depth_for_stack(int inherited, size_t stack_size)
{
    long budget = (long)GS_C_RECURSION_LIMIT;
    if (stack_size < GS_THREAD_STACK_SIZE) {
        budget = (long)((double)budget * (double)stack_size /
                        (double)GS_THREAD_STACK_SIZE);
    }
    long depth = (long)GS_C_RECURSION_LIMIT - budget;
    return depth > inherited ? (int)depth : inherited;
}
#endif

#if PY_VERSION_HEX < 0x030C0000
/* 3.10-3.11 count Python and C recursion together against one limit that
   knows nothing of stack sizes. Measured on 3.11, a level of recursion
   that re-enters the interpreter from C uses about 530 bytes of C stack;
   3.10 recurses in C on every Python call. A greenlet whose stack cannot
   hold `limit` such levels starts deeper, so RecursionError comes before
   its guard page. A stack as big as a thread's behaves as a thread's:
   no budget beyond the limit itself. */
#  if PY_VERSION_HEX >= 0x030B0000
#    define GS_STACK_BYTES_PER_LEVEL 1024
#  else
#    define GS_STACK_BYTES_PER_LEVEL 2048
#  endif
static int
py_depth_for_stack(int inherited, int limit, size_t stack_size)
{
    if (stack_size >= GS_THREAD_STACK_SIZE) {
        return inherited;   /* as much stack as a thread: as a thread */
    }
    long budget = (long)(stack_size / GS_STACK_BYTES_PER_LEVEL);
    long depth = (long)limit - budget;
    return depth > inherited ? (int)depth : inherited;
}

static inline int
py_limit(PyThreadState *ts)
{
#  if PY_VERSION_HEX >= 0x030B0000
    return ts->recursion_limit;
#  else
    (void)ts;
    return Py_GetRecursionLimit();
#  endif
}
#endif

/* ---- 3.14+: C stack protection ---------------------------------------- */

#if PY_VERSION_HEX >= 0x030E0000
/* CPython compares the stack pointer with three per-thread bounds kept in
   _PyThreadStateImpl: the top of the C stack, a soft limit (RecursionError
   below it) and a hard limit (fatal error below it). A greenlet runs on
   another stack, so it must install its own bounds whenever it runs.
   3.14.1+ and 3.15 have an API for that; 3.14.0 has not, and there the
   fields are written directly ("direct" mode). Both functions are looked
   up at run time so that one cp314 build loads on every 3.14.x. */
typedef int (*set_stack_protection_fn)(PyThreadState *, void *, size_t);
typedef void (*reset_stack_protection_fn)(PyThreadState *);
static set_stack_protection_fn set_stack_protection;
static reset_stack_protection_fn reset_stack_protection;

/* Direct mode: where the three fields sit, as a byte offset from the
   thread state, and the distance CPython keeps between them. */
static int direct_bounds;
static size_t bounds_offset;
static uintptr_t bounds_margin;

static inline struct c_stack_bounds *
bounds_of(PyThreadState *ts)
{
    return (struct c_stack_bounds *)(void *)((char *)ts + bounds_offset);
}

/* Whether `b` holds the bounds of the C stack we are running on, as
   CPython computes them for a thread (top > soft > hard, soft - hard ==
   hard - base == the margin, a few KiB). */
static int
looks_like_our_bounds(const struct c_stack_bounds *b, uintptr_t sp)
{
    uintptr_t margin = b->soft_limit - b->hard_limit;
    return b->hard_limit != 0 && b->hard_limit < b->soft_limit &&
           b->soft_limit < sp && sp < b->top &&
           margin >= 4096 && margin <= ((uintptr_t)1 << 20) &&
           margin % 4096 == 0;
}

/* Find the fields in this interpreter's thread state. The offset in the
   headers we were built with is checked against the running thread's
   values, and so are its neighbours: 3.14.4 appended a pointer to
   PyThreadState, which moved every _PyThreadStateImpl field by 8 bytes
   between 3.14.3 and 3.14.4. Exactly one candidate must fit. */
static int
locate_bounds(PyThreadState *ts)
{
    static const int shifts[] = {0, -(int)sizeof(void *), (int)sizeof(void *)};
    /* The frame's address, not a local's: under AddressSanitizer a
       local may live on its fake stack, in the heap. */
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    size_t built = offsetof(_PyThreadStateImpl, c_stack_top);
    int found = 0;

    for (size_t i = 0; i < sizeof(shifts) / sizeof(shifts[0]); i++) {
        size_t offset = built + (size_t)(ptrdiff_t)shifts[i];
        const struct c_stack_bounds *b =
            (const struct c_stack_bounds *)(const void *)((char *)ts + offset);
        if (looks_like_our_bounds(b, sp)) {
            found++;
            bounds_offset = offset;
            bounds_margin = b->soft_limit - b->hard_limit;
        }
    }
    return found == 1 ? 0 : -1;
}

static int
use_direct_bounds(PyThreadState *ts)
{
    if (locate_bounds(ts) < 0) {
        PyErr_Format(PyExc_ImportError,
            "greenlet cannot find the C stack bounds in this CPython's "
            "thread state (%s; needed where "
            "PyUnstable_ThreadState_SetStackProtection is missing), its "
            "layout differs from the headers greenlet was built with",
            Py_GetVersion());
        return -1;
    }
    direct_bounds = 1;
    return 0;
}

static void
install_stack_bounds(PyThreadState *ts, const struct saved_state *st)
{
    if (direct_bounds) {
        struct c_stack_bounds *b = bounds_of(ts);
        if (st->stack_top == 0) {
            *b = st->thread_bounds;
        }
        else {
            /* As CPython lays out a thread's stack of these bounds. */
            b->top = st->stack_top;
            b->hard_limit = st->stack_limit + bounds_margin;
            b->soft_limit = st->stack_limit + 2 * bounds_margin;
        }
        return;
    }
    if (st->stack_top == 0) {
        reset_stack_protection(ts);
        return;
    }
    if (set_stack_protection(ts, (void *)st->stack_limit,
                             st->stack_top - st->stack_limit) < 0) {
        /* Sizes are validated when the greenlet starts, so this cannot
           happen; if it does, keep the switch going with the thread's
           bounds rather than leave an exception set mid-switch. */
        PyErr_Clear();
    }
}
#endif

int
gs_pystate_init_runtime(void)
{
#if PY_VERSION_HEX >= 0x030E0000
    set_stack_protection = (set_stack_protection_fn)dlsym(
        RTLD_DEFAULT, "PyUnstable_ThreadState_SetStackProtection");
    reset_stack_protection = (reset_stack_protection_fn)dlsym(
        RTLD_DEFAULT, "PyUnstable_ThreadState_ResetStackProtection");
    if (set_stack_protection == NULL || reset_stack_protection == NULL) {
        return use_direct_bounds(PyThreadState_Get());
    }
#endif
    return 0;
}

const char *
gs_pystate_stack_bounds_mode(void)
{
#if PY_VERSION_HEX >= 0x030E0000
    return direct_bounds ? "direct" : "api";
#else
    return "none";
#endif
}

int
gs_pystate_force_direct_stack_bounds(void)
{
#if PY_VERSION_HEX >= 0x030E0000
    return direct_bounds ? 0 : use_direct_bounds(PyThreadState_Get());
#else
    PyErr_SetString(PyExc_RuntimeError,
                    "CPython before 3.14 keeps no C stack bounds");
    return -1;
#endif
}

/* ---- save / restore --------------------------------------------------- */

void
gs_pystate_save(struct gs_pystate *s, PyThreadState *ts)
{
    struct saved_state *st = as_saved(s);

    st->context = ts->context;
    ts->context = NULL;
#if PY_VERSION_HEX >= 0x030B0000
    st->exc_value = ts->exc_state.exc_value;
    ts->exc_state.exc_value = NULL;
#else
    st->exc_type = ts->exc_state.exc_type;
    st->exc_value = ts->exc_state.exc_value;
    st->exc_traceback = ts->exc_state.exc_traceback;
    ts->exc_state.exc_type = NULL;
    ts->exc_state.exc_value = NULL;
    ts->exc_state.exc_traceback = NULL;
#endif
    st->exc_info = ts->exc_info == &ts->exc_state ? NULL : ts->exc_info;
    st->recursion_depth = py_depth(ts);
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030E0000
    st->c_recursion_depth = GS_C_RECURSION_LIMIT - ts->c_recursion_remaining;
#endif
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
    st->trash_delete_nesting = ts->trash.delete_nesting;
#elif PY_VERSION_HEX < 0x030C0000
    st->trash_delete_nesting = ts->trash_delete_nesting;
#endif
#if PY_VERSION_HEX < 0x030B0000
    st->frame = ts->frame;
#endif
#if GS_HAS_CFRAME
    st->cframe = ts->cframe;
#else
    st->current_frame = ts->current_frame;
#endif
#if GS_HAS_DATASTACK
    st->datastack_chunk = ts->datastack_chunk;
    st->datastack_top = ts->datastack_top;
    st->datastack_limit = ts->datastack_limit;
#endif
#if PY_VERSION_HEX >= 0x030E0000
    st->current_executor = ts->current_executor;
    if (direct_bounds && st->stack_top == 0) {
        st->thread_bounds = *bounds_of(ts);   /* a main greenlet leaves */
    }
#endif
#ifdef Py_GIL_DISABLED
    st->critical_section = ts->critical_section;
#endif
}

void
gs_pystate_restore(struct gs_pystate *s, PyThreadState *ts)
{
    struct saved_state *st = as_saved(s);

    /* Whoever owned the thread state until now left no context behind:
       gs_pystate_save() moved it out. */
    ts->context = st->context;
    st->context = NULL;
    /* Context variables cache lookups per (thread state, version): a new
       version makes them look the variable up in our context. */
    ts->context_ver++;
#if PY_VERSION_HEX >= 0x030B0000
    ts->exc_state.exc_value = st->exc_value;
    st->exc_value = NULL;
#else
    ts->exc_state.exc_type = st->exc_type;
    ts->exc_state.exc_value = st->exc_value;
    ts->exc_state.exc_traceback = st->exc_traceback;
    st->exc_type = st->exc_value = st->exc_traceback = NULL;
#endif
    ts->exc_info = st->exc_info != NULL ? st->exc_info : &ts->exc_state;
    set_py_depth(ts, st->recursion_depth);
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030E0000
    ts->c_recursion_remaining = GS_C_RECURSION_LIMIT - st->c_recursion_depth;
#endif
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
    ts->trash.delete_nesting = st->trash_delete_nesting;
#elif PY_VERSION_HEX < 0x030C0000
    ts->trash_delete_nesting = st->trash_delete_nesting;
#endif
#if PY_VERSION_HEX < 0x030B0000
    ts->frame = st->frame;
#endif
#if GS_HAS_CFRAME && PY_VERSION_HEX < 0x030C0000
    /* 3.10-3.11: sys.settrace() marks only the running CFrame; carry the
       flag over, as the eval loop does when it returns to a caller. */
    uint8_t use_tracing = ts->cframe->use_tracing;
    ts->cframe = st->cframe;
    ts->cframe->use_tracing = use_tracing;
#elif GS_HAS_CFRAME
    ts->cframe = st->cframe;
#else
    ts->current_frame = st->current_frame;
#endif
#if GS_HAS_DATASTACK
    ts->datastack_chunk = st->datastack_chunk;
    ts->datastack_top = st->datastack_top;
    ts->datastack_limit = st->datastack_limit;
#endif
#if PY_VERSION_HEX >= 0x030E0000
    ts->current_executor = st->current_executor;
    install_stack_bounds(ts, st);
#endif
#ifdef Py_GIL_DISABLED
    ts->critical_section = st->critical_section;
#endif
}

uintptr_t
gs_pystate_prepare_start(struct gs_pystate *s, PyThreadState *ts,
                         uintptr_t stack_limit, uintptr_t stack_top)
{
    struct saved_state *st = as_saved(s);
    PyObject *context = st->context;    /* set through gr_context, kept */

    memset(st, 0, sizeof(*st));
    st->context = context;
#if GS_HAS_DATASTACK
    /* CPython would mmap a 16 KiB root chunk for the first frame and
       munmap it when the greenlet ends: a system call pair per spawn.
       Give it one from the top of our stack instead; it is never popped
       (CPython keeps the first slot of a root chunk unused), and pooled
       stacks come back with it already in memory. */
    _PyStackChunk *root = (_PyStackChunk *)(stack_top - GS_ROOT_CHUNK_SIZE);
    root->previous = NULL;
    root->size = GS_ROOT_CHUNK_SIZE;
    root->top = 0;
    st->own_root_chunk = root;
    st->datastack_chunk = root;
    st->datastack_top = &root->data[1];
    st->datastack_limit = (PyObject **)(stack_top);
    stack_top -= GS_ROOT_CHUNK_SIZE;
#endif
    /* As upstream, a new greenlet inherits the depth it was started at. */
    st->recursion_depth = py_depth(ts);
#if PY_VERSION_HEX < 0x030C0000
    st->recursion_depth = py_depth_for_stack(
        st->recursion_depth, py_limit(ts), (size_t)(stack_top - stack_limit));
#endif
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030E0000
    st->c_recursion_depth = c_depth_for_stack(
        GS_C_RECURSION_LIMIT - ts->c_recursion_remaining,
        (size_t)(stack_top - stack_limit));
#endif
#if GS_HAS_CFRAME
#  if PY_VERSION_HEX < 0x030C0000
    st->root_cframe.use_tracing = ts->cframe->use_tracing;
#  endif
#  if PY_VERSION_HEX >= 0x030B0000
    st->root_cframe.current_frame = NULL;
#  endif
    st->root_cframe.previous = &ts->root_cframe;
    st->cframe = &st->root_cframe;
#elif PY_VERSION_HEX >= 0x030F0000
    /* 3.15: every frame chain ends at an interpreter-owned base frame.
       Not the thread's own: a frame object of a greenlet whose thread has
       exited would walk f_back into that freed thread state. Each
       greenlet gets one at the bottom of its root chunk instead, laid out
       as CPython lays out a thread's. */
    struct _PyInterpreterFrame *base =
        (struct _PyInterpreterFrame *)(void *)st->datastack_top;
    memset(base, 0, sizeof(*base));
    base->f_executable = PyStackRef_None;
    base->owner = FRAME_OWNED_BY_INTERPRETER;
    st->datastack_top +=
        (sizeof(*base) + sizeof(PyObject *) - 1) / sizeof(PyObject *);
    st->current_frame = base;
    st->frames_end = base;
#else
    st->current_frame = NULL;
#endif
#if PY_VERSION_HEX >= 0x030E0000
    st->stack_limit = stack_limit;
    st->stack_top = stack_top;
#else
    (void)stack_limit;
#endif
    return stack_top;
}

/* ---- end of life ------------------------------------------------------ */

#if GS_HAS_DATASTACK
/* The root chunk of a chain is never popped by CPython; chunks are
   allocated with _PyObject_VirtualAlloc, a thin wrapper around the object
   arena allocator, which is public. */
static void
free_chunks(_PyStackChunk *chunk, const _PyStackChunk *own_root)
{
    PyObjectArenaAllocator alloc;
    PyObject_GetArenaAllocator(&alloc);
    while (chunk != NULL && chunk != own_root) {
        _PyStackChunk *previous = chunk->previous;
        if (alloc.free != NULL) {
            alloc.free(alloc.ctx, chunk, chunk->size);
        }
        chunk = previous;
    }
}
#endif

void
gs_pystate_finish(struct gs_pystate *s, PyThreadState *ts)
{
#if GS_HAS_DATASTACK
    free_chunks(ts->datastack_chunk, as_saved(s)->own_root_chunk);
    ts->datastack_chunk = NULL;
    ts->datastack_top = NULL;
    ts->datastack_limit = NULL;
#else
    (void)s;
    (void)ts;
#endif
}

int
gs_pystate_frames_exposed(struct gs_pystate *s)
{
#if GS_HAS_DATASTACK
    struct saved_state *st = as_saved(s);
#  if GS_HAS_CFRAME
    struct _PyInterpreterFrame *f =
        st->cframe != NULL ? st->cframe->current_frame : NULL;
#  else
    struct _PyInterpreterFrame *f = st->current_frame;
#  endif
    /* 3.15 releases the frames (release_frames), and with them a frame
       object that nothing but its frame holds; elsewhere, or while the
       interpreter finalizes, any frame object would be left pointing at
       the memory. */
    int only_shared_objects = 0;
#  if PY_VERSION_HEX >= 0x030F0000
    only_shared_objects = !gs_pystate_is_finalizing();
#  endif
    /* Only frames in our chunks count: a generator's frame lives in the
       generator, and an entry frame on the C stack never gets an object
       (nor, on 3.12+, an initialised frame_obj field). */
    for (; f != NULL && f != st->frames_end; f = f->previous) {
        if (f->owner == FRAME_OWNED_BY_THREAD && f->frame_obj != NULL &&
                (!only_shared_objects ||
                 Py_REFCNT((PyObject *)f->frame_obj) > 1)) {
            return 1;
        }
    }
    return 0;
#else
    /* 3.10: frames are heap objects, never in the greenlet's memory. */
    (void)s;
    return 0;
#endif
}

#if PY_VERSION_HEX < 0x030B0000
/* 3.10: each running function frame is kept alive by one reference that
   the C call evaluating it (_PyEval_Vector) drops when it returns, and is
   hidden from the collector until then. Those calls never return, so do
   what they would: drop the reference, and let the collector see the
   frame if someone else (gr_frame, a traceback) still holds it.
   Generator frames belong to their generator, not to a C call. */
static void
release_frames(struct saved_state *st)
{
    PyObject *chain = PyList_New(0);    /* keeps each frame alive meanwhile */
    if (chain == NULL) {
        PyErr_Clear();                  /* no memory: leave them leaked */
        return;
    }
    for (PyFrameObject *f = st->frame; f != NULL; f = f->f_back) {
        if (PyList_Append(chain, (PyObject *)f) < 0) {
            PyErr_Clear();
            Py_DECREF(chain);
            return;
        }
    }
    st->frame = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(chain); i++) {
        PyFrameObject *frame = (PyFrameObject *)PyList_GET_ITEM(chain, i);
        if (frame->f_gen == NULL) {
            Py_DECREF(frame);               /* the evaluating call's */
        }
        if (!PyObject_GC_IsTracked((PyObject *)frame)) {
            PyObject_GC_Track(frame);
        }
    }
    Py_DECREF(chain);
}
#elif PY_VERSION_HEX >= 0x030F0000
/* 3.15, as upstream does there: release what the greenlet's own frames
   hold (locals, value stack, code, function, frame object), which the
   suspended calls would have released on their way out. Frames owned by
   a generator are released by it; the entry frames on the C stack hold
   nothing. */
static void
release_frames(struct saved_state *st)
{
    struct _PyInterpreterFrame *f = st->current_frame;

    st->current_frame = st->frames_end;
    for (; f != NULL && f != st->frames_end; f = f->previous) {
        if (f->owner != FRAME_OWNED_BY_THREAD) {
            continue;
        }
        _PyStackRef *sp = f->stackpointer;
        if (sp != NULL) {
            while (sp > f->localsplus) {
                sp--;
                PyStackRef_CLEAR(*sp);
            }
            f->stackpointer = f->localsplus;
        }
        Py_CLEAR(f->f_locals);
        Py_CLEAR(f->frame_obj);
        PyStackRef_CLEAR(f->f_funcobj);
        PyStackRef_CLEAR(f->f_executable);
    }
}
#endif

int
gs_pystate_discard(struct gs_pystate *s, int free_frames)
{
    struct saved_state *st = as_saved(s);
    int released = 0;

    /* Before 3.15 (3.10 aside) upstream drops the frames without running
       or clearing them, and what they reference stays referenced; so do
       we. 3.10 and 3.15 release it (see release_frames). If frame objects
       point into the frames, the chunks stay allocated: a dangling frame
       would be worse than the memory. */
#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030F0000
    /* 3.15: a frame object handed out reads its interpreter frame (code,
       line, f_back) for as long as it lives; emptying that frame under it
       would crash, so an exposed chain stays referenced, as on 3.11-3.14.
       3.10's frames are objects of their own: always released. */
    if (!gs_pystate_is_finalizing() &&
            (PY_VERSION_HEX < 0x030B0000 || free_frames)) {
        release_frames(st);
        /* 3.10 frees the frame objects only: what upstream leaks there
           (the values on the frames' stacks), we leak too. */
        released = PY_VERSION_HEX >= 0x030F0000;
    }
#endif
#if GS_HAS_DATASTACK
    if (free_frames) {
        free_chunks(st->datastack_chunk, st->own_root_chunk);
    }
    st->datastack_chunk = NULL;
    st->datastack_top = NULL;
    st->datastack_limit = NULL;
#else
    (void)free_frames;
#endif
    gs_pystate_clear(s);
    return released;
}

int
gs_pystate_traverse(struct gs_pystate *s, visitproc visit, void *arg)
{
    struct saved_state *st = as_saved(s);
    Py_VISIT(st->context);
#if PY_VERSION_HEX >= 0x030B0000
    Py_VISIT(st->exc_value);
#else
    Py_VISIT(st->exc_type);
    Py_VISIT(st->exc_value);
    Py_VISIT(st->exc_traceback);
#endif
    return 0;
}

void
gs_pystate_clear(struct gs_pystate *s)
{
    struct saved_state *st = as_saved(s);
    Py_CLEAR(st->context);
#if PY_VERSION_HEX >= 0x030B0000
    Py_CLEAR(st->exc_value);
#else
    Py_CLEAR(st->exc_type);
    Py_CLEAR(st->exc_value);
    Py_CLEAR(st->exc_traceback);
#endif
}

/* ---- accessors -------------------------------------------------------- */

PyObject **
gs_pystate_context_slot(struct gs_pystate *s)
{
    return &as_saved(s)->context;
}

PyObject *
gs_pystate_current_context(PyThreadState *ts)
{
    return ts->context;
}

void
gs_pystate_set_current_context(PyThreadState *ts, PyObject *context)
{
    Py_XSETREF(ts->context, Py_XNewRef(context));
    ts->context_ver++;
}

int
gs_pystate_trash_delete_nesting(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030D0000
    (void)ts;
    return -1;      /* 3.13: the trashcan counts C recursion instead */
#elif PY_VERSION_HEX >= 0x030C0000
    return ts->trash.delete_nesting;
#else
    return ts->trash_delete_nesting;
#endif
}

PyObject *
gs_pystate_top_frame(struct gs_pystate *s, PyThreadState *ts)
{
    struct saved_state *st = as_saved(s);
    PyFrameObject *frame;

    /* PyThreadState_GetFrame() is the public way to turn an interpreter
       frame into a frame object; point the thread state at the suspended
       greenlet's frames for the duration of the call. Collection is off
       meanwhile: a collection could run Python code with the wrong frame
       chain installed. */
    int gc_was_enabled = PyGC_Disable();
#if PY_VERSION_HEX < 0x030B0000
    /* 3.10: the frame chain hangs off tstate->frame, not the CFrame. */
    PyFrameObject *mine = ts->frame;
    ts->frame = st->frame;
    frame = PyThreadState_GetFrame(ts);
    ts->frame = mine;
#elif GS_HAS_CFRAME
    gs_cframe *mine = ts->cframe;
    ts->cframe = st->cframe;
    frame = PyThreadState_GetFrame(ts);
    ts->cframe = mine;
#else
    struct _PyInterpreterFrame *mine = ts->current_frame;
    ts->current_frame = st->current_frame;
    frame = PyThreadState_GetFrame(ts);
    ts->current_frame = mine;
#endif
    if (gc_was_enabled) {
        PyGC_Enable();
    }
    return (PyObject *)frame;
}

/* ---- exceptions, tracing, shutdown ------------------------------------ */

void
gs_pystate_fetch_exc(struct gs_pending_exc *e)
{
#if PY_VERSION_HEX >= 0x030C0000
    /* 3.12: the pending exception is one object. */
    e->parts[0] = PyErr_GetRaisedException();
    e->parts[1] = e->parts[2] = NULL;
#else
    PyErr_Fetch(&e->parts[0], &e->parts[1], &e->parts[2]);
#endif
}

void
gs_pystate_restore_exc(struct gs_pending_exc *e)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(e->parts[0]);
#else
    PyErr_Restore(e->parts[0], e->parts[1], e->parts[2]);
#endif
    e->parts[0] = e->parts[1] = e->parts[2] = NULL;
}

PyObject *
gs_pystate_take_exc_instance(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (value != NULL && traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value != NULL ? value : Py_NewRef(Py_None);
#endif
}

void
gs_pystate_enter_tracing(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030B0000
    PyThreadState_EnterTracing(ts);
#else
    ts->tracing++;
    ts->cframe->use_tracing = 0;
#endif
}

void
gs_pystate_leave_tracing(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030B0000
    PyThreadState_LeaveTracing(ts);
#else
    ts->tracing--;
    ts->cframe->use_tracing =
        (ts->tracing <= 0 &&
         (ts->c_tracefunc != NULL || ts->c_profilefunc != NULL));
#endif
}

int
gs_pystate_is_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}
