"""greenlet.settrace/gettrace, and sys.settrace/sys.setprofile across
switches."""

import sys
import threading

import pytest

import greenlet
from greenlet import getcurrent


@pytest.fixture(autouse=True)
def restore_tracers():
    old_sys_trace = sys.gettrace()
    old_sys_profile = sys.getprofile()
    old_greenlet_trace = greenlet.gettrace()
    yield
    greenlet.settrace(old_greenlet_trace)
    sys.setprofile(old_sys_profile)
    sys.settrace(old_sys_trace)


class Recorder:
    """A greenlet trace callback that records (event, origin, target)."""

    def __init__(self):
        self.events = []

    def __call__(self, event, args):
        origin, target = args
        self.events.append((event, origin, target))


def test_gettrace_is_none_by_default():
    assert greenlet.gettrace() is None


def test_settrace_returns_none_when_no_tracer_was_set():
    assert greenlet.settrace(Recorder()) is None


def test_settrace_returns_the_previous_tracer():
    first = Recorder()
    greenlet.settrace(first)
    assert greenlet.settrace(Recorder()) is first


def test_gettrace_returns_the_installed_tracer():
    tracer = Recorder()
    greenlet.settrace(tracer)
    assert greenlet.gettrace() is tracer


def test_settrace_none_removes_the_tracer():
    tracer = Recorder()
    greenlet.settrace(tracer)
    assert greenlet.settrace(None) is tracer
    assert greenlet.gettrace() is None


def test_removed_tracer_sees_no_more_switches():
    tracer = Recorder()
    greenlet.settrace(tracer)
    greenlet.settrace(None)
    greenlet.greenlet(lambda: None).switch()
    assert tracer.events == []


def test_tracer_sees_the_first_switch_into_a_greenlet():
    tracer = Recorder()
    main = getcurrent()
    g = greenlet.greenlet(lambda: None)
    greenlet.settrace(tracer)
    g.switch()
    greenlet.settrace(None)
    assert tracer.events[0] == ("switch", main, g)


def test_tracer_sees_the_return_to_the_parent():
    tracer = Recorder()
    main = getcurrent()
    g = greenlet.greenlet(lambda: None)
    greenlet.settrace(tracer)
    g.switch()
    greenlet.settrace(None)
    assert tracer.events == [("switch", main, g), ("switch", g, main)]


def test_tracer_sees_explicit_switches_both_ways():
    tracer = Recorder()
    main = getcurrent()
    g = greenlet.greenlet(lambda: main.switch())
    greenlet.settrace(tracer)
    g.switch()
    g.switch()
    greenlet.settrace(None)
    assert tracer.events == [
        ("switch", main, g),
        ("switch", g, main),
        ("switch", main, g),
        ("switch", g, main),
    ]


def test_tracer_sees_throw_as_a_throw_event():
    tracer = Recorder()
    main = getcurrent()
    g = greenlet.greenlet(lambda: main.switch())
    g.switch()
    greenlet.settrace(tracer)
    g.throw()
    greenlet.settrace(None)
    assert tracer.events[0] == ("throw", main, g)


def test_exception_leaving_a_dying_greenlet_is_a_throw_event():
    tracer = Recorder()
    main = getcurrent()
    g = greenlet.greenlet(lambda: 1 / 0)
    greenlet.settrace(tracer)
    with pytest.raises(ZeroDivisionError):
        g.switch()
    greenlet.settrace(None)
    assert tracer.events == [("switch", main, g), ("throw", g, main)]


def test_tracer_receives_event_name_and_origin_target_tuple():
    calls = []
    main = getcurrent()
    g = greenlet.greenlet(lambda: None)
    greenlet.settrace(lambda *a: calls.append(a))
    g.switch()
    greenlet.settrace(None)
    assert calls[0] == ("switch", (main, g))
    assert type(calls[0][1]) is tuple


def test_switch_to_the_current_greenlet_is_traced_with_itself_as_both_ends():
    """Upstream 3.5.6 reports a self-switch to the tracer."""
    tracer = Recorder()
    main = getcurrent()
    greenlet.settrace(tracer)
    main.switch()
    greenlet.settrace(None)
    assert tracer.events == [("switch", main, main)]


def test_tracer_runs_in_the_target_greenlet():
    where = []
    g = greenlet.greenlet(lambda: None)

    def tracer(event, args):
        where.append((getcurrent() is args[1]))

    greenlet.settrace(tracer)
    g.switch()
    greenlet.settrace(None)
    assert where == [True, True]


def test_tracer_is_per_thread():
    tracer = Recorder()
    greenlet.settrace(tracer)
    seen_in_thread = []

    def body():
        seen_in_thread.append(greenlet.gettrace())
        greenlet.greenlet(lambda: None).switch()

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    greenlet.settrace(None)
    assert seen_in_thread == [None]
    assert tracer.events == []


