"""Greenlets and OS threads: per-thread main greenlets, cross-thread errors,
greenlets of exited threads, and cross-thread deallocation."""

import gc
import threading
import time
import weakref

import pytest

import greenlet
from greenlet import getcurrent

CROSS_THREAD_PREFIX = "Cannot switch to a different thread\n\tCurrent:  "
EXITED_THREAD_MESSAGE = (
    "cannot switch to a different thread (which happens to have exited)"
)


def run_in_thread(fn):
    """Run ``fn`` in a new thread to completion; return its result."""
    result = []
    errors = []

    def body():
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: B036 - reported to the caller
            errors.append(exc)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


class ParkedThread:
    """A live helper thread holding greenlets; it waits until released.

    ``main`` is its main greenlet, ``suspended`` a started, parked
    greenlet, ``unstarted`` a greenlet created there but not started.
    """

    def __init__(self):
        self._ready = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._body)
        self._thread.start()
        self._ready.wait()

    def _body(self):
        self.main = getcurrent()
        self.suspended = greenlet.greenlet(lambda: self.main.switch())
        self.suspended.switch()
        self.unstarted = greenlet.greenlet(lambda: None)
        self._ready.set()
        self._release.wait()
        # Resume the parked greenlet so it ends in its own thread.
        self.suspended.switch()

    def finish(self):
        self._release.set()
        self._thread.join()


@pytest.fixture
def parked_thread():
    helper = ParkedThread()
    yield helper
    helper.finish()


def exited_thread_greenlets():
    """Greenlets created by a thread that has since exited."""
    box = {}

    def body():
        box["main"] = getcurrent()
        box["suspended"] = greenlet.greenlet(lambda: box["main"].switch())
        box["suspended"].switch()
        box["unstarted"] = greenlet.greenlet(lambda: None)
        box["finished"] = greenlet.greenlet(lambda: None)
        box["finished"].switch()

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    wait_until_thread_state_is_gone(box["main"])
    return box


def wait_until_thread_state_is_gone(main):
    """Wait until greenlet has noticed that ``main``'s thread exited.

    join() returns once the Python thread state is released, which may be
    a moment before the OS thread finishes exiting and greenlet marks the
    thread's main greenlet dead. This waits for that event; it asserts
    nothing about how long it takes.

    Callers keep main greenlets of exited threads in containers, not only
    in local variables: upstream greenlet 3.5.6's thread-cleanup heuristic
    may free an exited thread's main greenlet whose sole other reference
    is a local of a running function.
    """
    for _ in range(2000):
        if main.dead:
            return
        time.sleep(0.005)
    raise AssertionError(f"{main!r} never became dead")


# --- main greenlets ------------------------------------------------------


def test_each_thread_has_its_own_main_greenlet():
    # Held in a list, not a bare local: see wait_until_thread_state_is_gone.
    others = [run_in_thread(getcurrent)]
    assert others[0] is not getcurrent()


def test_current_greenlet_of_a_new_thread_is_a_main_greenlet():
    assert run_in_thread(lambda: getcurrent().parent) is None


def test_main_greenlet_of_new_thread_reprs_as_current_main():
    r = run_in_thread(lambda: repr(getcurrent()))
    assert r.endswith(" current active started main>")


def test_getcurrent_is_stable_within_a_thread():
    assert run_in_thread(lambda: getcurrent() is getcurrent()) is True


def test_greenlets_created_in_a_thread_have_its_main_as_parent():
    def body():
        main = getcurrent()
        return greenlet.greenlet(lambda: None).parent is main

    assert run_in_thread(body) is True


def test_greenlets_can_switch_inside_a_thread():
    def body():
        g = greenlet.greenlet(lambda x: getcurrent().parent.switch(x * 2))
        return g.switch(21)

    assert run_in_thread(body) == 42


# --- live threads --------------------------------------------------------


def test_switching_to_a_live_threads_main_greenlet_is_an_error(parked_thread):
    with pytest.raises(greenlet.error) as info:
        parked_thread.main.switch()
    assert str(info.value).startswith(CROSS_THREAD_PREFIX)


def test_cross_thread_error_names_both_main_greenlets(parked_thread):
    with pytest.raises(greenlet.error) as info:
        parked_thread.suspended.switch()
    expected = (
        f"Cannot switch to a different thread\n"
        f"\tCurrent:  {getcurrent()!r}\n"
        f"\tExpected: {parked_thread.main!r}"
    )
    assert str(info.value) == expected


