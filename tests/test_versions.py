"""Behaviour whose machinery differs per CPython version (frames, tracing,
monitoring): the same outcome is expected on every supported version."""
import sys
import traceback

import pytest

import greenlet


def test_traceback_of_a_suspended_greenlet_walks_its_own_frames():
    def inner():
        greenlet.getcurrent().parent.switch()

    def outer():
        inner()

    g = greenlet.greenlet(outer)
    g.switch()
    names = [entry.name for entry in traceback.extract_stack(g.gr_frame)]
    assert names == ["outer", "inner"]
    g.switch()


def test_suspended_frame_shows_the_line_it_waits_on():
    def waits():
        x = 1
        greenlet.getcurrent().parent.switch()  # the line
        return x

    g = greenlet.greenlet(waits)
    g.switch()
    frame = g.gr_frame
    line = traceback.extract_stack(frame)[-1].line
    assert line.endswith("# the line")
    assert frame.f_locals["x"] == 1
    g.switch()


def test_sys_settrace_sees_calls_in_each_greenlet_it_switches_to():
    seen = []

    def tracer(frame, event, arg):
        if event == "call":
            seen.append(frame.f_code.co_name)
        return None

    def child_body():
        greenlet.getcurrent().parent.switch()

    g = greenlet.greenlet(child_body)
    sys.settrace(tracer)
    try:
        g.switch()
        g.switch()
    finally:
        sys.settrace(None)
    assert seen.count("child_body") == 1


@pytest.mark.skipif(not hasattr(sys, "monitoring"),
                    reason="sys.monitoring is new in 3.12")
def test_sys_monitoring_sees_starts_in_greenlets():
    mon = sys.monitoring
    tool = mon.PROFILER_ID
    starts = []

    def on_start(code, offset):
        starts.append(code.co_name)

    def child_body():
        greenlet.getcurrent().parent.switch()
        return "done"

    mon.use_tool_id(tool, "greenlet-test")
    try:
        mon.register_callback(tool, mon.events.PY_START, on_start)
        mon.set_events(tool, mon.events.PY_START)
        g = greenlet.greenlet(child_body)
        g.switch()
        assert g.switch() == "done"
    finally:
        mon.set_events(tool, 0)
        mon.register_callback(tool, mon.events.PY_START, None)
        mon.free_tool_id(tool)
    assert starts.count("child_body") == 1
