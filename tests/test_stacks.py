"""Behaviour of our own stacks: sizes, overflow, deep recursion and
deallocation on a greenlet stack, and what _stack_saved reports.

These are not upstream behaviours (upstream has no per-greenlet stack),
so they were written against this implementation and its docs.
"""
import gc
import os
import sys
import textwrap

import pytest

import greenlet
from greenlet import greenlet as Greenlet

from conftest import UNDER_ASAN

DEFAULT_STACK = 8 << 20


def c_recurse(n):
    """Each level re-enters the interpreter from C (map calls us)."""
    return next(map(c_recurse, [n + 1]))


def recurse_until_error():
    try:
        c_recurse(0)
    except RecursionError:
        return "RecursionError"
    return "no error"


def test_a_new_greenlet_gets_the_default_stack_size():
    assert Greenlet(lambda: None).stack_size == DEFAULT_STACK


def test_stack_size_keyword_sets_the_size():
    assert Greenlet(lambda: None, stack_size=1 << 20).stack_size == 1 << 20


def test_stack_size_is_keyword_only():
    with pytest.raises(TypeError):
        Greenlet(lambda: None, None, 1 << 20)


@pytest.mark.parametrize("size", [0, 1024, -1, 1 << 40])
def test_stack_size_out_of_range_is_a_value_error(size):
    with pytest.raises(ValueError, match="stack_size must be between"):
        Greenlet(lambda: None, stack_size=size)


def test_stack_size_must_be_an_integer():
    with pytest.raises(TypeError):
        Greenlet(lambda: None, stack_size="big")


def test_main_greenlet_has_no_stack_size_of_its_own():
    assert greenlet.getcurrent().stack_size is None


def test_set_default_stack_size_applies_to_new_greenlets_and_returns_old():
    previous = greenlet.set_default_stack_size(2 << 20)
    try:
        assert previous == DEFAULT_STACK
        assert greenlet.get_default_stack_size() == 2 << 20
        assert Greenlet(lambda: None).stack_size == 2 << 20
    finally:
        greenlet.set_default_stack_size(previous)


def test_set_default_stack_size_rejects_out_of_range():
    with pytest.raises(ValueError):
        greenlet.set_default_stack_size(100)
    assert greenlet.get_default_stack_size() == DEFAULT_STACK


def test_greenlet_with_small_stack_runs_ordinary_code():
    def work():
        return sum(sorted(range(1000), key=lambda x: -x))
    assert Greenlet(work, stack_size=64 << 10).switch() == 499500


def test_deep_c_recursion_in_a_greenlet_raises_recursion_error():
    assert Greenlet(recurse_until_error).switch() == "RecursionError"


@pytest.mark.parametrize("size", [64 << 10, 256 << 10, 1 << 20])
def test_deep_c_recursion_on_a_small_stack_raises_recursion_error(size):
    g = Greenlet(recurse_until_error, stack_size=size)
    assert g.switch() == "RecursionError"


def test_recursion_limit_set_while_suspended_applies_on_resume():
    def probe():
        depth = 0

        def down():
            nonlocal depth
            depth += 1
            down()
        greenlet.getcurrent().parent.switch()
        try:
            down()
        except RecursionError:
            return depth
    limit = sys.getrecursionlimit()
    g = Greenlet(probe)
    g.switch()
    sys.setrecursionlimit(limit + 500)
    try:
        deeper = g.switch()
    finally:
        sys.setrecursionlimit(limit)
    baseline = Greenlet(probe)
    baseline.switch()
    assert deeper - baseline.switch() == 500


def test_freeing_a_long_linked_list_in_a_greenlet_frees_it(no_leaks):
    """Deallocation 100,000 objects deep must neither crash nor be
    deferred forever (3.14+ decides the trashcan by stack position)."""
    class Node:
        __slots__ = ("next", "__weakref__")

    import weakref

    def build_and_drop():
        head = None
        for _ in range(100000):
            node = Node()
            node.next = head
            head = node
        tail_ref = weakref.ref(node)
        del head, node
        return tail_ref

    tail_ref = Greenlet(build_and_drop).switch()
    gc.collect()
    assert tail_ref() is None