def test_raising_tracer_is_removed():
    def tracer(event, args):
        raise KeyError("tracer failed")

    greenlet.settrace(tracer)
    with pytest.raises(KeyError):
        greenlet.greenlet(lambda: None).switch()
    assert greenlet.gettrace() is None


def test_raising_tracer_on_first_switch_prevents_run():
    ran = []

    def tracer(event, args):
        raise KeyError("tracer failed")

    g = greenlet.greenlet(lambda: ran.append(True))
    greenlet.settrace(tracer)
    with pytest.raises(KeyError):
        g.switch()
    assert ran == []
    assert g.dead


def test_raising_tracer_raises_inside_the_resumed_greenlet():
    def run():
        try:
            getcurrent().parent.switch()
        except KeyError as exc:
            return ("caught in target", exc.args)

    def tracer(event, args):
        raise KeyError("tracer failed")

    g = greenlet.greenlet(run)
    g.switch()
    greenlet.settrace(tracer)
    assert g.switch() == ("caught in target", ("tracer failed",))


def test_raising_tracer_on_return_to_parent_raises_in_the_parent():
    main = getcurrent()

    def tracer(event, args):
        if args[1] is main:
            raise KeyError("on the way back")

    greenlet.settrace(tracer)
    with pytest.raises(KeyError):
        greenlet.greenlet(lambda: "result").switch()
    assert greenlet.gettrace() is None


def test_sys_settrace_is_muted_inside_the_greenlet_tracer():
    called = []

    def helper_called_by_tracer():
        pass

    def sys_tracer(frame, event, arg):
        if event == "call":
            called.append(frame.f_code.co_name)

    def greenlet_tracer(event, args):
        helper_called_by_tracer()

    greenlet.settrace(greenlet_tracer)
    sys.settrace(sys_tracer)
    greenlet.greenlet(lambda: None).switch()
    sys.settrace(None)
    greenlet.settrace(None)
    assert "helper_called_by_tracer" not in called


# --- sys.settrace / sys.setprofile ---------------------------------------


def traced_body():
    first_in_greenlet()
    getcurrent().parent.switch()
    second_in_greenlet()


def first_in_greenlet():
    pass


def second_in_greenlet():
    pass


def call_names_recorder():
    names = []

    def tracer(frame, event, arg):
        if event == "call":
            names.append(frame.f_code.co_name)

    return names, tracer


def test_sys_settrace_sees_calls_inside_greenlets():
    names, tracer = call_names_recorder()
    g = greenlet.greenlet(traced_body)
    sys.settrace(tracer)
    g.switch()
    g.switch()
    sys.settrace(None)
    assert names == ["traced_body", "first_in_greenlet", "second_in_greenlet"]


def test_sys_settrace_set_while_greenlet_suspended_traces_it_after_resume():
    names, tracer = call_names_recorder()
    g = greenlet.greenlet(traced_body)
    g.switch()
    sys.settrace(tracer)
    g.switch()
    sys.settrace(None)
    assert names == ["second_in_greenlet"]


def test_sys_settrace_set_inside_greenlet_stays_after_switch_back():
    names, tracer = call_names_recorder()

    def run():
        sys.settrace(tracer)

    greenlet.greenlet(run).switch()
    first_in_greenlet()
    sys.settrace(None)
    assert names == ["first_in_greenlet"]


def test_sys_gettrace_is_the_same_in_every_greenlet():
    names, tracer = call_names_recorder()
    sys.settrace(tracer)
    inside = greenlet.greenlet(sys.gettrace).switch()
    sys.settrace(None)
    assert inside is tracer


def test_sys_setprofile_sees_python_calls_across_switches():
    events = []

    def profiler(frame, event, arg):
        if event in ("call", "return"):
            events.append((event, frame.f_code.co_name))

    g = greenlet.greenlet(traced_body)
    sys.setprofile(profiler)
    g.switch()
    g.switch()
    sys.setprofile(None)
    assert events == [
        ("call", "traced_body"),
        ("call", "first_in_greenlet"),
        ("return", "first_in_greenlet"),
        ("call", "second_in_greenlet"),
        ("return", "second_in_greenlet"),
        ("return", "traced_body"),
    ]


def test_sys_setprofile_sees_balanced_c_calls_of_switch():
    events = []

    def profiler(frame, event, arg):
        if event in ("c_call", "c_return") and arg.__name__ == "switch":
            events.append(event)

    g = greenlet.greenlet(traced_body)
    sys.setprofile(profiler)
    g.switch()
    g.switch()
    sys.setprofile(None)
    assert events.count("c_call") == events.count("c_return") == 3


def test_sys_getprofile_is_the_same_in_every_greenlet():
    def profiler(frame, event, arg):
        pass

    sys.setprofile(profiler)
    inside = greenlet.greenlet(sys.getprofile).switch()
    sys.setprofile(None)
    assert inside is profiler
