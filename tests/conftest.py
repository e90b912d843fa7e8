"""Shared fixtures for the greenlet behavioural tests.

Two fixtures matter to most files:

``run_in_subprocess``
    Runs a Python snippet in a fresh child interpreter (``sys.executable``,
    same environment, so it imports the same ``greenlet``) and returns
    ``(returncode, stdout, stderr)``.  Anything that could crash the
    interpreter, or that depends on interpreter start-up or shutdown, goes
    through it, so a crash fails one test instead of the whole run.
    ``run_in_subprocess.clean(code)`` additionally asserts exit status 0 and an
    empty stderr, and returns stdout.

``no_leaks``
    Asserts that a test leaves no greenlet objects behind.  It counts live
    ``greenlet.greenlet`` instances known to the cycle collector before and
    after the test, after collecting garbage and letting other threads'
    cleanup run.  ``no_leaks.check(fn)`` runs ``fn`` repeatedly and asserts
    that neither greenlets nor gc-tracked objects grow with the number of
    runs (and, on debug builds, the total reference count).

``GS_TEST_STACK_BOUNDS=direct`` in the environment makes this process, and
every child ``run_in_subprocess`` starts, write CPython 3.14+'s C stack
bounds directly, as greenlet does on 3.14.0, instead of through the API
(tests/test_stack_bounds.py runs part of the suite that way).
"""

import gc
import os
import subprocess
import sys
import textwrap
import time

import pytest

import greenlet

SUBPROCESS_TIMEOUT = 120

FORCE_DIRECT_BOUNDS = os.environ.get("GS_TEST_STACK_BOUNDS") == "direct"
# One line, so that line numbers in the child's code stay as written.
FORCE_DIRECT_BOUNDS_PREFIX = (
    "import greenlet._greenlet as _gs; "
    "_gs._force_direct_stack_bounds(); del _gs")
if FORCE_DIRECT_BOUNDS:
    greenlet._greenlet._force_direct_stack_bounds()


def _asan_runtime_loaded():
    import ctypes
    try:
        return hasattr(ctypes.CDLL(None), "__asan_init")
    except OSError:
        return False


# AddressSanitizer's runtime is in this process (tests/run-all.sh runs the
# suite once with an ASan build of the extension and libasan preloaded).
# It changes what a few tests can observe: freed memory waits in its
# quarantine and every stack touched has shadow pages, so RSS does not come
# back; and it reports a fatal signal itself and exits with status 1
# instead of dying of the signal.
UNDER_ASAN = _asan_runtime_loaded()
skip_under_asan_rss = pytest.mark.skipif(
    UNDER_ASAN,
    reason="AddressSanitizer keeps freed memory (quarantine, shadow pages): "
           "RSS is checked by the run without it")


class SubprocessRunner:
    """Runs Python source in a child interpreter."""

    def __call__(self, code, *, python_args=(), timeout=SUBPROCESS_TIMEOUT):
        env = dict(os.environ)
        # Make a fatal signal in the child print a Python traceback.
        env.setdefault("PYTHONFAULTHANDLER", "1")
        code = textwrap.dedent(code)
        if FORCE_DIRECT_BOUNDS:
            separator = "" if code.startswith("\n") else "\n"
            code = FORCE_DIRECT_BOUNDS_PREFIX + separator + code
        proc = subprocess.run(
            [sys.executable, *python_args, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        return proc.returncode, proc.stdout, proc.stderr

    def clean(self, code, **kwargs):
        """Run ``code``; assert a zero exit status and empty stderr."""
        returncode, stdout, stderr = self(code, **kwargs)
        assert (returncode, stderr) == (0, ""), (
            f"child exited with {returncode}\n"
            f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        )
        return stdout


@pytest.fixture
def run_in_subprocess():
    return SubprocessRunner()


def _settle():
    """Collect garbage and give exited threads' cleanup a chance to run.

    Cleanup of a dead thread's greenlet state is queued as a pending call
    on the main thread; pending calls run between bytecodes, so a few
    short sleeps with Python code in between let it happen.
    """
    for _ in range(3):
        gc.collect()
        time.sleep(0.001)
    gc.collect()


def _live_greenlets():
    return [o for o in gc.get_objects() if isinstance(o, greenlet.greenlet)]


def _count_live_greenlets():
    return len(_live_greenlets())


class LeakChecker:
    """The object the ``no_leaks`` fixture hands to a test."""

    def __init__(self):
        _settle()
        self.greenlets_before = _count_live_greenlets()

    def check(self, fn, *, runs=20, warmup=3):
        """Call ``fn`` ``warmup`` + ``runs`` times; assert nothing grows.

        Allocation caches, interned strings and the like settle during the
        warmup. After it, a leak of even one object per call would grow
        the counts by ``runs``; growth smaller than that is noise.
        """
        for _ in range(warmup):
            fn()
        _settle()
        greenlets = _count_live_greenlets()
        objects = len(gc.get_objects())
        total_refs = getattr(sys, "gettotalrefcount", None)
        refs = total_refs() if total_refs else None
        for _ in range(runs):
            fn()
        _settle()
        assert _count_live_greenlets() - greenlets == 0
        assert len(gc.get_objects()) - objects < runs
        if total_refs is not None:
            assert total_refs() - refs < runs

    def finish(self):
        for _ in range(10):
            _settle()
            if _count_live_greenlets() <= self.greenlets_before:
                return
        leaked = _live_greenlets()
        assert len(leaked) <= self.greenlets_before, (
            f"{len(leaked) - self.greenlets_before} greenlet(s) leaked: "
            f"{leaked!r}"
        )


@pytest.fixture
def no_leaks():
    checker = LeakChecker()
    yield checker
    checker.finish()