def test_stack_saved_is_zero_before_start_and_after_death():
    g = Greenlet(lambda: greenlet.getcurrent().parent.switch())
    assert g._stack_saved == 0
    g.switch()
    g.switch()
    assert g.dead
    assert g._stack_saved == 0


def test_stack_saved_of_a_suspended_greenlet_is_its_stack_in_use():
    def park(levels):
        if levels:
            return next(map(park, [levels - 1]))
        greenlet.getcurrent().parent.switch()
    shallow = Greenlet(park)
    shallow.switch(0)
    deep = Greenlet(park)
    deep.switch(100)
    assert 0 < shallow._stack_saved < deep._stack_saved
    assert deep._stack_saved < DEFAULT_STACK


def test_stack_saved_of_the_running_greenlet_is_zero():
    seen = []
    g = Greenlet(lambda: seen.append(greenlet.getcurrent()._stack_saved))
    g.switch()
    assert seen == [0]


def test_runaway_c_recursion_in_a_greenlet_is_stopped_loudly(
        run_in_subprocess):
    """Raising the recursion limit inside a greenlet on a small stack and
    recursing through C: 3.12+ sizes its C recursion guard to the stack
    (a budget on 3.12/3.13, stack bounds on 3.14+), so RecursionError
    comes first; 3.10/3.11 count C and Python calls against the one
    limit just raised, so the guard page is hit and the process must die
    saying that a greenlet stack overflowed and how to give it more."""
    code = textwrap.dedent("""
        import sys, greenlet
        def c_recurse(n):
            return next(map(c_recurse, [n + 1]))
        def run():
            sys.setrecursionlimit(10 ** 6)
            try:
                c_recurse(0)
            except RecursionError:
                print("RecursionError")
        greenlet.greenlet(run, stack_size=256 * 1024).switch()
    """)
    returncode, stdout, stderr = run_in_subprocess(code)
    if sys.version_info >= (3, 12):
        assert (returncode, stdout) == (0, "RecursionError\n")
    elif UNDER_ASAN:
        # ASan reports the fault too (as a stack overflow, or as the SEGV
        # our handler re-raises); ours speaks first when ASan lets it
        # install itself.
        assert returncode == 1
        assert "ERROR: AddressSanitizer" in stderr
        if "allow_user_segv_handler=1" in os.environ.get("ASAN_OPTIONS", ""):
            assert "greenlet stack overflow" in stderr
    else:
        assert returncode == -11
        assert "greenlet stack overflow" in stderr
        assert "stack_size" in stderr


def test_a_fault_outside_greenlet_stacks_is_left_to_the_default(
        run_in_subprocess):
    code = textwrap.dedent("""
        import ctypes, greenlet
        greenlet.greenlet(lambda: None).switch()
        ctypes.string_at(1)
    """)
    returncode, stdout, stderr = run_in_subprocess(code)
    if UNDER_ASAN:
        assert returncode == 1
        assert "AddressSanitizer: SEGV on unknown address" in stderr
    else:
        assert returncode == -11
    assert "greenlet stack overflow" not in stderr


def test_many_suspended_greenlets_use_few_memory_mappings():
    stats_before = greenlet._greenlet._get_stack_stats()
    parked = []
    for _ in range(2000):
        g = Greenlet(lambda: greenlet.getcurrent().parent.switch())
        g.switch()
        parked.append(g)
    stats = greenlet._greenlet._get_stack_stats()
    assert stats["in_use"] >= stats_before["in_use"] + 2000
    if stats["guard_by_madvise"]:
        assert stats["mappings"] < 2000 // 8
    for g in parked:
        g.switch()
    del parked, g
    assert greenlet._greenlet._get_stack_stats()["in_use"] == \
        stats_before["in_use"]
