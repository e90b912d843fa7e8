"""Measurements shared by the benchmark scripts that run inside each venv.

Nothing here imports greenlet: the same helpers serve both implementations.
"""

import os
import sys

# C recursion -----------------------------------------------------------------
#
# Since CPython 3.11 a Python function calling another Python function adds no
# C stack frame: the interpreter pushes the new frame and stays in the same
# C loop. A greenlet suspended "deep" in pure Python code therefore sits on
# almost no C stack. To put real C frames under a switch, each level below
# goes through a builtin that calls back into Python from C: next() runs
# map's iterator, which calls `_level` through the C call protocol, which
# enters a fresh interpreter loop. That is one C re-entry per level on every
# supported version (3.10 included).


def _level(remaining, fn, args):
    if remaining == 0:
        return fn(*args)
    return next(map(_level, (remaining - 1,), (fn,), (args,)))


def descend(levels, fn, *args):
    """Return fn(*args), called under `levels` re-entries of the interpreter from C."""
    return _level(levels, fn, args)


def allow_depth(levels):
    """Raise the recursion limit so that `levels` C re-entries cannot trip it."""
    # Each level is one Python frame plus a C call; 3.11 counts both against
    # the one limit. Leave generous room for the harness's own frames.
    need = 4 * levels + 1000
    if sys.getrecursionlimit() < need:
        sys.setrecursionlimit(need)


# The stack pointer -------------------------------------------------------------
#
# ctypes cannot name an address on the C stack: its objects live on the heap.
# Linux can: /proc/thread-self/syscall, read by the thread itself, describes the
# system call that is reading it, and its second-to-last field is the user
# stack pointer at that call. The read below always goes through the same C
# path (os.pread -> libc -> kernel), so the value sits a fixed distance below
# the Python frame that asked, on whatever stack the caller runs on (the
# thread's stack, or a greenlet's own). Differences between two readings are
# therefore C stack bytes between the two callers.

_syscall_fd = None


def stack_pointer():
    """The current C stack pointer as an int, or None if this kernel hides it."""
    global _syscall_fd
    if _syscall_fd is None:
        try:
            # Opened once: /proc/thread-self resolves to the opening thread,
            # and every greenlet here runs on the main thread.
            _syscall_fd = os.open("/proc/thread-self/syscall", os.O_RDONLY)
        except OSError:
            _syscall_fd = -1
    if _syscall_fd < 0:
        return None
    try:
        fields = os.pread(_syscall_fd, 256, 0).split()
    except OSError:
        return None
    # "<nr> <arg1> ... <arg6> <sp> <pc>"; "running" or "-1 <sp> <pc>" otherwise.
    if len(fields) != 9:
        return None
    return int(fields[7], 16)


def c_stack_bytes(levels):
    """C stack bytes that `levels` C re-entries put under a call, as measured.

    Measured from the top of a call to the bottom of `descend(levels, ...)`,
    which is how far below a greenlet's run() its switch point sits in the
    switch benchmarks. None if the stack pointer cannot be read.
    """
    # Measure a few times and keep the last: on 3.11+ the first passes run
    # unspecialised bytecode, whose C frames differ by a few words.
    for _ in range(5):
        top = stack_pointer()
        bottom = descend(levels, stack_pointer)
    if top is None or bottom is None:
        return None
    return top - bottom


# Process memory ----------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid="self"):
    """Resident set size of a process, from /proc/<pid>/statm."""
    with open("/proc/%s/statm" % pid, "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def mapping_count(pid="self"):
    """Number of memory mappings (VMAs), the count vm.max_map_count caps."""
    with open("/proc/%s/maps" % pid, "rb") as f:
        return sum(1 for _ in f)


def page_table_bytes(pid="self"):
    """Kernel memory holding this process's page tables (VmPTE), not in RSS.

    Each stack touched in its own 2 MiB region costs a page-table page, so
    separate stacks pay here what RSS does not show.
    """
    with open("/proc/%s/status" % pid, "rb") as f:
        for line in f:
            if line.startswith(b"VmPTE:"):
                return int(line.split()[1]) * 1024
    return 0


def max_map_count():
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except OSError:
        return None


def greenlet_identity():
    """What `import greenlet` found: version and file, recorded with each result."""
    import greenlet

    return {
        "greenlet_version": str(getattr(greenlet, "__version__", "?")),
        "greenlet_file": str(getattr(greenlet, "__file__", "?")),
    }
