"""Process life cycle: interpreter shutdown with live greenlets, atexit
handlers, sys.exit, and os.fork. Every test runs in a child interpreter."""

import os

import pytest


def test_exit_with_a_suspended_greenlet_in_main_thread(run_in_subprocess):
    run_in_subprocess.clean("""
        import greenlet
        def park():
            return greenlet.getcurrent().parent.switch()
        g = greenlet.greenlet(park)
        g.switch()
    """)


def test_exit_with_nested_suspended_greenlets(run_in_subprocess):
    run_in_subprocess.clean("""
        import greenlet
        main = greenlet.getcurrent()
        def level(n):
            if n == 0:
                main.switch()
            else:
                inner = greenlet.greenlet(level)
                inner.switch(n - 1)
        g = greenlet.greenlet(level)
        g.switch(5)
    """)


def test_exit_with_suspended_greenlets_holding_finally_blocks(
        run_in_subprocess):
    run_in_subprocess.clean("""
        import greenlet
        def run():
            try:
                greenlet.getcurrent().parent.switch()
            finally:
                pass
        keep = [greenlet.greenlet(run) for _ in range(100)]
        for g in keep:
            g.switch()
    """)


def test_exit_with_suspended_greenlets_in_a_finished_thread(
        run_in_subprocess):
    run_in_subprocess.clean("""
        import threading
        import greenlet
        def park():
            return greenlet.getcurrent().parent.switch()
        keep = []
        def body():
            g = greenlet.greenlet(park)
            g.switch()
            keep.append(g)
        t = threading.Thread(target=body)
        t.start()
        t.join()
    """)


def test_exit_while_a_daemon_thread_has_suspended_greenlets(
        run_in_subprocess):
    run_in_subprocess.clean("""
        import threading
        import greenlet
        def park():
            return greenlet.getcurrent().parent.switch()
        ready = threading.Event()
        def body():
            g = greenlet.greenlet(park)
            g.switch()
            ready.set()
            threading.Event().wait()
        threading.Thread(target=body, daemon=True).start()
        ready.wait()
    """)


def test_exit_while_a_daemon_thread_is_inside_a_greenlet(run_in_subprocess):
    run_in_subprocess.clean("""
        import threading
        import greenlet
        ready = threading.Event()
        def parked_inside():
            ready.set()
            threading.Event().wait()
        def body():
            greenlet.greenlet(parked_inside).switch()
        threading.Thread(target=body, daemon=True).start()
        ready.wait()
    """)


def test_exit_while_main_thread_is_inside_a_greenlet(run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import greenlet
        def run():
            print("leaving from inside a greenlet")
            raise SystemExit(0)
        greenlet.greenlet(run).switch()
    """)
    assert stdout == "leaving from inside a greenlet\n"


def test_sys_exit_inside_a_greenlet_sets_the_exit_status(run_in_subprocess):
    returncode, stdout, stderr = run_in_subprocess("""
        import sys
        import greenlet
        greenlet.greenlet(lambda: sys.exit(5)).switch()
    """)
    assert (returncode, stderr) == (5, "")


def test_atexit_handler_can_create_and_switch_greenlets(run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import atexit
        import greenlet
        def at_exit():
            g = greenlet.greenlet(lambda x: x * 2)
            print("atexit:", g.switch(21))
        atexit.register(at_exit)
    """)
    assert stdout == "atexit: 42\n"


def test_atexit_handler_can_resume_a_suspended_greenlet(run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import atexit
        import greenlet
        def run():
            value = greenlet.getcurrent().parent.switch()
            return "resumed with " + value
        g = greenlet.greenlet(run)
        g.switch()
        atexit.register(lambda: print(g.switch("atexit")))
    """)
    assert stdout == "resumed with atexit\n"


def test_atexit_handler_can_call_getcurrent(run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import atexit
        import greenlet
        main = greenlet.getcurrent()
        atexit.register(lambda: print(greenlet.getcurrent() is main))
    """)
    assert stdout == "True\n"


