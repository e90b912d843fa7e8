"""Each greenlet has its own contextvars context, exposed as gr_context."""

import contextvars
import sys
import threading

import pytest

import greenlet
from greenlet import getcurrent

VAR = contextvars.ContextVar("VAR", default="default")

OTHER_THREAD_GET = (
    "cannot get context of a greenlet that is running in a different thread"
)
OTHER_THREAD_SET = (
    "cannot set context of a greenlet that is running in a different thread"
)


@pytest.fixture(autouse=True)
def fresh_main_context():
    """Run each test with the main greenlet in a context of its own."""
    main = getcurrent()
    saved = main.gr_context
    main.gr_context = contextvars.Context()
    yield
    main.gr_context = saved


def parked_reader():
    """A parked greenlet that returns VAR's value when resumed."""
    g = greenlet.greenlet(lambda: (getcurrent().parent.switch(), VAR.get())[1])
    g.switch()
    return g


def context_with(value):
    ctx = contextvars.Context()
    ctx.run(VAR.set, value)
    return ctx


# --- new greenlets -------------------------------------------------------


def test_new_greenlet_has_no_context():
    assert greenlet.greenlet(lambda: None).gr_context is None


def test_new_greenlet_starts_with_an_empty_context():
    VAR.set("set in main")
    assert greenlet.greenlet(VAR.get).switch() == "default"


def test_new_greenlet_does_not_inherit_a_context_entered_with_run():
    ctx = context_with("in ctx")
    g = greenlet.greenlet(VAR.get)
    assert ctx.run(g.switch) == "default"


def test_greenlet_with_preassigned_context_runs_in_it():
    g = greenlet.greenlet(VAR.get)
    g.gr_context = context_with("preassigned")
    assert g.switch() == "preassigned"


def test_copy_of_the_current_context_can_be_given_to_a_new_greenlet():
    VAR.set("copied")
    g = greenlet.greenlet(VAR.get)
    g.gr_context = contextvars.copy_context()
    assert g.switch() == "copied"


def test_context_run_inside_a_greenlet_works():
    ctx = context_with("inside run")
    assert greenlet.greenlet(lambda: ctx.run(VAR.get)).switch() == "inside run"


# --- isolation -----------------------------------------------------------


def test_variable_set_in_greenlet_is_invisible_to_main():
    greenlet.greenlet(lambda: VAR.set("child")).switch()
    assert VAR.get() == "default"


def test_variable_set_in_main_is_invisible_to_suspended_greenlet():
    g = parked_reader()
    VAR.set("main value")
    assert g.switch() == "default"


def test_greenlet_keeps_its_own_value_across_switches():
    def run():
        VAR.set("mine")
        getcurrent().parent.switch()
        return VAR.get()

    g = greenlet.greenlet(run)
    g.switch()
    VAR.set("main's")
    assert g.switch() == "mine"
    assert VAR.get() == "main's"


def test_main_context_is_restored_after_switching_back():
    VAR.set("main")
    ctx_before = getcurrent().gr_context
    greenlet.greenlet(lambda: VAR.set("child")).switch()
    assert getcurrent().gr_context is ctx_before
    assert VAR.get() == "main"


def test_context_entered_with_run_in_main_survives_a_switch():
    ctx = context_with("entered")

    def in_ctx():
        greenlet.greenlet(lambda: VAR.set("child")).switch()
        return VAR.get()

    assert ctx.run(in_ctx) == "entered"
    assert VAR.get() == "default"


def test_greenlet_suspended_inside_context_run_resumes_inside_it():
    ctx = context_with("ctx value")
    main = getcurrent()

    def inside():
        main.switch(VAR.get())
        return VAR.get()

    g = greenlet.greenlet(lambda: ctx.run(inside))
    assert g.switch() == "ctx value"
    assert VAR.get() == "default"
    assert g.switch() == "ctx value"


def test_many_greenlets_each_keep_their_value():
    main = getcurrent()

    def run(n):
        VAR.set(n)
        main.switch()
        return VAR.get()

    gs = [greenlet.greenlet(run) for _ in range(20)]
    for n, g in enumerate(gs):
        g.switch(n)
    assert [g.switch() for g in gs] == list(range(20))


# --- gr_context ----------------------------------------------------------


def test_current_greenlets_context_is_the_threads_current_context():
    ctx = context_with("x")
    assert ctx.run(lambda: getcurrent().gr_context) is ctx


def test_running_child_sees_its_context_as_current():
    def run():
        VAR.set("child")
        return getcurrent().gr_context[VAR]

    assert greenlet.greenlet(run).switch() == "child"


