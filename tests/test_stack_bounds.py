"""How greenlets tell CPython 3.14+ where their C stack is.

From 3.14, CPython compares the stack pointer with per-thread bounds to
raise RecursionError and to decide when deallocation must be deferred
(the trashcan). A greenlet runs on its own stack, so every switch installs
that stack's bounds: through PyUnstable_ThreadState_SetStackProtection on
3.14.1+, or, on 3.14.0 which lacks it, by writing the thread state's fields
directly. No 3.14.0 is at hand here, so the direct mode is forced on the
3.14 we have and part of the suite runs again under it.
"""

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from greenlet import _greenlet

from conftest import FORCE_DIRECT_BOUNDS

TESTS = Path(__file__).resolve().parent
HAS_BOUNDS = sys.version_info >= (3, 14)
needs_bounds = pytest.mark.skipif(
    not HAS_BOUNDS, reason="CPython before 3.14 keeps no C stack bounds")

# The files whose tests exercise recursion, deallocation, threads and
# switching: what the bounds decide.
DIRECT_MODE_SELECTION = (
    "test_recursion.py", "test_stacks.py", "test_threads.py", "test_gc.py",
    "test_switch.py", "test_lifecycle.py", "test_stack_bounds.py",
)


def _has_api():
    return hasattr(ctypes.pythonapi,
                   "PyUnstable_ThreadState_SetStackProtection")


def test_mode_follows_what_this_cpython_offers():
    if not HAS_BOUNDS:
        expected = "none"
    elif FORCE_DIRECT_BOUNDS or not _has_api():
        expected = "direct"
    else:
        expected = "api"
    assert _greenlet._stack_bounds_mode() == expected


@pytest.mark.skipif(HAS_BOUNDS, reason="3.14+ has bounds to write")
def test_forcing_direct_mode_before_3_14_raises():
    with pytest.raises(RuntimeError, match="keeps no C stack bounds"):
        _greenlet._force_direct_stack_bounds()
    assert _greenlet._stack_bounds_mode() == "none"


@needs_bounds
def test_forcing_direct_mode_outside_the_main_greenlet_raises(
        run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import greenlet
        from greenlet import _greenlet
        def run():
            try:
                _greenlet._force_direct_stack_bounds()
            except RuntimeError as e:
                return str(e)
        print(greenlet.greenlet(run).switch())
        print(_greenlet._stack_bounds_mode())
    """)
    first, mode = stdout.splitlines()
    assert first == "only the main greenlet can change the mode"
    assert mode == ("direct" if FORCE_DIRECT_BOUNDS or not _has_api()
                    else "api")


@needs_bounds
def test_direct_mode_bounds_follow_each_greenlet(run_in_subprocess):
    # C recursion (repr of nested lists) is bounded only by the stack
    # bounds on 3.14+: RecursionError, not the guard page, in a greenlet,
    # back in main, and in another thread's greenlet.
    stdout = run_in_subprocess.clean("""
        import threading
        import greenlet
        from greenlet import _greenlet
        _greenlet._force_direct_stack_bounds()
        def c_recursion():
            nested = []
            for _ in range(300000):
                nested = [nested]
            try:
                repr(nested)
            except RecursionError:
                return "RecursionError"
            return "no error"
        results = [greenlet.greenlet(c_recursion).switch(), c_recursion()]
        t = threading.Thread(
            target=lambda: results.append(
                greenlet.greenlet(c_recursion).switch()))
        t.start()
        t.join()
        results.append(c_recursion())
        print(_greenlet._stack_bounds_mode(), results)
    """)
    assert stdout == "direct %s\n" % (["RecursionError"] * 4,)


@needs_bounds
def test_suite_passes_with_bounds_written_directly():
    env = dict(os.environ, GS_TEST_STACK_BOUNDS="direct")
    this_test = test_suite_passes_with_bounds_written_directly.__name__
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         *[str(TESTS / name) for name in DIRECT_MODE_SELECTION],
         "-k", "not " + this_test],
        capture_output=True, text=True, env=env, timeout=900)
    summary = proc.stdout.strip().splitlines()[-1:]
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert summary and " passed" in summary[0] and "failed" not in summary[0]
