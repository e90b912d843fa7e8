"""What a suspended greenlet's frames hold when its thread has exited.

Such a greenlet can never run again; when its last reference goes, its
frames are dropped without running. Like upstream: on 3.15 what the frames
hold (locals, the function being run) is released; on 3.10 the frame
objects themselves are freed; on 3.11 to 3.14 the frames' contents stay
referenced, as upstream leaves them (docs/design.md).
"""

import sys

import pytest


def test_dropped_greenlets_of_an_exited_thread_do_not_pile_up(run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import gc, sys, threading, greenlet
        def suspend():
            greenlet.getcurrent().parent.switch()
        def blocks():
            # Frames of a running call are hidden from gc.get_objects():
            # count the allocator's blocks instead.
            gc.collect()
            return sys.getallocatedblocks()
        def spawn_in_thread(n):
            box = []
            def body():
                for _ in range(n):
                    g = greenlet.greenlet(suspend)
                    g.switch()
                    box.append(g)
            t = threading.Thread(target=body)
            t.start()
            t.join()
            box.clear()              # dropped here, in the main thread
        spawn_in_thread(100)
        before = blocks()
        spawn_in_thread(2000)
        print(blocks() - before < 1000)
    """)
    assert stdout == "True\n"


@pytest.mark.skipif(sys.version_info < (3, 15),
                    reason="before 3.15 (as upstream) the frames' contents "
                           "stay referenced")
def test_locals_and_function_of_the_dead_greenlet_are_released(
        run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import gc, threading, weakref, greenlet
        class Payload:
            pass
        refs = []
        def make_run():
            def run():
                payload = Payload()
                refs.append(weakref.ref(payload))
                greenlet.getcurrent().parent.switch()
            refs.append(weakref.ref(run))
            return run
        box = []
        def body():
            g = greenlet.greenlet(make_run())
            g.switch()
            box.append(g)
        t = threading.Thread(target=body)
        t.start()
        t.join()
        box.clear()
        gc.collect()
        print([r() is None for r in refs])
    """)
    assert stdout == "[True, True]\n"


def test_a_frame_taken_before_the_thread_exited_stays_readable(
        run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import gc, threading, greenlet
        def inner():
            marker = "inner local"
            greenlet.getcurrent().parent.switch()
        def run():
            inner()
        frames = []
        box = []
        def body():
            g = greenlet.greenlet(run)
            g.switch()
            frames.append(g.gr_frame)
            box.append(g)
        t = threading.Thread(target=body)
        t.start()
        t.join()
        box.clear()                  # the greenlet goes; its frame stays
        gc.collect()
        f = frames[0]
        names = []
        while f is not None:
            names.append((f.f_code.co_name, f.f_lineno > 0))
            f = f.f_back
        print(names, frames[0].f_locals.get("marker"))
    """)
    assert stdout == "[('inner', True), ('run', True)] inner local\n"


def test_f_back_of_a_frame_whose_thread_exited_ends_cleanly(
        run_in_subprocess):
    # The frames' chain must not end in the exited thread's state, which
    # is freed (-X dev fills freed memory, so a read there shows).
    stdout = run_in_subprocess.clean("""
        import threading, greenlet
        def inner():
            greenlet.getcurrent().parent.switch()
        def run():
            inner()
        kept = []
        def body():
            g = greenlet.greenlet(run)
            g.switch()
            kept.append(g)
        for _ in range(3):
            t = threading.Thread(target=body)
            t.start()
            t.join()
        names = []
        for g in kept:
            f = g.gr_frame
            while f is not None:
                names.append(f.f_code.co_name)
                f = f.f_back
        print(names)
    """, python_args=("-X", "dev"))
    assert stdout == "%s\n" % (["inner", "run"] * 3,)
