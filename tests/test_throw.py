"""greenlet.throw(): forms, where the exception surfaces, argument errors."""

import sys

import pytest

import greenlet
from greenlet import getcurrent


def parked_catcher():
    """A parked greenlet that returns whatever exception reaches it."""
    def run():
        try:
            getcurrent().parent.switch()
        except BaseException as exc:  # noqa: B036 - we want to see it all
            return exc
        return "no exception"

    g = greenlet.greenlet(run)
    g.switch()
    return g


def parked_forever():
    """A parked greenlet that lets every exception escape."""
    g = greenlet.greenlet(lambda: getcurrent().parent.switch())
    g.switch()
    return g


def test_throw_without_arguments_raises_greenlet_exit_in_the_target():
    g = parked_catcher()
    assert type(g.throw()) is greenlet.GreenletExit


def test_throw_without_arguments_kills_the_target_quietly():
    g = parked_forever()
    result = g.throw()
    assert isinstance(result, greenlet.GreenletExit)
    assert g.dead


def test_throw_with_a_class_raises_an_instance_of_it():
    g = parked_catcher()
    exc = g.throw(KeyError)
    assert type(exc) is KeyError
    assert exc.args == ()


def test_throw_with_class_and_value_builds_the_exception_from_the_value():
    g = parked_catcher()
    exc = g.throw(KeyError, "missing")
    assert type(exc) is KeyError
    assert exc.args == ("missing",)


def test_throw_with_class_and_tuple_value_uses_the_tuple_as_args():
    g = parked_catcher()
    exc = g.throw(ValueError, (1, 2))
    assert exc.args == (1, 2)


def test_throw_with_class_and_instance_value_raises_that_instance():
    g = parked_catcher()
    instance = ValueError("given")
    assert g.throw(ValueError, instance) is instance


def test_throw_with_an_instance_raises_that_very_instance():
    g = parked_catcher()
    instance = RuntimeError("exact")
    assert g.throw(instance) is instance


def test_throw_with_an_instance_and_none_value_is_allowed():
    g = parked_catcher()
    instance = RuntimeError("exact")
    assert g.throw(instance, None, None) is instance


def test_throw_with_a_traceback_attaches_it_to_the_exception():
    try:
        raise ValueError("origin")
    except ValueError:
        tb = sys.exc_info()[2]
    g = parked_catcher()
    exc = g.throw(ValueError, ValueError("x"), tb)
    frames = []
    walk = exc.__traceback__
    while walk is not None:
        frames.append(walk)
        walk = walk.tb_next
    assert tb in frames


def test_throw_with_a_none_traceback_is_allowed():
    g = parked_catcher()
    assert type(g.throw(ValueError, None, None)) is ValueError


def test_throw_with_a_non_traceback_third_argument_is_a_type_error():
    g = parked_forever()
    with pytest.raises(TypeError) as info:
        g.throw(ValueError, None, "not a traceback")
    assert str(info.value) == (
        "throw() third argument must be a traceback object"
    )


def test_throw_with_an_instance_and_a_separate_value_is_a_type_error():
    g = parked_forever()
    with pytest.raises(TypeError) as info:
        g.throw(ValueError("x"), "extra")
    assert str(info.value) == (
        "instance exception may not have a separate value"
    )


def test_throw_with_a_non_exception_is_a_type_error():
    g = parked_forever()
    with pytest.raises(TypeError) as info:
        g.throw(42)
    assert str(info.value) == (
        "exceptions must be classes, or instances, not int"
    )


def test_throw_with_a_non_exception_class_is_a_type_error():
    g = parked_forever()
    with pytest.raises(TypeError) as info:
        g.throw(str)
    assert str(info.value) == (
        "exceptions must be classes, or instances, not type"
    )


def test_failed_throw_leaves_the_target_suspended():
    g = parked_forever()
    with pytest.raises(TypeError):
        g.throw(42)
    assert not g.dead
    assert g.gr_frame is not None


def test_throw_refuses_keyword_arguments():
    g = parked_forever()
    with pytest.raises(TypeError):
        g.throw(typ=ValueError)