def test_atexit_handler_can_use_settrace(run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import atexit
        import greenlet
        def at_exit():
            events = []
            greenlet.settrace(lambda event, args: events.append(event))
            greenlet.greenlet(lambda: None).switch()
            greenlet.settrace(None)
            print(events)
        atexit.register(at_exit)
    """)
    assert stdout == "['switch', 'switch']\n"


def test_atexit_handler_can_kill_a_suspended_greenlet(run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import atexit
        import greenlet
        def run():
            try:
                greenlet.getcurrent().parent.switch()
            finally:
                print("finally ran at exit")
        box = [greenlet.greenlet(run)]
        box[0].switch()
        atexit.register(box.clear)
    """)
    assert stdout == "finally ran at exit\n"


def test_getcurrent_during_interpreter_finalization_is_runtime_error(
        run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import sys
        import greenlet
        class CallsGetcurrentWhenFinalized:
            def __del__(self):
                try:
                    greenlet.getcurrent()
                except RuntimeError as exc:
                    print(sys.is_finalizing(), exc)
        holder = CallsGetcurrentWhenFinalized()
    """)
    assert stdout == "True greenlet is being finalized\n"


def test_object_finalized_at_shutdown_can_start_a_greenlet(
        run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import greenlet
        class StartsWhenFinalized:
            def __del__(self):
                print("del:", greenlet.greenlet(lambda: "ok").switch())
        holder = StartsWhenFinalized()
    """)
    assert stdout == "del: ok\n"


def test_object_finalized_at_shutdown_can_resume_a_suspended_greenlet(
        run_in_subprocess):
    """The greenlet parks inside a builtin, so no suspended Python frame
    keeps the module globals (and thus the holder) alive."""
    stdout = run_in_subprocess.clean("""
        import greenlet
        class ResumesWhenFinalized:
            def __init__(self):
                self.g = greenlet.greenlet(greenlet.getcurrent().switch)
                self.g.switch()
            def __del__(self):
                print("del:", self.g.switch("resumed"), self.g.dead)
        holder = ResumesWhenFinalized()
    """)
    assert stdout == "del: resumed True\n"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_inside_a_greenlet_child_continues_in_the_greenlet(
        run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import os
        import sys
        import greenlet
        main = greenlet.getcurrent()
        def run():
            pid = os.fork()
            who = "child" if pid == 0 else "parent"
            main.switch((pid, greenlet.getcurrent() is g))
            return who + " finished greenlet"
        g = greenlet.greenlet(run)
        pid, same = g.switch()
        result = g.switch()
        if pid == 0:
            # Child: report, then exit normally through the interpreter.
            sys.stdout.write("child: %s %s\\n" % (same, result))
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        print("child status:", os.waitstatus_to_exitcode(status))
        print("parent:", same, result)
    """)
    lines = sorted(stdout.splitlines())
    assert lines == [
        "child status: 0",
        "child: True child finished greenlet",
        "parent: True parent finished greenlet",
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_can_resume_a_greenlet_suspended_before_fork(
        run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import os
        import sys
        import greenlet
        def park():
            return greenlet.getcurrent().parent.switch()
        g = greenlet.greenlet(lambda: park() * 2)
        g.switch()
        pid = os.fork()
        if pid == 0:
            sys.stdout.write("child got %d\\n" % g.switch(21))
            sys.stdout.flush()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("child status:", os.waitstatus_to_exitcode(status))
        print("parent got", g.switch(50))
    """)
    assert sorted(stdout.splitlines()) == [
        "child got 42",
        "child status: 0",
        "parent got 100",
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_exits_cleanly_with_suspended_greenlets(
        run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import os
        import greenlet
        def park():
            return greenlet.getcurrent().parent.switch()
        keep = []
        for _ in range(10):
            g = greenlet.greenlet(park)
            g.switch()
            keep.append(g)
        pid = os.fork()
        if pid == 0:
            keep.clear()
            raise SystemExit(0)
        _, status = os.waitpid(pid, 0)
        print("child status:", os.waitstatus_to_exitcode(status))
    """)
    assert stdout == "child status: 0\n"