def test_suspended_greenlet_context_holds_its_values():
    def run():
        VAR.set("suspended value")
        getcurrent().parent.switch()

    g = greenlet.greenlet(run)
    g.switch()
    assert g.gr_context[VAR] == "suspended value"


def test_finished_greenlet_keeps_its_context():
    g = greenlet.greenlet(lambda: VAR.set("final"))
    g.switch()
    assert g.dead
    assert g.gr_context[VAR] == "final"


def test_suspended_greenlet_context_can_be_replaced():
    g = parked_reader()
    g.gr_context = context_with("replaced")
    assert g.switch() == "replaced"


def test_suspended_greenlet_context_can_be_cleared():
    def run():
        VAR.set("before")
        getcurrent().parent.switch()
        return VAR.get()

    g = greenlet.greenlet(run)
    g.switch()
    g.gr_context = None
    assert g.gr_context is None
    assert g.switch() == "default"


def test_dead_greenlet_context_can_be_set():
    g = greenlet.greenlet(lambda: None)
    g.switch()
    ctx = context_with("after death")
    g.gr_context = ctx
    assert g.gr_context is ctx


def test_setting_the_current_greenlets_context_switches_context_now():
    getcurrent().gr_context = context_with("swapped in")
    assert VAR.get() == "swapped in"


def test_setting_the_current_greenlets_context_to_none_empties_it():
    VAR.set("something")
    getcurrent().gr_context = None
    assert VAR.get() == "default"


def test_running_child_can_replace_its_own_context():
    def run():
        getcurrent().gr_context = context_with("self-assigned")
        return VAR.get()

    assert greenlet.greenlet(run).switch() == "self-assigned"


def test_unstarted_greenlet_context_can_be_read_back():
    g = greenlet.greenlet(lambda: None)
    ctx = contextvars.Context()
    g.gr_context = ctx
    assert g.gr_context is ctx


def test_gr_context_rejects_non_context_values():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(TypeError) as info:
        g.gr_context = {}
    assert str(info.value) == (
        "greenlet context must be a contextvars.Context or None"
    )


def test_gr_context_cannot_be_deleted():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(AttributeError) as info:
        del g.gr_context
    assert str(info.value) == "can't delete context attribute"


def test_main_greenlet_of_a_new_thread_has_the_threads_context():
    def body():
        VAR.set("thread")
        return getcurrent().gr_context[VAR]

    out = []
    thread = threading.Thread(target=lambda: out.append(body()))
    thread.start()
    thread.join()
    assert out == ["thread"]


# --- other threads -------------------------------------------------------


class ThreadWithRunningMain:
    def __init__(self):
        self.ready = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.body)
        self.thread.start()
        self.ready.wait()

    def body(self):
        self.main = getcurrent()
        self.parked = greenlet.greenlet(lambda: self.main.switch())
        self.parked.switch()
        self.ready.set()
        self.release.wait()
        self.parked.switch()

    def finish(self):
        self.release.set()
        self.thread.join()


@pytest.fixture
def other_thread():
    helper = ThreadWithRunningMain()
    yield helper
    helper.finish()


def test_context_of_greenlet_running_in_another_thread_cannot_be_read(
        other_thread):
    with pytest.raises(ValueError) as info:
        other_thread.main.gr_context
    assert str(info.value) == OTHER_THREAD_GET


def test_context_of_greenlet_running_in_another_thread_cannot_be_set(
        other_thread):
    with pytest.raises(ValueError) as info:
        other_thread.main.gr_context = contextvars.Context()
    assert str(info.value) == OTHER_THREAD_SET


def test_context_of_greenlet_suspended_in_another_thread_can_be_read(
        other_thread):
    assert other_thread.parked.gr_context is None


# --- references ----------------------------------------------------------


def test_dropping_a_greenlet_releases_its_context():
    ctx = context_with("held")
    g = greenlet.greenlet(lambda: getcurrent().parent.switch())
    g.gr_context = ctx
    before = sys.getrefcount(ctx)
    g.switch()
    g.throw()
    del g
    assert sys.getrefcount(ctx) == before - 1


def test_replacing_a_context_releases_the_old_one():
    ctx = contextvars.Context()
    g = greenlet.greenlet(lambda: None)
    before = sys.getrefcount(ctx)
    g.gr_context = ctx
    assert sys.getrefcount(ctx) == before + 1
    g.gr_context = None
    assert sys.getrefcount(ctx) == before


def test_greenlets_with_contexts_do_not_leak(no_leaks):
    def workload():
        def run():
            VAR.set(1)
            getcurrent().parent.switch()

        g = greenlet.greenlet(run)
        g.switch()
        g.gr_context = contextvars.Context()
        g.switch()

    no_leaks.check(workload)