def test_uncaught_thrown_exception_propagates_to_the_parent():
    g = parked_forever()
    with pytest.raises(KeyError):
        g.throw(KeyError("boom"))
    assert g.dead


def test_thrown_exception_caught_in_target_lets_it_switch_back():
    def run():
        try:
            getcurrent().parent.switch()
        except KeyError:
            getcurrent().parent.switch("handled")
        return "finished"

    g = greenlet.greenlet(run)
    g.switch()
    assert g.throw(KeyError) == "handled"
    assert not g.dead
    assert g.switch() == "finished"


def test_throw_runs_finally_blocks_in_the_target():
    log = []

    def run():
        try:
            getcurrent().parent.switch()
        finally:
            log.append("finally")

    g = greenlet.greenlet(run)
    g.switch()
    g.throw()
    assert log == ["finally"]


def test_throw_greenlet_exit_subclass_is_returned_as_value():
    class Stop(greenlet.GreenletExit):
        pass

    g = parked_forever()
    result = g.throw(Stop)
    assert type(result) is Stop
    assert g.dead


def test_throw_exception_surfaces_in_the_original_parent_not_the_thrower():
    main = getcurrent()

    def victim_run():
        main.switch("victim parked")

    victim = greenlet.greenlet(victim_run)  # parent: main
    assert victim.switch() == "victim parked"

    def thrower_run():
        victim.throw(KeyError("via thrower"))
        return "thrower resumed"  # never reached

    thrower = greenlet.greenlet(thrower_run)
    with pytest.raises(KeyError):
        thrower.switch()
    assert victim.dead
    assert not thrower.dead
    assert thrower.gr_frame is not None


def test_throw_into_unstarted_greenlet_raises_without_running_it():
    ran = []
    g = greenlet.greenlet(lambda: ran.append(True))
    with pytest.raises(KeyError):
        g.throw(KeyError("before start"))
    assert ran == []


def test_throw_into_unstarted_greenlet_leaves_it_dead():
    g = greenlet.greenlet(lambda: None)
    g.throw()
    assert g.dead


def test_throw_greenlet_exit_into_unstarted_greenlet_returns_it():
    g = greenlet.greenlet(lambda: None)
    assert type(g.throw()) is greenlet.GreenletExit


def test_throw_into_unstarted_greenlet_without_run_is_attribute_error():
    g = greenlet.greenlet()
    with pytest.raises(AttributeError):
        g.throw(KeyError)
    assert not g.dead


def test_throw_into_unstarted_greenlet_looks_up_run_first():
    looked_up = []

    class Watched(greenlet.greenlet):
        def __getattribute__(self, name):
            if name == "run":
                looked_up.append(name)
            return super().__getattribute__(name)

        def run(self):
            raise AssertionError("run must not be called")

    with pytest.raises(KeyError):
        Watched().throw(KeyError)
    assert looked_up == ["run"]


def test_throw_greenlet_exit_into_dead_greenlet_returns_the_exception():
    g = greenlet.greenlet(lambda: None)
    g.switch()
    assert type(g.throw()) is greenlet.GreenletExit


def test_throw_into_dead_greenlet_raises_in_its_parent():
    g = greenlet.greenlet(lambda: None)
    g.switch()
    with pytest.raises(KeyError):
        g.throw(KeyError)


def test_throw_into_the_current_greenlet_raises_here():
    with pytest.raises(KeyError):
        getcurrent().throw(KeyError("self"))


def test_greenlet_throwing_into_itself_can_catch_it():
    def run():
        try:
            getcurrent().throw(KeyError("self"))
        except KeyError as exc:
            return exc.args

    assert greenlet.greenlet(run).switch() == ("self",)


def test_throw_from_a_greenlet_into_its_parent():
    def run():
        getcurrent().parent.throw(KeyError("to parent"))

    g = greenlet.greenlet(run)
    with pytest.raises(KeyError) as info:
        g.switch()
    assert info.value.args == ("to parent",)
    assert not g.dead


def test_throwing_into_a_greenlet_does_not_leak(no_leaks):
    def workload():
        g = parked_forever()
        g.throw()
        g2 = parked_catcher()
        g2.throw(KeyError, "x")

    no_leaks.check(workload)
