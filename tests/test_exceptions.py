"""Exceptions: per-greenlet exception state, GreenletExit as a result,
propagation of uncaught exceptions along the parent chain."""

import sys
import traceback

import pytest

import greenlet
from greenlet import getcurrent


# --- sys.exc_info per greenlet -------------------------------------------


def test_new_greenlet_sees_no_exception_being_handled():
    try:
        raise KeyError("main is handling this")
    except KeyError:
        inside = greenlet.greenlet(sys.exc_info).switch()
    assert inside == (None, None, None)


def test_main_exception_state_is_restored_after_switch():
    g = greenlet.greenlet(lambda: getcurrent().parent.switch())
    try:
        raise KeyError("main")
    except KeyError as exc:
        g.switch()
        assert sys.exc_info()[1] is exc


def test_greenlet_handling_exception_keeps_it_across_a_switch():
    def run():
        try:
            raise KeyError("child")
        except KeyError as exc:
            getcurrent().parent.switch()
            return sys.exc_info()[1] is exc

    g = greenlet.greenlet(run)
    g.switch()
    assert g.switch() is True


def test_exception_handled_in_greenlet_is_invisible_to_main():
    def run():
        try:
            raise KeyError("child")
        except KeyError:
            getcurrent().parent.switch()

    g = greenlet.greenlet(run)
    g.switch()
    assert sys.exc_info() == (None, None, None)


def test_exception_raised_in_new_greenlet_has_no_context_from_main():
    def run():
        raise ValueError("child")

    try:
        raise KeyError("main")
    except KeyError:
        with pytest.raises(ValueError) as info:
            greenlet.greenlet(run).switch()
    assert info.value.__context__ is None


def test_greenlet_handling_exception_while_main_handles_another():
    main = getcurrent()

    def run():
        try:
            raise ValueError("child")
        except ValueError:
            main.switch()
            return type(sys.exc_info()[1])

    g = greenlet.greenlet(run)
    g.switch()
    try:
        raise KeyError("main")
    except KeyError:
        assert g.switch() is ValueError
        assert type(sys.exc_info()[1]) is KeyError


# --- GreenletExit --------------------------------------------------------


def test_greenlet_exit_escaping_run_is_returned_to_parent():
    def run():
        raise greenlet.GreenletExit("farewell")

    result = greenlet.greenlet(run).switch()
    assert type(result) is greenlet.GreenletExit
    assert result.args == ("farewell",)


def test_greenlet_exit_subclass_escaping_run_is_returned_to_parent():
    class Done(greenlet.GreenletExit):
        pass

    def run():
        raise Done()

    assert type(greenlet.greenlet(run).switch()) is Done


def test_greenlet_ended_by_greenlet_exit_is_dead():
    def run():
        raise greenlet.GreenletExit

    g = greenlet.greenlet(run)
    g.switch()
    assert g.dead


def test_greenlet_exit_is_a_base_exception_not_an_exception():
    assert issubclass(greenlet.GreenletExit, BaseException)
    assert not issubclass(greenlet.GreenletExit, Exception)


def test_error_is_an_exception():
    assert issubclass(greenlet.error, Exception)


# --- propagation ---------------------------------------------------------


def test_exception_escaping_run_is_raised_in_the_parent():
    def run():
        raise KeyError("escaped")

    with pytest.raises(KeyError) as info:
        greenlet.greenlet(run).switch()
    assert info.value.args == ("escaped",)


def test_exception_escaping_run_leaves_the_greenlet_dead():
    g = greenlet.greenlet(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        g.switch()
    assert g.dead


def test_exception_instance_reaches_parent_unchanged():
    original = KeyError("same object")

    def run():
        raise original

    with pytest.raises(KeyError) as info:
        greenlet.greenlet(run).switch()
    assert info.value is original


def test_exception_traceback_includes_runs_frame():
    def failing_run():
        raise KeyError("with traceback")

    with pytest.raises(KeyError) as info:
        greenlet.greenlet(failing_run).switch()
    entries = traceback.extract_tb(info.value.__traceback__)
    names = [entry.name for entry in entries]
    assert "failing_run" in names


def test_exception_is_raised_in_parent_at_its_switch_point():
    def parent_run():
        child = greenlet.greenlet(lambda: {}["missing"])
        try:
            child.switch()
        except KeyError:
            return "parent caught it"

    assert greenlet.greenlet(parent_run).switch() == "parent caught it"


def test_exception_travels_up_the_parent_chain():
    def grandchild_run():
        raise KeyError("deep")

    def child_run():
        greenlet.greenlet(grandchild_run).switch()
        return "not reached"

    child = greenlet.greenlet(child_run)
    with pytest.raises(KeyError):
        child.switch()
    assert child.dead


def test_exception_goes_to_parent_even_if_it_is_not_the_last_switcher():
    def failing_run():
        middle.switch("parked")
        raise KeyError("to my parent")

    def middle_run():
        assert failing.switch() == "parked"
        try:
            failing.switch()
        except KeyError:
            return "wrongly caught in middle"

    failing = greenlet.greenlet(failing_run)  # parent: main
    middle = greenlet.greenlet(middle_run)
    with pytest.raises(KeyError):
        middle.switch()
    assert failing.dead
    assert not middle.dead


def test_exception_escaping_into_a_dead_parent_goes_further_up():
    def parent_run():
        return "parent finished"

    parent = greenlet.greenlet(parent_run)
    parent.switch()

    def child_run():
        raise KeyError("orphan")

    child = greenlet.greenlet(child_run, parent)
    with pytest.raises(KeyError):
        child.switch()


def test_keyboard_interrupt_in_a_greenlet_reaches_the_parent():
    def run():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        greenlet.greenlet(run).switch()


def test_system_exit_in_a_greenlet_reaches_the_parent():
    def run():
        sys.exit(7)

    with pytest.raises(SystemExit) as info:
        greenlet.greenlet(run).switch()
    assert info.value.code == 7


def test_sigint_while_in_a_greenlet_interrupts_the_main_greenlet(
        run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import signal
        import greenlet
        def run():
            signal.raise_signal(signal.SIGINT)
            for _ in range(10000):
                pass
            return "not interrupted"
        g = greenlet.greenlet(run)
        try:
            print(g.switch())
        except KeyboardInterrupt:
            print("main caught KeyboardInterrupt; child dead:", g.dead)
    """)
    assert stdout == "main caught KeyboardInterrupt; child dead: True\n"


def test_uncaught_keyboard_interrupt_from_greenlet_ends_the_process(
        run_in_subprocess):
    returncode, stdout, stderr = run_in_subprocess("""
        import greenlet
        def run():
            raise KeyboardInterrupt
        greenlet.greenlet(run).switch()
    """)
    assert returncode != 0
    assert "KeyboardInterrupt" in stderr


def test_exceptions_do_not_leak_greenlets(no_leaks):
    def workload():
        try:
            greenlet.greenlet(lambda: 1 / 0).switch()
        except ZeroDivisionError:
            pass
        greenlet.greenlet(lambda: (_ for _ in ()).throw(
            greenlet.GreenletExit)).switch()

    no_leaks.check(workload)


def test_exception_passed_to_an_unstarted_parent_survives_its_run_lookup():
    """The parent's run is looked up while the child's exception is on its
    way to it; the lookup must not replace it."""
    class Parent(greenlet.greenlet):
        pass

    started_with = []
    parent = Parent(lambda *args: started_with.append(args))

    def fail():
        raise ValueError("from the child")

    child = greenlet.greenlet(fail, parent=parent)
    with pytest.raises(ValueError, match="from the child"):
        child.switch()
    assert started_with == []
