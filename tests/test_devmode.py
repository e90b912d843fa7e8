"""Representative workloads under ``python -X dev -W error`` must exit
cleanly with nothing on stderr (no warnings, no unraisable exceptions,
no debug-allocator complaints)."""

DEV_ARGS = ("-X", "dev", "-W", "error")

SINGLE_THREAD_WORKLOAD = """
import contextvars
import gc
import sys
import greenlet
from greenlet import getcurrent

main = getcurrent()
var = contextvars.ContextVar("var", default=0)

# switching with every packing form
def echo():
    value = main.switch()
    while True:
        value = main.switch(value)
g = greenlet.greenlet(echo)
g.switch()
assert g.switch() == ()
assert g.switch(1) == 1
assert g.switch(1, 2) == (1, 2)
assert g.switch(a=1) == {"a": 1}
assert g.switch(1, a=2) == ((1,), {"a": 2})
g.throw()

# exceptions, GreenletExit, throw forms
try:
    greenlet.greenlet(lambda: 1 / 0).switch()
except ZeroDivisionError:
    pass
assert isinstance(greenlet.greenlet(
    lambda: (_ for _ in ()).throw(greenlet.GreenletExit)).switch(),
    greenlet.GreenletExit)
for args in [(), (KeyError,), (KeyError, "v"), (KeyError("i"),)]:
    p = greenlet.greenlet(lambda: main.switch())
    p.switch()
    try:
        p.throw(*args)
    except KeyError:
        pass

# killing suspended greenlets by dropping them, including nested ones
def parked_with_finally(log):
    def run():
        try:
            main.switch()
        finally:
            log.append(1)
    g = greenlet.greenlet(run)
    g.switch()
    return g
log = []
many = [parked_with_finally(log) for _ in range(200)]
del many
assert len(log) == 200

# context variables
def ctx_run():
    var.set(5)
    main.switch()
    return var.get()
c = greenlet.greenlet(ctx_run)
c.switch()
assert var.get() == 0
assert c.switch() == 5

# tracing
events = []
greenlet.settrace(lambda e, a: events.append(e))
greenlet.greenlet(lambda: None).switch()
greenlet.settrace(None)
assert events == ["switch", "switch"]
sys.setprofile(lambda *a: None)
greenlet.greenlet(lambda: None).switch()
sys.setprofile(None)

# frames and recursion
def deep(n):
    if n == 0:
        main.switch()
    else:
        deep(n - 1)
d = greenlet.greenlet(lambda: deep(100))
d.switch()
f = d.gr_frame
while f is not None:
    f = f.f_back
d.switch()
def rec():
    return rec()
try:
    greenlet.greenlet(rec).switch()
except RecursionError:
    pass

# cycles
for _ in range(100):
    x = greenlet.greenlet(lambda: None)
    x.me = x
gc.collect()
print("done")
"""

THREADED_WORKLOAD = """
import gc
import threading
import greenlet
from greenlet import getcurrent

errors = []
box = []
dropped = threading.Event()

def worker(n):
    try:
        main = getcurrent()
        for i in range(300):
            g = greenlet.greenlet(lambda x: main.switch(x) + 1)
            assert g.switch(i) == i
            if i % 3 == 0:
                assert g.switch(i) == i + 1
            # otherwise g is killed here while suspended
    except BaseException as exc:
        errors.append(exc)

def owner():
    def run():
        try:
            getcurrent().parent.switch()
        finally:
            box.append("unwound")
    g = greenlet.greenlet(run)
    g.switch()
    box.append(g)
    del g
    dropped.wait()
    getcurrent()    # runs the kill queued by the main thread

threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
owner_thread = threading.Thread(target=owner)
owner_thread.start()
for t in threads:
    t.start()
for t in threads:
    t.join()
while not box:
    pass
box.pop()           # drop the owner's greenlet from the main thread
dropped.set()
owner_thread.join()
assert box == ["unwound"], box
assert errors == [], errors

# a thread that exits with a suspended greenlet still referenced
keep = []
def leaver():
    g = greenlet.greenlet(lambda: getcurrent().parent.switch())
    g.switch()
    keep.append(g)
t = threading.Thread(target=leaver)
t.start()
t.join()
gc.collect()
print("done")
"""


def test_single_thread_workload_is_clean_in_dev_mode(run_in_subprocess):
    stdout = run_in_subprocess.clean(SINGLE_THREAD_WORKLOAD,
                                     python_args=DEV_ARGS)
    assert stdout == "done\n"


def test_threaded_workload_is_clean_in_dev_mode(run_in_subprocess):
    stdout = run_in_subprocess.clean(THREADED_WORKLOAD, python_args=DEV_ARGS)
    assert stdout == "done\n"


def test_interpreter_exit_with_suspended_greenlets_is_clean_in_dev_mode(
        run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import threading
        import greenlet
        main = greenlet.getcurrent()
        keep = []
        for _ in range(50):
            g = greenlet.greenlet(lambda: main.switch())
            g.switch()
            keep.append(g)
        def body():
            here = greenlet.getcurrent()
            g = greenlet.greenlet(lambda: here.switch())
            g.switch()
            keep.append(g)
        t = threading.Thread(target=body)
        t.start()
        t.join()
        print("done")
    """, python_args=DEV_ARGS)
    assert stdout == "done\n"


def test_dev_mode_reports_a_greenlet_refusing_to_die(run_in_subprocess):
    """Sanity check that stderr is really captured under -X dev."""
    returncode, stdout, stderr = run_in_subprocess("""
        import greenlet
        main = greenlet.getcurrent()
        def stubborn():
            while True:
                try:
                    main.switch()
                except greenlet.GreenletExit:
                    pass
        g = greenlet.greenlet(stubborn)
        g.switch()
        del g
    """, python_args=DEV_ARGS)
    assert returncode == 0
    assert "GreenletExit did not kill" in stderr
