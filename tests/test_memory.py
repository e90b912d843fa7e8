"""Memory: many suspended greenlets give their memory back, and switch
arguments and results carry no hidden references."""

import sys

import greenlet
from greenlet import getcurrent

from conftest import skip_under_asan_rss

# Shared by the child-process memory tests: resident set size in bytes,
# from psutil when installed, else from /proc.
RSS_HELPER = """
import gc
import os
try:
    import psutil
except ImportError:
    psutil = None

def rss():
    if psutil is not None:
        return psutil.Process().memory_info().rss
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

MIB = 1024 * 1024
"""


class Payload:
    """An object whose references we count."""


def fresh_refcount():
    """Reference count of a new object held by one local variable."""
    obj = Payload()
    return sys.getrefcount(obj)


@skip_under_asan_rss
def test_rss_returns_after_10000_suspended_greenlets_are_dropped(
        run_in_subprocess):
    stdout = run_in_subprocess.clean(RSS_HELPER + """
import greenlet

def park():
    greenlet.getcurrent().parent.switch()

def one_round():
    parked = [greenlet.greenlet(park) for _ in range(10000)]
    for g in parked:
        g.switch()
    peak = rss()
    del parked
    gc.collect()
    return peak

one_round()  # warm-up: allocator pools, caches, any stack pool
baseline = rss()
peaks = [one_round() for _ in range(3)]
after = rss()
growth = (after - baseline) / MIB
held = (max(peaks) - baseline) / MIB
print(f"baseline={baseline / MIB:.1f}MiB held={held:.1f}MiB "
      f"growth={growth:.1f}MiB")
assert growth < 16, "memory was not given back"
print("ok")
""")
    assert stdout.splitlines()[-1] == "ok", stdout


@skip_under_asan_rss
def test_rss_does_not_grow_over_rounds_of_finished_greenlets(
        run_in_subprocess):
    """Upstream issue #328: on 3.11 every finished greenlet leaked its
    interpreter data-stack chunk."""
    stdout = run_in_subprocess.clean(RSS_HELPER + """
import greenlet

def one_round():
    for i in range(10000):
        greenlet.greenlet(lambda: i).switch()
    gc.collect()

one_round()
baseline = rss()
for _ in range(5):
    one_round()
growth = (rss() - baseline) / MIB
print(f"growth={growth:.1f}MiB")
assert growth < 8, "memory grows with finished greenlets"
print("ok")
""")
    assert stdout.splitlines()[-1] == "ok", stdout


@skip_under_asan_rss
def test_rss_returns_after_a_thread_exits_with_suspended_greenlets(
        run_in_subprocess):
    stdout = run_in_subprocess.clean(RSS_HELPER + """
import threading
import time
import greenlet

def park():
    greenlet.getcurrent().parent.switch()

def thread_body(keep):
    parked = [greenlet.greenlet(park) for _ in range(5000)]
    for g in parked:
        g.switch()
    keep.append(greenlet.getcurrent())

def one_round():
    keep = []
    t = threading.Thread(target=thread_body, args=(keep,))
    t.start()
    t.join()
    while not keep[0].dead:   # wait for greenlet to see the thread exit
        time.sleep(0.005)
    del keep
    for _ in range(5):
        gc.collect()
        time.sleep(0.005)   # lets queued per-thread cleanup run

one_round()
baseline = rss()
for _ in range(3):
    one_round()
growth = (rss() - baseline) / MIB
print(f"growth={growth:.1f}MiB")
assert growth < 16, "memory of an exited thread's greenlets was kept"
print("ok")
""")
    assert stdout.splitlines()[-1] == "ok", stdout


# --- exact reference counts ----------------------------------------------


def test_value_switched_to_the_parent_has_no_extra_references():
    g = greenlet.greenlet(lambda: getcurrent().parent.switch(Payload()))
    result = g.switch()
    g.switch()  # let the sender finish, dropping its own references
    assert g.dead
    assert sys.getrefcount(result) == fresh_refcount()


def test_value_switched_with_kwargs_has_no_extra_references():
    g = greenlet.greenlet(lambda: getcurrent().parent.switch(k=Payload()))
    result = g.switch()
    g.switch()
    fresh = {}
    assert sys.getrefcount(result) == sys.getrefcount(fresh)
    value = result.pop("k")
    assert sys.getrefcount(value) == fresh_refcount()


def test_packed_switch_result_has_no_extra_references():
    g = greenlet.greenlet(lambda: getcurrent().parent.switch(1, 2))
    result = g.switch()
    g.switch()
    fresh = tuple([1, 2])
    assert sys.getrefcount(result) == sys.getrefcount(fresh)


def test_value_returned_by_run_has_no_extra_references():
    g = greenlet.greenlet(Payload)
    result = g.switch()
    assert sys.getrefcount(result) == fresh_refcount()


def test_value_switched_into_a_greenlet_has_no_extra_references():
    received = []

    def run():
        received.append(getcurrent().parent.switch())
        getcurrent().parent.switch()

    g = greenlet.greenlet(run)
    g.switch()
    g.switch(Payload())  # our call has returned: only `received` holds it
    result = received.pop()
    assert sys.getrefcount(result) == fresh_refcount()
    g.switch()


def test_arguments_to_run_are_released_when_it_finishes():
    arg = Payload()
    before = sys.getrefcount(arg)
    greenlet.greenlet(lambda x: None).switch(arg)
    assert sys.getrefcount(arg) == before


def test_keyword_arguments_to_run_are_released_when_it_finishes():
    arg = Payload()
    before = sys.getrefcount(arg)
    greenlet.greenlet(lambda **kw: None).switch(key=arg)
    assert sys.getrefcount(arg) == before


def test_args_of_a_resuming_switch_are_released_after_use():
    arg = Payload()
    before = sys.getrefcount(arg)

    def run():
        getcurrent().parent.switch()
        getcurrent().parent.switch()

    g = greenlet.greenlet(run)
    g.switch()
    g.switch(arg, k=arg)
    assert sys.getrefcount(arg) == before
    g.switch()


def test_switching_to_self_keeps_no_reference():
    arg = Payload()
    before = sys.getrefcount(arg)
    getcurrent().switch(arg)
    getcurrent().switch(arg, k=arg)
    assert sys.getrefcount(arg) == before


def test_dead_greenlet_does_not_keep_its_return_value():
    value = Payload()
    before = sys.getrefcount(value)
    g = greenlet.greenlet(lambda: value)
    g.switch()
    del g
    assert sys.getrefcount(value) == before


def test_finished_greenlet_does_not_keep_its_run_callable():
    def run():
        pass

    before = sys.getrefcount(run)
    g = greenlet.greenlet(run)
    assert sys.getrefcount(run) == before + 1
    g.switch()
    assert sys.getrefcount(run) == before


def test_thrown_exception_is_released():
    exc = KeyError("thrown")
    g = greenlet.greenlet(lambda: getcurrent().parent.switch())
    g.switch()
    before = sys.getrefcount(exc)
    try:
        g.throw(exc)
    except KeyError:
        pass
    exc.__traceback__ = None
    assert sys.getrefcount(exc) == before


def test_greenlet_exit_result_has_no_extra_references():
    g = greenlet.greenlet(lambda: getcurrent().parent.switch())
    g.switch()
    result = g.throw()
    fresh = greenlet.GreenletExit()
    assert sys.getrefcount(result) == sys.getrefcount(fresh)