def test_switching_to_a_greenlet_suspended_in_another_thread_is_an_error(
        parked_thread):
    with pytest.raises(greenlet.error) as info:
        parked_thread.suspended.switch()
    assert str(info.value).startswith(CROSS_THREAD_PREFIX)
    assert not parked_thread.suspended.dead


def test_starting_a_greenlet_created_in_another_thread_is_an_error(
        parked_thread):
    with pytest.raises(greenlet.error) as info:
        parked_thread.unstarted.switch()
    assert str(info.value).startswith(CROSS_THREAD_PREFIX)


def test_throwing_into_a_greenlet_of_another_thread_is_an_error(
        parked_thread):
    with pytest.raises(greenlet.error) as info:
        parked_thread.suspended.throw(KeyError)
    assert str(info.value).startswith(CROSS_THREAD_PREFIX)


def test_greenlets_of_a_live_thread_are_not_dead(parked_thread):
    assert not parked_thread.main.dead
    assert not parked_thread.suspended.dead


def test_main_greenlet_of_a_live_thread_reprs_as_suspended_main(
        parked_thread):
    assert repr(parked_thread.main).endswith(" suspended active started main>")


# --- exited threads ------------------------------------------------------


def test_main_greenlet_of_exited_thread_is_dead():
    assert exited_thread_greenlets()["main"].dead


def test_suspended_greenlet_of_exited_thread_is_dead():
    assert exited_thread_greenlets()["suspended"].dead


def test_greenlets_of_exited_thread_repr_as_thread_exited():
    box = exited_thread_greenlets()
    assert repr(box["main"]).endswith(" (thread exited) dead>")
    assert repr(box["suspended"]).endswith(" (thread exited) dead>")


def test_switching_to_suspended_greenlet_of_exited_thread_is_an_error():
    box = exited_thread_greenlets()
    with pytest.raises(greenlet.error) as info:
        box["suspended"].switch()
    assert str(info.value) == EXITED_THREAD_MESSAGE


def test_switching_to_main_greenlet_of_exited_thread_is_an_error():
    box = exited_thread_greenlets()
    with pytest.raises(greenlet.error) as info:
        box["main"].switch()
    assert str(info.value) == EXITED_THREAD_MESSAGE


def test_starting_unstarted_greenlet_of_exited_thread_is_an_error():
    box = exited_thread_greenlets()
    with pytest.raises(greenlet.error) as info:
        box["unstarted"].switch()
    assert str(info.value) == EXITED_THREAD_MESSAGE


def test_switching_to_finished_greenlet_of_exited_thread_is_an_error():
    box = exited_thread_greenlets()
    with pytest.raises(greenlet.error) as info:
        box["finished"].switch()
    assert str(info.value) == EXITED_THREAD_MESSAGE


def test_suspended_greenlet_of_exited_thread_can_be_collected():
    box = exited_thread_greenlets()
    ref = weakref.ref(box["suspended"])
    box.clear()
    gc.collect()
    assert ref() is None


def test_suspended_greenlet_of_exited_thread_is_not_unwound_elsewhere():
    log = []

    def body():
        def run():
            try:
                getcurrent().parent.switch()
            finally:
                log.append(threading.get_ident())
        g = greenlet.greenlet(run)
        g.switch()
        return g, getcurrent()

    g, main = run_in_thread(body)
    wait_until_thread_state_is_gone(main)
    del g, main
    gc.collect()
    assert log == []


# --- deallocation across threads -----------------------------------------


def test_greenlet_dropped_by_its_exiting_thread_is_unwound_in_that_thread():
    log = []

    def body():
        def run():
            try:
                getcurrent().parent.switch()
            finally:
                log.append(threading.get_ident())
        g = greenlet.greenlet(run)
        g.switch()
        return threading.get_ident()

    thread_id = run_in_thread(body)
    assert log == [thread_id]


