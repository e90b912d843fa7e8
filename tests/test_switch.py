"""Switching: starting greenlets, passing values, where control goes."""

import pytest

import greenlet
from greenlet import getcurrent


def suspend_and_return_what_resumes_us():
    """A run() that parks once, then returns the value it was resumed with."""
    return getcurrent().parent.switch()


def echo_after_suspend():
    """A parked greenlet whose next resume value becomes its return value."""
    g = greenlet.greenlet(suspend_and_return_what_resumes_us)
    g.switch()
    return g


def test_first_switch_calls_run_with_positional_args():
    g = greenlet.greenlet(lambda *args: args)
    assert g.switch(1, "two", 3.0) == (1, "two", 3.0)


def test_first_switch_passes_keyword_args_to_run():
    g = greenlet.greenlet(lambda a, b=None, **kw: (a, b, kw))
    assert g.switch(1, b=2, c=3) == (1, 2, {"c": 3})


def test_run_can_be_given_as_keyword_argument():
    g = greenlet.greenlet(run=lambda: "ran")
    assert g.switch() == "ran"


def test_return_value_of_run_is_delivered_to_the_parent():
    sentinel = object()
    g = greenlet.greenlet(lambda: sentinel)
    assert g.switch() is sentinel


def test_greenlet_is_dead_after_run_returns():
    g = greenlet.greenlet(lambda: None)
    g.switch()
    assert g.dead


def test_resumed_greenlet_gets_empty_tuple_from_switch_without_args():
    g = echo_after_suspend()
    assert g.switch() == ()


def test_resumed_greenlet_gets_a_single_argument_unwrapped():
    g = echo_after_suspend()
    sentinel = object()
    assert g.switch(sentinel) is sentinel


def test_resumed_greenlet_gets_several_arguments_as_a_tuple():
    g = echo_after_suspend()
    assert g.switch(1, 2, 3) == (1, 2, 3)


def test_resumed_greenlet_gets_keyword_only_switch_as_a_dict():
    g = echo_after_suspend()
    assert g.switch(a=1, b=2) == {"a": 1, "b": 2}


def test_resumed_greenlet_gets_args_and_kwargs_as_a_pair():
    g = echo_after_suspend()
    assert g.switch(1, 2, a=3) == ((1, 2), {"a": 3})


def test_single_arg_with_kwargs_keeps_the_args_tuple():
    g = echo_after_suspend()
    assert g.switch(1, a=2) == ((1,), {"a": 2})


def test_single_tuple_argument_arrives_as_that_tuple():
    g = echo_after_suspend()
    assert g.switch((1, 2)) == (1, 2)


def test_single_none_argument_arrives_as_none():
    g = echo_after_suspend()
    assert g.switch(None) is None


def test_parent_gets_empty_tuple_when_child_switches_without_args():
    g = greenlet.greenlet(lambda: getcurrent().parent.switch())
    assert g.switch() == ()


def test_parent_gets_kwargs_dict_when_child_switches_with_kwargs_only():
    g = greenlet.greenlet(lambda: getcurrent().parent.switch(x=1))
    assert g.switch() == {"x": 1}


def test_parent_gets_args_kwargs_pair_from_child_switch():
    g = greenlet.greenlet(lambda: getcurrent().parent.switch(1, x=2))
    assert g.switch() == ((1,), {"x": 2})


def test_switching_to_the_current_greenlet_returns_the_args_at_once():
    assert getcurrent().switch(1, 2) == (1, 2)


def test_switching_to_the_current_greenlet_unwraps_a_single_arg():
    sentinel = object()
    assert getcurrent().switch(sentinel) is sentinel


def test_switching_to_the_current_greenlet_without_args_returns_empty_tuple():
    assert getcurrent().switch() == ()


def test_switching_to_the_current_greenlet_with_kwargs_returns_a_dict():
    assert getcurrent().switch(k="v") == {"k": "v"}


def test_greenlet_switching_to_itself_keeps_running():
    def run():
        me = getcurrent()
        first = me.switch("a")
        return (first, "still here")

    assert greenlet.greenlet(run).switch() == ("a", "still here")


def test_getcurrent_inside_run_is_the_running_greenlet():
    box = []
    g = greenlet.greenlet(lambda: box.append(getcurrent()))
    g.switch()
    assert box == [g]


def test_switch_to_suspended_greenlet_resumes_after_its_own_switch_call():
    log = []

    def run():
        log.append("start")
        getcurrent().parent.switch()
        log.append("resumed")

    g = greenlet.greenlet(run)
    g.switch()
    log.append("main")
    g.switch()
    assert log == ["start", "main", "resumed"]


def test_two_greenlets_ping_pong_in_order():
    log = []

    def ping():
        for i in range(3):
            log.append(("ping", i))
            pong.switch()

    def pong():
        for i in range(3):
            log.append(("pong", i))
            ping_g.switch()

    ping_g = greenlet.greenlet(ping)
    pong = greenlet.greenlet(pong)
    ping_g.switch()
    assert log == [
        ("ping", 0), ("pong", 0),
        ("ping", 1), ("pong", 1),
        ("ping", 2), ("pong", 2),
    ]


def test_switch_resumes_inside_nested_python_calls():
    def level(n):
        if n == 0:
            return getcurrent().parent.switch("bottom")
        return level(n - 1) + 1

    g = greenlet.greenlet(lambda: level(50))
    assert g.switch() == "bottom"
    assert g.switch(0) == 50


