"""Greenlet death by garbage: killing suspended greenlets when the last
reference goes, resurrection, refusal to die, and collection of cycles."""

import gc
import sys
import weakref

import greenlet
from greenlet import getcurrent


def park_with_finally(log, label="finally"):
    def run():
        try:
            getcurrent().parent.switch()
        finally:
            log.append(label)

    g = greenlet.greenlet(run)
    g.switch()
    return g


def test_dropping_a_suspended_greenlet_runs_its_finally_block():
    log = []
    g = park_with_finally(log)
    del g
    assert log == ["finally"]


def test_dropping_a_suspended_greenlet_raises_greenlet_exit_in_it():
    seen = []

    def run():
        try:
            getcurrent().parent.switch()
        except BaseException as exc:  # noqa: B036
            seen.append(exc)
            raise

    g = greenlet.greenlet(run)
    g.switch()
    del g
    assert len(seen) == 1
    assert type(seen[0]) is greenlet.GreenletExit


def test_greenlet_exit_from_a_drop_explains_itself():
    seen = []

    def run():
        try:
            getcurrent().parent.switch()
        except greenlet.GreenletExit as exc:
            seen.append(exc.args)

    g = greenlet.greenlet(run)
    g.switch()
    del g
    assert seen == [
        ("Killing the greenlet because all references have vanished.",)
    ]


def test_killed_greenlet_is_current_while_it_unwinds():
    seen = []

    def run():
        try:
            getcurrent().parent.switch()
        finally:
            seen.append(getcurrent())

    g = greenlet.greenlet(run)
    g.switch()
    ref = weakref.ref(g)
    del g
    # The greenlet was resurrected by 'seen'; it is the one that ran finally.
    assert seen[0] is ref()
    assert seen[0].dead


def test_drop_returns_control_to_the_dropping_greenlet():
    log = []
    g = park_with_finally(log)
    del g
    log.append("after del")
    assert log == ["finally", "after del"]


def test_killed_greenlet_runs_with_the_dropper_as_parent():
    parents = []

    def victim_run():
        try:
            getcurrent().parent.switch()
        finally:
            parents.append(getcurrent().parent)

    victim = [greenlet.greenlet(victim_run)]
    victim[0].switch()

    def dropper_run():
        victim.clear()
        return "dropper finished"

    dropper = greenlet.greenlet(dropper_run)
    assert dropper.switch() == "dropper finished"
    assert parents == [dropper]


def test_resurrected_greenlet_keeps_its_original_parent():
    main = getcurrent()
    kept = []

    def victim_run():
        try:
            getcurrent().parent.switch()
        finally:
            kept.append(getcurrent())

    victim = [greenlet.greenlet(victim_run)]
    victim[0].switch()
    greenlet.greenlet(victim.clear).switch()
    assert kept[0].parent is main


def test_greenlet_resurrected_during_its_kill_stays_usable():
    kept = []

    def run():
        try:
            getcurrent().parent.switch()
        finally:
            kept.append(getcurrent())

    g = greenlet.greenlet(run)
    g.switch()
    ref = weakref.ref(g)
    del g
    assert ref() is kept[0]
    assert kept[0].dead
    kept[0].marker = "alive"
    assert kept[0].marker == "alive"


def test_suspended_greenlet_held_only_by_a_dropped_one_is_unwound_too():
    log = []
    main = getcurrent()

    def inner_run():
        try:
            main.switch()
        finally:
            log.append("inner")

    def outer_run():
        # inner's parent is main, so no cycle runs back to outer.
        inner = greenlet.greenlet(inner_run, main)
        inner.switch()
        try:
            main.switch()
        finally:
            log.append("outer")

    outer = greenlet.greenlet(outer_run)
    outer.switch()  # parks in inner, which switches to main
    outer.switch()  # outer resumes and parks itself
    del outer
    assert log == ["outer", "inner"]


def test_dropping_an_unstarted_greenlet_does_not_run_it():
    ran = []
    g = greenlet.greenlet(lambda: ran.append(True))
    del g
    assert ran == []