def drop_here_a_greenlet_suspended_in_another_thread(
        finally_entry, log, after_drop, on_drop=lambda: None):
    """An owner thread suspends a greenlet whose finally block appends
    finally_entry() to log, and hands over its only reference; this thread
    drops it and calls on_drop(), then the owner calls after_drop().
    Returns the owner thread's ident."""
    box = []
    created = threading.Event()
    dropped = threading.Event()

    def owner():
        def run():
            try:
                getcurrent().parent.switch()
            finally:
                log.append(finally_entry())
        g = greenlet.greenlet(run)
        g.switch()
        box.append(g)
        del g
        created.set()
        dropped.wait()
        after_drop()

    thread = threading.Thread(target=owner)
    thread.start()
    created.wait()
    box.clear()
    on_drop()
    dropped.set()
    thread.join()
    return thread.ident


def test_last_reference_dropped_in_another_thread_defers_the_kill():
    """The kill is queued for the owning thread; dropping here does not
    run the greenlet's finally block in this thread (upstream issues
    #251, #252)."""
    log = []

    def owner_calls_getcurrent():
        log.append("owner calls getcurrent")
        getcurrent()
        log.append("owner done")

    owner_ident = drop_here_a_greenlet_suspended_in_another_thread(
        lambda: ("finally", threading.get_ident()), log,
        owner_calls_getcurrent,
        on_drop=lambda: log.append("dropped in main thread"))
    assert log == [
        "dropped in main thread",
        "owner calls getcurrent",
        ("finally", owner_ident),
        "owner done",
    ]


def test_deferred_kill_runs_when_owner_creates_a_greenlet():
    log = []

    def owner_creates_a_greenlet():
        greenlet.greenlet(lambda: None)
        log.append("after construction")

    drop_here_a_greenlet_suspended_in_another_thread(
        lambda: "finally", log, owner_creates_a_greenlet)
    assert log == ["finally", "after construction"]


def test_deferred_kill_preserves_a_pending_exception_in_the_owner():
    outcome = []

    def owner_handles_an_exception():
        try:
            raise KeyError("in owner")
        except KeyError:
            getcurrent()
            outcome.append(repr(__import__("sys").exc_info()[1]))

    drop_here_a_greenlet_suspended_in_another_thread(
        lambda: "finally", outcome, owner_handles_an_exception)
    assert outcome == ["finally", "KeyError('in owner')"]


# --- concurrency ---------------------------------------------------------


def test_threads_creating_and_dropping_greenlets_concurrently():
    errors = []
    totals = []
    start = threading.Barrier(8)

    def worker(n):
        try:
            start.wait()
            total = 0
            for i in range(200):
                g = greenlet.greenlet(
                    lambda x: getcurrent().parent.switch(x + 1))
                total += g.switch(i)
                if i % 2:
                    g.switch()  # finish it
                del g  # the others are killed while suspended
            totals.append((n, total))
        except BaseException as exc:  # noqa: B036
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(totals) == [(n, sum(range(1, 201))) for n in range(8)]


def test_threads_ping_ponging_greenlets_concurrently_get_their_own_values():
    results = {}
    start = threading.Barrier(4)

    def worker(n):
        main = getcurrent()

        def echo():
            value = main.switch()
            while True:
                value = main.switch(value * n)

        start.wait()
        g = greenlet.greenlet(echo)
        g.switch()
        results[n] = [g.switch(i) for i in range(100)]
        g.throw()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {n: [i * n for i in range(100)] for n in range(4)}


def test_threads_using_greenlets_leave_no_greenlets_behind(no_leaks):
    def workload():
        def body():
            g = greenlet.greenlet(lambda: getcurrent().parent.switch())
            g.switch()
            return None
        run_in_thread(body)

    no_leaks.check(workload, runs=10)


def test_gr_frame_of_a_greenlet_suspended_in_another_thread_is_its_frame():
    """Upstream keeps the top frame of a suspended greenlet whatever
    thread asks; ours reads it from the greenlet's own, unmoved stack."""
    import threading
    parked = []
    ready = threading.Event()
    release = threading.Event()

    def body():
        def where_it_waits():
            greenlet.getcurrent().parent.switch()
        g = greenlet.greenlet(where_it_waits)
        g.switch()
        parked.append(g)
        ready.set()
        release.wait()
        g.switch()

    t = threading.Thread(target=body)
    t.start()
    ready.wait()
    try:
        frame = parked[0].gr_frame
        assert frame is not None
        assert frame.f_code.co_name == "where_it_waits"
    finally:
        release.set()
        t.join()