def test_local_variables_survive_a_switch():
    def run():
        values = [i * i for i in range(100)]
        getcurrent().parent.switch()
        return sum(values)

    g = greenlet.greenlet(run)
    g.switch()
    assert g.switch() == sum(i * i for i in range(100))


def test_run_returning_goes_to_parent_not_to_the_last_switcher():
    main = getcurrent()

    def child_run():
        middle.switch("hello from child")
        return "child done"

    def middle_run():
        got = child.switch()
        main.switch(("middle got", got))

    child = greenlet.greenlet(child_run)  # parent: main
    middle = greenlet.greenlet(middle_run)
    assert middle.switch() == ("middle got", "hello from child")
    # child is parked; resuming it lets run() return, which goes to main.
    assert child.switch() == "child done"


def test_switch_to_dead_greenlet_resumes_its_parent():
    g = greenlet.greenlet(lambda: None)
    g.switch()
    assert g.switch() == ()


def test_switch_to_dead_greenlet_passes_the_values_to_its_parent():
    g = greenlet.greenlet(lambda: None)
    g.switch()
    assert g.switch(1, 2, k=3) == ((1, 2), {"k": 3})


def test_switch_to_dead_greenlet_reaches_a_live_ancestor():
    main = getcurrent()

    def outer_run():
        inner = greenlet.greenlet(lambda: None)
        inner.switch()
        main.switch(inner)
        return "outer resumed with dead child's switch"

    outer = greenlet.greenlet(outer_run)
    dead_inner = outer.switch()
    assert dead_inner.dead
    # dead_inner's parent is outer, which is alive and parked.
    assert dead_inner.switch() == "outer resumed with dead child's switch"


def test_switch_to_dead_greenlet_skips_dead_parents():
    outer = greenlet.greenlet(lambda: None)
    outer.switch()
    inner = greenlet.greenlet(lambda: None, outer)
    inner.switch()
    assert inner.dead and outer.dead
    assert inner.switch("to main") == "to main"


def test_greenlet_started_by_another_still_returns_to_its_creator():
    main = getcurrent()
    created_in_main = greenlet.greenlet(lambda: "returned")

    def starter():
        result = created_in_main.switch()
        return ("starter got", result)

    starter_g = greenlet.greenlet(starter)
    # created_in_main's parent is main, so its return lands here, not in
    # starter_g, which stays parked.
    assert starter_g.switch() == "returned"
    assert created_in_main.parent is main
    assert not starter_g.dead


def test_greenlet_created_inside_a_greenlet_returns_to_it():
    def outer():
        inner = greenlet.greenlet(lambda: "inner result")
        return ("outer saw", inner.switch())

    assert greenlet.greenlet(outer).switch() == ("outer saw", "inner result")


def test_value_passed_along_a_chain_of_greenlets():
    def add_one(value):
        return value + 1

    def make(next_g):
        def run(value):
            return next_g.switch(value + 1)
        return run

    last = greenlet.greenlet(add_one)
    chain = last
    for _ in range(10):
        chain = greenlet.greenlet(make(chain))
    # Each run switches onward; the last returns to its parent (main).
    assert chain.switch(0) == 11


def test_many_greenlets_can_be_started_and_finished():
    total = 0
    for i in range(1000):
        total += greenlet.greenlet(lambda i=i: i).switch()
    assert total == sum(range(1000))


def test_generator_can_be_built_from_switches():
    def gen_run(limit):
        for i in range(limit):
            getcurrent().parent.switch(i)

    g = greenlet.greenlet(gen_run)
    produced = [g.switch(4)]
    while True:
        value = g.switch()
        if g.dead:
            break
        produced.append(value)
    assert produced == [0, 1, 2, 3]


def test_run_set_to_none_raises_type_error_on_start():
    g = greenlet.greenlet(None)
    with pytest.raises(TypeError):
        g.switch()


def test_greenlet_without_run_raises_attribute_error_on_start():
    with pytest.raises(AttributeError):
        greenlet.greenlet().switch()


def test_constructor_rejects_a_third_positional_argument():
    with pytest.raises(TypeError):
        greenlet.greenlet(None, None, None)


def test_constructor_rejects_unknown_keyword_arguments():
    with pytest.raises(TypeError):
        greenlet.greenlet(target=lambda: None)


def test_new_ignores_its_arguments():
    g = greenlet.greenlet.__new__(greenlet.greenlet, 1, 2, x=3)
    assert isinstance(g, greenlet.greenlet)
    assert g.parent is getcurrent()


def test_switch_is_reentrant_through_several_greenlets():
    main = getcurrent()

    def a_run():
        return b.switch("from a") + "|a"

    def b_run(value):
        return main.switch(value + "|b")

    a = greenlet.greenlet(a_run)
    b = greenlet.greenlet(b_run)
    assert a.switch() == "from a|b"
    # b returns "x" to its parent (main); a stays parked inside b.switch.
    assert b.switch("x") == "x"
    assert a.switch("y") == "y|a"


def test_switching_in_a_loop_does_not_leak_greenlets(no_leaks):
    def workload():
        g = greenlet.greenlet(suspend_and_return_what_resumes_us)
        g.switch()
        g.switch(1, k=2)

    no_leaks.check(workload)