def test_dropping_a_finished_greenlet_does_nothing():
    log = []
    g = greenlet.greenlet(lambda: log.append("ran"))
    g.switch()
    del g
    assert log == ["ran"]


def test_greenlet_that_catches_the_exit_and_returns_dies_quietly(
        run_in_subprocess):
    run_in_subprocess.clean("""
        import greenlet
        def run():
            try:
                greenlet.getcurrent().parent.switch()
            except greenlet.GreenletExit:
                return "accepted fate"
        g = greenlet.greenlet(run)
        g.switch()
        del g
    """)


def test_greenlet_refusing_to_die_is_reported_on_stderr(run_in_subprocess):
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
        print("continued")
    """)
    assert returncode == 0
    assert stdout == "continued\n"
    assert (
        "GreenletExit did not kill <greenlet.greenlet object at 0x" in stderr
    )


def test_exception_other_than_exit_during_kill_goes_to_unraisablehook():
    reports = []

    def run():
        try:
            getcurrent().parent.switch()
        finally:
            raise KeyError("raised while dying")

    g = greenlet.greenlet(run)
    g.switch()
    old_hook = sys.unraisablehook
    sys.unraisablehook = reports.append
    try:
        del g
    finally:
        sys.unraisablehook = old_hook
    assert len(reports) == 1
    assert reports[0].exc_type is KeyError
    assert isinstance(reports[0].object, greenlet.greenlet)


def test_weakref_callback_runs_after_the_finally_block():
    order = []
    g = park_with_finally(order)
    ref = weakref.ref(g, lambda r: order.append("weakref callback"))
    del g
    assert order == ["finally", "weakref callback"]
    assert ref() is None


def test_weakref_is_still_alive_inside_the_finally_block():
    seen = []

    def run():
        try:
            getcurrent().parent.switch()
        finally:
            seen.append(ref() is not None)

    g = greenlet.greenlet(run)
    g.switch()
    ref = weakref.ref(g)
    del g
    assert seen == [True]


def test_unstarted_greenlet_in_a_cycle_is_collected():
    g = greenlet.greenlet(lambda: None)
    g.myself = g
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None


def test_finished_greenlet_in_a_cycle_is_collected():
    g = greenlet.greenlet(lambda: None)
    g.switch()
    g.myself = g
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None


def test_cycle_through_run_callable_is_collected():
    class Holder:
        def method(self):
            pass

    holder = Holder()
    # holder -> g -> run (a bound method) -> holder
    holder.g = greenlet.greenlet(holder.method)
    ref = weakref.ref(holder.g)
    del holder
    gc.collect()
    assert ref() is None


def test_cycle_through_parent_is_collected():
    parent = greenlet.greenlet(lambda: None)
    child = greenlet.greenlet(lambda: None, parent)
    parent.child = child
    ref = weakref.ref(child)
    del parent, child
    gc.collect()
    assert ref() is None


def test_finished_greenlet_does_not_keep_its_frame_objects():
    class Marker:
        pass

    refs = []

    def run():
        m = Marker()
        refs.append(weakref.ref(m))
        getcurrent().parent.switch()

    g = greenlet.greenlet(run)
    g.switch()
    g.switch()
    assert g.dead
    assert refs[0]() is None


def test_collection_leaves_no_uncollectable_garbage():
    for _ in range(10):
        g = greenlet.greenlet(lambda: getcurrent().parent.switch())
        g.switch()
        g.cycle = g
        g.throw()
        del g
    gc.collect()
    assert gc.garbage == []


def test_dropping_suspended_greenlets_does_not_leak(no_leaks):
    def workload():
        log = []
        g = park_with_finally(log)
        del g

    no_leaks.check(workload)


def test_cycles_of_greenlets_do_not_leak(no_leaks):
    def workload():
        g = greenlet.greenlet(lambda: None)
        g.me = g
        h = greenlet.greenlet(lambda: None)
        h.switch()
        h.me = h

    no_leaks.check(workload)
