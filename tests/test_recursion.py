"""Recursion limits inside greenlets behave as they do in threads."""

import sys

import pytest

import greenlet
from greenlet import getcurrent


@pytest.fixture
def recursion_limit():
    """Lets a test change the recursion limit; restores it afterwards."""
    saved = sys.getrecursionlimit()
    yield sys.setrecursionlimit
    sys.setrecursionlimit(saved)


def reachable_depth():
    """How many more Python calls fit before RecursionError."""
    def recurse(n):
        try:
            return recurse(n + 1)
        except RecursionError:
            return n

    return recurse(0)


def call_depth():
    """Python frames on the current greenlet's stack (including callers)."""
    depth = 0
    frame = sys._getframe(1)
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


def test_deep_recursion_in_a_greenlet_raises_recursion_error():
    def run():
        def forever(n):
            return forever(n + 1)
        try:
            forever(0)
        except RecursionError:
            return "RecursionError"

    assert greenlet.greenlet(run).switch() == "RecursionError"


def test_uncaught_recursion_error_reaches_the_parent():
    def forever():
        return forever()

    g = greenlet.greenlet(forever)
    with pytest.raises(RecursionError):
        g.switch()
    assert g.dead


def test_greenlet_keeps_working_after_a_recursion_error():
    def run():
        first = reachable_depth()
        getcurrent().parent.switch(first)
        return reachable_depth()

    g = greenlet.greenlet(run)
    first = g.switch()
    assert g.switch() == first


def test_recursion_limit_bounds_depth_in_a_greenlet(recursion_limit):
    here = call_depth()
    recursion_limit(here + 300)
    depth = greenlet.greenlet(reachable_depth).switch()
    assert 100 < depth < here + 300


def test_new_greenlet_inherits_the_recursion_depth_of_its_starter():
    """Upstream counts a new greenlet's frames on top of the depth of the
    greenlet that started it, so starting one from deep in a call stack
    leaves it the same room as its starter."""
    def dive(n, fn):
        if n == 0:
            return fn()
        return dive(n - 1, fn)

    in_main = dive(300, reachable_depth)
    in_greenlet = dive(
        300, lambda: greenlet.greenlet(reachable_depth).switch())
    assert abs(in_main - in_greenlet) <= 5


def test_lowering_the_limit_while_suspended_applies_after_resume(
        recursion_limit):
    def run():
        getcurrent().parent.switch()
        return reachable_depth()

    g = greenlet.greenlet(run)
    g.switch()
    recursion_limit(call_depth() + 200)
    assert g.switch() < 200


def test_raising_the_limit_while_suspended_applies_after_resume(
        recursion_limit):
    recursion_limit(call_depth() + 300)

    def run():
        getcurrent().parent.switch()
        return reachable_depth()

    g = greenlet.greenlet(run)
    g.switch()
    recursion_limit(call_depth() + 3000)
    assert g.switch() > 2000


def test_deep_suspended_greenlet_does_not_reduce_main_depth():
    baseline = reachable_depth()

    def dive(n):
        if n == 0:
            getcurrent().parent.switch()
        else:
            dive(n - 1)

    g = greenlet.greenlet(lambda: dive(baseline // 2))
    g.switch()
    assert reachable_depth() == baseline
    g.switch()


def test_resuming_from_deep_in_main_does_not_reduce_greenlet_depth():
    def run():
        first = reachable_depth()
        getcurrent().parent.switch(first)
        return reachable_depth()

    g = greenlet.greenlet(run)
    first = g.switch()

    def dive(n):
        if n == 0:
            return g.switch()
        return dive(n - 1)

    assert dive(first // 2) == first


def test_deep_python_recursion_under_a_raised_limit_succeeds(recursion_limit):
    recursion_limit(call_depth() + 6000)

    def count_down(n):
        return 0 if n == 0 else 1 + count_down(n - 1)

    assert greenlet.greenlet(count_down).switch(5000) == 5000


def test_recursion_through_map_raises_recursion_error(run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import greenlet
        def through_map(n):
            return list(map(through_map, [n + 1]))
        def run():
            try:
                through_map(0)
            except RecursionError:
                return "RecursionError"
        print(greenlet.greenlet(run).switch())
    """)
    assert stdout == "RecursionError\n"


def test_recursion_through_sorted_key_raises_recursion_error(
        run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import greenlet
        def through_sorted(n):
            return sorted([2, 1], key=lambda x: through_sorted(n + 1))
        def run():
            try:
                through_sorted(0)
            except RecursionError:
                return "RecursionError"
        print(greenlet.greenlet(run).switch())
    """)
    assert stdout == "RecursionError\n"


def test_recursion_inside_c_code_raises_recursion_error(run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import greenlet
        def run():
            nested = []
            for _ in range(100000):
                nested = [nested]
            try:
                repr(nested)
            except RecursionError:
                return "RecursionError"
        print(greenlet.greenlet(run).switch())
    """)
    assert stdout == "RecursionError\n"


def test_recursion_through_c_reaches_the_same_depth_as_in_a_thread(
        run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import threading
        import greenlet
        def depth_through_map():
            reached = [0]
            def through_map(n):
                reached[0] = n
                return list(map(through_map, [n + 1]))
            try:
                through_map(0)
            except RecursionError:
                pass
            return reached[0]
        in_greenlet = greenlet.greenlet(depth_through_map).switch()
        box = []
        t = threading.Thread(target=lambda: box.append(depth_through_map()))
        t.start()
        t.join()
        print(abs(in_greenlet - box[0]) < 20)
    """)
    assert stdout == "True\n"


def test_recursion_error_in_greenlets_of_several_threads(run_in_subprocess):
    stdout = run_in_subprocess.clean("""
        import threading
        import greenlet
        results = []
        def through_map(n):
            return list(map(through_map, [n + 1]))
        def run():
            try:
                through_map(0)
            except RecursionError:
                return "RecursionError"
        def body():
            results.append(greenlet.greenlet(run).switch())
        threads = [threading.Thread(target=body) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(results)
    """)
    assert stdout == str(["RecursionError"] * 4) + "\n"
